"""Throwaway PostgreSQL and Redis servers from the machine's Debian packages.

Each server runs on 127.0.0.1 on a free port, with its data in a fresh temporary directory that is
removed when it stops. A missing package fails the test run with what to install: nothing skips.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.support.wait import wait_until

INSTALL_HINT = "run `make install` (Debian: apt-get install -y postgresql redis-server prometheus)"


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    database: str

    def url(self, driver: str = "postgresql+asyncpg", database: str | None = None) -> str:
        return (
            f"{driver}://{self.user}:{self.password}@{self.host}:{self.port}/"
            f"{database or self.database}"
        )


@dataclass(frozen=True)
class RedisServer:
    host: str
    port: int
    password: str

    def url(self, db: int = 0) -> str:
        return f"redis://:{self.password}@{self.host}:{self.port}/{db}"


def postgres_bindir() -> Path:
    """The newest PostgreSQL server installation (Debian keeps each major version apart)."""
    if configured := os.environ.get("PG_BINDIR"):
        candidates = [Path(configured)]
    else:
        candidates = sorted(
            Path("/usr/lib/postgresql").glob("*/bin"),
            key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
            reverse=True,
        )
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    pytest.fail(f"PostgreSQL server binaries (initdb, pg_ctl) not found: {INSTALL_HINT}")


def _run_as(user: pwd.struct_passwd | None, argv: list[str], **env: str) -> None:
    """Run a PostgreSQL tool, as `user` when given: the server refuses to run as root."""
    prefix = ["runuser", "-u", user.pw_name, "--"] if user else []
    result = subprocess.run(
        prefix + argv,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"{argv[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


@contextlib.contextmanager
def run_postgres() -> Iterator[PostgresServer]:
    bindir = postgres_bindir()
    run_as: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        try:
            run_as = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail(f"running as root needs the 'postgres' system user: {INSTALL_HINT}")
    workdir = Path(tempfile.mkdtemp(prefix="taskmanager-pg-"))
    if run_as:
        os.chown(workdir, run_as.pw_uid, run_as.pw_gid)
    server = PostgresServer(
        host="127.0.0.1",
        port=free_port(),
        user="taskmanager",
        password=secrets.token_urlsafe(24),
        database="taskmanager",
    )
    pwfile = workdir / "pwfile"
    pwfile.write_text(server.password)
    if run_as:
        os.chown(pwfile, run_as.pw_uid, run_as.pw_gid)
    pwfile.chmod(0o600)
    data = workdir / "data"
    try:
        _run_as(
            run_as,
            [
                str(bindir / "initdb"),
                f"--pgdata={data}",
                f"--username={server.user}",
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",
            ],
        )
        pwfile.unlink()
        # Durability settings are off: the data is thrown away, and fsync would dominate the tests.
        options = (
            f"-h {server.host} -p {server.port} -k {workdir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        _run_as(
            run_as,
            [
                str(bindir / "pg_ctl"),
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(data),
                "-l",
                str(workdir / "postgres.log"),
                "-o",
                options,
            ],
        )
        try:
            _run_as(
                run_as,
                [
                    str(bindir / "createdb"),
                    "-h",
                    server.host,
                    "-p",
                    str(server.port),
                    "-U",
                    server.user,
                    server.database,
                ],
                PGPASSWORD=server.password,
            )
            yield server
        finally:
            _run_as(run_as, [str(bindir / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(data)])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class RedisProcess:
    """A redis-server that a test can restart: a new process on the same port, empty, as a
    rescheduled pod would come back (its configuration keeps nothing on disk)."""

    def __init__(self, binary: str, workdir: Path, extra_config: str) -> None:
        self.binary = binary
        self.workdir = workdir
        self.server = RedisServer(
            host="127.0.0.1", port=free_port(), password=secrets.token_urlsafe(24)
        )
        # The password goes in a config file, not on the command line where `ps` would show it.
        self.config = workdir / "redis.conf"
        self.config.write_text(
            f"bind {self.server.host}\nport {self.server.port}\n"
            f"requirepass {self.server.password}\n"
            f'dir {workdir}\nsave ""\nappendonly no\ndaemonize no\n{extra_config}'
        )
        self.config.chmod(0o600)
        self.log_path = workdir / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    def client(self) -> redis.Redis:
        return redis.Redis(
            host=self.server.host, port=self.server.port, password=self.server.password
        )

    def start(self) -> None:
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [self.binary, str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        process = self.process
        client = self.client()
        try:

            def answers() -> bool:
                if process.poll() is not None:
                    pytest.fail(f"redis-server exited: {self.log_path.read_text()}")
                try:
                    return bool(client.ping())
                except redis.ConnectionError:
                    return False

            wait_until(answers, timeout=30, interval=0.05, what="redis-server to answer PING")
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=15)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@contextlib.contextmanager
def redis_process(extra_config: str = "") -> Iterator[RedisProcess]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(f"redis-server not found: {INSTALL_HINT}")
    workdir = Path(tempfile.mkdtemp(prefix="taskmanager-redis-"))
    process = RedisProcess(binary, workdir, extra_config)
    try:
        process.start()
        yield process
    finally:
        process.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def run_redis() -> Iterator[RedisServer]:
    with redis_process() as process:
        yield process.server


async def create_database(server: PostgresServer, name: str) -> str:
    """A new, empty database on the server; its URL."""
    # AUTOCOMMIT: CREATE DATABASE refuses to run inside a transaction.
    engine = create_async_engine(server.url(), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()
    return server.url(database=name)
