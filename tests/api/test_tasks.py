"""Tasks: create, read, update, delete, list with filters, sorting and pages, on real Postgres."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.api.helpers import API, ApiClient, assert_error

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


async def test_crud_round_trip(api: ApiClient) -> None:
    owner = await api.account()
    created = await api.create_task(
        owner,
        title="Write the runbook",
        description="for the on-call",
        priority="high",
        due_at="2030-05-01T12:00:00+02:00",
        tags=["ops", "docs", "ops"],
    )
    assert created["created_by"] == str(owner.id)
    assert created["status"] == "todo"
    assert created["tags"] == ["docs", "ops"]
    assert created["due_at"] == "2030-05-01T10:00:00Z"

    read = await api.get(f"{API}/tasks/{created['id']}", as_=owner)
    assert read.status_code == 200
    assert read.json() == created

    patched = await api.patch(
        f"{API}/tasks/{created['id']}",
        as_=owner,
        json={"status": "in_progress", "tags": ["ops"], "due_at": None},
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["status"], body["tags"], body["due_at"]) == ("in_progress", ["ops"], None)
    assert body["title"] == "Write the runbook"
    assert body["updated_at"] > created["updated_at"]
    # The read after a write sees the write (the cache was replaced, not left stale).
    assert (await api.get(f"{API}/tasks/{created['id']}", as_=owner)).json() == body

    deleted = await api.delete(f"{API}/tasks/{created['id']}", as_=owner)
    assert deleted.status_code == 204
    assert_error(await api.get(f"{API}/tasks/{created['id']}", as_=owner), 404, "not_found")
    assert_error(await api.delete(f"{API}/tasks/{created['id']}", as_=owner), 404)


async def test_assignee_sees_and_changes_but_cannot_delete(api: ApiClient) -> None:
    owner, assignee = await api.account(), await api.account()
    task = await api.create_task(owner, assignee_id=str(assignee.id))
    assert (await api.get(f"{API}/tasks/{task['id']}", as_=assignee)).status_code == 200
    listed = await api.get(f"{API}/tasks", as_=assignee)
    assert [item["id"] for item in listed.json()["data"]] == [task["id"]]
    changed = await api.patch(f"{API}/tasks/{task['id']}", as_=assignee, json={"status": "done"})
    assert changed.status_code == 200
    assert_error(await api.delete(f"{API}/tasks/{task['id']}", as_=assignee), 403, "forbidden")


async def test_unknown_assignee_is_refused(api: ApiClient) -> None:
    owner = await api.account()
    response = await api.post(
        f"{API}/tasks", as_=owner, json={"title": "x", "assignee_id": str(uuid.uuid4())}
    )
    assert_error(response, 404, "not_found")


async def test_list_filters_sorting_and_pages(api: ApiClient) -> None:
    me, other = await api.account(), await api.account()
    specs: list[dict[str, Any]] = [
        {
            "title": "Alpha report",
            "priority": "low",
            "status": "todo",
            "tags": ["finance"],
            "due_at": "2030-01-01T00:00:00Z",
        },
        {
            "title": "Beta launch",
            "priority": "urgent",
            "status": "in_progress",
            "tags": ["launch", "finance"],
            "due_at": "2030-02-01T00:00:00Z",
        },
        {
            "title": "Gamma",
            "description": "Discuss the 100% plan_b",
            "priority": "medium",
            "status": "done",
            "assignee_id": str(other.id),
        },
        {"title": "Delta", "priority": "high", "status": "todo"},
    ]
    ids = [(await api.create_task(me, **spec))["id"] for spec in specs]
    await api.create_task(other, title="not mine")

    async def listed(**params: str | int) -> tuple[list[str], int]:
        response = await api.get(f"{API}/tasks", as_=me, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        return [item["id"] for item in body["data"]], body["count"]

    assert (await listed())[1] == 4
    assert await listed(status="todo", sort="title") == ([ids[0], ids[3]], 2)
    assert await listed(priority="urgent") == ([ids[1]], 1)
    assert await listed(tag="finance", sort="title") == ([ids[0], ids[1]], 2)
    assert await listed(assignee_id=str(other.id)) == ([ids[2]], 1)
    assert await listed(due_before="2030-01-15T00:00:00Z") == ([ids[0]], 1)
    assert await listed(due_after="2030-01-15T00:00:00Z") == ([ids[1]], 1)
    # Search is case-insensitive over title and description, and % and _ are literal.
    assert await listed(q="BETA") == ([ids[1]], 1)
    assert await listed(q="100% plan_b") == ([ids[2]], 1)
    assert await listed(q="100%_plan") == ([], 0)
    assert (await listed(sort="-priority"))[0] == [ids[1], ids[3], ids[2], ids[0]]
    assert (await listed(sort="priority"))[0] == [ids[0], ids[2], ids[3], ids[1]]
    assert (await listed(sort="due_at"))[0][:2] == [ids[0], ids[1]]
    # Pages: the total counts every match, whatever the page.
    first = await listed(sort="title", limit=3)
    second = await listed(sort="title", limit=3, offset=3)
    assert first[1] == second[1] == 4
    assert first[0] + second[0] == [ids[0], ids[1], ids[3], ids[2]]
    assert await listed(offset=10) == ([], 4)


async def test_page_size_is_capped_and_bad_queries_are_422(api: ApiClient) -> None:
    me = await api.account()
    for params in (
        {"limit": 101},
        {"limit": 0},
        {"offset": -1},
        {"status": "sleeping"},
        {"sort": "password"},
        {"due_before": "tomorrow"},
        {"due_before": "2030-01-01T00:00:00"},  # naive: ambiguous
        {"due_before": "0.5"},  # pydantic alone would read a Unix timestamp
        {"unknown": "1"},
    ):
        response = await api.get(f"{API}/tasks", as_=me, params=params)
        error = assert_error(response, 422, "validation_error")
        assert error["details"], params


async def test_invalid_bodies_get_field_level_422(api: ApiClient) -> None:
    me = await api.account()
    cases = [
        ({"title": ""}, ["body", "title"]),
        ({"title": "   "}, ["body", "title"]),
        ({"title": "x" * 201}, ["body", "title"]),
        ({"title": "x", "priority": "asap"}, ["body", "priority"]),
        ({"title": "x", "tags": ["Not A Tag"]}, ["body", "tags", 0]),
        ({"title": "x", "tags": [f"t{i}" for i in range(21)]}, ["body", "tags"]),
        ({"title": "x", "due_at": "soon"}, ["body", "due_at"]),
        ({"title": "x", "due_at": 1700000000}, ["body", "due_at"]),
        ({}, ["body", "title"]),
    ]
    for body, location in cases:
        error = assert_error(await api.post(f"{API}/tasks", as_=me, json=body), 422)
        assert location in [item["loc"] for item in error["details"]], (body, error)
    task = await api.create_task(me)
    for body in ({"title": None}, {"status": None}, {"tags": None}, {"version": 3}):
        assert_error(await api.patch(f"{API}/tasks/{task['id']}", as_=me, json=body), 422)
    not_json = await api.post(
        f"{API}/tasks", as_=me, content=b"{nope", headers={"content-type": "application/json"}
    )
    assert_error(not_json, 422)
    assert_error(await api.get(f"{API}/tasks/not-a-uuid", as_=me), 422)
    assert_error(await api.patch(f"{API}/users/not-a-uuid", as_=me, json={}), 404)


async def test_bodies_over_the_limit_are_413(api: ApiClient) -> None:
    me = await api.account()
    huge = {"title": "x", "description": "y" * 2_000_000}
    assert_error(await api.post(f"{API}/tasks", as_=me, json=huge), 413, "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 65536

    streamed = await api.post(
        f"{API}/tasks", as_=me, content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(streamed, 413, "payload_too_large")


async def test_every_error_has_the_same_shape(api: ApiClient) -> None:
    assert_error(await api.get("/no/such/path"), 404, "not_found")
    not_allowed = assert_error(await api.request("PUT", f"{API}/tasks"), 405)
    assert not_allowed["code"] == "method_not_allowed"
    # Allow lists every method of the resource, not only the first route Starlette tried.
    put = await api.request("PUT", f"{API}/tasks/{uuid.uuid4()}")
    assert put.headers["allow"] == "DELETE, GET, PATCH"
    assert (await api.request("PATCH", f"{API}/users/me")).headers["allow"] == "GET"
    assert_error(await api.get(f"{API}/tasks"), 401, "unauthorized")
