"""`make bench-operator`'s results as Markdown (the "Operator at scale" section of
docs/benchmarks.md) and as a plot (docs/operator-scale.png).

Works on the phases as saved in .local/bench-operator.json (plain dicts), so a saved run can be
drawn again: `python -m bench.operator_report` draws the last one's plot.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.operator_audit import WRITE_VERBS

ROOT = Path(__file__).resolve().parent.parent
PLOT = ROOT / "docs" / "operator-scale.png"
HEADING = "## Operator at scale"
SIDES = ("baseline", "before", "after")
# One colour per side in every panel, whichever sides a panel has.
COLOURS = {"baseline": "tab:gray", "before": "tab:blue", "after": "tab:orange"}

Phase = dict[str, Any]  # one phase as bench/operator_scale.py saves it


@dataclass(frozen=True)
class Run:
    started: datetime
    seconds: float
    machine: str  # bench/backup.py's machine(): CPU, cores, memory, kernel
    revision: str  # and whether the working tree differed from it
    idle_seconds: float
    settle_seconds: float
    nodes: int  # simulated nodes of the cluster
    resync_seconds: float


METHOD = """\
`make bench-operator` (`python -m bench.operator_scale`; `NS="10 100"` by default, `NS="10 100
1000"` for more; `BEFORE=<rev>` adds that revision's operator, run from a git worktree, at every
N or at `BEFORE_NS="10 100"` only; `IDLE=s`,
the idle window, 150 s by default) measures the operator at scale on the local kwok-only cluster,
which it makes for the largest N (`hack/cluster.sh down`, then `REAL_NODE=0 KWOK_NODES=...
CLUSTER_VOLUMES=... CLUSTER_SERVICE_CIDR=10.96.0.0/16 CLUSTER_AUDIT=1 hack/cluster.sh up`) unless
the running one fits, and removes again (`KEEP_CLUSTER=1` keeps it). For each N, in a namespace of
its own per side, one side after the other (their order rotating from one N to the next):

- **operator**: `python -m taskmanager_operator --namespace NS`, as `make run` runs it (its
  production settings: 4 workers, 10 s progress polls, resync every 300 s), started first; then
  N TaskManagers of `spec: {}` are created at once from 4 threads, timed until every one says
  Ready=True. Then a settle window, the idle window in which nothing changes, and deleted
  children (a ConfigMap, then a Service, of different TaskManagers) timed until each is back
  with a new uid. Peak RSS is the operator process's VmHWM, read before the TaskManagers come
  (N=0) and at the end of the phase.
- **baseline**: the same N TaskManagers created the same way, with no operator; as each is
  created, the children `render.py` renders for it (the same code the operator applies, of the
  kinds the cluster serves) are server-side-applied by the same kubernetes client from 4 threads
  (the operator's workers), timed until the same workloads are ready: the API and Redis
  Deployments rolled out, PostgreSQL's StatefulSet ready, the migration Job complete. The
  baseline applies everything at once, where the operator starts the API only once its migration
  is done, reads what it needs and writes status: it is the floor, not a rival.

Requests come from the API server's own audit log (Metadata level), by user agent: the
operator's are kopf's watches (`kopf/...`) and its client's (`taskmanager-operator/...`, or the
client's default `OpenAPI-Generator/...` for a revision that did not name it); the baseline's
client and the bench's own (creating TaskManagers, polling for Ready, deleting children) have
agents of their own and are never counted as the operator's. "To converge" counts the requests
received from the first create to all Ready, per TaskManager; "idle" those of the idle window,
per TaskManager and scaled to an hour; "idle writes" the create, update, patch and delete
requests in the idle window (target 0). Figures are from this machine (2 cores, shared and
noisy): compare sides within a run, through the ratio, rather than seconds across runs.
"""


def by(phases: Iterable[Phase], side: str, n: int) -> Phase | None:
    return next((p for p in phases if p["side"] == side and p["n"] == n), None)


def per_tm(counts: dict[str, Any] | None, n: int, hours: float = 0.0) -> str:
    """Requests per TaskManager by verb, most first (per hour when `hours` is given)."""
    if counts is None or n == 0:
        return "-"
    scale = 1 / n / hours if hours else 1 / n
    verbs = counts["by_verb"]
    total = sum(verbs.values()) * scale
    parts = ", ".join(f"{verb} {count * scale:.1f}" for verb, count in verbs.items())
    return f"**{total:.1f}**" + (f" ({parts})" if parts else "")


def writes(counts: dict[str, Any] | None) -> int:
    return sum(n for verb, n in (counts or {}).get("by_verb", {}).items() if verb in WRITE_VERBS)


def write_kind(resource: str) -> str:
    """What a write to `resource` is for: a child, a status, an event or the leader's Lease."""
    if resource == "events":
        return "events"
    if resource.endswith("/status"):
        return "status"
    return "leases" if resource == "leases" else "children"


def writes_per_child(phase: Phase, baseline: Phase | None) -> str | None:
    """A side's writes to converge per child, by what they were for. The baseline applies each
    child once, so its writes per TaskManager are the number of children."""
    if baseline is None or phase is baseline or not phase["converge"] or not baseline["converge"]:
        return None
    children = writes(baseline["converge"]) / baseline["n"]
    split: dict[str, float] = {}
    for key, count in phase["converge"]["by_resource"].items():
        verb, resource = key.split(" ", 1)
        if verb in WRITE_VERBS:
            kind = write_kind(resource)
            split[kind] = split.get(kind, 0) + count / phase["n"] / children
    parts = ", ".join(f"{kind} {value:.2f}" for kind, value in sorted(split.items()))
    return (
        f"- {label(phase)}, N={phase['n']} ({children:.0f} children per TaskManager): "
        f"**{split.get('children', 0):.2f}** for the children; {sum(split.values()):.2f} in all "
        f"({parts})"
    )


def write_detail(phases: Sequence[Phase]) -> list[str]:
    found = []
    for n in sorted({p["n"] for p in phases}):
        baseline = by(phases, "baseline", n)
        for side in SIDES[1:]:
            if (phase := by(phases, side, n)) and (line := writes_per_child(phase, baseline)):
                found.append(line)
    return found


def mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.0f}"


def recovery(phase: Phase) -> str:
    seconds = [s for _, s in phase["recoveries"]]
    if not seconds:
        return "-"
    return f"{statistics.median(seconds):.1f} ({min(seconds):.1f}-{max(seconds):.1f})"


def label(phase: Phase) -> str:
    if phase["side"] == "baseline":
        return "baseline (direct apply)"
    return f"{phase['side']} (`{phase['revision']}`)" if phase["revision"] else "operator"


def row(phase: Phase, baseline: Phase | None) -> str:
    n = phase["n"]
    ratio = "-"
    if baseline is not None and baseline["ready_seconds"]:
        ratio = f"{phase['ready_seconds'] / baseline['ready_seconds']:.2f}"
    idle = phase["idle"]
    hours = phase["idle_seconds"] / 3600
    cells = [
        str(n),
        label(phase),
        f"{phase['ready_seconds']:.1f}",
        ratio,
        per_tm(phase["converge"], n),
        per_tm(idle, n, hours) if idle else "-",
        str(writes(idle)) if idle else "-",
        mib(phase["rss_peak_kib"]),
        recovery(phase),
    ]
    return "| " + " | ".join(cells) + " |"


def table(phases: Sequence[Phase]) -> list[str]:
    lines = [
        "| N | side | s to all Ready | / baseline | requests per TM to converge (by verb) "
        "| idle requests per TM per hour (by verb) | idle writes | peak RSS MiB "
        "| deleted child back, s: median (min-max) |",
        "|---:|---|---:|---:|---|---|---:|---:|---|",
    ]
    for n in sorted({p["n"] for p in phases}):
        baseline = by(phases, "baseline", n)
        lines += [row(p, baseline) for s in SIDES if (p := by(phases, s, n)) is not None]
    return lines


def rest_mib(phases: Sequence[Phase], side: str) -> float | None:
    """A side's operator's peak RSS with no TaskManager yet (median of its phases)."""
    seen = [p["rss_start_kib"] for p in phases if p["side"] == side and p["rss_start_kib"]]
    return statistics.median(seen) / 1024 if seen else None


def at_rest(phases: Sequence[Phase]) -> str:
    parts = []
    for side in SIDES[1:]:
        if (rest := rest_mib(phases, side)) is not None:
            name = "the operator" if side == "after" else side
            parts.append(f"{name} {rest:.0f} MiB")
    return ", ".join(parts)


def agents(phases: Sequence[Phase]) -> str:
    """Which of the operator's user agents the log showed, for the reader to check the split."""
    seen: dict[str, int] = {}
    for phase in phases:
        if phase["side"] == "baseline":
            continue
        for window in ("converge", "settle", "idle"):
            for agent, count in ((phase.get(window) or {}).get("by_agent") or {}).items():
                seen[agent] = seen.get(agent, 0) + count
    return ", ".join(f"{agent} {count}" for agent, count in seen.items())


def idle_detail(phases: Sequence[Phase]) -> list[str]:
    """What the idle windows' requests were, by verb and resource."""
    lines = []
    for phase in phases:
        idle = phase.get("idle")
        if idle and idle["by_resource"]:
            what = ", ".join(f"{k} {v}" for k, v in list(idle["by_resource"].items())[:8])
            lines.append(f"- {label(phase)}, N={phase['n']}: {what}")
    return lines


def kept_note(phases: Sequence[Phase]) -> list[str]:
    kept = {p["n"]: p["kept"] for p in phases if p.get("kept")}
    if not kept:
        return []
    return [
        f"The rows at N={', '.join(map(str, sorted(kept)))} are an earlier run's "
        f"({'; '.join(sorted(set(kept.values())))}), measured the same way and kept beside this "
        "one's (`--keep-other-ns`): each N's sides ran back to back in one run, so every ratio "
        "is within one run."
    ]


def render(phases: Sequence[Phase], run: Run) -> str:
    lines = [
        f"Run {run.started:%Y-%m-%d %H:%M} UTC on {run.machine}; revision {run.revision}; "
        f"{run.seconds / 60:.1f} min in all. "
        f"Cluster: {run.nodes} simulated nodes, the audit log on; settle "
        f"{run.settle_seconds:.0f} s, idle window {run.idle_seconds:.0f} s.",
        *kept_note(phases),
        "",
        *table(phases),
        "",
        f"Peak RSS with no TaskManager (N=0): {at_rest(phases) or '-'}. Requests the operator's "
        f"agents made, all windows: {agents(phases) or 'none'}.",
    ]
    if run.idle_seconds < run.resync_seconds:
        lines += [
            "",
            f"The idle window ({run.idle_seconds:.0f} s) is shorter than the operator's resync "
            f"period ({run.resync_seconds:.0f} s): a TaskManager's periodic reconcile falls in "
            "it or not depending on when it converged, so the hourly figure may miss or count "
            "part of a resync; an idle window of at least the resync period measures it whole.",
        ]
    if detail := write_detail(phases):
        lines += [
            "",
            "Writes per child to converge (target <= 1.2; the baseline's are 1.00, one apply per "
            "child). Besides its children the operator writes the TaskManager's status at each "
            "step a user sees (waiting for the database, migrating, rolling out, Ready) and an "
            "event per change, neither of which the baseline has:",
            "",
            *detail,
        ]
    if detail := idle_detail(phases):
        lines += ["", "The idle windows' requests (verb resource count):", "", *detail]
    lines += ["", f"![the operator at scale]({PLOT.relative_to(report.DOC.parent)})"]
    return "\n".join(lines)


def write_section(results: str) -> None:
    """Replaces the section (its heading up to the next `## `) or adds it at the end."""
    report.write_heading_section(HEADING, f"{HEADING}\n\n{METHOD}\n{results}\n")


def series(phases: Sequence[Phase], side: str, value: Any) -> tuple[list[int], list[float]]:
    chosen = sorted((p for p in phases if p["side"] == side), key=lambda p: p["n"])
    points = [(p["n"], value(p)) for p in chosen]
    kept = [(n, v) for n, v in points if v is not None]
    return [n for n, _ in kept], [v for _, v in kept]


def plot(phases: Sequence[Phase], path: Path) -> None:
    import matplotlib  # noqa: PLC0415 - only the plot needs it (the bench extra)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    panels = [
        ("seconds to all Ready", lambda p: p["ready_seconds"]),
        ("requests per TM to converge", lambda p: total(p["converge"]) / p["n"]),
        ("idle requests per TM per hour", idle_rate),
        ("peak RSS (MiB)", lambda p: p["rss_peak_kib"] / 1024 if p["rss_peak_kib"] else None),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(16, 4))
    for axis, (title, value) in zip(axes, panels, strict=True):
        for side in SIDES:
            xs, ys = series(phases, side, value)
            if xs:
                name = side if side != "after" else "operator"
                axis.plot(xs, ys, marker="o", color=COLOURS[side], label=name)
        axis.set_xscale("log")
        axis.set_xlabel("TaskManagers (N)")
        axis.set_title(title)
        axis.grid(True, alpha=0.3)
    # N=0 has no place on a log axis: the RSS with no TaskManager is a dashed line.
    for side in SIDES[1:]:
        if (rest := rest_mib(phases, side)) is not None:
            axes[-1].axhline(rest, color=COLOURS[side], linestyle="--", label=f"{side} at N=0")
    axes[0].legend()
    axes[-1].legend()
    figure.suptitle("The operator at scale against applying its children directly (this machine)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def total(counts: dict[str, Any] | None) -> float:
    return float(sum((counts or {}).get("by_verb", {}).values()))


def idle_rate(phase: Phase) -> float | None:
    if not phase.get("idle") or not phase["idle_seconds"]:
        return None
    return total(phase["idle"]) / int(phase["n"]) / (float(phase["idle_seconds"]) / 3600)


def main() -> int:
    """Draws the plot again from the last run's raw results."""
    results = ROOT / ".local" / "bench-operator.json"
    plot(json.loads(results.read_text()), PLOT)
    print(f"wrote {PLOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
