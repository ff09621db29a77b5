"""`make bench-backup`: our backup command against plain pg_dump / pg_restore, same run, same data.

Starts a throwaway Postgres (tests/support/services.py), migrates a database with the app's own
migrations and seeds it in SQL (`--tasks`, 1,000,000 by default), then measures in interleaved
rounds, each timing both sides back to back on the same database, the side that goes first
alternating (ours, plain; plain, ours; ...):
  1. backup: `python -m taskmanager_api backup create --to file://...` against
     `pg_dump --format=custom -f FILE`;
  2. restore, of the same archive (ours' database.pgdump): `backup restore --from file://...` into
     a new database migrated to head, against `pg_restore --single-transaction --exit-on-error -d`
     into a new empty database. The databases are made (and migrated) before the clock starts and
     dropped after each round; each restore is checked to hold every task.
Each side's figure is the command's wall time as its caller waits for it, and MB/s of the dump;
a round's ratio is ours' MB/s over plain's. Ours' restore times at `--tasks` are the RTO.
Writes .local/bench-backup-results.json and the backup section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "app")]

import asyncpg  # type: ignore[import-untyped]  # noqa: E402

from bench.backup_report import (  # noqa: E402
    BACKUP,
    OURS,
    PLAIN,
    RESTORE,
    Dataset,
    Run,
    Sample,
    render,
    write_doc,
)
from bench.servers import git  # noqa: E402
from tests.support.services import PostgresServer, run_postgres  # noqa: E402

RESULTS = ROOT / ".local" / "bench-backup-results.json"
# One dump or restore of a million tasks takes a few minutes on 2 cores; a hung one stops here.
COMMAND_TIMEOUT_S = 30 * 60
# Ours' log lines (stderr) that end a phase, by what they mark; when each came is recorded.
BACKUP_MARKS = {"dumped": '"dumped ', "done": "backup create succeeded"}
RESTORE_MARKS = {
    "restoring": '"restoring ',
    "migrating": '"restored at revision ',  # the restore is committed; the migration next
    "done": "backup restore succeeded",
}

TAGS = [
    "backend", "frontend", "bug", "feature", "ops", "docs", "customer", "design", "q3", "security",
]  # fmt: skip

# Users, then tasks, tags on a third of the tasks, comments on a tenth. Ids are md5-derived
# uuids, so tasks, tags and comments find their users and tasks without a join. Text is made of
# sentences picked by different moduli (as compressible as prose, not one repeated string) and a
# hex reference that no compressor guesses. $1 is the number of users, $2 the number of tasks.
SEED_USERS = """
INSERT INTO users (id, email, password_hash, role, is_active, version, created_at, updated_at)
SELECT md5('user-' || u)::uuid, 'user' || u || '@example.com',
       '$argon2id$v=19$m=65536,t=3,p=4$' || md5('salt-' || u) || '$' || md5('hash-' || u),
       CASE WHEN u % 100 = 0 THEN 'admin' ELSE 'member' END, u % 50 <> 0, 1,
       timestamptz '2025-01-01' + u * interval '1 hour',
       timestamptz '2025-01-01' + u * interval '1 hour'
FROM generate_series(0, $1::int - 1) AS u
"""
SEED_TASKS = """
INSERT INTO tasks (id, title, description, status, priority, due_at, assignee_id, created_by,
                   version, created_at, updated_at)
SELECT md5('task-' || i)::uuid,
       (ARRAY['Review', 'Fix', 'Write', 'Update', 'Test', 'Deploy', 'Refactor', 'Document',
              'Investigate', 'Plan'])[1 + i % 10]
       || ' ' || (ARRAY['the login page', 'billing export', 'search index', 'release notes',
                        'API rate limits', 'mobile layout', 'nightly backup', 'onboarding email',
                        'dashboard charts', 'audit log', 'payment webhook', 'user settings',
                        'CSV import'])[1 + (i / 10) % 13]
       || ' for ' || (ARRAY['Q1', 'Q2', 'Q3', 'Q4', 'the beta', 'customer A', 'ops',
                            'v2'])[1 + (i / 130) % 8]
       || ' #' || i,
       (ARRAY['The current behaviour breaks for users with more than one workspace.',
              'Steps to reproduce are in the linked ticket, with screenshots.',
              'We agreed in the weekly sync to ship this before the next release.',
              'Check the logs from last night first; the error rate doubled.',
              'Keep the old endpoint working until every client has moved.',
              'Product wants a short write-up of the options and their costs.',
              'The fix needs a migration; coordinate with the on-call engineer.',
              'Customers reported it twice this week, both on the mobile app.',
              'Add tests for the edge cases we found in the last incident.',
              'Pair with design on the wording before it goes out.',
              'Measure before and after; the dashboard has the baseline.'])[1 + i % 11]
       || ' ' || (ARRAY['Blocked on the vendor''s answer about their API limits.',
                        'Most of the work is in the background job, not the UI.',
                        'The estimate assumes the staging data is up to date.',
                        'Ask support which accounts are affected before rolling out.',
                        'See the design doc for the trade-offs we considered.',
                        'Low risk: behind a feature flag, off by default.',
                        'This touches billing, so finance signs off on the change.'
                       ])[1 + (i / 11) % 7]
       || ' ' || (ARRAY['Done means deployed and verified in production.',
                        'Nobody owns the old code; budget time to read it.',
                        'Link the pull request here when it is up.',
                        'Follow-up tasks go in the same project.',
                        'Close it if nobody picks it up this quarter.'])[1 + (i / 77) % 5]
       || ' Ref ' || left(md5('ref-' || i), 12) || '.',
       CASE WHEN i % 20 < 8 THEN 'todo' WHEN i % 20 < 13 THEN 'in_progress' ELSE 'done' END,
       (ARRAY['low', 'medium', 'medium', 'high', 'high', 'urgent'])[1 + (i / 3) % 6],
       CASE WHEN i % 5 < 3 THEN timestamptz '2026-01-01' + (i % 365) * interval '1 day' END,
       CASE WHEN i % 10 < 7 THEN md5('user-' || (i * 7) % $1::int)::uuid END,
       md5('user-' || i % $1::int)::uuid,
       1 + i % 3,
       timestamptz '2025-01-01' + i * interval '30 seconds',
       timestamptz '2025-01-01' + i * interval '30 seconds' + (i % 1000) * interval '1 minute'
FROM generate_series(0, $2::int - 1) AS i
"""
# One to three tags, distinct for a task: (i + 3k) mod 10 differs for k = 1, 2, 3. $1 is the
# number of tasks, $2 the tags.
SEED_TAGS = """
INSERT INTO task_tags (task_id, tag)
SELECT md5('task-' || i)::uuid, ($2::text[])[1 + (i + 3 * k) % 10]
FROM generate_series(0, $1::int - 1, 3) AS i, generate_series(1, 1 + (i / 3) % 3) AS k
"""
SEED_COMMENTS = """
INSERT INTO comments (id, task_id, author_id, body, created_at)
SELECT md5('comment-' || i || '-' || k)::uuid, md5('task-' || i)::uuid,
       md5('user-' || (i + k) % $1::int)::uuid,
       (ARRAY['Looked into it: the cause is the retry loop, not the client.',
              'Can we split this? The second half depends on the migration.',
              'Tested on staging, works. Waiting for review.',
              'I can take this one next week if nobody else does.',
              'Same problem in the export, so the fix should cover both.'])[1 + (i + k) % 5]
       || ' (' || left(md5('c-' || i || '-' || k), 8) || ')',
       timestamptz '2025-01-01' + i * interval '30 seconds' + k * interval '1 hour'
FROM generate_series(0, $2::int - 1, 10) AS i, generate_series(1, 1 + (i / 10) % 3) AS k
"""


@dataclass(frozen=True)
class Timed:
    seconds: float
    stdout: str
    marks: dict[str, float]  # seconds from the start to each marked log line


def timed(
    argv: list[str], env: dict[str, str], cwd: Path, marks: dict[str, str] | None = None
) -> Timed:
    """Runs `argv` to its end, bounded by COMMAND_TIMEOUT_S; fails on a non-zero exit."""
    started = time.monotonic()
    process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    watchdog = threading.Timer(COMMAND_TIMEOUT_S, process.kill)
    watchdog.start()
    found: dict[str, float] = {}
    errors: list[str] = []
    try:
        if process.stderr is None or process.stdout is None:
            raise RuntimeError("the command's pipes were not opened")  # PIPE was asked for
        for line in process.stderr:
            for name, text in (marks or {}).items():
                if name not in found and text in line:
                    found[name] = time.monotonic() - started
            errors.append(line)
        stdout = process.stdout.read()
        code = process.wait()
    finally:
        watchdog.cancel()
    seconds = time.monotonic() - started
    if code != 0:
        raise SystemExit(f"{argv[:5]} failed ({code}):\n{stdout}\n{''.join(errors)[-3000:]}")
    return Timed(seconds, stdout, found)


def app_env(postgres: PostgresServer, database: str, scratch: Path) -> dict[str, str]:
    """What the app's commands get: its own settings only, as a backup Job would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKMANAGER_", "PG"))}
    env.pop("PYTHONPATH", None)
    env.update(
        {
            "TASKMANAGER_ENVIRONMENT": "development",
            "TASKMANAGER_DATABASE_URL": postgres.url(database=database),
            "TASKMANAGER_BACKUP_WORK_DIR": str(scratch),
        }
    )
    return env


def libpq_env(postgres: PostgresServer, database: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKMANAGER_", "PG"))}
    env.update(
        {
            "PGHOST": postgres.host,
            "PGPORT": str(postgres.port),
            "PGUSER": postgres.user,
            "PGPASSWORD": postgres.password,
            "PGDATABASE": database,
        }
    )
    return env


def compile_bytecode() -> None:
    """Compile the app and its libraries to bytecode first, as the image holds them (pip
    compiles what it installs): without it, every run of our command would compile what it
    imports, a start-up no backup Job pays."""
    import taskmanager_api  # noqa: PLC0415 - where the app is, when the bench runs

    directories = [Path(taskmanager_api.__file__).parent, Path(sysconfig.get_paths()["purelib"])]
    subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sys.executable, "-m", "compileall", "-q", "-j", "0", *map(str, directories)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def app(*args: str) -> list[str]:
    return [sys.executable, "-m", "taskmanager_api", *args]


class Bench:
    def __init__(self, postgres: PostgresServer, workdir: Path, args: argparse.Namespace) -> None:
        self.postgres = postgres
        self.workdir = workdir
        self.args = args
        self.scratch = workdir / "scratch"
        self.scratch.mkdir()
        self.source = postgres.database

    def sql(self, statement: str, *values: object, database: str | None = None) -> object:
        async def run() -> object:
            url = self.postgres.url(driver="postgresql", database=database)
            connection = await asyncpg.connect(url, command_timeout=COMMAND_TIMEOUT_S)
            try:
                return await connection.fetchval(statement, *values)
            finally:
                await connection.close()

        return asyncio.run(run())

    def create_database(self, name: str, *, migrated: bool) -> None:
        self.sql(f'CREATE DATABASE "{name}" TEMPLATE template0')
        if migrated:
            self.migrate(name)

    def drop_database(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def migrate(self, database: str) -> None:
        env = app_env(self.postgres, database, self.scratch)
        timed(app("migrate", "upgrade"), env, self.workdir)

    def seed(self) -> Dataset:
        started = time.monotonic()
        self.migrate(self.source)
        users, tasks = self.args.users, self.args.tasks

        async def run() -> None:
            url = self.postgres.url(driver="postgresql", database=self.source)
            connection = await asyncpg.connect(url, command_timeout=COMMAND_TIMEOUT_S)
            try:
                async with connection.transaction():
                    await connection.execute(SEED_USERS, users)
                    await connection.execute(SEED_TASKS, users, tasks)
                    await connection.execute(SEED_TAGS, tasks, TAGS)
                    await connection.execute(SEED_COMMENTS, users, tasks)
                # Hint bits and statistics now: the first dump must not be the one that sets them.
                await connection.execute("VACUUM (ANALYZE)")
            finally:
                await connection.close()

        asyncio.run(run())
        return Dataset(
            tasks=self.count("tasks", self.source),
            users=self.count("users", self.source),
            tags=self.count("task_tags", self.source),
            comments=self.count("comments", self.source),
            database_bytes=int(str(self.sql("SELECT pg_database_size(current_database())"))),
            seed_seconds=time.monotonic() - started,
        )

    def count(self, table: str, database: str) -> int:
        statement = f"SELECT count(*) FROM {table}"  # noqa: S608 - our own table names
        return int(str(self.sql(statement, database=database)))

    def check_restored(self, database: str) -> None:
        found = self.count("tasks", database)
        if found != self.args.tasks:
            raise SystemExit(f"{database} holds {found} tasks after the restore, not the seed's")

    # Each side of a round: its Sample, with all it made and left behind outside the timing.

    def backup_ours(self, index: int, position: int) -> Sample:
        location = self.workdir / "backups" / f"ours-{index}"
        env = app_env(self.postgres, self.source, self.scratch)
        argv = app("backup", "create", "--to", location.as_uri())
        run = timed(argv, env, self.workdir, BACKUP_MARKS)
        line = json.loads(run.stdout)
        return Sample(
            BACKUP, OURS, index, position, run.seconds, int(line["size"]),
            float(line["durationSeconds"]), run.marks,
        )  # fmt: skip

    def backup_plain(self, index: int, position: int) -> Sample:
        target = self.workdir / "backups" / f"plain-{index}.pgdump"
        env = libpq_env(self.postgres, self.source)
        run = timed(["pg_dump", "--format=custom", "-f", str(target)], env, self.workdir)
        size = target.stat().st_size
        target.unlink()
        return Sample(BACKUP, PLAIN, index, position, run.seconds, size)

    def restore_ours(self, index: int, position: int) -> Sample:
        database = f"restore_ours_{index}"
        self.create_database(database, migrated=True)
        archive = self.archive()
        env = app_env(self.postgres, database, self.scratch)
        argv = app("backup", "restore", "--from", archive.parent.as_uri())
        run = timed(argv, env, self.workdir, RESTORE_MARKS)
        line = json.loads(run.stdout)
        self.check_restored(database)
        self.drop_database(database)
        return Sample(
            RESTORE, OURS, index, position, run.seconds, archive.stat().st_size,
            float(line["durationSeconds"]), run.marks,
        )  # fmt: skip

    def restore_plain(self, index: int, position: int) -> Sample:
        database = f"restore_plain_{index}"
        self.create_database(database, migrated=False)
        archive = self.archive()
        env = libpq_env(self.postgres, database)
        argv = ["pg_restore", "--single-transaction", "--exit-on-error", "-d", database]
        run = timed([*argv, str(archive)], env, self.workdir)
        self.check_restored(database)
        self.drop_database(database)
        return Sample(RESTORE, PLAIN, index, position, run.seconds, archive.stat().st_size)

    def archive(self) -> Path:
        """The archive both restores read: the first backup ours took."""
        return self.workdir / "backups" / "ours-0" / "database.pgdump"

    def rounds(self, sides: dict[str, Callable[[int, int], Sample]]) -> list[Sample]:
        """`--pairs` rounds; ours goes first in even rounds, plain in odd ones."""
        samples = []
        for index in range(self.args.pairs):
            order = [OURS, PLAIN] if index % 2 == 0 else [PLAIN, OURS]
            for position, tool in enumerate(order):
                sample = sides[tool](index, position)
                print(sample.line(), flush=True)
                samples.append(sample)
        return samples

    def measure(self) -> list[Sample]:
        samples = self.rounds({OURS: self.backup_ours, PLAIN: self.backup_plain})
        # Ours' later backups are the same bytes again: only the first is kept, for the restores.
        for index in range(1, self.args.pairs):
            shutil.rmtree(self.workdir / "backups" / f"ours-{index}")
        return samples + self.rounds({OURS: self.restore_ours, PLAIN: self.restore_plain})


def revision() -> str:
    """The short sha, and whether the working tree differs from it (read-only git commands)."""
    short = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return f"`{short}`" + (" with uncommitted changes" if dirty else "")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as cpuinfo:  # noqa: PTH123 - one read of a pseudo-file
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, Linux {platform.release()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--pairs", type=int, default=3, help="interleaved rounds per operation")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave the doc alone")
    args = parser.parse_args()
    for tool in ("pg_dump", "pg_restore", "psql"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed: apt-get install -y postgresql-client")
    started = time.monotonic()
    started_at = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    compile_bytecode()
    workdir = Path(tempfile.mkdtemp(prefix="taskmanager-bench-backup-"))
    try:
        with run_postgres() as postgres:
            bench = Bench(postgres, workdir, args)
            dataset = bench.seed()
            print(f"seeded {dataset}", flush=True)
            server_version = str(bench.sql("SHOW server_version")).split()[0]
            samples = bench.measure()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    run = Run(
        started_at,
        machine(),
        revision(),
        server_version,
        args.pairs,
        dataset,
        time.monotonic() - started,
    )
    text = render(samples, run)
    print(text)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps({"run": asdict(run), "samples": [asdict(s) for s in samples]}, indent=2) + "\n"
    )
    if not args.no_doc:
        write_doc(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
