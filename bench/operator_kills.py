"""`make bench-operator-kills`: the operator SIGKILLed at random moments while TaskManagers
converge, trial after trial (the kill test of `make test`, tests/cluster/test_operator_killed.py,
run many times and measured).

Each trial, in a namespace of its own on the local kwok-only cluster (made as bench-operator
makes it, when none that fits runs): `--taskmanagers` TaskManagers of `spec: {}` created at once;
`--kills` runs of the operator, each SIGKILLed after a random number of finished reconciles (at
most one per TaskManager, so most land mid-convergence; the trial's seed, printed, repeats them);
then one last run, until every TaskManager is Ready on its generation (at most `--deadline` s),
timed from the first create. The trial counts as converged when they all were, and the children
are inspected: duplicates, orphans, migration Jobs per TaskManager (one each), TaskManagers whose
children differ by kind.
Writes .local/bench-operator-kills.json and the "Operator killed" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "operator")]

from kubernetes import client  # noqa: E402

from bench import operator_cluster as cluster  # noqa: E402
from bench import operator_scale as scale  # noqa: E402
from bench import report  # noqa: E402
from bench.backup import machine, revision  # noqa: E402
from taskmanager_operator.api.v1alpha1 import GROUP, PLURAL, VERSION  # noqa: E402
from tests.support.convergence import (  # noqa: E402
    all_ready,
    inspect_children,
    kill_moment,
    release_finalizers,
)
from tests.support.operator import operators  # noqa: E402
from tests.support.wait import WaitTimeoutError, wait_until  # noqa: E402

AGENT = "taskmanager-bench/kills"
RESULTS = ROOT / ".local" / "bench-operator-kills.json"
HEADING = "## Operator killed"
KILL_MOMENT_TIMEOUT_S = 180
NAMESPACE_PREFIX = "bench-kills-"


@dataclass
class Trial:
    seed: str
    kill_after: list[int]
    kills_mid_convergence: int
    """Kills that came while some TaskManager was not Ready yet."""
    converged: bool
    converge_seconds: float | None
    """From the first TaskManager created until all are Ready, kills and restarts included."""
    last_run_seconds: float | None
    """From the last run's start until all are Ready."""
    duplicates: int
    orphans: int
    migration_jobs_wrong: int
    uneven: int

    @property
    def sound(self) -> bool:
        return self.converged and not (
            self.duplicates or self.orphans or self.migration_jobs_wrong or self.uneven
        )


def run_trial(api: client.ApiClient, index: int, args: argparse.Namespace) -> Trial:
    namespace = f"{NAMESPACE_PREFIX}{index:02d}-{int(time.time())}"
    cluster.create_namespace(api, namespace)
    custom = client.CustomObjectsApi(api)
    names = [scale.name(number) for number in range(args.taskmanagers)]
    try:
        for number in range(args.taskmanagers):
            custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, scale.taskmanager(number)
            )
        created = time.monotonic()
        moments = random.Random(namespace)  # noqa: S311 - bench moments, not secrets
        kill_after: list[int] = []
        mid_convergence = 0
        for _ in range(args.kills):
            with operators(namespace, clock=None) as (operator,):
                # Within the first pass over the TaskManagers: most kills land mid-convergence.
                kill_after.append(moments.randint(1, args.taskmanagers))
                wait_until(
                    functools.partial(kill_moment, operator, api, namespace, names, kill_after[-1]),
                    timeout=KILL_MOMENT_TIMEOUT_S,
                    what=f"the operator's {kill_after[-1]}th reconcile",
                )
                operator.process.kill()
                operator.process.wait()
                mid_convergence += not all_ready(api, namespace, args.taskmanagers)
        with operators(namespace, clock=None):
            started = time.monotonic()
            try:
                wait_until(
                    functools.partial(all_ready, api, namespace, args.taskmanagers),
                    timeout=args.deadline,
                    interval=1,
                    what="every TaskManager Ready",
                )
                last_run: float | None = time.monotonic() - started
            except WaitTimeoutError:
                last_run = None
            total = None if last_run is None else time.monotonic() - created
            found = inspect_children(api, namespace, names)
        return Trial(
            seed=namespace,
            kill_after=kill_after,
            kills_mid_convergence=mid_convergence,
            converged=last_run is not None,
            converge_seconds=None if total is None else round(total, 1),
            last_run_seconds=None if last_run is None else round(last_run, 1),
            duplicates=len(found.duplicates),
            orphans=len(found.orphans),
            migration_jobs_wrong=sum(1 for n in found.migrations.values() if n != 1),
            uneven=len(found.uneven),
        )
    finally:
        release_finalizers(api, namespace)
        cluster.delete_namespace(api, namespace)


def remove_leftovers(api: client.ApiClient) -> None:
    """The namespaces of an earlier run that was stopped mid-trial: they hold volumes a trial
    needs (the cluster is sized for one trial at a time)."""
    for namespace in client.CoreV1Api(api).list_namespace().items:
        name = namespace.metadata.name
        if name.startswith(NAMESPACE_PREFIX):
            print(f"[bench] removing {name}, left by an earlier run", flush=True)
            release_finalizers(api, name)
            cluster.delete_namespace(api, name)


def render(trials: list[Trial], args: argparse.Namespace) -> str:
    times = [t.converge_seconds for t in trials if t.converge_seconds is not None]
    last = [t.last_run_seconds for t in trials if t.last_run_seconds is not None]
    mid = sum(t.kills_mid_convergence for t in trials)
    lines = [
        HEADING,
        "",
        "`make bench-operator-kills`: "
        f"{len(trials)} trials of {args.taskmanagers} TaskManagers with {args.kills} SIGKILLs "
        f"each, at revision {revision()}, {datetime.now(UTC):%Y-%m-%d}, on {machine()}. Each "
        "run of the operator is killed after a random number of finished reconciles, at most "
        "one per TaskManager, so most kills come while some TaskManager is not Ready yet. "
        "Converge time runs from the first TaskManager created until all are Ready on their "
        "generation, kills and restarts included (the last run's share beside it; deadline "
        f"{args.deadline:.0f} s). The operator runs with the tests' settings "
        "(tests/support/operator.py: 2 s progress polls, 1-4 s retries).",
        "",
        "| trials | kills (mid-convergence) | converged | sound | duplicates | orphans "
        "| wrong migration Job count | converge median (max) | last run median (max) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {len(trials)} | {args.kills * len(trials)} ({mid}) "
        f"| {sum(t.converged for t in trials)} | {sum(t.sound for t in trials)} "
        f"| {sum(t.duplicates for t in trials)} | {sum(t.orphans for t in trials)} "
        f"| {sum(t.migration_jobs_wrong for t in trials)} "
        f"| {_spread(times)} | {_spread(last)} |",
        "",
        "Sound: converged, with no child twice, none orphaned, one migration Job per TaskManager "
        "and the same children per TaskManager. Per trial (seed: the namespace, which seeds the "
        "kill moments; kills after that many finished reconciles):",
        "",
        "| seed | kills after | mid-convergence | converged in | last run | duplicates | orphans "
        "| migration Jobs wrong | uneven |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {t.seed} | {', '.join(map(str, t.kill_after))} | {t.kills_mid_convergence} "
            f"| {_seconds(t.converge_seconds)} | {_seconds(t.last_run_seconds)} "
            f"| {t.duplicates} | {t.orphans} | {t.migration_jobs_wrong} | {t.uneven} |"
            for t in trials
        ),
    ]
    return "\n".join(lines) + "\n"


def _seconds(value: float | None) -> str:
    return "not" if value is None else f"{value:.1f} s"


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} s ({max(values):.1f} s)" if values else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--taskmanagers", type=int, default=20)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--deadline", type=float, default=300)
    parser.add_argument("--keep-cluster", action="store_true")
    args = parser.parse_args()
    made = cluster.ensure_cluster(cluster.Size.for_taskmanagers(args.taskmanagers), AGENT)
    api = cluster.api_client(AGENT)
    trials: list[Trial] = []
    try:
        cluster.install_crds(ROOT / "crds")
        remove_leftovers(api)
        for index in range(args.trials):
            trial = run_trial(api, index, args)
            trials.append(trial)
            print(f"[bench] trial {index + 1}/{args.trials}: {asdict(trial)}", flush=True)
            RESULTS.write_text(json.dumps([asdict(t) for t in trials], indent=1))
    finally:
        if made and not args.keep_cluster:
            cluster.remove_cluster()
    report.write_heading_section(HEADING, render(trials, args))
    print(render(trials, args))
    return 0 if all(t.sound for t in trials) else 1


if __name__ == "__main__":
    sys.exit(main())
