"""The same backups in an S3 bucket (versitygw on 127.0.0.1), configured as a Job would be."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config

from taskmanager_api.backup.manifest import DUMP_NAME, MANIFEST_NAME
from taskmanager_api.core.config import (
    S3_ACCESS_KEY_ID_FILE,
    S3_SECRET_ACCESS_KEY_FILE,
    backup_env_name,
)
from tests.backup.conftest import (
    Database,
    contents,
    execute,
    failed,
    job_environment,
    run_backup,
    seed,
    succeeded,
)
from tests.support.s3 import S3Server
from tests.support.services import free_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.postgres

# The start-up and a few refused connections take about 1.5 s on 2 cores: a retry loop that
# backs off for long does not fit.
UNREACHABLE_BOUND_SECONDS = 10


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    name = f"backups-{uuid.uuid4().hex[:10]}"
    client(s3_server).create_bucket(Bucket=name)
    return name


def client(server: S3Server) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
        config=Config(s3={"addressing_style": "path"}),
    )


def keys(server: S3Server, bucket: str) -> list[str]:
    listing = client(server).list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def object_sha256(server: S3Server, bucket: str, key: str) -> str:
    body = client(server).get_object(Bucket=bucket, Key=key)["Body"].read()
    return hashlib.sha256(body).hexdigest()


def s3_environment(tmp_path: Path, database: Database, server: S3Server) -> dict[str, str]:
    """Credentials as the mounted Secret's files; the endpoint and addressing as settings."""
    credentials = tmp_path / f"s3-credentials-{uuid.uuid4().hex[:6]}"
    credentials.mkdir()
    (credentials / S3_ACCESS_KEY_ID_FILE).write_text(server.access_key + "\n")
    (credentials / S3_SECRET_ACCESS_KEY_FILE).write_text(server.secret_key)
    return job_environment(
        tmp_path,
        database,
        backup_s3_endpoint=server.endpoint,
        backup_s3_region=server.region,
        backup_s3_path_style="true",
        backup_s3_credentials_dir=str(credentials),
    )


def test_create_verify_restore_delete_in_a_bucket(
    make_database: Callable[..., Database], s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    database = make_database()
    seed(database.url, "in-s3", users=5)
    before = contents(database.url)
    env = s3_environment(tmp_path, database, s3_server)
    location = f"s3://{bucket}/team-a/demo/2026-12-06T0300Z"

    created = succeeded(run_backup(env, "create", "--to", location))
    assert keys(s3_server, bucket) == [
        f"team-a/demo/2026-12-06T0300Z/{DUMP_NAME}",
        f"team-a/demo/2026-12-06T0300Z/{MANIFEST_NAME}",
    ]
    failed(run_backup(env, "create", "--to", location), "BackupExists")

    verified = succeeded(run_backup(env, "verify", "--from", location))
    assert verified["rowCounts"] == created["rowCounts"]

    seed(database.url, "after-the-backup")
    asyncio.run(execute(database.url, "CREATE TABLE newer_table (id int)"))
    succeeded(run_backup(env, "restore", "--from", location))
    assert contents(database.url) == before

    assert succeeded(run_backup(env, "delete", location))["deleted"] is True
    assert keys(s3_server, bucket) == []
    assert succeeded(run_backup(env, "delete", location))["deleted"] is False
    failed(run_backup(env, "restore", "--from", location), "ManifestMissing")


def test_a_tampered_object_is_refused(
    database: Database, s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    env = s3_environment(tmp_path, database, s3_server)
    location = f"s3://{bucket}/tampered"
    succeeded(run_backup(env, "create", "--to", location))
    s3 = client(s3_server)
    key = f"tampered/{DUMP_NAME}"
    body = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[-10] ^= 0xFF
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    before = contents(database.url)
    failed(run_backup(env, "restore", "--from", location), "ChecksumMismatch")
    assert contents(database.url) == before


def test_wrong_credentials_fail_as_storage_errors(
    database: Database, s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    env = s3_environment(tmp_path, database, s3_server)
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / S3_ACCESS_KEY_ID_FILE).write_text(s3_server.access_key)
    (wrong / S3_SECRET_ACCESS_KEY_FILE).write_text("not-the-secret-key")
    env["TASKMANAGER_BACKUP_S3_CREDENTIALS_DIR"] = str(wrong)
    outcome = run_backup(env, "create", "--to", f"s3://{bucket}/denied")
    failed(outcome, "StorageFailed")
    assert s3_server.secret_key not in outcome.stdout + outcome.stderr
    assert keys(s3_server, bucket) == []


def test_an_unreachable_endpoint_fails_soon_saying_so_and_older_backups_stay(
    database: Database, s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    env = s3_environment(tmp_path, database, s3_server)
    older = f"s3://{bucket}/older"
    created = succeeded(run_backup(env, "create", "--to", older))
    stored = {key: object_sha256(s3_server, bucket, key) for key in keys(s3_server, bucket)}

    # A port of the loopback address nothing listens on: every connection is refused.
    endpoint = f"http://127.0.0.1:{free_port()}"
    unreachable = env | {backup_env_name("s3_endpoint"): endpoint}
    started = time.monotonic()
    outcome = run_backup(unreachable, "create", "--to", f"s3://{bucket}/newer")
    elapsed = time.monotonic() - started
    line = failed(outcome, "StorageFailed")
    assert (
        f"the object store at {endpoint} ({backup_env_name('s3_endpoint')}) cannot be reached"
        in (line["message"])
    ), line
    # A refused connection is not worth waiting for: a few attempts, a few tens of ms apart.
    assert elapsed < UNREACHABLE_BOUND_SECONDS, f"{elapsed:.1f} s"

    assert {key: object_sha256(s3_server, bucket, key) for key in keys(s3_server, bucket)} == stored
    verified = succeeded(run_backup(env, "verify", "--from", older))
    assert verified["rowCounts"] == created["rowCounts"]
