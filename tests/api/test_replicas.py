"""Two API processes sharing one Postgres and one Redis: what one revokes or writes, both know."""

from __future__ import annotations

import json
import secrets
import signal
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import API_REDIS_DB
from tests.api.helpers import API, PASSWORD
from tests.api.processes import (
    ApiProcess,
    api_environment,
    production_environment,
    run_api,
)
from tests.support.services import RedisServer
from tests.support.wait import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def replicas(
    api_database_url: str, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ApiProcess, ApiProcess]]:
    workdir = tmp_path_factory.mktemp("replicas")
    env = production_environment(
        workdir,
        database_url=api_database_url,
        redis_url=redis_server.url(API_REDIS_DB),
        login_rate_limit_per_minute=4,
        login_ip_rate_limit_per_minute=1000,
        rate_limit_per_minute=100_000,
    )
    with run_api(env, workdir, name="a") as first, run_api(env, workdir, name="b") as second:
        yield first, second


def _account(api: ApiProcess) -> dict[str, str]:
    email = f"replica-{uuid.uuid4().hex[:10]}@example.com"
    credentials = {"email": email, "password": PASSWORD}
    assert httpx.post(f"{api.url}{API}/auth/register", json=credentials).status_code == 201
    response = httpx.post(f"{api.url}{API}/auth/login", json=credentials)
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_logout_on_one_replica_is_seen_by_the_other(
    replicas: tuple[ApiProcess, ApiProcess],
) -> None:
    a, b = replicas
    tokens = _account(a)
    assert httpx.get(f"{b.url}{API}/users/me", headers=_bearer(tokens["access_token"])).is_success
    assert (
        httpx.post(f"{a.url}{API}/auth/logout", headers=_bearer(tokens["access_token"])).status_code
        == 204
    )
    assert (
        httpx.get(f"{b.url}{API}/users/me", headers=_bearer(tokens["access_token"])).status_code
        == 401
    )
    refreshed = httpx.post(
        f"{b.url}{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 401


def test_refresh_reuse_across_replicas_revokes_everywhere(
    replicas: tuple[ApiProcess, ApiProcess],
) -> None:
    a, b = replicas
    tokens = _account(a)
    rotated = httpx.post(
        f"{a.url}{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert rotated.status_code == 200
    # The spent token replayed against the other replica.
    replay = httpx.post(
        f"{b.url}{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert replay.status_code == 401
    new = rotated.json()
    assert (
        httpx.post(
            f"{a.url}{API}/auth/refresh", json={"refresh_token": new["refresh_token"]}
        ).status_code
        == 401
    )
    assert (
        httpx.get(f"{a.url}{API}/users/me", headers=_bearer(new["access_token"])).status_code == 401
    )


def test_a_write_through_one_replica_is_never_served_stale_by_the_other(
    replicas: tuple[ApiProcess, ApiProcess],
) -> None:
    a, b = replicas
    headers = _bearer(_account(a)["access_token"])
    with httpx.Client(headers=headers) as client:
        created = client.post(f"{a.url}{API}/tasks", json={"title": "v0"}).json()
        url = f"{API}/tasks/{created['id']}"
        for version in range(1, 31):
            writer, reader = (a, b) if version % 2 else (b, a)
            # The reader has the previous version cached (it just read it).
            assert client.get(f"{reader.url}{url}").json()["title"] == f"v{version - 1}"
            written = client.patch(f"{writer.url}{url}", json={"title": f"v{version}"})
            assert written.status_code == 200
            assert client.get(f"{reader.url}{url}").json()["title"] == f"v{version}"
        assert client.delete(f"{a.url}{url}").status_code == 204
        assert client.get(f"{b.url}{url}").status_code == 404


def test_login_limits_are_shared(replicas: tuple[ApiProcess, ApiProcess]) -> None:
    a, b = replicas
    email = f"limited-{uuid.uuid4().hex[:8]}@example.com"
    wrong = {"email": email, "password": "wrong wrong wrong"}
    statuses = [
        httpx.post(f"{api.url}{API}/auth/login", json=wrong).status_code for api in (a, b, a, b, a)
    ]
    assert statuses == [401, 401, 401, 401, 429]
    assert httpx.post(f"{b.url}{API}/auth/login", json=wrong).status_code == 429


def test_shutdown_lets_in_flight_requests_finish(
    api_database_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    env = api_environment(
        environment="test",
        jwt_signing_key=secrets.token_urlsafe(48),
        database_url=api_database_url,
        redis_url=redis_server.url(API_REDIS_DB),
    )
    with run_api(env, tmp_path) as api:
        assert httpx.get(f"{api.url}/ready").json()["status"] == "ready"
        body = json.dumps({"email": "inflight@example.com", "password": PASSWORD}).encode()
        host, port = api.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as connection:
            # Half a request is in flight when SIGTERM arrives ...
            connection.sendall(
                f"POST {API}/auth/register HTTP/1.1\r\nHost: api\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body[:10]
            )
            api.process.send_signal(signal.SIGTERM)
            wait_until(
                lambda: "Shutting down" in api.output(),
                timeout=30,
                interval=0.1,
                what="the server to begin its shutdown",
            )
            # ... and still gets its answer.
            connection.sendall(body[10:])
            answer = connection.recv(65536).decode()
        assert answer.startswith("HTTP/1.1 201"), answer
        api.process.wait(timeout=30)
    log = api.output()
    assert '"message": "stopped"' in log
    assert env["TASKMANAGER_JWT_SIGNING_KEY"] not in log
    assert redis_server.password not in log
