"""Back up what users made through the API, change it, restore: everything is as it was."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from taskmanager_api import __version__
from taskmanager_api.backup.manifest import DUMP_NAME, MANIFEST_NAME
from taskmanager_api.core import migrate
from taskmanager_api.core.config import TERMINATION_LOG_VARIABLE, Settings
from taskmanager_api.core.state_store import RedisStore
from tests.api.conftest import API_REDIS_DB, make_settings
from tests.backup.conftest import (
    Backup,
    Database,
    contents,
    execute,
    job_environment,
    run_backup,
    succeeded,
)
from tests.backup.data import change_everything, populate, tasks_seen_by
from tests.support.services import RedisServer

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_a_restore_brings_back_every_row_and_only_what_the_backup_held(
    database: Database, redis_server: RedisServer, tmp_path: Path
) -> None:
    def app_settings() -> Settings:
        # A Redis key prefix per app: each starts with an empty cache, as after a restore.
        return make_settings(
            database_url=database.url,
            redis_url=redis_server.url(API_REDIS_DB),
            redis_key_prefix=f"backup-{uuid.uuid4().hex[:8]}:",
        )

    world = asyncio.run(populate(app_settings()))
    seen_before = asyncio.run(tasks_seen_by(app_settings(), world["alice"]))
    before = contents(database.url)
    assert len(before["tasks"]) == 6
    assert len(before["comments"]) == 6
    assert before["revoked_token_families"]
    assert before["spent_refresh_tokens"]

    location = (tmp_path / "backups" / "nightly").as_uri()
    termination_log = tmp_path / "termination-log"
    # The termination log named by the variable, as the operator's Jobs set it.
    env = job_environment(tmp_path, database) | {TERMINATION_LOG_VARIABLE: str(termination_log)}
    created = succeeded(run_backup(env, "create", "--to", location))

    # What the result line promises, checked against the database and the files.
    assert created["location"] == location
    assert created["schemaRevision"] == migrate.head_revision(database.settings)
    assert created["appVersion"] == __version__
    assert created["rowCounts"] == {
        f"public.{table}": len(rows) for table, rows in before.items() if table != "relations"
    }
    backup_dir = tmp_path / "backups" / "nightly"
    assert sorted(path.name for path in backup_dir.iterdir()) == [DUMP_NAME, MANIFEST_NAME]
    assert created["size"] == (backup_dir / DUMP_NAME).stat().st_size
    manifest = json.loads((backup_dir / MANIFEST_NAME).read_text())
    assert manifest["sha256"] == created["sha256"]
    assert manifest["rowCounts"] == created["rowCounts"]
    assert created["serverVersion"].split(".")[0] == created["clientVersion"].split(".")[0]
    assert termination_log.read_text() == json.dumps(created, separators=(",", ":")) + "\n"

    asyncio.run(change_everything(app_settings(), world))
    asyncio.run(
        execute(
            database.url,
            "CREATE TABLE feature_of_a_newer_release (id int PRIMARY KEY, note text)",
            "INSERT INTO feature_of_a_newer_release VALUES (1, 'not in the backup')",
        )
    )
    changed = contents(database.url)
    assert changed != before
    assert any(name == "feature_of_a_newer_release" for name, _ in changed["relations"])

    restored = succeeded(run_backup(env, "restore", "--from", location))
    assert restored["schemaRevision"] == created["schemaRevision"]
    assert restored["migratedTo"] == migrate.head_revision(database.settings)
    assert json.loads(termination_log.read_text()) == restored

    after = contents(database.url)
    assert after["relations"] == before["relations"]  # the newer table is gone, nothing else
    for table in before:
        assert after[table] == before[table], f"{table} differs after the restore"
    # And users notice: the old password works and the same tasks are there, unchanged.
    assert asyncio.run(tasks_seen_by(app_settings(), world["alice"])) == seen_before


def test_the_backup_of_an_empty_database_restores_to_empty(
    make_database: Callable[..., Database], tmp_path: Path
) -> None:
    source, target = make_database(), make_database()
    asyncio.run(execute(target.url, "CREATE TABLE leftover (id int)"))
    location = (tmp_path / "empty").as_uri()
    created = succeeded(run_backup(job_environment(tmp_path, source), "create", "--to", location))
    assert set(created["rowCounts"].values()) == {0, 1}  # alembic_version has its one row
    succeeded(run_backup(job_environment(tmp_path, target), "restore", "--from", location))
    assert contents(target.url) == contents(source.url)


def test_a_restore_empties_the_read_cache_and_keeps_the_revocations(
    backup: Backup,
    make_database: Callable[..., Database],
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    """A cached object carries a version newer than the restored row's, and the cache keeps the
    newer: unless emptied, the API would serve what the restore took back."""
    prefix = f"flush-{uuid.uuid4().hex[:8]}:"
    url = redis_server.url(API_REDIS_DB)

    async def fill() -> None:
        store = RedisStore.from_url(url, prefix=prefix, timeout=5, max_connections=2)
        await store.cache_put("task:1", 7, b"written after the backup", 60_000)
        await store.cache_put("user:1", 3, b"also", 60_000)
        await store.revoke_family("family-1", 2_000_000_000_000)
        await store.aclose()

    asyncio.run(fill())
    env = job_environment(tmp_path, make_database(), redis_url=url, redis_key_prefix=prefix)
    restored = succeeded(run_backup(env, "restore", "--from", backup.location))
    assert restored["cacheFlush"] == "2 cached objects dropped"
    client = redis.Redis.from_url(url)
    left = {key.decode() for key in client.scan_iter(match=f"{prefix}*")}
    assert left, "the revocation stays"
    assert not any(key.startswith(f"{prefix}cache:") for key in left), left
