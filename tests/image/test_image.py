"""The container image, built by hack/image/build.sh and run the way a restricted Pod runs it.

Every container runs as the image's own user (no --user), with a read-only root filesystem, a
tmpfs at /tmp, no capabilities and no privilege escalation. The build is podman's layer cache
after the first run, so a code change costs seconds. A missing podman fails with what to
install: build.sh installs it as root, and says what to run otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from taskmanager_operator.api.v1alpha1 import DEFAULT_POSTGRES_IMAGE
from tests.support.services import PostgresServer
from tests.support.wait import wait_until

REPO = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("IMAGE", "taskmanager-operator:dev")
IMAGE_UID = 10001
API_PORT = 8000
# crun fails on our machines' hybrid cgroup layout, and podman's default ulimits exceed the hard
# limits (see hack/image/build.sh).
PODMAN_RUN = [
    "podman", "run", "--runtime", "runc",
    "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096",
]  # fmt: skip
# Paths inside the container, where /tmp is a fresh tmpfs: nothing on the host is involved.
CONTAINER_TMP = "/tmp"  # noqa: S108
RESTRICTED = [
    "--read-only", "--tmpfs", f"{CONTAINER_TMP}:rw,size=64m",
    "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
]  # fmt: skip
SECRETS_DIR = "/var/run/secrets/taskmanager"


def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def run_once(*command: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run a command in a throwaway restricted container of the image."""
    return subprocess.run(
        [*PODMAN_RUN, "--rm", *RESTRICTED, *options, IMAGE, *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


@pytest.fixture(scope="module", autouse=True)
def image() -> str:
    """Build (or, with nothing changed, reuse) the image from the working tree."""
    result = subprocess.run(
        [str(REPO / "hack/image/build.sh")],
        env={**os.environ, "IMAGE": IMAGE},
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"hack/image/build.sh failed (make image shows the same):\n{result.stderr[-6000:]}",
            pytrace=False,
        )
    return IMAGE


@dataclass(frozen=True)
class Api:
    container: str
    url: str


def signing_key_dir(tmp_path: Path) -> Path:
    """The JWT key as a mounted Secret would give it: a file named like its variable."""
    directory = tmp_path / "secrets"
    directory.mkdir()
    key = directory / "TASKMANAGER_JWT_SIGNING_KEY"
    key.write_text(secrets.token_urlsafe(48))
    # Readable by the image's user: the mount keeps the host's owner (root) and mode.
    directory.chmod(0o755)
    key.chmod(0o644)
    return directory


def get(url: str) -> tuple[int, Any]:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - a local http URL
        return response.status, json.load(response)


def container_state(container: str) -> str:
    return podman("inspect", "--format", "{{.State.Status}}", container).stdout.strip()


def start_api(tmp_path: Path) -> Api:
    """The image's default command (the API on 0.0.0.0:8000), in production mode with SQLite."""
    container = f"taskmanager-image-test-{secrets.token_hex(4)}"
    started = subprocess.run(
        [
            *PODMAN_RUN, "--detach", "--name", container, *RESTRICTED,
            "--publish", f"127.0.0.1::{API_PORT}",
            "--volume", f"{signing_key_dir(tmp_path)}:{SECRETS_DIR}:ro",
            "--env", f"TASKMANAGER_SECRETS_DIR={SECRETS_DIR}",
            "--env", f"TASKMANAGER_SQLITE_PATH={CONTAINER_TMP}/taskmanager.db",
            IMAGE,
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert started.returncode == 0, explain(started)
    port = podman("port", container, str(API_PORT)).stdout.strip().rsplit(":", 1)[-1]
    api = Api(container=container, url=f"http://127.0.0.1:{port}")

    def healthy() -> bool:
        if container_state(container) not in {"created", "running"}:
            logs = podman("logs", container)
            pytest.fail(f"the API container exited:\n{logs.stdout}{logs.stderr}", pytrace=False)
        return get(f"{api.url}/health") == (200, {"status": "ok"})

    wait_until(healthy, timeout=60, interval=0.2, what=f"GET {api.url}/health")
    return api


def remove(container: str) -> None:
    podman("rm", "--force", "--time", "0", container)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    api = start_api(tmp_path_factory.mktemp("api"))
    try:
        yield api
    finally:
        remove(api.container)


def test_image_user_is_a_fixed_non_root_uid() -> None:
    user = podman("image", "inspect", "--format", "{{.Config.User}}", IMAGE).stdout.strip()
    # Numeric, or Kubernetes' runAsNonRoot cannot verify it without reading /etc/passwd.
    assert user == f"{IMAGE_UID}:{IMAGE_UID}"


def test_api_answers_health_as_non_root_on_a_read_only_root(api: Api) -> None:
    # PID 1 is the API server itself, and it runs as the image's user.
    status = podman("exec", api.container, "cat", "/proc/1/status")
    uids = next(line.split()[1:] for line in status.stdout.splitlines() if line.startswith("Uid:"))
    assert uids == [str(IMAGE_UID)] * 4, status.stdout
    cmdline = podman("exec", api.container, "cat", "/proc/1/cmdline").stdout.split("\0")
    assert cmdline[1:4] == ["-m", "taskmanager_api", "serve"], cmdline

    assert get(f"{api.url}/health") == (200, {"status": "ok"})
    # Readiness opens the SQLite file in /tmp: the one writable path is enough for the API.
    status_code, readiness = get(f"{api.url}/ready")
    assert status_code == 200, readiness
    assert readiness["checks"]["database"]["status"] == "ok", readiness
    assert readiness["checks"]["redis"]["status"] == "not_configured", readiness


def test_root_filesystem_is_read_only_and_tmp_is_writable(api: Api) -> None:
    for path in ("/opt/venv/written", "/written", "/etc/written"):
        touched = podman("exec", api.container, "touch", path)
        assert touched.returncode != 0, path
        assert "Read-only file system" in touched.stderr, explain(touched)
    touched = podman("exec", api.container, "touch", f"{CONTAINER_TMP}/written")
    assert touched.returncode == 0, explain(touched)


def test_migrations_ship_in_the_image(api: Api) -> None:
    migrated = podman(
        "exec", api.container, "python", "-m", "taskmanager_api", "migrate", "upgrade"
    )
    assert migrated.returncode == 0, explain(migrated)
    # The last line is the CLI's answer; alembic logs (as JSON, to stdout) before it.
    answer = migrated.stdout.strip().splitlines()[-1]
    current, head = answer.removeprefix("current: ").split(" (head: ")
    assert current == head.rstrip(")"), migrated.stdout
    assert current != "base", migrated.stdout


def test_sigterm_stops_the_api_cleanly(tmp_path: Path) -> None:
    api = start_api(tmp_path)
    try:
        start = time.monotonic()
        stopped = podman("stop", "--time", "20", api.container, timeout=60)
        elapsed = time.monotonic() - start
        assert stopped.returncode == 0, explain(stopped)
        exit_code = podman("inspect", "--format", "{{.State.ExitCode}}", api.container)
        # 0, not 137: PID 1 handled SIGTERM itself, well before podman's SIGKILL.
        assert exit_code.stdout.strip() == "0", podman("logs", api.container).stderr
        assert elapsed < 15, f"stopping took {elapsed:.1f} s"
    finally:
        remove(api.container)


def test_operator_entrypoint_answers_help() -> None:
    result = run_once("python", "-m", "taskmanager_operator", "--help")
    assert result.returncode == 0, explain(result)
    assert "usage:" in result.stdout.lower(), explain(result)


@pytest.mark.postgres
def test_postgres_client_tools_dump_a_real_database(postgres_server: PostgresServer) -> None:
    # Host networking: the throwaway server listens on the host's 127.0.0.1 only.
    host = ("--network", "host")
    database = f"image_{secrets.token_hex(4)}"
    # libpq (psql, pg_dump) takes the URL without SQLAlchemy's driver suffix.
    server_url = postgres_server.url(driver="postgresql")
    created = run_once(
        "psql", server_url, "--command", f"CREATE DATABASE {database}", options=host
    )  # fmt: skip
    assert created.returncode == 0, explain(created)
    environment = (
        "--env", f"TASKMANAGER_DATABASE_URL={postgres_server.url(database=database)}",
        "--env", "TASKMANAGER_ENVIRONMENT=development",
    )  # fmt: skip
    migrated = run_once(
        "python", "-m", "taskmanager_api", "migrate", "upgrade", options=(*host, *environment)
    )
    assert migrated.returncode == 0, explain(migrated)
    database_url = postgres_server.url(driver="postgresql", database=database)
    dumped = run_once("pg_dump", "--schema-only", database_url, options=host)
    assert dumped.returncode == 0, explain(dumped)
    assert "CREATE TABLE public.tasks" in dumped.stdout, dumped.stdout[-2000:]


def major_of(version_output: str) -> int:
    """The major of `pg_dump --version` / `postgres --version`: "pg_dump (PostgreSQL) 17.12 ..."."""
    match = re.search(r"\(PostgreSQL\) (\d+)", version_output)
    assert match, f"no PostgreSQL version in {version_output!r}"
    return int(match.group(1))


def test_the_backup_client_covers_the_managed_default_postgres() -> None:
    """pg_dump refuses a server of a newer major: the image's client backs up the managed
    default, so a default bumped past it (or a base with an older client) fails here."""
    client = run_once("pg_dump", "--version")
    assert client.returncode == 0, explain(client)
    default_tag = DEFAULT_POSTGRES_IMAGE.rpartition(":")[2]
    default_major = int(re.match(r"\d+", default_tag).group())  # type: ignore[union-attr]
    assert major_of(client.stdout) >= default_major, (
        f"the image's {client.stdout.strip()} cannot back up the managed default "
        f"{DEFAULT_POSTGRES_IMAGE}"
    )


def test_image_carries_no_dev_tools_and_no_pip() -> None:
    probe = (
        "import importlib.util, sys; "
        "found = [m for m in sys.argv[1:] if importlib.util.find_spec(m)]; "
        "print(found); sys.exit(bool(found))"
    )
    modules = ("pytest", "mypy", "ruff", "schemathesis", "hatchling", "pip")
    result = run_once("python", "-c", probe, *modules)
    assert result.returncode == 0, explain(result)


def test_the_image_carries_the_working_trees_code() -> None:
    """Every module of both packages in the image is the working tree's, byte for byte: a code
    change must never ship a cached layer of older code."""
    packages = {
        "taskmanager_operator": REPO / "operator" / "taskmanager_operator",
        "taskmanager_api": REPO / "app" / "taskmanager_api",
    }
    probe = (
        "import hashlib, importlib, pathlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    root = pathlib.Path(importlib.import_module(name).__file__).parent\n"
        "    for path in sorted(root.rglob('*.py')):\n"
        "        digest = hashlib.sha256(path.read_bytes()).hexdigest()\n"
        "        print(name, path.relative_to(root), digest)\n"
    )
    result = run_once("python", "-c", probe, *packages)
    assert result.returncode == 0, explain(result)
    in_image = set(result.stdout.splitlines())
    in_tree = {
        f"{name} {path.relative_to(root)} {hashlib.sha256(path.read_bytes()).hexdigest()}"
        for name, root in packages.items()
        for path in sorted(root.rglob("*.py"))
    }
    assert in_image == in_tree, sorted(in_image ^ in_tree)[:10]
