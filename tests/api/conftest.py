"""The API under test: migrated once per run on the real Postgres, with a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from taskmanager_api.core import migrate
from taskmanager_api.core.config import Settings
from taskmanager_api.main import create_app
from tests.api.helpers import Account, ApiClient
from tests.support.services import PostgresServer, RedisServer

API_DATABASE = "taskmanager_api"
# Kept apart from db 0, which the foundation's own Redis tests use.
API_REDIS_DB = 3
TABLES = "comments, task_tags, tasks, users, revoked_token_families, spent_refresh_tokens"


async def _execute(url: str, statement: str, **params: Any) -> Any:
    # AUTOCOMMIT: CREATE DATABASE refuses to run inside a transaction.
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(sa.text(statement), params)
            return result.scalar() if result.returns_rows else None
    finally:
        await engine.dispose()


async def _create_database(server: PostgresServer, name: str) -> None:
    exists = await _execute(
        server.url(), "SELECT 1 FROM pg_database WHERE datname = :name", name=name
    )
    if not exists:
        await _execute(server.url(), f'CREATE DATABASE "{name}"')


@pytest.fixture(scope="session")
def create_database(postgres_server: PostgresServer) -> Callable[[str], str]:
    """Creates a database on the shared server and returns its SQLAlchemy URL."""

    def create(name: str) -> str:
        asyncio.run(_create_database(postgres_server, name))
        return postgres_server.url(database=name)

    return create


@pytest.fixture(scope="session")
def signing_key() -> str:
    return secrets.token_urlsafe(48)


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "jwt_signing_key": secrets.token_urlsafe(48),
        # Generous limits: only the rate-limit tests lower them.
        "rate_limit_per_minute": 100_000,
        "login_rate_limit_per_minute": 100_000,
        "login_ip_rate_limit_per_minute": 100_000,
        "log_json": False,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def api_database_url(create_database: Callable[[str], str], signing_key: str) -> str:
    url = create_database(API_DATABASE)
    migrate.upgrade(make_settings(database_url=url, jwt_signing_key=signing_key))
    return url


@pytest.fixture
def settings_factory(
    api_database_url: str, redis_server: RedisServer, signing_key: str
) -> Callable[..., Settings]:
    # A key prefix per test keeps Redis state apart without flushing what others use.
    prefix = f"test-{uuid.uuid4().hex[:12]}:"

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": api_database_url,
            "redis_url": redis_server.url(API_REDIS_DB),
            "redis_key_prefix": prefix,
            "jwt_signing_key": signing_key,
        }
        values.update(overrides)
        return make_settings(**values)

    return factory


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory()


async def _truncate(url: str) -> None:
    await _execute(url, f"TRUNCATE {TABLES} CASCADE")


@pytest.fixture
async def clean_database(api_database_url: str) -> None:
    await _truncate(api_database_url)


async def promote(url: str, user_id: uuid.UUID) -> None:
    await _execute(
        url, "UPDATE users SET role = 'admin', version = version + 1 WHERE id = :id", id=user_id
    )


@pytest.fixture
async def admin(api: ApiClient, api_database_url: str) -> Account:
    """An admin account (promoted in the database, as `create-admin` would)."""
    user_id = await api.register("admin@example.com")
    await promote(api_database_url, user_id)
    return await api.login("admin@example.com")


@contextlib.asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, ApiClient]]:
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            yield app, ApiClient(client)


AppFactory = Callable[[Settings], contextlib.AbstractAsyncContextManager[tuple[FastAPI, ApiClient]]]


@pytest.fixture
def app_factory(clean_database: None) -> AppFactory:
    """Starts more apps (other settings, other replicas) on the same clean database."""
    del clean_database
    return running_app


@pytest.fixture
async def app_and_api(
    settings: Settings, clean_database: None
) -> AsyncIterator[tuple[FastAPI, ApiClient]]:
    del clean_database
    async with running_app(settings) as pair:
        yield pair


@pytest.fixture
def api(app_and_api: tuple[FastAPI, ApiClient]) -> ApiClient:
    return app_and_api[1]


@pytest.fixture
def app(app_and_api: tuple[FastAPI, ApiClient]) -> FastAPI:
    return app_and_api[0]


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """The embedded default: a SQLite file and no Redis, migrated like production."""
    settings = make_settings(environment="development", sqlite_path=tmp_path / "api.db")
    migrate.upgrade(settings)
    return settings
