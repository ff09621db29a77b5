"""Real API processes (`python -m taskmanager_api serve`), as a Deployment would run them."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.api.helpers import API, PASSWORD
from tests.support.services import free_port
from tests.support.wait import wait_until


@dataclass
class ApiProcess:
    url: str
    process: subprocess.Popen[str]
    log: Path

    def output(self) -> str:
        return self.log.read_text()

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def api_environment(*, secrets_dir: Path | None = None, **settings: str | int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKMANAGER_")}
    env.update({f"TASKMANAGER_{name.upper()}": str(value) for name, value in settings.items()})
    if secrets_dir is not None:
        env["TASKMANAGER_SECRETS_DIR"] = str(secrets_dir)
    return env


def write_secrets(directory: Path, **secrets: str) -> Path:
    """One file per secret, named like its variable: what a mounted Kubernetes Secret looks like."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in secrets.items():
        path = directory / f"TASKMANAGER_{name.upper()}"
        path.write_text(value)
        path.chmod(0o600)
    return directory


def production_environment(
    workdir: Path, *, database_url: str, redis_url: str, **settings: str | int
) -> dict[str, str]:
    """A production API's environment: a fresh signing key, the URLs as secret files, and a
    Redis key prefix of its own unless `settings` names one."""
    secrets_dir = write_secrets(
        workdir / "secrets",
        jwt_signing_key=secrets.token_urlsafe(48),
        database_url=database_url,
        redis_url=redis_url,
    )
    settings.setdefault("redis_key_prefix", f"test-{uuid.uuid4().hex[:8]}:")
    return api_environment(secrets_dir=secrets_dir, environment="production", **settings)


@contextlib.contextmanager
def run_api(
    env: dict[str, str], workdir: Path, *extra_args: str, name: str = "api"
) -> Iterator[ApiProcess]:
    port = free_port()
    log = workdir / f"{name}-{port}.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "taskmanager_api", "serve", "--port", str(port), *extra_args],
            env=env,
            cwd=workdir,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    api = ApiProcess(url=f"http://127.0.0.1:{port}", process=process, log=log)
    try:

        def healthy() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the API exited ({process.returncode}):\n{api.output()}")
            return httpx.get(f"{api.url}/health", timeout=2).status_code == 200

        try:
            wait_until(healthy, timeout=60, interval=0.2, what=f"{name} to answer /health")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{api.output()}") from None
        yield api
    finally:
        api.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def log_in(api: ApiProcess) -> dict[str, str]:
    """Register a new user on `api` and log in: its access and refresh tokens."""
    credentials = {"email": f"r-{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD}
    assert httpx.post(f"{api.url}{API}/auth/register", json=credentials).status_code == 201
    response = httpx.post(f"{api.url}{API}/auth/login", json=credentials)
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


def me(api: ApiProcess, access_token: str) -> int:
    """The status of GET /users/me with the token: 200 while `api` accepts it."""
    return httpx.get(f"{api.url}{API}/users/me", headers=bearer(access_token)).status_code


def refresh(api: ApiProcess, refresh_token: str) -> httpx.Response:
    return httpx.post(f"{api.url}{API}/auth/refresh", json={"refresh_token": refresh_token})
