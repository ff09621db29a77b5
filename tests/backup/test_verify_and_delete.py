"""verify restores into a scratch database and compares; delete removes a backup, manifest first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taskmanager_api.backup.manifest import DUMP_NAME, MANIFEST_NAME
from tests.backup.conftest import (
    Backup,
    database_names,
    failed,
    job_environment,
    run_backup,
    succeeded,
)
from tests.support.services import PostgresServer

pytestmark = pytest.mark.postgres


def test_verify_passes_on_a_good_backup_and_leaves_no_database_behind(
    backup: Backup, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    databases = database_names(postgres_server)
    line = succeeded(
        run_backup(job_environment(tmp_path, backup.source), "verify", "--from", backup.location)
    )
    assert line["rowCounts"] == backup.line["rowCounts"]
    assert line["schemaRevision"] == backup.line["schemaRevision"]
    assert database_names(postgres_server) == databases


def test_verify_fails_naming_the_tables_whose_counts_differ(
    backup: Backup, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    manifest_path = backup.directory / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    manifest["rowCounts"]["public.tasks"] += 1
    manifest_path.write_text(json.dumps(manifest))
    databases = database_names(postgres_server)

    line = failed(
        run_backup(job_environment(tmp_path, backup.source), "verify", "--from", backup.location),
        "VerifyMismatch",
    )
    assert line["tables"] == ["public.tasks"]
    assert "public.tasks (manifest 4, restored 3)" in line["message"]
    assert "public.users" not in line["message"]
    # The scratch database is dropped on failure too.
    assert database_names(postgres_server) == databases


def test_verify_refuses_a_damaged_dump(backup: Backup, tmp_path: Path) -> None:
    dump = backup.directory / DUMP_NAME
    dump.write_bytes(dump.read_bytes()[:-1])
    failed(
        run_backup(job_environment(tmp_path, backup.source), "verify", "--from", backup.location),
        "ChecksumMismatch",
    )


def test_delete_removes_the_backup_and_succeeds_again(backup: Backup, tmp_path: Path) -> None:
    env = job_environment(tmp_path, backup.source)
    first = succeeded(run_backup(env, "delete", backup.location))
    assert first["deleted"] is True
    assert not backup.directory.exists()
    again = succeeded(run_backup(env, "delete", backup.location))
    assert again["deleted"] is False
    failed(run_backup(env, "restore", "--from", backup.location), "ManifestMissing")


def test_a_delete_that_stops_half_way_leaves_no_backup_to_trust(
    backup: Backup, tmp_path: Path
) -> None:
    # The dump cannot be removed (a directory holds its name): the delete fails after its first
    # step, and what it leaves is not taken for a backup.
    dump = backup.directory / DUMP_NAME
    dump.unlink()
    (dump / "in-the-way").mkdir(parents=True)
    env = job_environment(tmp_path, backup.source)
    failed(run_backup(env, "delete", backup.location), "StorageFailed")
    assert not (backup.directory / MANIFEST_NAME).exists()
    failed(run_backup(env, "restore", "--from", backup.location), "ManifestMissing")
