"""A throwaway S3-compatible server for the backup tests: versitygw with its POSIX backend.

versitygw is built from its Go module at the version hack/versions.env pins (`make tools`, cached
in ~/.cache/taskmanager-operator/bin); a missing binary is built first (tests/support/tools.py),
and a failed build fails the test run: nothing skips. The server listens on 127.0.0.1 only, on a
free port, stores its buckets in a fresh temporary directory (removed when it stops) and has one
account, the root one, whose keys are random per run. Buckets are created by the client
(CreateBucket); addressing is path-style (the gateway serves virtual-host style only when given a
domain, and it is not):

    with run_s3() as server:
        s3 = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            region_name=server.region,
            config=botocore.config.Config(s3={"addressing_style": "path"}),
        )

or the session-scoped `s3_server` fixture, imported into a conftest.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.services import free_port, stop_process
from tests.support.tools import built_tool
from tests.support.wait import wait_until

HEALTH_PATH = "/health"
LOG_TAIL_CHARS = 4000
STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    region: str


def _supports_user_xattrs(directory: Path) -> bool:
    """The POSIX backend keeps object metadata (ETag, content type, ...) in user.* xattrs."""
    probe = directory / ".xattr-probe"
    probe.touch()
    try:
        os.setxattr(probe, "user.taskmanager-probe", b"1")
    except OSError as error:
        if error.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return False
        raise
    finally:
        probe.unlink()
    return True


def _log_tail(log_path: Path) -> str:
    try:
        return log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    except OSError:
        return "(no log)"


def _gateway_env(server: S3Server) -> dict[str, str]:
    """The caller's environment without versitygw's own settings, plus the root keys.

    Every flag of versitygw also reads a variable (VGW_ADMIN_PORT, VGW_WEBUI_PORT, VGW_PPROF, ...):
    one left in a developer's shell would open another listener or change the storage, so they
    are dropped. The keys go in the environment rather than argv, where `ps` would show them.
    """
    dropped_prefixes = ("VGW_", "ROOT_ACCESS_KEY", "ROOT_SECRET")
    # LOGFILE and WEBHOOK are versitygw's older names for the access log and the audit webhook.
    dropped_names = {"LOGFILE", "WEBHOOK"}
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(dropped_prefixes) and name not in dropped_names
    }
    env["ROOT_ACCESS_KEY_ID"] = server.access_key
    env["ROOT_SECRET_ACCESS_KEY"] = server.secret_key
    return env


@contextlib.contextmanager
def run_s3(startup_timeout: float = STARTUP_TIMEOUT) -> Iterator[S3Server]:
    """Start versitygw, wait until it answers, yield how to reach it; then stop it, remove data."""
    binary = built_tool("versitygw", "versitygw", "VERSITYGW_VERSION")
    workdir = Path(tempfile.mkdtemp(prefix="taskmanager-s3-"))
    port = free_port()
    server = S3Server(
        endpoint=f"http://127.0.0.1:{port}",
        # AWS-shaped keys (20 upper-case characters, 40 characters), so no client's validation
        # of key formats can trip on them.
        access_key="AKIA" + secrets.token_hex(8).upper(),
        secret_key=secrets.token_urlsafe(30),
        region="us-east-1",
    )
    root = workdir / "buckets"
    root.mkdir()
    log_path = workdir / "versitygw.log"
    argv = [
        str(binary),
        # Only loopback: the default, ":7070", is every interface.
        "--port",
        f"127.0.0.1:{port}",
        "--region",
        server.region,
        # An unauthenticated GET for the readiness probe; everything else needs a signature.
        "--health",
        HEALTH_PATH,
        # Off by default in versitygw: every response would close its connection, and the
        # clients under test (boto3, with its pool) would reconnect for every request.
        "--keep-alive",
        # No --admin-port, --webui, --website or --pprof: versitygw opens those listeners only
        # when asked (the admin API is then served on the S3 port, by the root account only),
        # and with no --metrics-* or --event-* flags it sends nothing anywhere.
        "posix",
    ]
    if not _supports_user_xattrs(workdir):
        # tmpfs before Linux 6.6 has no user xattrs; the sidecar directory (outside the bucket
        # root, as versitygw requires) holds the same metadata as plain files.
        sidecar = workdir / "meta"
        sidecar.mkdir()
        argv += ["--sidecar", str(sidecar)]
    argv.append(str(root))
    process: subprocess.Popen[bytes] | None = None
    try:
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv,
                cwd=workdir,
                env=_gateway_env(server),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_ready(process, server, log_path, startup_timeout)
        yield server
    finally:
        if process is not None and process.poll() is None:
            stop_process(process, timeout=15)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_ready(
    process: subprocess.Popen[bytes], server: S3Server, log_path: Path, timeout: float
) -> None:
    # Proxies from the environment must not see a request meant for 127.0.0.1.
    with httpx.Client(base_url=server.endpoint, timeout=5, trust_env=False) as client:

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"versitygw exited ({process.returncode}):\n{_log_tail(log_path)}")
            try:
                return client.get(HEALTH_PATH).status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_until(
                ready,
                timeout=timeout,
                interval=0.05,
                what=f"versitygw to answer {server.endpoint}{HEALTH_PATH}",
            )
        except AssertionError as error:
            pytest.fail(f"{error}\n{_log_tail(log_path)}")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One versitygw for the whole session; tests keep apart by using their own buckets."""
    with run_s3() as server:
        yield server
