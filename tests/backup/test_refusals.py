"""What a restore refuses, and a restore that fails: the database stays exactly as it was."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from taskmanager_api.backup.manifest import DUMP_NAME, MANIFEST_NAME
from tests.backup.conftest import (
    Backup,
    Database,
    contents,
    execute,
    failed,
    job_environment,
    run_backup,
    seed,
    succeeded,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def target(make_database: Callable[..., Database]) -> Database:
    """The database a restore is pointed at, holding data of its own."""
    database = make_database()
    seed(database.url, "live", users=4)
    return database


def test_a_dump_changed_by_one_byte_is_refused_and_nothing_is_touched(
    backup: Backup, target: Database, tmp_path: Path
) -> None:
    dump = backup.directory / DUMP_NAME
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))
    before = contents(target.url)

    line = failed(
        run_backup(job_environment(tmp_path, target), "restore", "--from", backup.location),
        "ChecksumMismatch",
    )
    assert backup.line["sha256"] in line["message"]
    assert contents(target.url) == before


def test_a_backup_other_than_the_one_asked_for_is_refused(
    backup: Backup, target: Database, tmp_path: Path
) -> None:
    """A restore by location names the sha256 its record said: anything else found there (a
    backup replaced since) is refused before the database is touched."""
    before = contents(target.url)
    environment = job_environment(tmp_path, target)
    other = "f" * 64
    line = failed(
        run_backup(environment, "restore", "--from", backup.location, "--sha256", other),
        "ChecksumMismatch",
    )
    assert other in line["message"]
    assert contents(target.url) == before
    restored = succeeded(
        run_backup(
            environment, "restore", "--from", backup.location, "--sha256", backup.line["sha256"]
        )
    )
    assert restored["sha256"] == backup.line["sha256"]


def test_a_restore_failing_late_leaves_the_database_as_it_was(
    make_database: Callable[..., Database], target: Database, tmp_path: Path
) -> None:
    # A classic among failed restores: an expression index on a function that reads a table
    # without naming its schema. It works in the database; pg_dump's restore runs with an empty
    # search_path, so building the index, after every row is loaded, fails.
    source = make_database()
    seed(source.url, "source", users=20)
    asyncio.run(
        execute(
            source.url,
            "CREATE FUNCTION title_weight(title text) RETURNS bigint LANGUAGE sql IMMUTABLE "
            "AS $$ SELECT length(title) + (SELECT count(*) FROM users) $$",
            "CREATE INDEX ix_tasks_title_weight ON tasks (title_weight(title))",
        )
    )
    location = (tmp_path / "late").as_uri()
    succeeded(run_backup(job_environment(tmp_path, source), "create", "--to", location))
    before = contents(target.url)

    line = failed(
        run_backup(job_environment(tmp_path, target), "restore", "--from", location),
        "RestoreFailed",
    )
    assert 'relation "users" does not exist' in line["message"]
    assert "rolled back" in line["message"]
    assert contents(target.url) == before


def test_a_backup_from_a_newer_schema_is_refused_before_anything_is_touched(
    make_database: Callable[..., Database], target: Database, tmp_path: Path
) -> None:
    # What a database migrated by a newer release looks like to this one.
    newer = make_database()
    asyncio.run(
        execute(
            newer.url,
            "CREATE TABLE task_attachments (id uuid PRIMARY KEY)",
            "UPDATE alembic_version SET version_num = '0099_attachments'",
        )
    )
    location = (tmp_path / "newer").as_uri()
    created = succeeded(run_backup(job_environment(tmp_path, newer), "create", "--to", location))
    assert created["schemaRevision"] == "0099_attachments"
    before = contents(target.url)

    line = failed(
        run_backup(job_environment(tmp_path, target), "restore", "--from", location),
        "UnknownRevision",
    )
    assert "0099_attachments" in line["message"]
    assert contents(target.url) == before


def test_a_location_without_manifest_is_not_a_backup(
    backup: Backup, target: Database, tmp_path: Path
) -> None:
    # What a create that died before its last step leaves: the dump alone.
    (backup.directory / MANIFEST_NAME).unlink()
    before = contents(target.url)
    env = job_environment(tmp_path, target)
    for operation in ("restore", "verify"):
        line = failed(run_backup(env, operation, "--from", backup.location), "ManifestMissing")
        assert backup.location in line["message"]
    empty = (tmp_path / "never-written").as_uri()
    failed(run_backup(env, "restore", "--from", empty), "ManifestMissing")
    assert contents(target.url) == before


def test_a_backup_is_never_overwritten(backup: Backup, tmp_path: Path) -> None:
    manifest = (backup.directory / MANIFEST_NAME).read_bytes()
    line = failed(
        run_backup(job_environment(tmp_path, backup.source), "create", "--to", backup.location),
        "BackupExists",
    )
    assert backup.location in line["message"]
    assert (backup.directory / MANIFEST_NAME).read_bytes() == manifest


def test_configuration_errors_exit_2_with_a_result_line(database: Database, tmp_path: Path) -> None:
    env = job_environment(tmp_path, database)
    log = tmp_path / "termination-log"
    for location in ("/backups/relative-to-nothing", "http://example.com/x", "s3://bucket-only"):
        outcome = run_backup(env, "create", "--to", location, "--termination-log", str(log))
        failed(outcome, "InvalidLocation", code=2)
        assert json.loads(log.read_text()) == outcome.line

    weak = env | {"TASKMANAGER_JWT_SIGNING_KEY": "changeme"}
    line = failed(
        run_backup(weak, "create", "--to", (tmp_path / "x").as_uri()),
        "InvalidConfiguration",
        code=2,
    )
    assert "TASKMANAGER_JWT_SIGNING_KEY is too weak" in line["message"]
    assert "changeme" not in json.dumps(line)

    sqlite = env | {"TASKMANAGER_DATABASE_URL": "sqlite+aiosqlite:///x.db"}
    failed(
        run_backup(sqlite, "create", "--to", (tmp_path / "x").as_uri(), cwd=tmp_path),
        "UnsupportedDatabase",
        code=2,
    )
    s3 = env | {"TASKMANAGER_BACKUP_S3_CREDENTIALS_DIR": str(tmp_path / "no-such-dir")}
    line = failed(run_backup(s3, "delete", "s3://bucket/x"), "InvalidConfiguration", code=2)
    assert "TASKMANAGER_BACKUP_S3_CREDENTIALS_DIR" in line["message"]


def test_an_unreachable_database_fails_without_showing_the_password(
    database: Database, tmp_path: Path
) -> None:
    password = database.url.split(":")[2].split("@")[0]
    wrong = database.url.replace(password, "not-the-password-" + password[:4])
    env = job_environment(tmp_path, database) | {"TASKMANAGER_DATABASE_URL": wrong}
    outcome = run_backup(env, "create", "--to", (tmp_path / "x").as_uri())
    line = failed(outcome, "DatabaseUnavailable")
    assert "password authentication failed" in line["message"]
    assert password not in outcome.stdout + outcome.stderr
    assert "not-the-password" not in outcome.stdout + outcome.stderr
    assert not (tmp_path / "x").exists()
