"""Backups against the real PostgreSQL of the session (and a real S3 server): each test has its
own databases, made here, and runs `python -m taskmanager_api backup ...` as the Job would."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from taskmanager_api.core import migrate
from taskmanager_api.core.config import Settings
from tests.api.conftest import make_settings
from tests.api.processes import api_environment, write_secrets
from tests.support.s3 import s3_server  # noqa: F401 - the session's S3 server, for test_s3
from tests.support.services import INSTALL_HINT, PostgresServer

# A CLI run reads, dumps or restores a small database: far less than this on 2 cores.
CLI_TIMEOUT = 180


@dataclass(frozen=True)
class Database:
    name: str
    url: str  # the app's (asyncpg) URL
    settings: Settings


@dataclass(frozen=True)
class Outcome:
    code: int
    line: dict[str, Any]
    stdout: str
    stderr: str


async def execute(url: str, *statements: str) -> list[Any]:
    """Run statements in one transaction; the rows of each that returns any."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            results = []
            for statement in statements:
                result = await connection.execute(sa.text(statement))
                results.append(result.all() if result.returns_rows else None)
            return results
    finally:
        await engine.dispose()


async def _autocommit(url: str, statement: str) -> Any:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(sa.text(statement))
            return result.all() if result.returns_rows else None
    finally:
        await engine.dispose()


def database_names(server: PostgresServer) -> set[str]:
    rows = asyncio.run(_autocommit(server.url(), "SELECT datname FROM pg_database"))
    return {row[0] for row in rows}


@pytest.fixture(scope="session")
def pg_tools() -> None:
    """The client tools the backup command runs: missing, the suite fails saying what to install."""
    for tool in ("pg_dump", "pg_restore", "psql"):
        if subprocess.run(["which", tool], capture_output=True, check=False).returncode != 0:
            pytest.fail(f"{tool} is not on PATH: {INSTALL_HINT}")


@pytest.fixture
def make_database(
    postgres_server: PostgresServer, pg_tools: None
) -> Iterator[Callable[..., Database]]:
    """New databases on the session's server, migrated to head unless asked not to; dropped
    after the test."""
    del pg_tools
    made: list[str] = []

    def make(*, migrated: bool = True) -> Database:
        name = f"backup_{uuid.uuid4().hex[:12]}"
        asyncio.run(_autocommit(postgres_server.url(), f'CREATE DATABASE "{name}"'))
        made.append(name)
        url = postgres_server.url(database=name)
        settings = make_settings(database_url=url)
        if migrated:
            migrate.upgrade(settings)
        return Database(name=name, url=url, settings=settings)

    yield make
    for name in made:
        asyncio.run(
            _autocommit(postgres_server.url(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        )


@pytest.fixture
def database(make_database: Callable[..., Database]) -> Database:
    return make_database()


def job_environment(workdir: Path, database: Database, **settings: str) -> dict[str, str]:
    """What a backup Job's pod gets: the app's settings, the database URL and signing key as
    mounted secret files, and the given TASKMANAGER_* settings (e.g. BACKUP_S3_ENDPOINT)."""
    secrets_dir = write_secrets(
        workdir / f"secrets-{uuid.uuid4().hex[:6]}",
        database_url=database.url,
        jwt_signing_key=secrets.token_urlsafe(48),
    )
    return api_environment(
        secrets_dir=secrets_dir, environment="production", log_json="true", **settings
    )


def run_backup(env: dict[str, str], *args: str, cwd: Path | None = None) -> Outcome:
    result = subprocess.run(
        [sys.executable, "-m", "taskmanager_api", "backup", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 1, f"stdout is not one line:\n{result.stdout}\nstderr:\n{result.stderr}"
    line = json.loads(lines[0])
    assert isinstance(line, dict)
    return Outcome(code=result.returncode, line=line, stdout=result.stdout, stderr=result.stderr)


def succeeded(outcome: Outcome) -> dict[str, Any]:
    assert outcome.code == 0, f"{outcome.line}\nstderr:\n{outcome.stderr}"
    assert outcome.line["ok"] is True
    return outcome.line


def failed(outcome: Outcome, reason: str, code: int = 1) -> dict[str, Any]:
    assert outcome.line["ok"] is False, outcome.line
    assert outcome.line["reason"] == reason, f"{outcome.line}\nstderr:\n{outcome.stderr}"
    assert outcome.code == code, outcome.line
    return outcome.line


async def _contents(url: str) -> dict[str, Any]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            relations = (
                await connection.execute(
                    sa.text(
                        "SELECT c.relname, c.relkind::text FROM pg_class c "
                        "WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1"
                    )
                )
            ).all()
            contents: dict[str, Any] = {"relations": [tuple(row) for row in relations]}
            for name, kind in relations:
                if kind == "r":
                    rows = (
                        await connection.execute(
                            sa.select(sa.text("*")).select_from(sa.table(name))
                        )
                    ).all()
                    contents[name] = sorted((tuple(row) for row in rows), key=repr)
            return contents
    finally:
        await engine.dispose()


def contents(url: str) -> dict[str, Any]:
    """Every relation of the public schema, and every row of every table, in full."""
    return asyncio.run(_contents(url))


_SEED = sa.text(
    """
    WITH new_users AS (
        INSERT INTO users (id, email, password_hash, role, is_active, version, created_at,
                           updated_at)
        SELECT gen_random_uuid(), :label || '-' || i || '@example.com', 'x', 'member', true, 1,
               now(), now()
        FROM generate_series(1, :users) AS i
        RETURNING id, email
    )
    INSERT INTO tasks (id, title, description, status, priority, created_by, version, created_at,
                       updated_at)
    SELECT gen_random_uuid(), email, 'é', 'todo', 'low', id, 1, now(), now() FROM new_users
    """
)


async def _seed(url: str, label: str, users: int) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.execute(_SEED, {"label": label, "users": users})
    finally:
        await engine.dispose()


def seed(url: str, label: str, users: int = 3) -> None:
    """Users with a task each, straight in SQL: for tests about the backup, not the API."""
    asyncio.run(_seed(url, label, users))


@dataclass(frozen=True)
class Backup:
    source: Database
    location: str
    directory: Path
    line: dict[str, Any]


@pytest.fixture
def backup(make_database: Callable[..., Database], tmp_path: Path) -> Backup:
    """A file backup of a small database."""
    source = make_database()
    seed(source.url, "backed-up")
    directory = tmp_path / "backups" / "small"
    line = succeeded(
        run_backup(job_environment(tmp_path, source), "create", "--to", directory.as_uri())
    )
    return Backup(source=source, location=directory.as_uri(), directory=directory, line=line)
