"""One bounded `hey` measurement of one server, parsed; and the spread of repeated figures."""

from __future__ import annotations

import re
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

# hey itself stops at its -z duration; this only catches a hung load generator.
HEY_GRACE_S = 60


@dataclass(frozen=True)
class Target:
    """What hey sends to one server for one endpoint."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


@dataclass(frozen=True)
class Figures:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx responses plus connection errors and timeouts


@dataclass(frozen=True)
class Spread:
    """The median of repeated figures with their min-max: one figure alone hides the noise."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def hey(target: Target, *, duration: float, concurrency: int, rate: float | None = None) -> Figures:
    """Closed-loop load for `duration` seconds, or `rate` req/s in total when given (hey -q)."""
    return parse_hey(run_hey(target, duration=duration, concurrency=concurrency, rate=rate))


def run_hey(target: Target, *, duration: float, concurrency: int, rate: float | None = None) -> str:
    """hey's report. A warm-up uses it unparsed: a short, cold run may have no p99 line."""
    command = ["hey", "-z", f"{duration:g}s", "-c", str(concurrency), "-m", target.method]
    if rate is not None:
        # hey's -q is per worker.
        command += ["-q", f"{rate / concurrency:.2f}"]
    for name, value in target.headers.items():
        command += ["-H", f"{name}: {value}"]
    if target.body is not None:
        command += ["-d", target.body, "-T", "application/json"]
    return subprocess.run(  # noqa: S603 - a fixed argv, no shell
        [*command, target.url],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + HEY_GRACE_S,
    ).stdout


def parse_hey(output: str) -> Figures:
    rps_match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    latency = dict(re.findall(r"(\d+)% in ([\d.]+) secs", output))
    # hey prints no latency distribution when no request succeeded.
    if rps_match is None or not {"50", "99"} <= latency.keys():
        raise SystemExit(f"unexpected hey output:\n{output}")
    statuses = {
        int(code): int(count) for code, count in re.findall(r"\[(\d+)\]\s+(\d+) responses", output)
    }
    # Connection errors and timeouts are listed apart from the status codes.
    errors_block = output.partition("Error distribution:")[2]
    failed = sum(int(count) for count in re.findall(r"\[(\d+)\]", errors_block))
    bad = sum(count for code, count in statuses.items() if not 200 <= code < 300) + failed
    return Figures(
        rps=float(rps_match.group(1)),
        p50_ms=float(latency["50"]) * 1000,
        p99_ms=float(latency["99"]) * 1000,
        requests=sum(statuses.values()) + failed,
        errors=bad,
    )
