"""Profile the API in process: `python -m bench.profile [get|list|post|all] [--requests N]`.

Starts a throwaway Postgres and Redis, builds the app with production-like settings (JSON access
log to /dev/null), seeds one user with tasks, then drives raw ASGI requests through the app one
at a time (no server, no load generator, no HTTP parsing) under cProfile. Prints the CPU time per
request and the top functions by cumulative and own time: the cost of our stack, apart from the
machine's noise.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import logging
import os
import pstats
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "app")]

from asgi_lifespan import LifespanManager  # noqa: E402

from taskmanager_api.core import migrate  # noqa: E402
from taskmanager_api.core.config import Settings  # noqa: E402
from taskmanager_api.core.logging import configure_logging  # noqa: E402
from taskmanager_api.main import create_app  # noqa: E402
from tests.support.services import run_postgres, run_redis  # noqa: E402

Call = Callable[[], Awaitable[tuple[int, bytes]]]
BODY = {"title": "benchmark task", "priority": "high", "tags": ["bench", "load"]}


def requester(app: Any, method: str, path: str, token: str | None, body: Any = None) -> Call:
    raw = json.dumps(body).encode() if body is not None else b""
    path, _, query = path.partition("?")
    headers = [(b"host", b"test"), (b"content-type", b"application/json")]
    if raw:
        headers.append((b"content-length", str(len(raw)).encode()))
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))

    async def call() -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query.encode(),
            "headers": headers,
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent = False
        status, chunks = 0, []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await app(scope, receive, send)
        return status, b"".join(chunks)

    return call


def make_settings(database_url: str, redis_url: str) -> Settings:
    return Settings(
        environment="production",
        database_url=database_url,
        redis_url=redis_url,
        jwt_signing_key=secrets.token_urlsafe(48),
        rate_limit_per_minute=100_000_000,
        login_rate_limit_per_minute=1000,
        login_ip_rate_limit_per_minute=1000,
        db_pool_size=20,
        db_max_overflow=0,
    )


async def run(args: argparse.Namespace, settings: Settings) -> None:
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        asgi = manager.app
        credentials = {"email": "profile@example.com", "password": "profile password 1"}
        status, _ = await requester(asgi, "POST", "/api/v1/auth/register", None, credentials)()
        status, out = await requester(asgi, "POST", "/api/v1/auth/login", None, credentials)()
        token = json.loads(out)["access_token"]
        task_id = ""
        for _ in range(args.tasks):
            status, out = await requester(asgi, "POST", "/api/v1/tasks", token, BODY)()
            assert status == 201, out  # noqa: S101 - a tool, not the app
            task_id = json.loads(out)["id"]
        calls = {
            "get": requester(asgi, "GET", f"/api/v1/tasks/{task_id}", token),
            "list": requester(asgi, "GET", "/api/v1/tasks", token),
            "post": requester(asgi, "POST", "/api/v1/tasks", token, BODY),
            "health": requester(asgi, "GET", "/health", None),
        }
        chosen = list(calls) if args.endpoint == "all" else [args.endpoint]
        for name in chosen:
            call = calls[name]
            for _ in range(50):  # warm-up: pools, caches, compiled statements
                await call()
            start, cpu = time.perf_counter(), time.process_time()
            for _ in range(args.requests):
                status, out = await call()
                assert 200 <= status < 300, out  # noqa: S101
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
            print(
                f"{name}: {elapsed / args.requests * 1000:.3f} ms wall, "
                f"{cpu / args.requests * 1000:.3f} ms CPU per request (no profiler)"
            )
            if args.no_profile:
                continue
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(args.requests):
                await call()
            profiler.disable()
            text = io.StringIO()
            stats = pstats.Stats(profiler, stream=text)
            by_package: dict[str, float] = {}
            raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
            for (filename, _, _), (_, _, own, _, _) in raw.items():
                by_package[_package(filename)] = by_package.get(_package(filename), 0.0) + own
            total = sum(by_package.values())
            for package, own in sorted(by_package.items(), key=lambda item: -item[1])[:15]:
                print(f"  {package:40} {own / total:6.1%}")
            stats.sort_stats("cumulative").print_stats(args.top)
            stats.sort_stats("tottime").print_stats(args.top)
            print(text.getvalue())


def _package(filename: str) -> str:
    """site-packages/<package>, app/<module> or the builtin's name: where own time is spent."""
    if "site-packages/" in filename:
        return filename.split("site-packages/")[1].split("/", maxsplit=1)[0]
    if "/app/" in filename:
        return "app/" + filename.split("/app/")[1]
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins"
    return "stdlib/" + filename.rsplit("/", 1)[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "endpoint", choices=["get", "list", "post", "health", "all"], default="all", nargs="?"
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    configure_logging("INFO", json=True)
    # The access log goes to a file in the benchmark; here nowhere, but still formatted.
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)  # noqa: S101
    handler.setStream(open(os.environ.get("PROFILE_LOG", "/dev/null"), "w"))  # noqa: SIM115, PTH123 - lives as long as we do
    with run_postgres() as postgres, run_redis() as redis:
        settings = make_settings(postgres.url(), redis.url())
        migrate.upgrade(settings)
        import uvloop  # noqa: PLC0415

        uvloop.run(run(args, settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
