"""The backup's own queries: connections of its own, with asyncpg (the app's driver) directly.

Not through the app's SQLAlchemy engine: a backup runs a handful of statements, and SQLAlchemy's
asyncio layer would cost it 1.2 s of start-up on 2 cores, more than a small database takes to
dump. Database errors become BackupErrors here: DatabaseUnavailable for a connection that cannot
be opened, DatabaseError for a statement that fails.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from taskmanager_api.backup.errors import BackupError, Reason
from taskmanager_api.backup.postgres import (
    APPLICATION_NAME,
    CONNECT_TIMEOUT_SECONDS,
    ConnectionParameters,
)
from taskmanager_api.core.schema_revisions import VERSION_TABLE

# What asyncpg raises for a server that cannot be reached or refuses the connection, and for a
# statement that fails or a connection that breaks.
_CONNECT_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
_QUERY_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)
CLOSE_TIMEOUT_SECONDS = 10

# The tables pg_dump dumps the rows of: every user table, not those an extension owns; with the
# statement that counts each one's rows, its names quoted by the server.
_TABLES = r"""
    SELECT n.nspname, c.relname, format('SELECT count(*) FROM %I.%I', n.nspname, c.relname)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema'
      AND n.nspname NOT LIKE 'pg\_%'
      AND NOT EXISTS (
          SELECT FROM pg_depend d
          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
    ORDER BY 1, 2
"""


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


@contextlib.asynccontextmanager
async def connected(parameters: ConnectionParameters) -> AsyncIterator[Any]:
    """An asyncpg connection (autocommit until a transaction is started), closed on the way out."""
    try:
        connection = await asyncpg.connect(
            host=parameters.host,
            port=parameters.port,
            user=parameters.user,
            password=parameters.password,
            database=parameters.database,
            ssl=parameters.sslmode,
            timeout=CONNECT_TIMEOUT_SECONDS,
            server_settings={"application_name": APPLICATION_NAME},
        )
    except _CONNECT_ERRORS as error:
        raise BackupError(
            Reason.DATABASE_UNAVAILABLE, f"cannot connect to the database: {error}"
        ) from error
    try:
        yield connection
    except asyncpg.PostgresError as error:
        raise BackupError(Reason.DATABASE_ERROR, f"the database refused: {error}") from error
    except _QUERY_ERRORS as error:
        raise BackupError(
            Reason.DATABASE_ERROR, f"the connection to the database failed: {error}"
        ) from error
    finally:
        try:
            await connection.close(timeout=CLOSE_TIMEOUT_SECONDS)
        except _CONNECT_ERRORS:
            connection.terminate()  # the server rolls back what was open


async def server_version(connection: Any) -> tuple[str, int]:
    text = await connection.fetchval("SHOW server_version")
    number = await connection.fetchval("SHOW server_version_num")
    return str(text), int(number)


async def schema_revision(connection: Any) -> str | None:
    """The Alembic revision, read as Alembic reads it (None: no version table, base)."""
    if await connection.fetchval("SELECT to_regclass($1) IS NULL", quote(VERSION_TABLE)):
        return None
    rows = await connection.fetch(f"SELECT version_num FROM {quote(VERSION_TABLE)}")  # noqa: S608
    if len(rows) > 1:
        raise BackupError(
            Reason.DATABASE_ERROR,
            f"{VERSION_TABLE} holds {len(rows)} revisions, where the migrations have one head",
        )
    return str(rows[0][0]) if rows else None


async def read_state(connection: Any) -> tuple[str | None, dict[str, int]]:
    """The Alembic revision and every table's row count, as the transaction sees them."""
    revision = await schema_revision(connection)
    counts: dict[str, int] = {}
    for schema, name, count in await connection.fetch(_TABLES):
        counts[f"{schema}.{name}"] = int(await connection.fetchval(count))
    return revision, counts


@contextlib.asynccontextmanager
async def scratch_database(parameters: ConnectionParameters) -> AsyncIterator[ConnectionParameters]:
    """A new empty database next to the app's, dropped on the way out, however that goes."""
    name = f"{(parameters.database or 'taskmanager')[:40]}_verify_{secrets.token_hex(4)}"
    async with connected(parameters) as connection:
        # template0: nothing but what the dump brings, whatever template1 holds here.
        await connection.execute(f"CREATE DATABASE {quote(name)} TEMPLATE template0")
    try:
        yield parameters.with_database(name)
    finally:
        async with connected(parameters) as connection:
            await connection.execute(f"DROP DATABASE IF EXISTS {quote(name)} WITH (FORCE)")
