"""`make bench-api`: the API against bare Starlette + asyncpg, same machine, same run.

Starts a throwaway Postgres and Redis, the API (one uvicorn worker, production settings) and the
baseline (one uvicorn worker), seeds one user with tasks, then measures each endpoint with `hey`
in interleaved rounds: every round measures every server once, back to back, so each round gives
one API/bare ratio taken under the same machine conditions. The report is the median ratio of the
rounds with their min-max; absolute req/s and latencies are this machine's only.
  1. the maximum throughput (closed loop, fixed concurrency), `--pairs` rounds;
  2. latency at 70 % of the (slower) API's median maximum (rate-limited workers), as many rounds.
`--before REV` adds REV's API, run from a git worktree, as a third server in every round;
`--after REV` runs REV's API in place of the working tree's.
Writes .local/bench-results.json and the results section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "app")]

from bench import servers  # noqa: E402
from bench.load import Target, hey, run_hey  # noqa: E402
from bench.report import BARE, CURRENT, PREVIOUS, Measurement, Run, render, write_doc  # noqa: E402
from tests.support.services import PostgresServer, RedisServer, run_postgres, run_redis  # noqa: E402

# Raw figures of the last run, for whoever wants more than the table (not versioned).
RESULTS = ROOT / ".local" / "bench-results.json"
PACED_SHARE = 0.7


def round_order(names: list[str], index: int) -> list[str]:
    """Round `index`'s order: rotated by one server a round, so each server runs first as often
    as the others; and every other full cycle backwards, since rotation alone keeps the cyclic
    order (with three servers, after would always follow before). A slow drift, a vacuum or a
    busy neighbour then biases no side of the ratios the same way in every round."""
    shift = index % len(names)
    rotated = names[shift:] + names[:shift]
    return rotated[::-1] if (index // len(names)) % 2 else rotated


def rounds(
    endpoint: str,
    targets: dict[str, Target],
    mode: str,
    args: argparse.Namespace,
    rate: float | None = None,
) -> list[Measurement]:
    """`args.pairs` rounds, each measuring every server once, back to back."""
    concurrency = args.concurrency if rate is None else args.paced_concurrency
    results = []
    for index in range(args.pairs):
        for name in round_order(list(targets), index):
            figures = hey(targets[name], duration=args.duration, concurrency=concurrency, rate=rate)
            measurement = Measurement(name, endpoint, mode, index, concurrency, rate, figures)
            print(measurement.line(), flush=True)
            results.append(measurement)
    return results


def compare(
    endpoint: str, targets: dict[str, Target], args: argparse.Namespace
) -> list[Measurement]:
    """Every server at full load in rounds, then every server at 70 % of the slowest API."""
    for target in targets.values():
        # Warm-up: fills pools, caches and prepared statements before anything is counted.
        run_hey(target, duration=args.warmup, concurrency=args.concurrency)
    maximum = rounds(endpoint, targets, "max", args)
    # The same offered load for both APIs, at most 70 % of either's maximum: their latencies
    # are then comparable, and neither is pushed past the point where the p99 target applies.
    api_medians = [
        statistics.median(m.figures.rps for m in maximum if m.server == name)
        for name in targets
        if name != BARE
    ]
    rate = PACED_SHARE * min(api_medians)
    return maximum + rounds(endpoint, targets, "70%", args, rate)


def start_api(
    stack: contextlib.ExitStack,
    source: servers.ApiSource,
    services: tuple[PostgresServer, RedisServer],
    workdir: Path,
    tasks: int,
) -> servers.Seeded:
    """Migrates `source`'s database with its own code, starts it and seeds it."""
    env = servers.api_env(source, *services)
    # The API runs from a scratch directory: nothing in the current directory shadows its package.
    servers.check_import(source, env, workdir)
    servers.migrate(env, workdir)
    url = stack.enter_context(
        servers.server(servers.api_argv(), env, workdir, workdir / f"{source.name}.log")
    )
    return servers.seed(url, tasks)


def measure(
    args: argparse.Namespace, current: servers.ApiSource, before: servers.ApiSource | None
) -> list[Measurement]:
    workdir = Path(tempfile.mkdtemp(prefix="taskmanager-bench-"))
    results: list[Measurement] = []
    try:
        with run_postgres() as postgres, run_redis() as redis, contextlib.ExitStack() as stack:
            services = (postgres, redis)
            apis = {CURRENT: start_api(stack, current, services, workdir, args.tasks)}
            if before is not None:
                servers.create_database(postgres, before.database)
                apis[PREVIOUS] = start_api(stack, before, services, workdir, args.tasks)
            # The baseline shares the current API's database (schema and seeded rows).
            bare_env = servers.base_env(postgres, current.database, redis, current.redis_db)
            bare_url = stack.enter_context(
                servers.server(servers.bare_argv(), bare_env, ROOT, workdir / "bare.log")
            )
            per_server = {name: servers.api_targets(seeded) for name, seeded in apis.items()}
            per_server[BARE] = servers.bare_targets(bare_url, apis[CURRENT])
            # Round 0 runs in this order; later rounds rotate and reverse it (round_order).
            order = [name for name in (PREVIOUS, CURRENT, BARE) if name in per_server]
            for endpoint in per_server[CURRENT]:
                targets = {name: per_server[name][endpoint] for name in order}
                results += compare(endpoint, targets, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=5, help="interleaved rounds per endpoint")
    parser.add_argument("--duration", type=float, default=5, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2, help="seconds per server and endpoint")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--paced-concurrency", type=int, default=16)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--before", metavar="REV", help="also run REV's API (a git worktree)")
    parser.add_argument(
        "--after",
        metavar="REV",
        help="run REV's API instead of the working tree's (`--before HEAD --after HEAD` checks "
        "the method: both sides are then the same code)",
    )
    parser.add_argument("--no-doc", action="store_true", help="print only; leave the doc alone")
    args = parser.parse_args()
    if shutil.which("hey") is None:
        raise SystemExit("hey is needed: apt-get install -y hey")
    started = time.monotonic()
    with contextlib.ExitStack() as sources:
        # The database the throwaway Postgres starts with; `before` gets one of its own.
        current = sources.enter_context(servers.api_source(args.after, CURRENT, "taskmanager", 0))
        before = None
        if args.before is not None:
            before = sources.enter_context(
                servers.api_source(args.before, PREVIOUS, "taskmanager_before", 1)
            )
        results = measure(args, current, before)
    run = Run(args, os.cpu_count() or 0, current, before, time.monotonic() - started)
    text = render(results, run)
    print(text)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps([asdict(m) for m in results], indent=2) + "\n")
    if not args.no_doc:
        write_doc(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
