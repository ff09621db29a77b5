"""The results of a benchmark run as Markdown, and the generated section of docs/benchmarks.md.

Ratios first: API req/s over the baseline's in the same round cancel most of the machine's speed
and load, so they compare across runs and machines. Absolute req/s and latencies follow in their
own table, marked as this machine's.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.load import Figures, Spread
from bench.servers import ApiSource

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
CURRENT, PREVIOUS, BARE = "api", "before", "bare"
# Targets from the issue.
MIN_RATIO, MAX_P99_MS = 0.6, 25.0


@dataclass(frozen=True)
class Measurement:
    server: str
    endpoint: str
    mode: str  # "max" (closed loop) or "70%" (rate-limited)
    round: int
    concurrency: int
    target_rps: float | None
    figures: Figures

    def line(self) -> str:
        f = self.figures
        return (
            f"{self.endpoint:18} {self.mode:4} round {self.round} {self.server:6} "
            f"{f.rps:8.0f} req/s  p50 {f.p50_ms:6.2f} ms  p99 {f.p99_ms:6.2f} ms  errors {f.errors}"
        )


@dataclass(frozen=True)
class Run:
    args: argparse.Namespace
    cores: int
    after: ApiSource
    before: ApiSource | None  # with --before
    seconds: float

    def labels(self) -> dict[str, str]:
        """Server -> its name in the tables, in the order the rows list them."""
        sources = [self.before, self.after] if self.before else [self.after]
        labels = {s.name: f"{self.role(s)} ({revision(s)})" for s in sources if s is not None}
        return {**labels, BARE: "bare"}

    def role(self, source: ApiSource) -> str:
        return PREVIOUS if source.name == PREVIOUS else "after" if self.before else "API"


def revision(source: ApiSource) -> str:
    return f"`{source.revision}`" if source.revision else "the working tree"


def _of(results: Sequence[Measurement], endpoint: str, mode: str, server: str) -> list[Figures]:
    chosen = [m for m in results if (m.endpoint, m.mode, m.server) == (endpoint, mode, server)]
    return [m.figures for m in sorted(chosen, key=lambda m: m.round)]


def ratio(results: Sequence[Measurement], endpoint: str, server: str) -> Spread:
    """API/bare per round (both measured in that round), then their median and min-max."""
    api, bare = _of(results, endpoint, "max", server), _of(results, endpoint, "max", BARE)
    return Spread.of([a.rps / b.rps for a, b in zip(api, bare, strict=True)])


def _ratio_text(spread: Spread) -> str:
    # Three decimals: a ratio of 0.598 must not read as a met 0.60.
    return f"{spread.median:.3f} ({spread.low:.3f}-{spread.high:.3f})"


def _missed(results: Sequence[Measurement], endpoint: str) -> str:
    checks = {
        "throughput": ratio(results, endpoint, CURRENT).median >= MIN_RATIO,
        "p99": Spread.of([f.p99_ms for f in _of(results, endpoint, "70%", CURRENT)]).median
        <= MAX_P99_MS,
        "errors": _errors(results, endpoint) == 0,
    }
    missed = [name for name, ok in checks.items() if not ok]
    return "all met" if not missed else "MISSED: " + ", ".join(missed)


def _errors(results: Sequence[Measurement], endpoint: str) -> int:
    return sum(m.figures.errors for m in results if m.endpoint == endpoint)


def _endpoints(results: Sequence[Measurement]) -> list[str]:
    return list(dict.fromkeys(m.endpoint for m in results))


def ratio_table(results: Sequence[Measurement], run: Run) -> list[str]:
    if run.before is None:
        lines = [
            "| endpoint | ratio API / bare: median (min-max) | errors | targets |",
            "|---|---|---:|---|",
        ]
    else:
        lines = [
            "| endpoint | before / bare: median (min-max) | after / bare: median (min-max) "
            "| after's median within before's min-max | errors | targets (after) |",
            "|---|---|---|---|---:|---|",
        ]
    for endpoint in _endpoints(results):
        after = ratio(results, endpoint, CURRENT)
        cells = [f"`{endpoint}`"]
        if run.before is not None:
            before = ratio(results, endpoint, PREVIOUS)
            verdict = "yes" if before.contains(after.median) else "**no**"
            cells += [_ratio_text(before), _ratio_text(after), verdict]
        else:
            cells.append(_ratio_text(after))
        cells += [str(_errors(results, endpoint)), _missed(results, endpoint)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def absolute_table(results: Sequence[Measurement], run: Run) -> list[str]:
    lines = [
        "| endpoint | server | req/s: median (min-max) | p50 / p99 at max | "
        "p50 / p99 (min-max) at 70 % | offered at 70 % |",
        "|---|---|---|---|---|---:|",
    ]
    for endpoint in _endpoints(results):
        for server, label in run.labels().items():
            full, paced = (
                _of(results, endpoint, "max", server),
                _of(results, endpoint, "70%", server),
            )
            if not full:
                continue
            rps, p99 = Spread.of([f.rps for f in full]), Spread.of([f.p99_ms for f in paced])
            offered = next(
                m.target_rps for m in results if m.endpoint == endpoint and m.mode == "70%"
            )
            lines.append(
                f"| `{endpoint}` | {label} | {rps.median:,.0f} ({rps.low:,.0f}-{rps.high:,.0f}) | "
                f"{Spread.of([f.p50_ms for f in full]).median:.1f} / "
                f"{Spread.of([f.p99_ms for f in full]).median:.1f} ms | "
                f"{Spread.of([f.p50_ms for f in paced]).median:.1f} / {p99.median:.1f} "
                f"({p99.low:.1f}-{p99.high:.1f}) ms | {offered or 0:,.0f} req/s |"
            )
    return lines


def method(run: Run) -> str:
    a = run.args
    servers = "before, after and bare" if run.before else "API and bare"
    text = (
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {run.cores} cores, "
        f"{run.seconds / 60:.1f} min in all. Per endpoint: a {a.warmup:g} s warm-up of each "
        f"server, then {a.pairs} rounds in which {servers} are each measured once, back to back, "
        f"{a.duration:g} s each, in an order that changes every round (rotated, and reversed "
        f"every other cycle); {a.concurrency} "
        f"connections at the maximum, then as many rounds at 70 % of the slower API's median "
        f"maximum with {a.paced_concurrency} rate-limited connections; {a.tasks} tasks seeded. "
        "A round's ratio is the API's req/s over the baseline's in that round; the table gives "
        "the median of the rounds and their min-max."
    )
    if run.before:
        text += (
            f" Before is {revision(run.before)}, after is {revision(run.after)}: each API runs its "
            "own code (a git worktree for a revision) against its own database, migrated by that "
            "code."
        )
    # Wrapped like the rest of the document.
    return textwrap.fill(text, width=100, break_on_hyphens=False)


def render(results: Sequence[Measurement], run: Run) -> str:
    return "\n".join(
        [
            method(run),
            "",
            *ratio_table(results, run),
            "",
            textwrap.fill(
                "This machine's absolute figures (medians of the rounds, min-max in brackets): "
                "they do not carry to another machine or another run; the ratios above are the "
                "figures to compare.",
                width=100,
            ),
            "",
            *absolute_table(results, run),
        ]
    )


def write_doc(section: str, begin: str = BEGIN, end: str = END) -> None:
    """Replaces what lies between a pair of results markers of docs/benchmarks.md (the API's,
    unless others are given)."""
    if not DOC.exists() or begin not in DOC.read_text():
        return
    head, _, rest = DOC.read_text().partition(begin)
    _, _, tail = rest.partition(end)
    DOC.write_text(f"{head}{begin}\n{section}\n{end}{tail}")


def write_heading_section(heading: str, section: str) -> None:
    """Replaces the section of docs/benchmarks.md that starts at `heading` (up to the next
    `## `), or adds it at the end; `section` starts with the heading."""
    text = DOC.read_text()
    if heading not in text:
        DOC.write_text(text.rstrip("\n") + "\n\n" + section)
        return
    head, _, rest = text.partition(heading)
    _, found, tail = rest.partition("\n## ")
    DOC.write_text(head + section + (f"\n## {tail}" if found else ""))
