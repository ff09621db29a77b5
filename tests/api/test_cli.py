"""The command line: migrate, create-admin, serve (on the embedded SQLite default)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from taskmanager_api.core.config import Settings
from tests.api.conftest import AppFactory, make_settings
from tests.api.helpers import API, PASSWORD
from tests.api.processes import api_environment, run_api


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "taskmanager_api", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_migrate_upgrade_current_downgrade(tmp_path: Path) -> None:
    env = api_environment(environment="development", log_json="false")
    before = cli("migrate", "current", env=env, cwd=tmp_path).stdout
    head = re.search(r"current: base \(head: (\w+)\)", before)
    assert head is not None, before
    upgraded = cli("migrate", "upgrade", env=env, cwd=tmp_path).stdout
    assert f"current: {head[1]} (head: {head[1]})" in upgraded
    assert (tmp_path / "taskmanager.db").is_file()
    down = cli("migrate", "downgrade", "base", env=env, cwd=tmp_path)
    assert "current: base" in down.stdout, down.stderr


def test_a_bad_configuration_exits_2_naming_the_setting(tmp_path: Path) -> None:
    env = api_environment(environment="production", jwt_signing_key="changeme")
    result = cli("migrate", "current", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "TASKMANAGER_JWT_SIGNING_KEY is too weak" in result.stderr
    assert "changeme" not in result.stderr


@pytest.mark.postgres
async def test_create_admin_creates_then_promotes(
    tmp_path: Path, app_factory: AppFactory, settings: Settings
) -> None:
    sqlite = make_settings(environment="development", sqlite_path=tmp_path / "admin.db")
    env = api_environment(
        environment="development", sqlite_path=str(sqlite.sqlite_path), admin_password=PASSWORD
    )
    assert cli("migrate", "upgrade", env=env, cwd=tmp_path).returncode == 0
    created = cli("create-admin", "--email", "Root@Example.com", env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert "created admin root@example.com" in created.stdout
    assert PASSWORD not in created.stdout + created.stderr
    again = cli("create-admin", "--email", "root@example.com", env=env, cwd=tmp_path)
    assert "promoted admin root@example.com" in again.stdout
    weak = cli(
        "create-admin",
        "--email",
        "x@example.com",
        env={**env, "TASKMANAGER_ADMIN_PASSWORD": "short"},
        cwd=tmp_path,
    )
    assert weak.returncode == 2
    assert "password" in weak.stderr
    del settings
    async with app_factory(sqlite) as (_, api):
        admin = await api.login("root@example.com")
        assert (await api.get(f"{API}/users", as_=admin)).status_code == 200


@pytest.mark.postgres
@pytest.mark.redis
async def test_a_promoted_user_is_admin_at_once_on_running_replicas(
    tmp_path: Path, app_factory: AppFactory, settings: Settings
) -> None:
    assert settings.database_url is not None
    assert settings.redis_url is not None
    env = api_environment(
        environment="development",
        database_url=settings.database_url.get_secret_value(),
        redis_url=settings.redis_url.get_secret_value(),
        redis_key_prefix=settings.redis_key_prefix,
        admin_password=PASSWORD,
    )
    async with app_factory(settings) as (_, api):
        email = "member-to-promote@example.com"
        member = await api.account(email)
        # Authenticating caches the caller as a member in the shared cache.
        assert (await api.get(f"{API}/users", as_=member)).status_code == 403
        promoted = cli("create-admin", "--email", email, env=env, cwd=tmp_path)
        assert "promoted admin" in promoted.stdout, promoted.stderr
        # Not after the cache TTL: the command replaced the cached user.
        assert (await api.get(f"{API}/users", as_=member)).status_code == 200


def test_serve_runs_on_the_embedded_default_with_docs(tmp_path: Path) -> None:
    env = api_environment(environment="development")
    with run_api(env, tmp_path, "--migrate") as api:
        docs = httpx.get(f"{api.url}/docs")
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()
        schema = httpx.get(f"{api.url}/openapi.json").json()
        assert f"{API}/tasks/{{task_id}}" in schema["paths"]
        ready = httpx.get(f"{api.url}/ready").json()
        assert ready["status"] == "degraded"
        credentials = {"email": "dev@example.com", "password": PASSWORD}
        assert httpx.post(f"{api.url}{API}/auth/register", json=credentials).status_code == 201
