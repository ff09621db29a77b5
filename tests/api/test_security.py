"""Attacks on tokens, on other users' objects, on mass assignment, and by brute force."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from taskmanager_api.core.config import Settings, key_id_for
from tests.api.conftest import AppFactory
from tests.api.helpers import API, PASSWORD, Account, ApiClient, assert_error

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def forge(settings: Settings, account: Account, **changes: Any) -> str:
    """A token like the service's own, with some claims or header fields changed."""
    real = jwt.decode(account.access_token, options={"verify_signature": False})
    header = {"alg": "HS256", "kid": jwt.get_unverified_header(account.access_token)["kid"]}
    header |= changes.pop("header", {})
    claims = {k: v for k, v in (real | changes).items() if v is not None}
    assert settings.jwt_signing_key is not None
    key = changes.pop("key", None) or settings.jwt_signing_key.get_secret_value()
    claims.pop("key", None)
    return jwt.encode(claims, key, algorithm=header["alg"], headers={"kid": header["kid"]})


async def test_tokens_that_must_be_refused(api: ApiClient, settings: Settings) -> None:
    account = await api.account()
    now = int(time.time())
    real_header = jwt.get_unverified_header(account.access_token)
    payload = account.access_token.split(".")[1]
    refused: dict[str, str] = {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': real_header['kid']})}.{payload}.",
        "alg HS512": forge(settings, account, header={"alg": "HS512"}),
        "bad signature": account.access_token[:-4]
        + ("AAAA" if not account.access_token.endswith("AAAA") else "BBBB"),
        "other key": forge(settings, account, key=secrets.token_urlsafe(48)),
        "expired": forge(settings, account, iat=now - 3600, exp=now - 60),
        "wrong audience": forge(settings, account, aud="someone-else"),
        "wrong issuer": forge(settings, account, iss="https://evil.example"),
        "refresh as access": account.refresh_token,
        "unknown kid": forge(settings, account, header={"kid": "retired-key"}),
        "no jti": forge(settings, account, jti=None),
        "no exp": forge(settings, account, exp=None),
        "no typ": forge(settings, account, typ=None),
        "unknown subject": forge(settings, account, sub=str(uuid.uuid4())),
        "garbage": "not.a.token",
        "empty": "",
    }
    for name, token in refused.items():
        response = await api.get(f"{API}/users/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert_error(response, 401, "unauthorized")
    basic = await api.get(f"{API}/users/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_error(basic, 401)
    # The forgeries above differ from a valid token only in what they change.
    control = forge(settings, account)
    ok = await api.get(f"{API}/users/me", headers={"Authorization": f"Bearer {control}"})
    assert ok.status_code == 200


async def test_asymmetric_key_confusion_is_refused(api: ApiClient, settings: Settings) -> None:
    account = await api.account()
    header = jwt.get_unverified_header(account.access_token)
    claims = jwt.decode(account.access_token, options={"verify_signature": False})
    # An RS256 header with an HMAC over the secret: libraries that pick the algorithm from the
    # header would accept it.
    signing_input = f"{_b64({'alg': 'RS256', 'kid': header['kid']})}.{_b64(claims)}"
    fake = signing_input + "." + base64.urlsafe_b64encode(b"x" * 256).rstrip(b"=").decode()
    response = await api.get(f"{API}/users/me", headers={"Authorization": f"Bearer {fake}"})
    assert_error(response, 401)


async def test_token_claims_are_complete(api: ApiClient, settings: Settings) -> None:
    account = await api.account()
    header = jwt.get_unverified_header(account.access_token)
    claims = jwt.decode(account.access_token, options={"verify_signature": False})
    assert header["alg"] == "HS256"
    assert header["kid"] == key_id_for(settings.jwt_signing_key.get_secret_value())  # type: ignore[union-attr]
    assert {"exp", "iat", "iss", "aud", "sub", "typ", "jti"} <= set(claims)
    assert claims["typ"] == "access"
    assert claims["exp"] - claims["iat"] == 15 * 60
    refresh_claims = jwt.decode(account.refresh_token, options={"verify_signature": False})
    assert refresh_claims["exp"] - refresh_claims["iat"] == 7 * 24 * 3600


async def test_key_rotation_logs_nobody_out(
    settings_factory: Callable[..., Settings], app_factory: AppFactory
) -> None:
    old_key, new_key = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
    async with app_factory(settings_factory(jwt_signing_key=old_key)) as (_, api):
        account = await api.account()
    rotated = settings_factory(
        jwt_signing_key=new_key, jwt_previous_keys={key_id_for(old_key): old_key}
    )
    async with app_factory(rotated) as (_, api):
        # Tokens signed with the previous key still work, and refresh onto the new key.
        assert (await api.get(f"{API}/users/me", as_=account)).status_code == 200
        response = await api.post(
            f"{API}/auth/refresh", json={"refresh_token": account.refresh_token}
        )
        assert response.status_code == 200
        new_access = response.json()["access_token"]
        assert jwt.get_unverified_header(new_access)["kid"] == key_id_for(new_key)
    # Once the old key is dropped, its tokens stop working.
    async with app_factory(settings_factory(jwt_signing_key=new_key)) as (_, api):
        assert_error(await api.get(f"{API}/users/me", as_=account), 401)
        ok = await api.get(f"{API}/users/me", headers={"Authorization": f"Bearer {new_access}"})
        assert ok.status_code == 200


async def test_other_users_tasks_leak_nothing(api: ApiClient) -> None:
    alice, bob = await api.account(), await api.account()
    secret_task = await api.create_task(bob, title="bob's secret", description="salary")
    await api.post(f"{API}/tasks/{secret_task['id']}/comments", as_=bob, json={"body": "hush"})
    comment_id = (await api.get(f"{API}/tasks/{secret_task['id']}/comments", as_=bob)).json()[
        "data"
    ][0]["id"]
    missing = str(uuid.uuid4())

    task_url = f"{API}/tasks/{secret_task['id']}"
    attempts = [
        ("GET", task_url, None),
        ("PATCH", task_url, {"title": "mine now"}),
        ("PATCH", task_url, {"assignee_id": str(alice.id)}),
        ("DELETE", task_url, None),
        ("GET", f"{task_url}/comments", None),
        ("POST", f"{task_url}/comments", {"body": "hi"}),
        ("DELETE", f"{task_url}/comments/{comment_id}", None),
    ]
    for method, url, body in attempts:
        theirs = await api.request(method, url, as_=alice, json=body)
        nobody = await api.request(
            method, url.replace(secret_task["id"], missing), as_=alice, json=body
        )
        # Exactly what a task that does not exist gets: nothing tells the two apart.
        assert theirs.status_code == nobody.status_code == 404, (method, url)
        assert {**theirs.json()["error"], "request_id": None} == {
            **nobody.json()["error"],
            "request_id": None,
        }
        assert "secret" not in theirs.text
        assert "salary" not in theirs.text
    listed = await api.get(f"{API}/tasks", as_=alice, params={"q": "secret"})
    assert listed.json() == {"data": [], "count": 0, "limit": 20, "offset": 0}
    by_assignee = await api.get(f"{API}/tasks", as_=alice, params={"assignee_id": str(bob.id)})
    assert by_assignee.json()["count"] == 0
    # Bob's task is intact.
    after = await api.get(task_url, as_=bob)
    assert after.json() == secret_task


async def test_comments_only_their_author_deletes(api: ApiClient) -> None:
    owner, assignee = await api.account(), await api.account()
    task = await api.create_task(owner, assignee_id=str(assignee.id))
    url = f"{API}/tasks/{task['id']}/comments"
    mine = (await api.post(url, as_=owner, json={"body": "from the owner"})).json()
    theirs = (await api.post(url, as_=assignee, json={"body": "from the assignee"})).json()
    assert theirs["author_id"] == str(assignee.id)
    listed = (await api.get(url, as_=assignee)).json()
    assert [c["id"] for c in listed["data"]] == [mine["id"], theirs["id"]]
    assert_error(await api.delete(f"{url}/{mine['id']}", as_=assignee), 403)
    assert (await api.delete(f"{url}/{theirs['id']}", as_=assignee)).status_code == 204
    assert (await api.get(url, as_=owner)).json()["count"] == 1
    assert_error(await api.post(url, as_=owner, json={"body": ""}), 422)


async def test_mass_assignment_is_rejected(api: ApiClient) -> None:
    alice, bob = await api.account(), await api.account()
    forged = {
        "id": str(uuid.uuid4()),
        "created_by": str(bob.id),
        "created_at": "2000-01-01T00:00:00Z",
        "role": "admin",
        "version": 99,
    }
    for field, value in forged.items():
        response = await api.post(f"{API}/tasks", as_=alice, json={"title": "x", field: value})
        error = assert_error(response, 422, "validation_error")
        assert ["body", field] in [item["loc"] for item in error["details"]]
    task = await api.create_task(alice)
    for field, value in forged.items():
        response = await api.patch(f"{API}/tasks/{task['id']}", as_=alice, json={field: value})
        assert_error(response, 422)
    for field, value in (("role", "admin"), ("id", str(uuid.uuid4())), ("is_active", False)):
        response = await api.post(
            f"{API}/auth/register",
            json={"email": "sneaky@example.com", "password": PASSWORD, field: value},
        )
        assert_error(response, 422)
    assert (await api.get(f"{API}/tasks/{task['id']}", as_=alice)).json() == task


async def test_login_is_rate_limited_per_user_and_per_address(
    settings_factory: Callable[..., Settings], app_factory: AppFactory
) -> None:
    settings = settings_factory(login_rate_limit_per_minute=3, login_ip_rate_limit_per_minute=5)
    async with app_factory(settings) as (app, api):
        await api.register("target@example.com")
        bad = {"email": "target@example.com", "password": "guess guess guess"}
        statuses = [(await api.post(f"{API}/auth/login", json=bad)).status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        limited = await api.post(f"{API}/auth/login", json={**bad, "password": PASSWORD})
        # Even the right password waits: the limit is on attempts, not failures.
        assert_error(limited, 429, "rate_limited")
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        # Other accounts from the same address: the per-address limit (5) stops the spraying.
        spray = [
            (
                await api.post(
                    f"{API}/auth/login", json={"email": f"u{i}@example.com", "password": "x"}
                )
            ).status_code
            for i in range(2)
        ]
        assert spray == [429, 429]
        metrics = (await api.get("/metrics")).text
        assert 'taskmanager_rate_limited_total{limit="login_user"} 2.0' in metrics
        assert 'taskmanager_rate_limited_total{limit="login_address"} 2.0' in metrics
        del app


async def test_general_rate_limit_per_user(
    settings_factory: Callable[..., Settings], app_factory: AppFactory
) -> None:
    async with app_factory(settings_factory(rate_limit_per_minute=5)) as (_, api):
        first, second = await api.account(), await api.account()
        # Logging in read /users/me once: four calls remain in this window.
        statuses = [(await api.get(f"{API}/tasks", as_=first)).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 200, 429]
        response = await api.get(f"{API}/tasks", as_=first)
        assert_error(response, 429, "rate_limited")
        assert 1 <= int(response.headers["retry-after"]) <= 60
        # Each user has a budget of their own.
        assert (await api.get(f"{API}/tasks", as_=second)).status_code == 200
