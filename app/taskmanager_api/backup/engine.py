"""The four operations: create, restore, verify and delete a backup at a location.

Each returns the fields of its result line or raises BackupError. Nothing is touched before every
check that can refuse has passed: a restore reads the manifest, knows the revision and checks the
dump's sha256 before it connects to the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from taskmanager_api import __version__
from taskmanager_api.backup import postgres
from taskmanager_api.backup.errors import BackupError, Reason
from taskmanager_api.backup.manifest import DUMP_NAME, FORMAT_VERSION, MANIFEST_NAME, Manifest
from taskmanager_api.backup.storage import Storage, open_storage
from taskmanager_api.core import migrate
from taskmanager_api.core.config import BackupSettings, Settings
from taskmanager_api.core.db import create_engine
from taskmanager_api.core.state_store import StoreUnavailableError

logger = logging.getLogger("taskmanager_api.backup")

# The tables pg_dump dumps the rows of: every user table, not those an extension owns.
_TABLES = sa.text(
    r"""
    SELECT n.nspname, c.relname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema'
      AND n.nspname NOT LIKE 'pg\_%'
      AND NOT EXISTS (
          SELECT FROM pg_depend d
          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
    ORDER BY 1, 2
    """
)


def _postgres_url(settings: Settings) -> str:
    if settings.database_url is None or settings.is_sqlite:
        raise BackupError(
            Reason.UNSUPPORTED_DATABASE,
            "backups need PostgreSQL: TASKMANAGER_DATABASE_URL is unset or not PostgreSQL",
        )
    return settings.sqlalchemy_url


def _elapsed(started: float) -> float:
    return round(time.monotonic() - started, 3)


@contextlib.asynccontextmanager
async def _connected(engine: AsyncEngine, **options: Any) -> AsyncIterator[AsyncConnection]:
    try:
        connection = await engine.connect()
    except (OSError, SQLAlchemyError) as error:
        raise BackupError(
            Reason.DATABASE_UNAVAILABLE, f"cannot connect to the database: {error}"
        ) from error
    try:
        if options:
            await connection.execution_options(**options)
        yield connection
    except SQLAlchemyError as error:
        raise BackupError(Reason.DATABASE_ERROR, f"the database refused: {error}") from error
    finally:
        await connection.close()


async def _server_version(connection: AsyncConnection) -> tuple[str, int]:
    text = await connection.scalar(sa.text("SHOW server_version"))
    number = await connection.scalar(sa.text("SHOW server_version_num"))
    return str(text), int(str(number))


async def read_state(connection: AsyncConnection) -> tuple[str | None, dict[str, int]]:
    """The Alembic revision and every table's row count, as the transaction sees them."""
    revision = await connection.run_sync(migrate.current_revision)
    counts: dict[str, int] = {}
    for schema, name in (await connection.execute(_TABLES)).all():
        table = sa.table(name, schema=schema)
        counts[f"{schema}.{name}"] = int(
            await connection.scalar(sa.select(sa.func.count()).select_from(table)) or 0
        )
    return revision, counts


def _digest(path: Path) -> tuple[int, str]:
    with path.open("rb") as reader:
        digest = hashlib.file_digest(reader, "sha256")
    return path.stat().st_size, digest.hexdigest()


@contextlib.contextmanager
def _scratch(settings: BackupSettings) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(dir=settings.work_dir, prefix="taskmanager-backup-") as path:
        yield Path(path)


def _read_manifest(storage: Storage) -> Manifest:
    raw = storage.read_bytes(MANIFEST_NAME)
    if raw is None:
        raise BackupError(
            Reason.MANIFEST_MISSING,
            f"{storage.location} holds no {MANIFEST_NAME}: it is not a (complete) backup",
        )
    return Manifest.from_json(raw)


def _check_archive(archive: Path, manifest: Manifest) -> None:
    size, sha256 = _digest(archive)
    if (size, sha256) != (manifest.size, manifest.sha256):
        raise BackupError(
            Reason.CHECKSUM_MISMATCH,
            f"{manifest.dump_file} has sha256 {sha256} ({size} bytes), the manifest says "
            f"{manifest.sha256} ({manifest.size} bytes): the dump is damaged; nothing was restored",
        )


async def create(location: str, settings: Settings, backup: BackupSettings) -> dict[str, Any]:
    started = time.monotonic()
    url = _postgres_url(settings)
    storage = open_storage(location, backup)
    if storage.exists(MANIFEST_NAME):
        raise BackupError(
            Reason.BACKUP_EXISTS, f"{location} already holds a backup: delete it or pick another"
        )
    environment = postgres.libpq_environment(url)
    client = await postgres.client_version(environment)
    engine = create_engine(settings)
    try:
        with _scratch(backup) as scratch:
            archive = scratch / DUMP_NAME
            # One snapshot for everything: the counts and revision in the manifest describe
            # exactly the rows in the dump, however busy the database is meanwhile.
            async with _connected(
                engine, isolation_level="REPEATABLE READ", postgresql_readonly=True
            ) as connection:
                server_version, server_version_num = await _server_version(connection)
                postgres.check_client_supports(client, server_version_num)
                snapshot = str(await connection.scalar(sa.text("SELECT pg_export_snapshot()")))
                revision, row_counts = await read_state(connection)
                # The snapshot lives as long as this transaction: pg_dump runs inside it.
                await postgres.dump(archive, snapshot, environment)
                await connection.rollback()
            size, sha256 = _digest(archive)
            logger.info("dumped %d bytes in %.1f s; storing", size, _elapsed(started))
            storage.upload(DUMP_NAME, archive)
            manifest = Manifest(
                format_version=FORMAT_VERSION,
                created_at=datetime.now(UTC),
                dump_file=DUMP_NAME,
                size=size,
                sha256=sha256,
                app_version=__version__,
                schema_revision=revision,
                server_version=server_version,
                client_version=client.text,
                row_counts=row_counts,
            )
            storage.write_bytes(MANIFEST_NAME, manifest.to_json())  # last: the commit marker
    finally:
        await engine.dispose()
    return {
        "location": location,
        "size": size,
        "sha256": sha256,
        "appVersion": __version__,
        "schemaRevision": revision,
        "rowCounts": row_counts,
        "serverVersion": server_version,
        "clientVersion": client.text,
        "durationSeconds": _elapsed(started),
    }


async def _flush_cache(settings: Settings) -> str:
    """The API's read cache emptied after a restore: a cached object carries the version it had
    before, newer than the restored row's, and would otherwise be served until it expires.
    Revocations and rate limits stay. The restore already succeeded: a Redis that cannot be
    reached is said in the result, not a failure."""
    if settings.redis_url is None:
        return "none: no Redis configured"
    # Imported here: the app's module pulls in FastAPI, which no other operation needs.
    from taskmanager_api.main import create_store  # noqa: PLC0415

    store = create_store(settings)
    try:
        flushed = await store.flush_cache()
    except StoreUnavailableError as error:
        logger.warning("the read cache could not be flushed: %s", error)
        return f"failed ({error}): cached objects may be stale until they expire"
    finally:
        await store.aclose()
    return f"{flushed} cached objects dropped"


async def _check_reachable(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        async with _connected(engine) as connection:
            await connection.scalar(sa.text("SELECT 1"))
    finally:
        await engine.dispose()


async def restore(
    location: str,
    settings: Settings,
    backup: BackupSettings,
    *,
    expected_sha256: str | None = None,
) -> dict[str, Any]:
    started = time.monotonic()
    url = _postgres_url(settings)
    storage = open_storage(location, backup)
    manifest = _read_manifest(storage)
    if expected_sha256 is not None and manifest.sha256 != expected_sha256:
        raise BackupError(
            Reason.CHECKSUM_MISMATCH,
            f"the backup at {location} has sha256 {manifest.sha256}, not the {expected_sha256} "
            "asked for: it is another backup (or was replaced); nothing was restored",
        )
    if not migrate.is_known_revision(settings, manifest.schema_revision):
        raise BackupError(
            Reason.UNKNOWN_REVISION,
            f"the backup is at schema revision {manifest.schema_revision}, which this version "
            f"({__version__}, head {migrate.head_revision(settings)}) does not know: restore it "
            f"with the version that made it (app {manifest.app_version}) or newer",
        )
    with _scratch(backup) as scratch, storage.local_copy(manifest.dump_file, scratch) as archive:
        _check_archive(archive, manifest)
        await _check_reachable(settings)
        logger.info("restoring %s (%d bytes)", location, manifest.size)
        await postgres.restore(archive, postgres.libpq_environment(url))
    try:
        # Alembic runs its own event loop: off this one.
        await asyncio.to_thread(migrate.upgrade, settings)
    except Exception as error:
        raise BackupError(
            Reason.MIGRATION_FAILED,
            f"restored at revision {manifest.schema_revision}, but the upgrade to head failed "
            f"(the database stays at that revision): {error}",
        ) from error
    return {
        "cacheFlush": await _flush_cache(settings),
        "location": location,
        "sha256": manifest.sha256,
        "schemaRevision": manifest.schema_revision,
        "migratedTo": migrate.head_revision(settings),
        "durationSeconds": _elapsed(started),
    }


@contextlib.asynccontextmanager
async def _scratch_database(url: str) -> AsyncIterator[str]:
    """A new empty database next to the app's, dropped on the way out, however that goes."""
    base = make_url(url)
    name = f"{(base.database or 'taskmanager')[:40]}_verify_{secrets.token_hex(4)}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    quoted = admin.dialect.identifier_preparer.quote(name)
    try:
        async with _connected(admin) as connection:
            # template0: nothing but what the dump brings, whatever template1 holds here.
            await connection.execute(sa.text(f"CREATE DATABASE {quoted} TEMPLATE template0"))
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            async with _connected(admin) as connection:
                await connection.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
    finally:
        await admin.dispose()


def _mismatches(manifest: Manifest, found: dict[str, int]) -> dict[str, dict[str, int | None]]:
    return {
        table: {"manifest": manifest.row_counts.get(table), "restored": found.get(table)}
        for table in sorted(manifest.row_counts.keys() | found.keys())
        if manifest.row_counts.get(table) != found.get(table)
    }


async def verify(location: str, settings: Settings, backup: BackupSettings) -> dict[str, Any]:
    started = time.monotonic()
    url = _postgres_url(settings)
    storage = open_storage(location, backup)
    manifest = _read_manifest(storage)
    with _scratch(backup) as scratch, storage.local_copy(manifest.dump_file, scratch) as archive:
        _check_archive(archive, manifest)
        async with _scratch_database(url) as scratch_url:
            await postgres.restore(archive, postgres.libpq_environment(scratch_url))
            engine = create_async_engine(scratch_url, poolclass=NullPool)
            try:
                async with _connected(engine) as connection:
                    revision, row_counts = await read_state(connection)
            finally:
                await engine.dispose()
    if revision != manifest.schema_revision:
        raise BackupError(
            Reason.VERIFY_MISMATCH,
            f"the restored dump is at revision {revision}, the manifest says "
            f"{manifest.schema_revision}",
            tables=[],
        )
    if mismatches := _mismatches(manifest, row_counts):
        described = ", ".join(
            f"{table} (manifest {counts['manifest']}, restored {counts['restored']})"
            for table, counts in mismatches.items()
        )
        raise BackupError(
            Reason.VERIFY_MISMATCH,
            f"row counts differ from the manifest: {described}",
            tables=list(mismatches),
        )
    return {
        "location": location,
        "sha256": manifest.sha256,
        "schemaRevision": revision,
        "rowCounts": row_counts,
        "durationSeconds": _elapsed(started),
    }


def delete(location: str, backup: BackupSettings) -> dict[str, Any]:
    started = time.monotonic()
    storage = open_storage(location, backup)
    raw = storage.read_bytes(MANIFEST_NAME)
    dump_file = DUMP_NAME
    if raw is not None:
        with contextlib.suppress(BackupError):  # an unreadable manifest goes all the same
            dump_file = Manifest.from_json(raw).dump_file
    existed = raw is not None or storage.exists(dump_file)
    # The manifest first: a delete that stops half-way leaves a dump without a manifest, which
    # nothing takes for a backup, never a manifest promising a dump that is gone.
    storage.delete(MANIFEST_NAME)
    storage.delete(dump_file)
    return {"location": location, "deleted": existed, "durationSeconds": _elapsed(started)}
