"""The real operator, run as a subprocess (`python -m taskmanager_operator`) against the cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.support.services import free_port, stop_process
from tests.support.wait import wait_until


@dataclass(eq=False)
class OperatorProcess:
    process: subprocess.Popen[bytes]
    log: Path
    metrics_port: int
    liveness_port: int

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def _samples(self, family_name: str) -> list[Sample]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics") as response:
            text = response.read().decode()
        return [
            sample
            for family in text_string_to_metric_families(text)
            if family.name == family_name
            for sample in family.samples
        ]

    def live(self) -> bool:
        """Running, and its liveness endpoint (what a kubelet probes) answers 200."""
        if self.process.poll() is not None:
            raise AssertionError(f"the operator exited:\n{self.log_tail()}")
        url = f"http://127.0.0.1:{self.liveness_port}/healthz"
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)

    def reconciles(self, namespace: str, name: str, result: str = "success") -> float:
        """How many reconciles of one TaskManager finished with `result` (the operator's metric)."""
        wanted = {"namespace": namespace, "name": name, "result": result}
        for sample in self._samples("taskmanager_operator_reconciles"):
            if sample.name.endswith("_total") and wanted.items() <= sample.labels.items():
                return float(sample.value)
        return 0.0

    def api_requests(self) -> dict[str, float]:
        """The reconciles' requests to the Kubernetes API so far, by HTTP method (its metric)."""
        counts: dict[str, float] = {}
        for sample in self._samples("taskmanager_operator_api_requests"):
            if sample.name.endswith("_total"):
                counts[sample.labels["method"]] = sample.value
        return counts


REPO = Path(__file__).resolve().parents[2]
# libfaketime (Debian: faketime), the multithreaded build: the operator runs threads.
FAKETIME_LIBRARIES = "*/faketime/libfaketimeMT.so.1"
# Its sitecustomize works around libfaketime's time.sleep (see there).
FAKETIME_SITE = Path(__file__).parent / "faketime_site"


def clock_ahead(seconds: float) -> dict[str, str]:
    """The environment that runs a process with its wall clock `seconds` ahead of the real one,
    ticking at the real pace: how a test moves the operator's clock (a schedule's slot comes in
    seconds, days pass between two runs). The monotonic clock stays real, so timeouts, sleeps
    and the asyncio loop behave as they would; the API server's clock is never touched."""
    found = sorted(Path("/usr/lib").glob(FAKETIME_LIBRARIES))
    if not found:
        raise AssertionError(
            f"libfaketime is not installed (no /usr/lib/{FAKETIME_LIBRARIES}): the tests move the "
            "operator's clock with it; install it with `apt-get install faketime` "
            "(hack/install-system-deps.sh, which `make test` runs, does)"
        )
    path = [str(FAKETIME_SITE), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {
        "PYTHONPATH": os.pathsep.join(path),
        "LD_PRELOAD": str(found[0]),
        "FAKETIME": f"{seconds:+.0f}",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


@contextmanager
def run_operator(
    kubeconfig: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[OperatorProcess]:
    workdir = Path(tempfile.mkdtemp(prefix="taskmanager-operator-"))
    log = workdir / "operator.log"
    metrics_port, liveness_port = free_port(), free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "TASKMANAGER_OPERATOR_METRICS_PORT": str(metrics_port),
        # Tests want quick follow-ups and retries; production defaults are slower.
        "TASKMANAGER_OPERATOR_PROGRESS_POLL_SECONDS": "2",
        "TASKMANAGER_OPERATOR_RETRY_INITIAL_SECONDS": "1",
        "TASKMANAGER_OPERATOR_RETRY_MAX_SECONDS": "4",
        # A changed external Redis policy is seen by the next reconcile after a second.
        "TASKMANAGER_OPERATOR_REDIS_PROBE_CACHE_SECONDS": "1",
        **(env or {}),
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "taskmanager_operator",
                "--liveness",
                f"http://127.0.0.1:{liveness_port}/healthz",
                "--log-format",
                "plain",
                *args,
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    operator = OperatorProcess(process, log, metrics_port, liveness_port)
    try:
        wait_until(operator.live, timeout=60, what="the operator's liveness endpoint")
        yield operator
    finally:
        stop_process(process, timeout=30)


# Quick leader election, so a replica taking over (or a restart) acts within seconds.
ELECTION = {
    "TASKMANAGER_OPERATOR_LEASE_SECONDS": "6",
    "TASKMANAGER_OPERATOR_RENEW_SECONDS": "4",
    "TASKMANAGER_OPERATOR_RETRY_SECONDS": "1",
}


def kubeconfig() -> Path:
    """The local cluster's, unless KUBECONFIG names another."""
    return Path(os.environ.get("KUBECONFIG") or REPO / ".local" / "kubeconfig")


@contextmanager
def operators(
    namespace: str,
    clock: float | None,
    replicas: int = 1,
    settings: Mapping[str, str] | None = None,
) -> Iterator[list[OperatorProcess]]:
    """`replicas` operators for one namespace only (its own Lease there), each with its wall
    clock `clock` seconds ahead of the real one (None: the real clock) and `settings` (operator
    environment variables) on top of the tests' own."""
    env = {
        **ELECTION,
        "TASKMANAGER_OPERATOR_LEADER_ELECTION_NAMESPACE": namespace,
        **(clock_ahead(clock) if clock is not None else {}),
        **(settings or {}),
    }
    with ExitStack() as stack:
        started = [
            stack.enter_context(run_operator(kubeconfig(), "--namespace", namespace, env=env))
            for _ in range(replicas)
        ]
        try:
            yield started
        except Exception as error:
            # The evidence a failure carries: what each operator said last.
            for index, operator in enumerate(started):
                error.add_note(f"--- operator {index} (log tail) ---\n{operator.log_tail(40)}")
            raise
