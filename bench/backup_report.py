"""The results of `make bench-backup` as Markdown, and its generated section of docs/benchmarks.md.

Ratios first: ours' MB/s over plain pg_dump's (or pg_restore's) in the same round cancel most of
the machine's speed and load; the absolute seconds and MB/s are this machine's only.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench import report
from bench.load import Spread

BEGIN, END = "<!-- backup-results:begin -->", "<!-- backup-results:end -->"
OURS, PLAIN = "ours", "plain"
BACKUP, RESTORE = "backup", "restore"
# Targets from the issue: ours at least 0.9 of the plain tools' throughput; the seed's RTO.
MIN_RATIO = 0.9
RTO_TARGET_SECONDS = 15 * 60
MB = 1_000_000


@dataclass(frozen=True)
class Sample:
    """One timed command: ours (`python -m taskmanager_api backup ...`) or the plain tool."""

    operation: str  # BACKUP or RESTORE
    tool: str  # OURS or PLAIN
    round: int
    position: int  # 0: ran first in its round, 1: second
    seconds: float  # wall time of the whole command, as a caller waits for it
    size: int  # bytes of the dump written (backup) or read (restore)
    # Ours only: the durationSeconds of its result line (without interpreter start-up), and when,
    # from the command's start, its log marked the end of each phase (bench.backup's *_MARKS).
    inner_seconds: float | None = None
    marks: dict[str, float] = field(default_factory=dict)

    @property
    def mb_per_s(self) -> float:
        return self.size / MB / self.seconds

    def line(self) -> str:
        inner = f"  (in command {self.inner_seconds:.2f} s)" if self.inner_seconds else ""
        return (
            f"{self.operation:7} round {self.round} {self.tool:5} {self.seconds:8.2f} s "
            f"{self.mb_per_s:7.2f} MB/s  {self.size / MB:8.1f} MB{inner}"
        )


@dataclass(frozen=True)
class Dataset:
    tasks: int
    users: int
    tags: int
    comments: int
    database_bytes: int
    seed_seconds: float


@dataclass(frozen=True)
class Run:
    started: str  # "2026-12-06 10:00 UTC"
    machine: str
    revision: str
    server_version: str
    pairs: int
    dataset: Dataset
    seconds: float


def _of(samples: Sequence[Sample], operation: str, tool: str) -> list[Sample]:
    chosen = [s for s in samples if (s.operation, s.tool) == (operation, tool)]
    return sorted(chosen, key=lambda s: s.round)


def ratio(samples: Sequence[Sample], operation: str) -> Spread:
    """Ours' MB/s over plain's, per round (both measured in that round); median and min-max."""
    ours, plain = _of(samples, operation, OURS), _of(samples, operation, PLAIN)
    return Spread.of([o.mb_per_s / p.mb_per_s for o, p in zip(ours, plain, strict=True)])


def _spread(values: Sequence[float], form: str) -> str:
    spread = Spread.of(values)
    return f"{spread.median:{form}} ({spread.low:{form}}-{spread.high:{form}})"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


def ratio_table(samples: Sequence[Sample]) -> list[str]:
    lines = [
        "| operation | ours / plain MB/s: median (min-max) | ours s: median (min-max) "
        "| plain s: median (min-max) | target |",
        "|---|---|---|---|---|",
    ]
    for operation in (BACKUP, RESTORE):
        spread = ratio(samples, operation)
        verdict = "met" if spread.median >= MIN_RATIO else "**MISSED**"
        # Three decimals: a ratio of 0.898 must not read as a met 0.90.
        lines.append(
            f"| {operation} | {spread.median:.3f} ({spread.low:.3f}-{spread.high:.3f}) | "
            f"{_spread([s.seconds for s in _of(samples, operation, OURS)], '.2f')} | "
            f"{_spread([s.seconds for s in _of(samples, operation, PLAIN)], '.2f')} | "
            f">= {MIN_RATIO}: {verdict} |"
        )
    return lines


def round_table(samples: Sequence[Sample]) -> list[str]:
    lines = [
        "| operation | round | first | ours s | ours MB/s | ours in command s | plain s "
        "| plain MB/s | ratio |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for operation in (BACKUP, RESTORE):
        ours, plain = _of(samples, operation, OURS), _of(samples, operation, PLAIN)
        for o, p in zip(ours, plain, strict=True):
            first = OURS if o.position == 0 else PLAIN
            lines.append(
                f"| {operation} | {o.round} | {first} | {o.seconds:.2f} | {o.mb_per_s:.2f} | "
                f"{o.inner_seconds or 0:.2f} | {p.seconds:.2f} | {p.mb_per_s:.2f} | "
                f"{o.mb_per_s / p.mb_per_s:.3f} |"
            )
    return lines


def rto_line(samples: Sequence[Sample], run: Run) -> str:
    restores = [s.seconds for s in _of(samples, RESTORE, OURS)]
    spread = Spread.of(restores)
    verdict = "met" if spread.high <= RTO_TARGET_SECONDS else "**MISSED**"
    size = _of(samples, RESTORE, OURS)[0].size
    text = (
        f"**RTO at {run.dataset.tasks:,} tasks**: `backup restore` took "
        f"{_minutes(spread.median)} (median of {len(restores)}; slowest {_minutes(spread.high)}) "
        f"against the seed's target of {RTO_TARGET_SECONDS // 60} minutes: {verdict}. The dump "
        f"is {size / MB:,.1f} MB (`--format=custom`, pg_dump's default compression); the "
        f"database {run.dataset.database_bytes / MB:,.0f} MB on disk."
    )
    return textwrap.fill(text, width=100, break_on_hyphens=False)


def header(run: Run) -> str:
    d = run.dataset
    text = (
        f"Run {run.started} on {run.machine}; revision {run.revision}; PostgreSQL "
        f"{run.server_version} (fsync off); {_minutes(run.seconds)} in all. Data: "
        f"{d.tasks:,} tasks, {d.users:,} users, {d.tags:,} tags, {d.comments:,} comments "
        f"(seeded in {_minutes(d.seed_seconds)}); {run.pairs} rounds per operation."
    )
    return textwrap.fill(text, width=100, break_on_hyphens=False)


def phases(samples: Sequence[Sample]) -> str:
    """Where ours' time goes (medians of the rounds), from its own duration and when its log
    marked each phase's end. Start-up is the time before the command's own clock started:
    imports, settings."""
    made, restored = _of(samples, BACKUP, OURS), _of(samples, RESTORE, OURS)

    def median(values: Sequence[float]) -> float:
        return Spread.of(values).median

    def between(chosen: Sequence[Sample], start: str, end: str) -> float:
        def at(sample: Sample, mark: str) -> float:
            if mark == "start":
                return 0.0
            if mark == "started":
                return sample.marks["done"] - (sample.inner_seconds or 0)
            if mark == "exited":
                return sample.seconds
            return sample.marks[mark]

        return median([at(s, end) - at(s, start) for s in chosen])

    plain_dump = median([s.seconds for s in _of(samples, BACKUP, PLAIN)])
    plain_restore = median([s.seconds for s in _of(samples, RESTORE, PLAIN)])
    text = (
        f"Where ours' time goes (medians of the rounds). `backup create`: "
        f"{between(made, 'start', 'exited'):.2f} s in all: "
        f"{between(made, 'start', 'started'):.2f} s start-up (imports, settings), "
        f"{between(made, 'started', 'dumped'):.2f} s taking the dump (snapshot, pg_dump into "
        f"the location with the row counts read meanwhile, sha256), "
        f"{between(made, 'dumped', 'done'):.2f} s storing it (fsync, rename, manifest), "
        f"{between(made, 'done', 'exited'):.2f} s exiting; plain "
        f"pg_dump {plain_dump:.2f} s. `backup restore`: "
        f"{between(restored, 'start', 'exited'):.2f} s in all: "
        f"{between(restored, 'start', 'started'):.2f} s start-up, "
        f"{between(restored, 'started', 'restoring'):.2f} s checks (manifest, revision, sha256, "
        f"connection), {between(restored, 'restoring', 'migrating'):.2f} s pg_restore piped "
        f"into psql (up to the line saying it is restored), "
        f"{between(restored, 'migrating', 'done'):.2f} s reading the revision and migrating to "
        f"head (nothing to migrate here), "
        f"{between(restored, 'done', 'exited'):.2f} s exiting; plain pg_restore "
        f"{plain_restore:.2f} s."
    )
    return textwrap.fill(text, width=100, break_on_hyphens=False)


def render(samples: Sequence[Sample], run: Run) -> str:
    return "\n".join(
        [
            header(run),
            "",
            *ratio_table(samples),
            "",
            rto_line(samples, run),
            "",
            phases(samples),
            "",
            "Every round (seconds and MB/s are this machine's; `first`: the side that ran first):",
            "",
            *round_table(samples),
        ]
    )


def write_doc(section: str) -> None:
    """Replaces what lies between the backup results markers of docs/benchmarks.md."""
    report.write_doc(section, BEGIN, END)
