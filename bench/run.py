"""`make bench-api`: the API against bare Starlette + asyncpg, same machine, same run.

Starts a throwaway Postgres and Redis, the API (one uvicorn worker, production settings) and the
baseline (one uvicorn worker), seeds one user with tasks, then measures with `hey`:
  1. the maximum throughput of each endpoint on each server (closed loop, fixed concurrency);
  2. latency at 70 % of the API's own maximum (rate-limited workers).
Writes .local/bench-results.json and the results section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "app")]

from tests.support.services import free_port, run_postgres, run_redis  # noqa: E402
from tests.support.wait import wait_until  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
# Raw figures of the last run, for whoever wants more than the table (not versioned).
RESULTS = ROOT / ".local" / "bench-results.json"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
PASSWORD = "benchmark password 1"  # noqa: S105 - a throwaway account
TASK_BODY = json.dumps({"title": "benchmark task", "priority": "high", "tags": ["bench", "load"]})


@dataclass
class Measurement:
    server: str
    endpoint: str
    mode: str
    concurrency: int
    target_rps: float | None
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def hey(
    url: str,
    *,
    duration: int,
    concurrency: int,
    rate: float | None = None,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: str | None = None,
) -> tuple[float, float, float, int, int]:
    """Runs hey; returns (requests/s, p50 ms, p99 ms, requests, non-2xx or failed requests)."""
    command = ["hey", "-z", f"{duration}s", "-c", str(concurrency), "-m", method]
    if rate is not None:
        command += ["-q", f"{rate / concurrency:.2f}"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if body is not None:
        command += ["-d", body, "-T", "application/json"]
    output = subprocess.run(  # noqa: S603 - a fixed argv, no shell
        [*command, url], capture_output=True, text=True, check=True, timeout=duration + 120
    ).stdout
    rps_match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rps_match is None:
        raise SystemExit(f"unexpected hey output:\n{output}")
    latency = dict(re.findall(r"(\d+)% in ([\d.]+) secs", output))
    statuses = {
        int(code): int(count) for code, count in re.findall(r"\[(\d+)\]\s+(\d+) responses", output)
    }
    # Connection errors and timeouts are listed apart from the status codes.
    errors_block = output.partition("Error distribution:")[2]
    failed = sum(int(count) for count in re.findall(r"\[(\d+)\]", errors_block))
    total = sum(statuses.values()) + failed
    bad = sum(count for code, count in statuses.items() if not 200 <= code < 300) + failed
    rps = float(rps_match.group(1))
    return rps, float(latency["50"]) * 1000, float(latency["99"]) * 1000, total, bad


@contextlib.contextmanager
def server(argv: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    with log.open("w") as sink:
        process = subprocess.Popen(  # noqa: S603 - a fixed argv, no shell
            argv, env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            if process.poll() is not None:
                raise SystemExit(f"{argv} exited:\n{log.read_text()[-3000:]}")
            return httpx.get(f"{url}/health", timeout=2).status_code in (200, 404)

        wait_until(up, timeout=60, interval=0.2, what=f"{argv[2]} to start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def seed(api: str, tasks: int) -> tuple[str, str, str]:
    """One user with `tasks` tasks; returns (user id, access token, a task id)."""
    with httpx.Client(base_url=api, timeout=30) as client:
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
    return user, token, task_id


Target = tuple[str, str, dict[str, str], str | None]


def compare(
    endpoint: str, targets: tuple[Target, Target], args: argparse.Namespace
) -> list[Measurement]:
    """Both servers at full load, then both at 70 % of the API's maximum."""
    results: list[Measurement] = []
    servers = dict(zip(("api", "bare"), targets, strict=True))
    for name, (method, url, headers, body) in servers.items():
        # Warm-up: fills pools and caches before anything is counted.
        hey(
            url, duration=2, concurrency=args.concurrency, method=method, headers=headers, body=body
        )
        figures = hey(
            url,
            duration=args.duration,
            concurrency=args.concurrency,
            method=method,
            headers=headers,
            body=body,
        )
        results.append(Measurement(name, endpoint, "max", args.concurrency, None, *figures))
    target = 0.7 * results[0].rps
    for name, (method, url, headers, body) in servers.items():
        figures = hey(
            url,
            duration=args.duration,
            concurrency=args.paced_concurrency,
            rate=target,
            method=method,
            headers=headers,
            body=body,
        )
        results.append(Measurement(name, endpoint, "70%", args.paced_concurrency, target, *figures))
    for m in results:
        print(
            f"{m.endpoint:18} {m.server:4} {m.mode:4} {m.rps:8.0f} req/s  "
            f"p50 {m.p50_ms:6.2f} ms  p99 {m.p99_ms:6.2f} ms  errors {m.errors}",
            flush=True,
        )
    return results


def measure(args: argparse.Namespace) -> list[Measurement]:
    workdir = Path(tempfile.mkdtemp(prefix="taskmanager-bench-"))
    results: list[Measurement] = []
    try:
        with run_postgres() as postgres, run_redis() as redis:
            env = {k: v for k, v in os.environ.items() if not k.startswith("TASKMANAGER_")}
            env.update(
                {
                    "TASKMANAGER_ENVIRONMENT": "production",
                    "TASKMANAGER_DATABASE_URL": postgres.url(),
                    "TASKMANAGER_REDIS_URL": redis.url(),
                    "TASKMANAGER_JWT_SIGNING_KEY": secrets.token_urlsafe(48),
                    "TASKMANAGER_RATE_LIMIT_PER_MINUTE": "100000000",
                    "TASKMANAGER_LOGIN_RATE_LIMIT_PER_MINUTE": "1000",
                    "TASKMANAGER_LOGIN_IP_RATE_LIMIT_PER_MINUTE": "1000",
                    # The same connection budget as the baseline's pool (at most 20, kept open).
                    "TASKMANAGER_DB_POOL_SIZE": "20",
                    "TASKMANAGER_DB_MAX_OVERFLOW": "0",
                    "BENCH_DATABASE_URL": postgres.url(),
                }
            )
            python = sys.executable
            subprocess.run(  # noqa: S603 - a fixed argv, no shell
                [python, "-m", "taskmanager_api", "migrate", "upgrade"],
                env=env,
                cwd=workdir,
                check=True,
                capture_output=True,
            )
            api_port, bare_port = free_port(), free_port()
            api_argv = [python, "-m", "taskmanager_api", "serve", "--port", str(api_port)]
            bare_argv = [
                python,
                "-m",
                "uvicorn",
                "bench.bare_app:app",
                "--port",
                str(bare_port),
                "--no-access-log",
                "--log-level",
                "warning",
            ]
            with (
                server(api_argv, env, api_port, workdir / "api.log") as api,
                server(bare_argv, env, bare_port, workdir / "bare.log") as bare,
            ):
                user, token, task_id = seed(api, args.tasks)
                auth = {"Authorization": f"Bearer {token}"}
                endpoints: dict[str, tuple[Target, Target]] = {
                    "GET /tasks/{id}": (
                        ("GET", f"{api}/api/v1/tasks/{task_id}", auth, None),
                        ("GET", f"{bare}/tasks/{task_id}", {}, None),
                    ),
                    "GET /tasks (list)": (
                        ("GET", f"{api}/api/v1/tasks", auth, None),
                        ("GET", f"{bare}/tasks?user={user}", {}, None),
                    ),
                    "POST /tasks": (
                        ("POST", f"{api}/api/v1/tasks", auth, TASK_BODY),
                        ("POST", f"{bare}/tasks?user={user}", {}, TASK_BODY),
                    ),
                }
                for endpoint, targets in endpoints.items():
                    results += compare(endpoint, targets, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def render(results: list[Measurement], args: argparse.Namespace) -> str:
    by = {(m.server, m.endpoint, m.mode): m for m in results}
    lines = [
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores; "
        f"{args.duration} s per measurement, {args.concurrency} connections for the maximum, "
        f"{args.paced_concurrency} rate-limited connections at 70 %; {args.tasks} tasks seeded.",
        "",
        "| endpoint | API req/s | bare req/s | ratio | API p50 / p99 (max) | bare p50 / p99 (max) "
        "| API p50 / p99 at 70 % | errors | targets |",
        "|---|---:|---:|---:|---|---|---|---:|---|",
    ]
    for endpoint in dict.fromkeys(m.endpoint for m in results):
        api, bare = by[("api", endpoint, "max")], by[("bare", endpoint, "max")]
        paced = by[("api", endpoint, "70%")]
        ratio = api.rps / bare.rps
        errors = sum(m.errors for m in results if m.endpoint == endpoint)
        checks = {"throughput": ratio >= 0.6, "p99": paced.p99_ms <= 25, "errors": errors == 0}
        missed = [name for name, ok in checks.items() if not ok]
        lines.append(
            # Three decimals: a ratio of 0.598 must not read as a met 0.60.
            f"| `{endpoint}` | {api.rps:,.0f} | {bare.rps:,.0f} | {ratio:.3f} | "
            f"{api.p50_ms:.1f} / {api.p99_ms:.1f} ms | {bare.p50_ms:.1f} / {bare.p99_ms:.1f} ms | "
            f"{paced.p50_ms:.1f} / {paced.p99_ms:.1f} ms ({paced.rps:,.0f} req/s) | {errors} | "
            f"{'all met' if not missed else 'MISSED: ' + ', '.join(missed)} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--paced-concurrency", type=int, default=16)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--no-doc", action="store_true", help="print only; leave the doc alone")
    args = parser.parse_args()
    if shutil.which("hey") is None:
        raise SystemExit("hey is needed: apt-get install -y hey")
    results = measure(args)
    table = render(results, args)
    print(table)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps([asdict(m) for m in results], indent=2) + "\n")
    if not args.no_doc and DOC.exists() and BEGIN in DOC.read_text():
        text = DOC.read_text()
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        DOC.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
