"""Accounts and sessions: register, login, refresh rotation, logout, admin changes."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from taskmanager_api.core.config import Settings
from tests.api.conftest import AppFactory
from tests.api.helpers import API, PASSWORD, Account, ApiClient, assert_error

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


async def refresh(api: ApiClient, token: str) -> tuple[int, dict[str, str]]:
    response = await api.post(f"{API}/auth/refresh", json={"refresh_token": token})
    return response.status_code, response.json()


async def test_register_login_and_me(api: ApiClient) -> None:
    user_id = await api.register("Mixed.Case@Example.com")
    account = await api.login("mixed.case@example.com")
    assert account.id == user_id
    me = (await api.get(f"{API}/users/me", as_=account)).json()
    assert me["email"] == "mixed.case@example.com"
    assert me["role"] == "member"
    assert "password_hash" not in me
    again = await api.post(
        f"{API}/auth/register", json={"email": "MIXED.case@example.com", "password": PASSWORD}
    )
    assert_error(again, 409, "conflict")


async def test_weak_passwords_and_bad_emails_are_refused(api: ApiClient) -> None:
    for body in (
        {"email": "a@example.com", "password": "short"},
        {"email": "not-an-email", "password": PASSWORD},
        {"email": "a@example.com"},
    ):
        assert_error(await api.post(f"{API}/auth/register", json=body), 422, "validation_error")


async def test_wrong_password_and_unknown_user_look_the_same(api: ApiClient) -> None:
    await api.register("known@example.com")
    wrong = await api.post(
        f"{API}/auth/login", json={"email": "known@example.com", "password": "nope nope nope"}
    )
    unknown = await api.post(
        f"{API}/auth/login", json={"email": "ghost@example.com", "password": PASSWORD}
    )
    assert assert_error(wrong, 401)["message"] == assert_error(unknown, 401)["message"]
    assert wrong.headers["www-authenticate"] == "Bearer"


async def test_refresh_rotates_and_reuse_revokes_the_family(api: ApiClient) -> None:
    account = await api.account()
    status, second = await refresh(api, account.refresh_token)
    assert status == 200
    assert second["refresh_token"] != account.refresh_token
    status, third = await refresh(api, second["refresh_token"])
    assert status == 200
    new_access = {"Authorization": f"Bearer {third['access_token']}"}
    assert (await api.get(f"{API}/users/me", headers=new_access)).status_code == 200

    # The first refresh token comes back: someone holds a copy. The whole family ends,
    # including the tokens issued after it.
    status, _ = await refresh(api, account.refresh_token)
    assert status == 401
    status, _ = await refresh(api, third["refresh_token"])
    assert status == 401
    assert_error(await api.get(f"{API}/users/me", headers=new_access), 401)
    # Another session of the same user is untouched.
    other = await api.login(account.email)
    assert (await api.get(f"{API}/users/me", as_=other)).status_code == 200


async def test_logout_revokes_access_and_refresh(api: ApiClient) -> None:
    account = await api.account()
    assert (await api.post(f"{API}/auth/logout", as_=account)).status_code == 204
    assert_error(await api.get(f"{API}/users/me", as_=account), 401)
    status, _ = await refresh(api, account.refresh_token)
    assert status == 401


async def test_access_token_is_not_a_refresh_token(api: ApiClient) -> None:
    account = await api.account()
    status, _ = await refresh(api, account.access_token)
    assert status == 401


async def test_admin_lists_users_changes_roles_and_deactivates(
    api: ApiClient, admin: Account
) -> None:
    member = await api.account()
    assert_error(await api.get(f"{API}/users", as_=member), 403, "forbidden")
    listed = await api.get(f"{API}/users", as_=admin, params={"limit": 1})
    assert listed.json()["count"] == 2
    assert len(listed.json()["data"]) == 1

    promoted = await api.patch(f"{API}/users/{member.id}", as_=admin, json={"role": "admin"})
    assert promoted.json()["role"] == "admin"
    # The member's existing token carries the new role at once (the cached user was replaced).
    assert (await api.get(f"{API}/users", as_=member)).status_code == 200
    await api.patch(f"{API}/users/{member.id}", as_=admin, json={"role": "member"})
    assert_error(await api.get(f"{API}/users", as_=member), 403)

    for body in (
        {"id": "x"},
        {"email": "a@b.co"},
        {"role": "owner"},
        {"role": None},
        {"is_active": 0},
    ):
        assert_error(await api.patch(f"{API}/users/{member.id}", as_=admin, json=body), 422)
    assert_error(
        await api.patch(f"{API}/users/{admin.id}", as_=admin, json={"is_active": False}), 409
    )

    deactivated = await api.patch(f"{API}/users/{member.id}", as_=admin, json={"is_active": False})
    assert deactivated.json()["is_active"] is False
    assert_error(await api.get(f"{API}/users/me", as_=member), 401)
    status, _ = await refresh(api, member.refresh_token)
    assert status == 401
    relogin = await api.post(
        f"{API}/auth/login", json={"email": member.email, "password": PASSWORD}
    )
    assert_error(relogin, 401)


async def test_without_redis_the_service_runs_on_sqlite(
    sqlite_settings: Settings, app_factory: AppFactory
) -> None:
    app: FastAPI
    async with app_factory(sqlite_settings) as (app, api):
        assert app.state.services.store.kind == "memory"
        account = await api.account()
        task = await api.create_task(account, title="embedded", tags=["x"])
        assert (await api.get(f"{API}/tasks/{task['id']}", as_=account)).json() == task
        listed = await api.get(f"{API}/tasks", as_=account, params={"q": "EMBED"})
        assert listed.json()["count"] == 1
        status, _ = await refresh(api, account.refresh_token)
        assert status == 200
        status, _ = await refresh(api, account.refresh_token)
        assert status == 401
        ready = await api.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["checks"]["redis"]["status"] == "not_configured"
