"""pg_dump must be at least the server's major version: checked before dumping, said plainly."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from taskmanager_api.backup.errors import BackupError, Reason
from taskmanager_api.backup.postgres import check_client_supports, parse_client_version
from tests.backup.conftest import Database, job_environment, run_backup, succeeded


def installed_pg_dump() -> str:
    return subprocess.run(
        ["pg_dump", "--version"], capture_output=True, text=True, check=True
    ).stdout


def test_the_installed_pg_dump_version_is_read() -> None:
    output = installed_pg_dump()
    client = parse_client_version(output)
    assert output.startswith(f"pg_dump (PostgreSQL) {client.text}")
    assert client.major >= 10


def test_a_client_older_than_the_server_is_refused_with_the_reason() -> None:
    client = parse_client_version(installed_pg_dump())
    newer_server = (client.major + 1) * 10000 + 2  # e.g. 160002 for 16.2 next to pg_dump 15
    with pytest.raises(BackupError) as refused:
        check_client_supports(client, newer_server)
    assert refused.value.reason is Reason.CLIENT_TOO_OLD
    assert refused.value.message.startswith(
        f"pg_dump {client.major} cannot dump a PostgreSQL {client.major + 1} server: "
    )
    # The same major, or an older server, is what pg_dump supports.
    check_client_supports(client, client.major * 10000 + 99)
    check_client_supports(client, (client.major - 1) * 10000)


def test_older_and_distribution_version_strings() -> None:
    assert parse_client_version("pg_dump (PostgreSQL) 16.4 (Ubuntu 16.4-1.pgdg22.04+1)").major == 16
    assert parse_client_version("pg_dump (PostgreSQL) 17beta2").major == 17
    with pytest.raises(BackupError):
        parse_client_version("something else 1.2")


async def _server_version_num(url: str) -> int:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return int(str(await connection.scalar(sa.text("SHOW server_version_num"))))
    finally:
        await engine.dispose()


@pytest.mark.postgres
def test_the_real_server_and_client_pass_the_check_and_are_recorded(
    database: Database, tmp_path: Path
) -> None:
    server = asyncio.run(_server_version_num(database.url))
    client = parse_client_version(installed_pg_dump())
    check_client_supports(client, server)
    line = succeeded(
        run_backup(job_environment(tmp_path, database), "create", "--to", (tmp_path / "v").as_uri())
    )
    assert line["clientVersion"] == client.text
    assert line["serverVersion"].startswith(f"{server // 10000}.")
