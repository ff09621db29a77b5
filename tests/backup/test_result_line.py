"""The result line: one JSON line on stdout, and a copy Kubernetes can keep as the termination
message (it keeps 4096 bytes at most)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from taskmanager_api.backup.cli import TERMINATION_MESSAGE_LIMIT
from tests.backup.conftest import Database, execute, job_environment, run_backup, succeeded

pytestmark = pytest.mark.postgres


def test_too_many_tables_for_the_termination_message_leave_out_the_row_counts_there_only(
    database: Database, tmp_path: Path
) -> None:
    asyncio.run(
        execute(
            database.url,
            *(f"CREATE TABLE report_archive_of_quarter_{n:03} (id int)" for n in range(120)),
        )
    )
    log = tmp_path / "termination-log"
    location = (tmp_path / "many").as_uri()
    outcome = run_backup(
        job_environment(tmp_path, database),
        "create",
        "--to",
        location,
        "--termination-log",
        str(log),
    )
    line = succeeded(outcome)
    assert len(line["rowCounts"]) > 120
    assert len(outcome.stdout.encode()) > TERMINATION_MESSAGE_LIMIT
    message = log.read_bytes()
    assert len(message) <= TERMINATION_MESSAGE_LIMIT
    assert json.loads(message) == {k: v for k, v in line.items() if k != "rowCounts"}


def test_logs_go_to_stderr_and_never_hold_the_password(database: Database, tmp_path: Path) -> None:
    outcome = run_backup(
        job_environment(tmp_path, database), "create", "--to", (tmp_path / "l").as_uri()
    )
    succeeded(outcome)
    assert outcome.stdout.count("\n") == 1
    assert "backup create succeeded" in outcome.stderr
    password = database.url.split(":")[2].split("@")[0]
    assert password not in outcome.stdout + outcome.stderr
