"""Data made the way users make it: through the API, running on the test's database."""

from __future__ import annotations

import uuid
from typing import Any

from taskmanager_api.core.config import Settings
from tests.api.conftest import running_app
from tests.api.helpers import API, Account, ApiClient

# The longest description the API takes (10,000 characters), in 4-byte characters: 40 kB a task.
LARGE_DESCRIPTION = ("𝄞 Größe 漢字 🚀 " * 1000)[:10_000]
UNICODE_TITLE = "Überprüfung — 日本語のタスク ✅ «quotes» 'single' \\ backslash"


async def _populate(api: ApiClient) -> dict[str, Any]:
    alice, bob = await api.account(), await api.account()
    tasks = []
    for index in range(6):
        owner = alice if index % 2 == 0 else bob
        tasks.append(
            await api.create_task(
                owner,
                title=f"{UNICODE_TITLE} #{index}",
                description=LARGE_DESCRIPTION if index < 3 else f"line one\nline two\t{index}",
                priority=["low", "medium", "high", "urgent"][index % 4],
                tags=["backup", f"tag-{index}"],
                due_at="2031-02-03T04:05:06.789+02:00",
                assignee_id=str(alice.id) if index == 0 else None,
            )
        )
    for task in tasks[0::2]:  # alice's
        for body in ("first 🙂", "second: a longer comment " * 40):
            response = await api.post(
                f"{API}/tasks/{task['id']}/comments", as_=alice, json={"body": body}
            )
            assert response.status_code == 201, response.text
    # A rotated refresh token and an ended session: rows of the revocation tables.
    refreshed = await api.post(f"{API}/auth/refresh", json={"refresh_token": bob.refresh_token})
    assert refreshed.status_code == 200, refreshed.text
    assert (await api.post(f"{API}/auth/logout", as_=alice)).status_code == 204
    return {"alice": alice, "bob": bob, "tasks": tasks}


async def populate(settings: Settings) -> dict[str, Any]:
    async with running_app(settings) as (_, api):
        return await _populate(api)


async def change_everything(settings: Settings, world: dict[str, Any]) -> None:
    """What happens after the backup: new users and tasks, edits, deletions."""
    async with running_app(settings) as (_, api):
        carol = await api.account()
        bob = await api.login(world["bob"].email)
        await api.create_task(carol, title="made after the backup")
        first, second = world["tasks"][1], world["tasks"][3]
        patched = await api.patch(
            f"{API}/tasks/{first['id']}",
            as_=bob,
            json={"title": "renamed after the backup", "status": "done", "tags": []},
        )
        assert patched.status_code == 200, patched.text
        deleted = await api.delete(f"{API}/tasks/{second['id']}", as_=bob)
        assert deleted.status_code == 204, deleted.text


async def tasks_seen_by(settings: Settings, account: Account) -> list[dict[str, Any]]:
    """What a user sees of their tasks, logging in again with their password."""
    async with running_app(settings) as (_, api):
        user = await api.login(account.email)
        response = await api.get(f"{API}/tasks", as_=user, params={"limit": 100})
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["data"]
        return sorted(items, key=lambda task: uuid.UUID(task["id"]))
