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
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from taskmanager_api import __version__
from taskmanager_api.backup import database, postgres
from taskmanager_api.backup.errors import BackupError, Reason
from taskmanager_api.backup.manifest import DUMP_NAME, FORMAT_VERSION, MANIFEST_NAME, Manifest
from taskmanager_api.backup.postgres import ConnectionParameters
from taskmanager_api.backup.storage import Storage, open_storage
from taskmanager_api.core import schema_revisions
from taskmanager_api.core.config import BackupSettings, Settings

logger = logging.getLogger("taskmanager_api.backup")


def _parameters(settings: Settings) -> ConnectionParameters:
    if settings.database_url is None or settings.is_sqlite:
        raise BackupError(
            Reason.UNSUPPORTED_DATABASE,
            f"backups need PostgreSQL: {postgres.DATABASE_URL_VARIABLE} is unset or not PostgreSQL",
        )
    return ConnectionParameters.from_url(settings.sqlalchemy_url)


def _elapsed(started: float) -> float:
    return round(time.monotonic() - started, 3)


def _digest(path: Path) -> tuple[int, str]:
    with path.open("rb") as reader:
        digest = hashlib.file_digest(reader, "sha256")
    return path.stat().st_size, digest.hexdigest()


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


@dataclass(frozen=True)
class _Snapshot:
    """What the database held when the dump was taken, as the manifest records it."""

    revision: str | None
    row_counts: dict[str, int]
    server_version: str


async def _dump(
    parameters: ConnectionParameters, client: postgres.ClientVersion, archive: Path
) -> _Snapshot:
    """pg_dump into `archive`, and the revision and row counts of the same snapshot."""
    async with database.connected(parameters) as connection:
        # One snapshot for everything: the counts and revision in the manifest describe exactly
        # the rows in the dump, however busy the database is meanwhile.
        transaction = connection.transaction(isolation="repeatable_read", readonly=True)
        await transaction.start()
        server_version, server_version_num = await database.server_version(connection)
        postgres.check_client_supports(client, server_version_num)
        snapshot = str(await connection.fetchval("SELECT pg_export_snapshot()"))
        # The snapshot lives as long as this transaction: pg_dump runs inside it, and the rows
        # are counted in it meanwhile, rather than before pg_dump starts.
        dumping = asyncio.create_task(
            postgres.dump(archive, snapshot, parameters.libpq_environment())
        )
        try:
            revision, row_counts = await database.read_state(connection)
            await dumping
        finally:
            if not dumping.done():
                dumping.cancel()  # which stops pg_dump
                with contextlib.suppress(asyncio.CancelledError):
                    await dumping
        await transaction.rollback()
    return _Snapshot(revision, row_counts, server_version)


def _commit(storage: Storage, manifest: Manifest) -> None:
    """The manifest, written last: it makes the dump a backup."""
    try:
        storage.write_bytes(MANIFEST_NAME, manifest.to_json())
    except BackupError:
        # A dump without its manifest is no backup, only space taken: it goes. The manifest
        # first (it may have been stored after all, its answer lost), and the dump only once
        # that is done, as delete() does: never a manifest without its dump.
        with contextlib.suppress(BackupError):
            storage.delete(MANIFEST_NAME)
            storage.delete(manifest.dump_file)
        raise


async def create(location: str, settings: Settings, backup: BackupSettings) -> dict[str, Any]:
    started = time.monotonic()
    parameters = _parameters(settings)
    storage = open_storage(location, backup)
    if storage.exists(MANIFEST_NAME):
        raise BackupError(
            Reason.BACKUP_EXISTS, f"{location} already holds a backup: delete it or pick another"
        )
    client = await postgres.client_version(parameters.libpq_environment())
    # pg_dump writes where the dump stays (a file location) or where it is uploaded from (S3).
    with storage.staged(DUMP_NAME, backup.work_dir) as archive:
        snapshot = await _dump(parameters, client, archive)
        size, sha256 = _digest(archive)
        logger.info("dumped %d bytes in %.1f s; storing", size, _elapsed(started))
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        created_at=datetime.now(UTC),
        dump_file=DUMP_NAME,
        size=size,
        sha256=sha256,
        app_version=__version__,
        schema_revision=snapshot.revision,
        server_version=snapshot.server_version,
        client_version=client.text,
        row_counts=snapshot.row_counts,
    )
    _commit(storage, manifest)
    return {
        "location": location,
        "size": size,
        "sha256": sha256,
        "appVersion": __version__,
        "schemaRevision": snapshot.revision,
        "rowCounts": snapshot.row_counts,
        "serverVersion": snapshot.server_version,
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
    # Imported here: the Redis client is for a configured cache only.
    from taskmanager_api.core.state_store import (  # noqa: PLC0415
        RedisStore,
        StoreUnavailableError,
    )

    store = RedisStore.from_settings(settings)
    try:
        flushed = await store.flush_cache()
    except StoreUnavailableError as error:
        logger.warning("the read cache could not be flushed: %s", error)
        return f"failed ({error}): cached objects may be stale until they expire"
    finally:
        await store.aclose()
    return f"{flushed} cached objects dropped"


async def _check_reachable(parameters: ConnectionParameters) -> None:
    async with database.connected(parameters) as connection:
        await connection.fetchval("SELECT 1")


async def _migrate(
    settings: Settings, parameters: ConnectionParameters, restored: str | None
) -> None:
    """Upgrade the restored database to head, unless it is there already (then Alembic, and the
    SQLAlchemy under it, is not even imported)."""
    head = schema_revisions.head()
    try:
        async with database.connected(parameters) as connection:
            current = await database.schema_revision(connection)
        if current == head:
            logger.info("restored at revision %s, the head: nothing to migrate", current)
            return
        logger.info("restored at revision %s; migrating to %s", current, head)
        # Alembic (and SQLAlchemy under it), for a restore that has something to migrate only.
        from taskmanager_api.core import migrate  # noqa: PLC0415

        # Alembic runs its own event loop: off this one.
        await asyncio.to_thread(migrate.upgrade, settings)
    except Exception as error:
        raise BackupError(
            Reason.MIGRATION_FAILED,
            f"restored at revision {restored}, but the upgrade to head failed "
            f"(the database stays at that revision): {error}",
        ) from error


async def restore(
    location: str,
    settings: Settings,
    backup: BackupSettings,
    *,
    expected_sha256: str | None = None,
) -> dict[str, Any]:
    started = time.monotonic()
    parameters = _parameters(settings)
    storage = open_storage(location, backup)
    manifest = _read_manifest(storage)
    if expected_sha256 is not None and manifest.sha256 != expected_sha256:
        raise BackupError(
            Reason.CHECKSUM_MISMATCH,
            f"the backup at {location} has sha256 {manifest.sha256}, not the {expected_sha256} "
            "asked for: it is another backup (or was replaced); nothing was restored",
        )
    if not schema_revisions.is_known(manifest.schema_revision):
        raise BackupError(
            Reason.UNKNOWN_REVISION,
            f"the backup is at schema revision {manifest.schema_revision}, which this version "
            f"({__version__}, head {schema_revisions.head()}) does not know: restore it "
            f"with the version that made it (app {manifest.app_version}) or newer",
        )
    with storage.local_copy(manifest.dump_file, backup.work_dir) as archive:
        _check_archive(archive, manifest)
        await _check_reachable(parameters)
        logger.info("restoring %s (%d bytes)", location, manifest.size)
        await postgres.restore(archive, parameters.libpq_environment())
    await _migrate(settings, parameters, manifest.schema_revision)
    return {
        "cacheFlush": await _flush_cache(settings),
        "location": location,
        "sha256": manifest.sha256,
        "schemaRevision": manifest.schema_revision,
        "migratedTo": schema_revisions.head(),
        "durationSeconds": _elapsed(started),
    }


def _mismatches(manifest: Manifest, found: dict[str, int]) -> dict[str, dict[str, int | None]]:
    return {
        table: {"manifest": manifest.row_counts.get(table), "restored": found.get(table)}
        for table in sorted(manifest.row_counts.keys() | found.keys())
        if manifest.row_counts.get(table) != found.get(table)
    }


async def verify(location: str, settings: Settings, backup: BackupSettings) -> dict[str, Any]:
    started = time.monotonic()
    parameters = _parameters(settings)
    storage = open_storage(location, backup)
    manifest = _read_manifest(storage)
    with storage.local_copy(manifest.dump_file, backup.work_dir) as archive:
        _check_archive(archive, manifest)
        async with database.scratch_database(parameters) as scratch:
            await postgres.restore(archive, scratch.libpq_environment())
            async with database.connected(scratch) as connection:
                revision, row_counts = await database.read_state(connection)
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
