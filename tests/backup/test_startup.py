"""The backup command starts without the app: what it imports, and the readings it does itself
in place of SQLAlchemy's and Alembic's (which it does not import), held to theirs.

Start-up is most of what a small backup costs, and what kept a million-task backup under 0.9 of
plain pg_dump's throughput (docs/benchmarks.md): these tests fail as soon as a backup operation
imports the web stack, SQLAlchemy, Alembic, boto3 for a file location or Redis without a cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from taskmanager_api.backup.postgres import ConnectionParameters
from taskmanager_api.core import migrate, schema_revisions
from tests.api.conftest import make_settings
from tests.backup.conftest import (
    CLI_TIMEOUT,
    Database,
    Outcome,
    contents,
    job_environment,
    seed,
    succeeded,
)

# What no backup operation on a file location, without a Redis cache, may import.
NOT_FOR_BACKUPS = (
    "fastapi",
    "starlette",
    "uvicorn",
    # SQLAlchemy's URL module reads the database URL; its engines, ORM and asyncio are not needed.
    "sqlalchemy.orm",
    "sqlalchemy.ext.asyncio",
    "alembic",
    "boto3",
    "botocore",
    "redis",
    "argon2",
    "jwt",
    "taskmanager_api.main",
    "taskmanager_api.commands",
    "taskmanager_api.auth",
    "taskmanager_api.users",
    "taskmanager_api.tasks",
    "taskmanager_api.comments",
    "taskmanager_api.core.db",
    "taskmanager_api.core.migrate",
    "taskmanager_api.core.state_store",
)

# `python -m taskmanager_api ARGS...`, then the names of every module it imported, written to
# the file $MODULES_FILE (stdout stays the command's one result line).
_PROBE = """
import json, os, runpy, sys
code = 0
try:
    runpy.run_module("taskmanager_api", run_name="__main__", alter_sys=True)
except SystemExit as exit:
    code = exit.code
with open(os.environ["MODULES_FILE"], "w") as listing:
    json.dump(sorted(sys.modules), listing)
sys.exit(code)
"""


def imported_by(env: dict[str, str], tmp_path: Path, *args: str) -> tuple[Outcome, set[str]]:
    modules_file = tmp_path / f"modules-{uuid.uuid4().hex[:8]}.json"
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        env=env | {"MODULES_FILE": str(modules_file)},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    line = json.loads(result.stdout) if result.stdout.startswith("{") else {}
    outcome = Outcome(code=result.returncode, line=line, stdout=result.stdout, stderr=result.stderr)
    return outcome, set(json.loads(modules_file.read_text()))


def heavy(modules: set[str]) -> list[str]:
    return sorted(
        name
        for name in modules
        if any(name == prefix or name.startswith(f"{prefix}.") for prefix in NOT_FOR_BACKUPS)
    )


def test_backup_help_imports_nothing_of_the_app(tmp_path: Path) -> None:
    outcome, modules = imported_by(dict(os.environ), tmp_path, "backup", "--help")
    assert outcome.code == 0, outcome.stderr
    assert "create" in outcome.stdout
    assert heavy(modules) == []


@pytest.mark.postgres
def test_create_verify_restore_delete_of_a_file_backup_import_nothing_of_the_app(
    make_database: Callable[..., Database], tmp_path: Path
) -> None:
    source, target = make_database(), make_database()
    seed(source.url, "imports")
    location = (tmp_path / "backups" / "imports").as_uri()
    runs = {
        "create": (source, ("create", "--to", location)),
        "verify": (source, ("verify", "--from", location)),
        # The backup is at head: nothing to migrate, so neither Alembic nor SQLAlchemy.
        "restore": (target, ("restore", "--from", location)),
        "delete": (source, ("delete", location)),
    }
    for operation, (database, args) in runs.items():
        outcome, modules = imported_by(
            job_environment(tmp_path, database), tmp_path, "backup", *args
        )
        succeeded(outcome)
        assert heavy(modules) == [], f"backup {operation} imported them"
    assert contents(target.url) == contents(source.url)


# URLs as users write them: what the backup's tools are given for each is what SQLAlchemy, which
# the app uses, reads in it.
URLS = [
    "postgresql+asyncpg://tasks:p%40ss@db.example:6543/tasks",
    "postgresql+asyncpg://tasks:pa/ss?#x:y@db.example/tasks",  # unescaped, as SQLAlchemy allows
    "postgresql+asyncpg://tasks@[::1]:5433/my%20tasks",
    "postgresql+asyncpg://tasks:secret@db/tasks?ssl=require",
    "postgresql+asyncpg://tasks:secret@db/tasks?sslmode=verify-full&ssl=require",
    "postgresql+asyncpg://tasks:secret@/tasks?host=/var/run/postgresql",
    "postgresql+asyncpg://tasks:secret@db:5432/tasks?host=a&host=b",
    "postgresql+asyncpg://tasks:@db/",
    "postgresql+asyncpg://db",
    "postgresql://127.0.0.1:5432",
]


@pytest.mark.parametrize("url", URLS)
def test_the_database_url_is_read_as_sqlalchemy_reads_it(url: str) -> None:
    expected = make_url(url)

    def single(name: str) -> str | None:
        value = expected.query.get(name)
        return value if isinstance(value, str) else None

    assert ConnectionParameters.from_url(url) == ConnectionParameters(
        host=single("host") or expected.host,
        port=expected.port,
        user=expected.username or None,
        password=expected.password or None,
        database=expected.database or None,
        sslmode=single("sslmode") or single("ssl"),
    )


def test_the_revisions_are_read_as_alembic_reads_them() -> None:
    scripts = ScriptDirectory.from_config(migrate.alembic_config(make_settings()))
    alembic = {}
    for script in scripts.walk_revisions():
        down = script.down_revision
        alembic[script.revision] = (down,) if isinstance(down, str) else tuple(down or ())
    assert schema_revisions.revisions() == alembic
    assert schema_revisions.head() == scripts.get_current_head() is not None
    assert schema_revisions.is_known(None)
    assert not schema_revisions.is_known("0099_attachments")
