"""Migrations: upgrade to head matches the models exactly; downgrade to base removes everything."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from taskmanager_api.core import migrate
from taskmanager_api.core.config import Settings
from taskmanager_api.core.db import create_engine
from taskmanager_api.models import Base
from tests.api.conftest import make_settings


def _inspect(settings: Settings) -> tuple[list[Any], set[str], str | None]:
    def inspect(connection: Connection) -> tuple[list[Any], set[str], str | None]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        tables = set(sa.inspect(connection).get_table_names())
        return compare_metadata(context, Base.metadata), tables, context.get_current_revision()

    async def run() -> tuple[list[Any], set[str], str | None]:
        engine = create_engine(settings)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(inspect)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _round_trip(settings: Settings) -> None:
    app_tables = set(Base.metadata.tables)
    migrate.upgrade(settings)
    differences, tables, revision = _inspect(settings)
    assert differences == []
    assert app_tables <= tables
    assert revision == migrate.head_revision(settings)

    migrate.downgrade(settings, "base")
    differences, tables, revision = _inspect(settings)
    assert tables == {"alembic_version"}
    assert revision is None

    migrate.upgrade(settings)
    assert _inspect(settings)[0] == []


@pytest.mark.postgres
def test_postgres_upgrade_downgrade_upgrade(create_database: Callable[[str], str]) -> None:
    _round_trip(make_settings(database_url=create_database("taskmanager_migrations")))


def test_sqlite_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    _round_trip(make_settings(environment="development", sqlite_path=tmp_path / "m.db"))
