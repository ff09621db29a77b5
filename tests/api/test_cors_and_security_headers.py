"""What the API tells browsers: CORS only for the configured origins (and no CORS header at all when
none is configured), and the security headers on every response, errors included; HSTS only over
TLS, and no Server header."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from taskmanager_api.core.config import Settings
from tests.api.conftest import API_REDIS_DB, AppFactory
from tests.api.helpers import API, PASSWORD, ApiClient, assert_error
from tests.api.processes import production_environment, run_api
from tests.support.services import RedisServer, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

APP = "https://app.example.com"
EVIL = "https://evil.example"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
}
HSTS = "strict-transport-security"
ONE_YEAR = "max-age=31536000; includeSubDomains"


def preflight(origin: str, method: str = "POST", headers: str = "authorization") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def assert_security_headers(response: httpx.Response, hsts: str | None = None) -> None:
    assert {k: response.headers.get(k) for k in SECURITY_HEADERS} == SECURITY_HEADERS, (
        response.status_code,
        response.headers,
    )
    assert response.headers.get(HSTS) == hsts, response.headers
    assert "server" not in response.headers


def assert_503(response: httpx.Response) -> httpx.Response:
    assert response.status_code == 503, response.text
    return response


def tls_client(app: FastAPI) -> httpx.AsyncClient:
    """A client whose requests reach the app as https, as uvicorn passes them on over TLS."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://api.test")


def add_failing_route(app: FastAPI) -> None:
    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)


# -- CORS ----------------------------------------------------------------------------------------


async def test_a_preflight_is_allowed_only_for_a_configured_origin(
    settings_factory: Callable[..., Settings], app_factory: AppFactory
) -> None:
    async with app_factory(settings_factory(cors_allow_origins=(APP,))) as (_, api):
        allowed = await api.request("OPTIONS", f"{API}/tasks", headers=preflight(APP))
        assert allowed.status_code == 200, allowed.text
        assert allowed.headers["access-control-allow-origin"] == APP
        assert "POST" in allowed.headers["access-control-allow-methods"]
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        assert allowed.headers["access-control-max-age"] == "600"
        assert "access-control-allow-credentials" not in allowed.headers
        assert "Origin" in allowed.headers["vary"]
        assert_security_headers(allowed)

        for refused in (
            preflight(EVIL),
            preflight("https://app.example.com.evil.example"),
            preflight(APP, method="PUT"),  # not among the default methods
            preflight(APP, headers="x-secret-header"),
        ):
            response = await api.request("OPTIONS", f"{API}/tasks", headers=refused)
            assert response.status_code == 400, refused
            if refused["Origin"] != APP:
                assert "access-control-allow-origin" not in response.headers
            assert_security_headers(response)


async def test_a_simple_request_gets_allow_origin_only_for_a_configured_origin(
    settings_factory: Callable[..., Settings], app_factory: AppFactory
) -> None:
    settings = settings_factory(cors_allow_origins=(APP,), cors_allow_credentials=True)
    async with app_factory(settings) as (app, api):
        add_failing_route(app)
        ok = await api.get("/health", headers={"Origin": APP})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == APP
        assert ok.headers["access-control-allow-credentials"] == "true"
        assert "Origin" in ok.headers["vary"]
        # Errors too, so a browser script can read why (the 500 of an unhandled error included).
        unauthorized = await api.get(f"{API}/users/me", headers={"Origin": APP})
        assert_error(unauthorized, 401)
        assert unauthorized.headers["access-control-allow-origin"] == APP
        failed = await api.get("/boom", headers={"Origin": APP})
        assert_error(failed, 500, "internal_error")
        assert failed.headers["access-control-allow-origin"] == APP

        other = await api.get("/health", headers={"Origin": EVIL})
        assert other.status_code == 200
        assert "access-control-allow-origin" not in other.headers
        assert "access-control-allow-origin" not in (await api.get("/health")).headers


async def test_any_origin_without_credentials(
    settings_factory: Callable[..., Settings], app_factory: AppFactory
) -> None:
    async with app_factory(settings_factory(cors_allow_origins=("*",))) as (_, api):
        response = await api.get("/health", headers={"Origin": EVIL})
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers
        allowed = await api.request("OPTIONS", f"{API}/tasks", headers=preflight(EVIL))
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "*"


async def test_without_configured_origins_there_is_no_cors_header_at_all(api: ApiClient) -> None:
    response = await api.request("OPTIONS", f"{API}/tasks", headers=preflight(APP))
    # No CORS middleware answers the preflight: the router does, and has no OPTIONS route.
    assert_error(response, 405)
    assert cors_headers(response) == {}
    for path in ("/health", f"{API}/users/me", "/nowhere"):
        response = await api.get(path, headers={"Origin": APP})
        assert cors_headers(response) == {}, path
        assert "Origin" not in response.headers.get("vary", ""), path


# -- security headers ----------------------------------------------------------------------------


async def test_every_response_carries_the_security_headers(
    settings_factory: Callable[..., Settings], app_factory: AppFactory
) -> None:
    settings = settings_factory(login_rate_limit_per_minute=1, max_body_bytes=1024)
    async with app_factory(settings) as (app, api):
        add_failing_route(app)
        login = {"email": "someone@example.com", "password": "guess guess guess"}
        responses = {
            200: await api.get("/health"),
            404: await api.get("/nowhere"),
            401: await api.get(f"{API}/users/me"),
            422: await api.post(f"{API}/auth/register", json={"email": "not an address"}),
            405: await api.request("PUT", "/health"),
            413: await api.post(f"{API}/auth/register", content=b"x" * 2048),
        }
        assert (await api.post(f"{API}/auth/login", json=login)).status_code == 401
        responses[429] = await api.post(f"{API}/auth/login", json=login)
        responses[500] = await api.get("/boom")
        for status, response in responses.items():
            assert response.status_code == status, response.text
            assert_security_headers(response)
        assert_error(responses[500], 500, "internal_error")


async def test_a_lost_dependencys_503_carries_them_too(
    settings_factory: Callable[..., Settings], app_factory: AppFactory
) -> None:
    nothing_there = f"redis://127.0.0.1:{free_port()}/0"
    settings = settings_factory(redis_url=nothing_there, redis_timeout=0.5)
    async with app_factory(settings) as (_, api):
        register = {"email": "a@example.com", "password": PASSWORD}
        assert_security_headers(assert_503(await api.get("/ready")))
        assert_security_headers(assert_503(await api.post(f"{API}/auth/register", json=register)))


@pytest.mark.parametrize(
    ("overrides", "hsts"),
    [
        pytest.param({}, ONE_YEAR, id="default"),
        pytest.param({"hsts_max_age_seconds": 300}, "max-age=300; includeSubDomains", id="300"),
    ],
)
async def test_hsts_only_over_tls(
    overrides: dict[str, int],
    hsts: str,
    settings_factory: Callable[..., Settings],
    app_factory: AppFactory,
) -> None:
    async with app_factory(settings_factory(**overrides)) as (app, api):
        assert_security_headers(await api.get("/health"))
        async with tls_client(app) as secure:
            assert_security_headers(await secure.get("/health"), hsts=hsts)
            assert_security_headers(await secure.get("/nowhere"), hsts=hsts)


async def test_security_headers_can_be_turned_off(
    settings_factory: Callable[..., Settings], app_factory: AppFactory
) -> None:
    async with (
        app_factory(settings_factory(security_headers_enabled=False)) as (app, _),
        tls_client(app) as secure,
    ):
        response = await secure.get("/health")
    assert response.status_code == 200
    assert not ({*SECURITY_HEADERS, HSTS} & response.headers.keys())


# -- a real server: uvicorn decides the scheme and the Server header ------------------------------


def test_a_real_server_sends_hsts_only_when_a_trusted_proxy_says_https(
    api_database_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    env = production_environment(
        tmp_path,
        database_url=api_database_url,
        redis_url=redis_server.url(API_REDIS_DB),
        # As the operator's ConfigMap writes it.
        cors_allow_origins=json.dumps([APP]),
    )
    https = {"X-Forwarded-Proto": "https"}
    with run_api(env, tmp_path) as api:
        # 127.0.0.1 is the one proxy `serve` trusts by default; 127.0.0.2, another loopback
        # address, is a client it does not trust.
        for path in ("/health", "/nowhere"):
            assert_security_headers(httpx.get(f"{api.url}{path}"))
            assert_security_headers(httpx.get(f"{api.url}{path}", headers=https), hsts=ONE_YEAR)
        untrusted = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        with untrusted:
            response = untrusted.get(f"{api.url}/health", headers=https)
        assert response.status_code == 200
        assert_security_headers(response)
        allowed = httpx.options(f"{api.url}{API}/tasks", headers=preflight(APP))
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == APP
        assert_security_headers(allowed)
