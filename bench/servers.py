"""The servers a benchmark run compares, and the git worktree a `--before` revision runs from.

Every server listens on 127.0.0.1 only. Each API (the working tree's and, with `--before`, an older
revision's) has its own database in the same throwaway Postgres, migrated by its own code, and its
own Redis database number, so neither sees the other's schema, cache or rate-limit counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx

from bench.load import Target
from tests.support.services import PostgresServer, RedisServer, free_port, stop_process
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "benchmark password 1"  # noqa: S105 - a throwaway account
TASK_BODY = json.dumps({"title": "benchmark task", "priority": "high", "tags": ["bench", "load"]})


@dataclass(frozen=True)
class ApiSource:
    """Where an API's code comes from: `app_dir` holds the `taskmanager_api` package."""

    name: str
    app_dir: Path
    database: str
    redis_db: int
    revision: str | None = None  # a short sha; None for the working tree


@dataclass(frozen=True)
class Seeded:
    """The benchmark user of one API's database."""

    url: str
    user: str
    token: str
    task_id: str


def base_env(
    postgres: PostgresServer, database: str, redis: RedisServer, redis_db: int
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKMANAGER_")}
    env.pop("PYTHONPATH", None)
    env.update(
        {
            "TASKMANAGER_ENVIRONMENT": "production",
            "TASKMANAGER_DATABASE_URL": postgres.url(database=database),
            "TASKMANAGER_REDIS_URL": redis.url(db=redis_db),
            "TASKMANAGER_JWT_SIGNING_KEY": secrets.token_urlsafe(48),
            "TASKMANAGER_RATE_LIMIT_PER_MINUTE": "100000000",
            "TASKMANAGER_LOGIN_RATE_LIMIT_PER_MINUTE": "1000",
            "TASKMANAGER_LOGIN_IP_RATE_LIMIT_PER_MINUTE": "1000",
            # The same connection budget as the baseline's pool (at most 20, kept open).
            "TASKMANAGER_DB_POOL_SIZE": "20",
            "TASKMANAGER_DB_MAX_OVERFLOW": "0",
            "BENCH_DATABASE_URL": postgres.url(database=database),
        }
    )
    return env


def api_env(source: ApiSource, postgres: PostgresServer, redis: RedisServer) -> dict[str, str]:
    env = base_env(postgres, source.database, redis, source.redis_db)
    # Ahead of the editable install's .pth entry: this source's `taskmanager_api` is imported.
    env["PYTHONPATH"] = str(source.app_dir)
    return env


def create_database(postgres: PostgresServer, name: str) -> None:
    async def create() -> None:
        connection = await asyncpg.connect(postgres.url(driver="postgresql"))
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    asyncio.run(create())


def check_import(source: ApiSource, env: dict[str, str], cwd: Path) -> None:
    """Fails unless `source`'s own package is the one imported: a wrong path would compare the
    working tree with itself and report a perfect agreement."""
    found = subprocess.run(
        [sys.executable, "-c", "import taskmanager_api; print(taskmanager_api.__file__)"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(found).resolve().is_relative_to(source.app_dir.resolve()):
        raise SystemExit(
            f"{source.name}: taskmanager_api imported from {found}, not {source.app_dir}"
        )


def migrate(env: dict[str, str], cwd: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "taskmanager_api", "migrate", "upgrade"],
        env=env,
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@contextlib.contextmanager
def server(argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> Iterator[str]:
    """Runs `argv` (which listens on the port named by `--port`) until the block ends."""
    port = argv[argv.index("--port") + 1]
    with log.open("w") as sink:
        process = subprocess.Popen(  # noqa: S603 - a fixed argv, no shell
            argv, env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            if process.poll() is not None:
                raise SystemExit(f"{argv} exited:\n{log.read_text()[-3000:]}")
            return httpx.get(f"{url}/health", timeout=2).status_code in (200, 404)

        wait_until(up, timeout=60, interval=0.2, what=f"{log.stem} to start")
        yield url
    finally:
        stop_process(process, timeout=30)


def api_argv() -> list[str]:
    return [
        sys.executable,
        "-m",
        "taskmanager_api",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(free_port()),
    ]


def bare_argv() -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.bare_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(free_port()),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def seed(url: str, tasks: int) -> Seeded:
    """One user with `tasks` tasks in the database behind `url`."""
    with httpx.Client(base_url=url, timeout=30) as client:
        credentials = {"email": "bench@example.com", "password": PASSWORD}
        client.post("/api/v1/auth/register", json=credentials).raise_for_status()
        token = client.post("/api/v1/auth/login", json=credentials).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        user = client.get("/api/v1/users/me", headers=headers).json()["id"]
        task_id = ""
        for _ in range(tasks):
            response = client.post("/api/v1/tasks", headers=headers, json=json.loads(TASK_BODY))
            response.raise_for_status()
            task_id = response.json()["id"]
    return Seeded(url, user, token, task_id)


def api_targets(api: Seeded) -> dict[str, Target]:
    auth = {"Authorization": f"Bearer {api.token}"}
    return {
        "GET /tasks/{id}": Target("GET", f"{api.url}/api/v1/tasks/{api.task_id}", auth),
        "GET /tasks (list)": Target("GET", f"{api.url}/api/v1/tasks", auth),
        "POST /tasks": Target("POST", f"{api.url}/api/v1/tasks", auth, TASK_BODY),
    }


def bare_targets(bare: str, api: Seeded) -> dict[str, Target]:
    """The baseline reads and writes the same rows as `api` (it shares that API's database)."""
    return {
        "GET /tasks/{id}": Target("GET", f"{bare}/tasks/{api.task_id}"),
        "GET /tasks (list)": Target("GET", f"{bare}/tasks?user={api.user}"),
        "POST /tasks": Target("POST", f"{bare}/tasks?user={api.user}", body=TASK_BODY),
    }


def git(*args: str) -> str:
    return subprocess.run(  # noqa: S603 - a fixed argv, no shell
        ["git", *args],  # noqa: S607 - git from PATH, like the developer's shell
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@contextlib.contextmanager
def api_source(rev: str | None, name: str, database: str, redis_db: int) -> Iterator[ApiSource]:
    """The working tree's API without `rev`, else `rev`'s from a worktree while the block runs."""
    if rev is None:
        yield ApiSource(name, ROOT / "app", database, redis_db)
        return
    with worktree(rev, name) as (path, short):
        yield ApiSource(name, path / "app", database, redis_db, short)


@contextlib.contextmanager
def worktree(rev: str, name: str) -> Iterator[tuple[Path, str]]:
    """A detached worktree of `rev` under .local/, removed afterwards; yields (path, short sha).

    A worktree rather than `git archive`: it is the revision's exact tree, and git tracks and
    removes it. The working tree, index and HEAD of the main checkout are left alone.
    """
    commit = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    short = git("rev-parse", "--short", commit)
    path = ROOT / ".local" / f"bench-{name}-{short}-{os.getpid()}"
    git("worktree", "add", "--detach", str(path), commit)
    try:
        yield path, short
    finally:
        git("worktree", "remove", "--force", str(path))
