"""`make bench-operator`: the operator at scale against applying its children directly.

For each N (`--ns`, default "10 100"), on the local kwok-only cluster (sized and made by
bench/operator_cluster.py, with the API server's audit log on), in one namespace per phase:
  - operator: `python -m taskmanager_operator --namespace NS` as `make run` runs it (its
    production settings), started before N TaskManagers of `spec: {}` are created at once (4
    threads); timed until every one says Ready=True. Then a settle window, an idle window in
    which nothing changes (`--idle-seconds`), and `--recoveries` deleted children (a ConfigMap,
    a Service, ...) timed until each is back. Its peak RSS (VmHWM) is read before the
    TaskManagers come (N=0) and at the end;
  - baseline: the same TaskManagers created the same way, and, as each is created, the children
    render.py renders for it server-side-applied by the kubernetes client with no operator,
    4 threads (the operator's workers); timed until the same workloads are ready (the API and
    Redis Deployments rolled out, PostgreSQL's StatefulSet ready, the migration Job complete);
  - before (`--before REV`): REV's operator, from a git worktree, as the operator above.
The sides of one N run back to back, their order rotating from one N to the next. Requests
come from the audit log by user agent (bench/operator_audit.py). Writes
.local/bench-operator.json, the "Operator at scale" section of docs/benchmarks.md and
docs/operator-scale.png.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "operator")]

from kubernetes import client  # noqa: E402
from kubernetes.dynamic import DynamicClient  # noqa: E402
from kubernetes.dynamic.exceptions import ResourceNotFoundError  # noqa: E402

from bench import operator_cluster as cluster  # noqa: E402
from bench import operator_report as report  # noqa: E402
from bench.backup import machine, revision  # noqa: E402
from bench.operator_audit import (  # noqa: E402
    BASELINE_AGENT,
    BASELINE_AGENTS,
    BENCH_AGENT,
    OPERATOR_AGENTS,
    AuditLog,
    Counts,
    Window,
    count,
)
from bench.run import round_order  # noqa: E402
from bench.servers import worktree  # noqa: E402
from taskmanager_operator.api.v1alpha1 import GROUP, PLURAL, VERSION  # noqa: E402
from taskmanager_operator.reconcile.observe import rollout  # noqa: E402
from taskmanager_operator.render import PLACEHOLDER_UID, children  # noqa: E402
from taskmanager_operator.resource import TaskManager  # noqa: E402
from taskmanager_operator.settings import OperatorSettings  # noqa: E402
from tests.support.operator import OperatorProcess, run_operator  # noqa: E402
from tests.support.wait import WaitTimeoutError, wait_until  # noqa: E402

RESULTS = ROOT / ".local" / "bench-operator.json"
BASELINE, AFTER, BEFORE = "baseline", "after", "before"
WORKERS = OperatorSettings.model_fields["workers"].default
# `make run` runs the operator with its defaults; tests/support/operator.py shortens these for
# tests, so they are set back here (the current defaults, for both revisions).
PRODUCTION = {
    f"TASKMANAGER_OPERATOR_{name.upper()}": str(OperatorSettings.model_fields[name].default)
    for name in (
        "progress_poll_seconds",
        "retry_initial_seconds",
        "retry_max_seconds",
        "redis_probe_cache_seconds",
    )
}
WORKLOADS = ("Deployment", "StatefulSet", "Job")
# What a deleted child's return is timed on, in turn.
RECOVERED = (("ConfigMap", "-config"), ("Service", "-api"))
RECOVERY_TIMEOUT_S = 120


@dataclass(frozen=True)
class Source:
    """Where an operator's code comes from: `path` holds the `taskmanager_operator` package."""

    name: str
    path: Path
    crds: Path
    revision: str | None = None  # a short sha; None for the working tree


@dataclass
class Phase:
    side: str
    n: int
    revision: str | None
    create_seconds: float = 0.0  # the N TaskManagers created
    ready_seconds: float = 0.0  # from the first create to every one Ready
    converge: Counts | None = None
    settle: Counts | None = None
    idle: Counts | None = None
    idle_seconds: float = 0.0
    rss_start_kib: int | None = None
    rss_peak_kib: int | None = None
    recoveries: list[tuple[str, float]] = field(default_factory=list)
    children_per_tm: int = 0


@dataclass(frozen=True)
class Bench:
    args: argparse.Namespace
    audit: AuditLog
    bench: client.ApiClient  # the bench's own requests: never counted

    def timeout(self, n: int) -> float:
        return float(self.args.ready_timeout or 180 + 3 * n)


def now() -> datetime:
    return datetime.now(UTC)


def name(index: int) -> str:
    return f"tm-{index:04d}"


def taskmanager(index: int, namespace: str | None = None, uid: str | None = None) -> dict[str, Any]:
    """The TaskManager to create; with a namespace and uid, as the API server would return it."""
    metadata = {"name": name(index), "namespace": namespace, "uid": uid}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TaskManager",
        "metadata": {k: v for k, v in metadata.items() if v is not None},
        "spec": {},
    }


def create_taskmanagers(
    bench: Bench, namespace: str, n: int, then: Callable[[dict[str, Any]], None] | None = None
) -> float:
    """Creates N TaskManagers from 4 threads; `then` runs on each as it is created, on 4 threads
    of its own. Returns the seconds until all are created."""
    custom = client.CustomObjectsApi(bench.bench)
    started = time.monotonic()

    def create(index: int) -> dict[str, Any]:
        body = custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, taskmanager(index)
        )
        return dict(body)

    with ThreadPoolExecutor(WORKERS) as creators, ThreadPoolExecutor(WORKERS) as followers:
        created = [creators.submit(create, index) for index in range(n)]
        followed: list[Future[None]] = []
        for done in as_completed(created):
            if then is not None:
                followed.append(followers.submit(then, done.result()))
        seconds = time.monotonic() - started
        for future in followed:
            future.result()
    return seconds


# The operator's side.


def vm_hwm_kib(pid: int) -> int:
    """The process's peak resident set (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def check_package(source: Source) -> None:
    """PYTHONPATH comes before the editable install's path, so the operator imports `source`'s
    package when it is there; a wrong path would compare the working tree with itself."""
    if not (source.path / "taskmanager_operator" / "__init__.py").is_file():
        raise SystemExit(f"{source.name}: no taskmanager_operator package in {source.path}")


def ready_taskmanagers(bench: Bench, namespace: str) -> tuple[int, list[str]]:
    """How many TaskManagers say Ready=True, and what the others' conditions say."""
    listed = client.CustomObjectsApi(bench.bench).list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL
    )
    ready, others = 0, []
    for item in listed["items"]:
        conditions = (item.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            ready += 1
            continue
        said = "; ".join(f"{c['type']}={c['status']} {c.get('reason', '')}" for c in conditions)
        others.append(f"{item['metadata']['name']}: {said or 'no conditions yet'}")
    return ready, others


def wait_ready(bench: Bench, n: int, what: str, probe: Callable[[], tuple[int, list[str]]]) -> None:
    """Polls `probe` (ready count, what is not ready) until N are ready; on the deadline fails
    with the first not-ready ones. The poll thins out with N, so watching costs little."""
    last: list[str] = []

    def all_ready() -> bool:
        ready, others = probe()
        last[:] = others
        return ready >= n

    try:
        wait_until(all_ready, timeout=bench.timeout(n), interval=1 + n / 200, what=what)
    except WaitTimeoutError as error:
        error.add_note(f"{len(last)} not ready, the first ones:\n" + "\n".join(last[:15]))
        raise


def hold(seconds: float, operator: OperatorProcess) -> None:
    """Lets `seconds` pass with nothing changed, failing at once if the operator exits."""
    end = time.monotonic() + seconds

    def over() -> bool:
        if operator.process.poll() is not None:
            raise SystemExit(f"the operator exited:\n{operator.log_tail()}")
        return time.monotonic() >= end

    wait_until(over, timeout=seconds + 10, interval=1, what=f"{seconds:.0f} s to pass")


def recover(bench: Bench, namespace: str, kind: str, child: str) -> float:
    """Deletes one child and times its return (the same name with a new uid)."""
    core = client.CoreV1Api(bench.bench)
    read = core.read_namespaced_config_map if kind == "ConfigMap" else core.read_namespaced_service
    delete = (
        core.delete_namespaced_config_map if kind == "ConfigMap" else core.delete_namespaced_service
    )
    old = read(child, namespace).metadata.uid
    started = time.monotonic()
    delete(child, namespace)

    def back() -> bool:
        return bool(read(child, namespace).metadata.uid != old)

    wait_until(back, timeout=RECOVERY_TIMEOUT_S, interval=0.1, what=f"{kind} {child} to come back")
    return time.monotonic() - started


def recoveries(bench: Bench, namespace: str, n: int) -> list[tuple[str, float]]:
    times = []
    for k in range(bench.args.recoveries):
        kind, suffix = RECOVERED[k % len(RECOVERED)]
        child = f"{name(k * n // bench.args.recoveries)}{suffix}"
        times.append((kind, recover(bench, namespace, kind, child)))
    return times


def operator_phase(bench: Bench, source: Source, n: int) -> Phase:
    phase = Phase(source.name, n, source.revision)
    namespace = f"bench-op-{source.name}-{n}"
    cluster.install_crds(source.crds)
    cluster.create_namespace(bench.bench, namespace)
    mark = bench.audit.mark()
    check_package(source)
    env = {**PRODUCTION, "PYTHONPATH": str(source.path)}
    kubeconfig, user = cluster.identity(bench.bench, namespace, RESULTS.parent)
    try:
        with run_operator(kubeconfig, "--namespace", namespace, env=env) as operator:
            try:
                windows = drive_operator(bench, phase, operator, namespace)
            except BaseException as error:
                error.add_note(f"--- the operator's log (tail) ---\n{operator.log_tail(60)}")
                raise
            finally:
                # While the operator runs: whatever it holds on its objects, it lets go.
                cluster.delete_namespace(bench.bench, namespace, bench.timeout(n))
    finally:
        cluster.forget_identity(bench.bench, namespace)
        kubeconfig.unlink()
    found = bench.audit.requests(mark, OPERATOR_AGENTS, user)
    phase.converge, phase.settle, phase.idle = (count(found, w) for w in windows)
    return phase


def drive_operator(
    bench: Bench, phase: Phase, operator: OperatorProcess, namespace: str
) -> tuple[Window, Window, Window]:
    """Convergence, settling, the idle window, then the recoveries; the three windows."""
    pid, n = operator.process.pid, phase.n
    phase.rss_start_kib = vm_hwm_kib(pid)
    started, clock = now(), time.monotonic()
    phase.create_seconds = create_taskmanagers(bench, namespace, n)
    wait_ready(bench, n, f"{n} TaskManagers Ready", lambda: ready_taskmanagers(bench, namespace))
    phase.ready_seconds = time.monotonic() - clock
    converged = now()
    print(f"[bench] {phase.side} N={n}: all Ready in {phase.ready_seconds:.1f} s", flush=True)
    hold(bench.args.settle_seconds, operator)
    idle_start = now()
    hold(bench.args.idle_seconds, operator)
    idle_end = now()
    phase.idle_seconds = (idle_end - idle_start).total_seconds()
    phase.recoveries = recoveries(bench, namespace, n)
    phase.rss_peak_kib = vm_hwm_kib(pid)
    return (
        Window(started, converged),
        Window(converged, idle_start),
        Window(idle_start, idle_end),
    )


# The baseline's side.


class Applier:
    """Server-side applies rendered children as the operator does (its client, one field
    manager, conflicts forced), of the kinds the cluster serves."""

    def __init__(self, api: client.ApiClient) -> None:
        self.dynamic = DynamicClient(api)
        self.resources: dict[tuple[str, str], Any] = {}
        self.skipped: set[str] = set()

    def discover(self, manifests: list[dict[str, Any]]) -> None:
        """Before the clock starts: discovery is one-off, and its cache is not thread-safe."""
        for manifest in manifests:
            key = (manifest["apiVersion"], manifest["kind"])
            try:
                self.resources[key] = self.dynamic.resources.get(api_version=key[0], kind=key[1])
            except ResourceNotFoundError:
                self.skipped.add(manifest["kind"])  # the operator skips them as well

    def served(self, manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [m for m in manifests if (m["apiVersion"], m["kind"]) in self.resources]

    def apply(self, manifest: dict[str, Any]) -> None:
        self.resources[manifest["apiVersion"], manifest["kind"]].server_side_apply(
            body=manifest,
            namespace=manifest["metadata"]["namespace"],
            field_manager="taskmanager-bench-baseline",
            force_conflicts=True,
        )


def workload_ready(kind: str, item: dict[str, Any]) -> bool:
    status = item.get("status") or {}
    if kind == "Deployment":
        return rollout(item).done  # what the operator's Ready asks of the API's Deployment
    if kind == "StatefulSet":
        return int(status.get("readyReplicas") or 0) >= int(item["spec"].get("replicas") or 0)
    return int(status.get("succeeded") or 0) >= 1


def ready_workloads(
    bench: Bench, namespace: str, expected: dict[tuple[str, str], str]
) -> tuple[int, list[str]]:
    """How many TaskManagers have all their workloads ready, and which workloads are not."""
    apps, batch = client.AppsV1Api(bench.bench), client.BatchV1Api(bench.bench)
    listed = {
        "Deployment": apps.list_namespaced_deployment(namespace).items,
        "StatefulSet": apps.list_namespaced_stateful_set(namespace).items,
        "Job": batch.list_namespaced_job(namespace).items,
    }
    ready = set()
    for kind, items in listed.items():
        for item in items:
            body = bench.bench.sanitize_for_serialization(item)
            if workload_ready(kind, body):
                ready.add((kind, body["metadata"]["name"]))
    missing = sorted(set(expected) - ready)
    waiting = {expected[workload] for workload in missing}
    return len(set(expected.values()) - waiting), [f"{kind} {name}" for kind, name in missing]


def baseline_phase(bench: Bench, n: int) -> Phase:
    phase = Phase(BASELINE, n, None)
    namespace = f"bench-op-{BASELINE}-{n}"
    cluster.create_namespace(bench.bench, namespace)
    applier = Applier(cluster.api_client(BASELINE_AGENT))
    # Rendered before the clock starts, with a placeholder uid: the names of what to wait for.
    drafts = [rendered(taskmanager(i, namespace, PLACEHOLDER_UID)) for i in range(n)]
    applier.discover(drafts[0])
    phase.children_per_tm = len(applier.served(drafts[0]))
    expected = {
        (m["kind"], m["metadata"]["name"]): m["metadata"]["ownerReferences"][0]["name"]
        for draft in drafts
        for m in applier.served(draft)
        if m["kind"] in WORKLOADS
    }

    def apply_children(body: dict[str, Any]) -> None:
        for manifest in applier.served(rendered(body)):
            applier.apply(manifest)

    mark = bench.audit.mark()
    try:
        started, clock = now(), time.monotonic()
        phase.create_seconds = create_taskmanagers(bench, namespace, n, then=apply_children)
        probe = lambda: ready_workloads(bench, namespace, expected)  # noqa: E731
        wait_ready(bench, n, f"{n} TaskManagers' workloads ready", probe)
        phase.ready_seconds = time.monotonic() - clock
        converged = now()
    finally:
        cluster.delete_namespace(bench.bench, namespace, bench.timeout(n))
    print(f"[bench] baseline N={n}: all ready in {phase.ready_seconds:.1f} s", flush=True)
    phase.converge = count(bench.audit.requests(mark, BASELINE_AGENTS), Window(started, converged))
    return phase


def rendered(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The children of a TaskManager as the API server returned it (its uid owns them)."""
    return [dict(m) for m in children(TaskManager.from_body(body))]


# The run.


@contextlib.contextmanager
def operator_source(rev: str | None, name: str) -> Iterator[Source]:
    """The working tree's operator without `rev`, else `rev`'s from a worktree."""
    if rev is None:
        yield Source(name, ROOT / "operator", ROOT / "crds")
        return
    with worktree(rev, name) as (path, short):
        yield Source(name, path / "operator", path / "crds", short)


def run_phases(
    bench: Bench, sources: list[Source], phases: list[Phase], kept: list[dict[str, Any]]
) -> None:
    by_name = {source.name: source for source in sources}
    for index, n in enumerate(bench.args.ns):
        sides = [BASELINE, *(name for name in by_name if runs_at(bench.args, name, n))]
        for side in round_order(sides, index):
            print(f"[bench] N={n}: {side}", flush=True)
            if side == BASELINE:
                phases.append(baseline_phase(bench, n))
            else:
                phases.append(operator_phase(bench, by_name[side], n))
            save(kept, phases)


def runs_at(args: argparse.Namespace, side: str, n: int) -> bool:
    return side != BEFORE or args.before_ns is None or n in args.before_ns


def kept_phases(ns: list[int], which: str) -> list[dict[str, Any]]:
    """The last run's phases at other Ns, marked as kept (the report says so)."""
    if not RESULTS.exists():
        raise SystemExit(f"--keep-other-ns: no earlier run in {RESULTS}")
    last: list[dict[str, Any]] = json.loads(RESULTS.read_text())
    return [phase | {"kept": which} for phase in last if phase["n"] not in ns]


def all_phases(kept: list[dict[str, Any]], phases: list[Phase]) -> list[dict[str, Any]]:
    return sorted(kept + [asdict(p) for p in phases], key=lambda p: int(p["n"]))


def save(kept: list[dict[str, Any]], phases: list[Phase]) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(all_phases(kept, phases), indent=2, default=str) + "\n")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--ns",
        type=lambda text: [int(n) for n in text.split()],
        default=[10, 100],
        help='the numbers of TaskManagers, e.g. "10 100 1000"',
    )
    parser.add_argument("--before", metavar="REV", help="also run REV's operator (a worktree)")
    parser.add_argument(
        "--before-ns",
        type=lambda text: [int(n) for n in text.split()],
        help="the Ns REV's operator runs at (default: every N); the old one is slow at 1000",
    )
    parser.add_argument("--idle-seconds", type=float, default=150)
    parser.add_argument("--settle-seconds", type=float, default=15)
    parser.add_argument("--recoveries", type=int, default=4)
    parser.add_argument("--ready-timeout", type=float, help="default: 180 s + 3 s per TM")
    parser.add_argument("--keep-cluster", action="store_true", help="leave a cluster it made")
    parser.add_argument(
        "--keep-other-ns",
        metavar="WHICH",
        help="report the last run's phases (.local/bench-operator.json) at the Ns this one does "
        "not measure beside this one's (N=1000 alone, added to a run of 10 and 100); WHICH "
        "names that run in the report (its date and revision)",
    )
    parser.add_argument("--no-doc", action="store_true", help="print only; leave the doc alone")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    started = time.monotonic()
    size = cluster.Size.for_taskmanagers(max(args.ns))
    made = cluster.ensure_cluster(size, BENCH_AGENT)
    bench = Bench(args, AuditLog(cluster.AUDIT_LOG), cluster.api_client(BENCH_AGENT))
    nodes = len(client.CoreV1Api(bench.bench).list_node(label_selector="type=kwok").items)
    phases: list[Phase] = []
    kept = kept_phases(args.ns, args.keep_other_ns) if args.keep_other_ns else []
    try:
        cluster.install_crds(ROOT / "crds")
        with contextlib.ExitStack() as stack:
            sources = [stack.enter_context(operator_source(None, AFTER))]
            if args.before:
                sources.insert(0, stack.enter_context(operator_source(args.before, BEFORE)))
            run_phases(bench, sources, phases, kept)
    finally:
        if made and not args.keep_cluster:
            cluster.remove_cluster()
    run = report.Run(
        started=now() - timedelta(seconds=time.monotonic() - started),
        seconds=time.monotonic() - started,
        machine=machine(),
        revision=revision(),
        idle_seconds=args.idle_seconds,
        settle_seconds=args.settle_seconds,
        nodes=nodes,
        resync_seconds=OperatorSettings.model_fields["resync_seconds"].default,
    )
    text = report.render(all_phases(kept, phases), run)
    print(text)
    if not args.no_doc:
        report.write_section(text)
        report.plot(all_phases(kept, phases), report.PLOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
