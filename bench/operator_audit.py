"""The API server's own record of who asked what: its audit log, read back by user agent.

`hack/cluster.sh` with CLUSTER_AUDIT=1 logs every request at Metadata level without the
RequestReceived stage, so an ordinary request is one line (ResponseComplete) and a watch two
(ResponseStarted, then ResponseComplete when it ends), all under one auditID. A request counts
once, in the window its requestReceivedTimestamp falls in.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

# User-agent prefixes of the operator's requests -> the name the figures give them. kopf's
# watches say `kopf/<version>`; the operator's kubernetes client says `taskmanager-operator/...`
# since it names itself (k8s.py), and the client's default before that, which a `--before`
# revision may still send. The bench's own clients name themselves (below), so during an
# operator's phase nothing else sends the client's default.
OPERATOR_AGENTS: Mapping[str, str] = {
    "kopf/": "kopf",
    "taskmanager-operator/": "operator client",
    "OpenAPI-Generator/": "operator client (default agent)",
}
# The baseline's applier, and the bench itself (it creates the TaskManagers, deletes children
# and watches progress): never counted as the operator's.
BASELINE_AGENT = "taskmanager-bench-baseline/1"
BENCH_AGENT = "taskmanager-bench/1"
BASELINE_AGENTS: Mapping[str, str] = {BASELINE_AGENT: "baseline client"}
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class Request:
    agent: str  # the name OPERATOR_AGENTS or BASELINE_AGENTS gives its prefix
    verb: str
    resource: str  # resource[/subresource], as the audit event names it
    received: datetime


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class Counts:
    """The requests of one window by verb, by agent and by resource."""

    by_verb: dict[str, int]
    by_agent: dict[str, int]
    by_resource: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_verb.values())

    @property
    def writes(self) -> int:
        return sum(n for verb, n in self.by_verb.items() if verb in WRITE_VERBS)


class AuditLog:
    """An append-only file read from a mark on: a phase reads only what it added."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size

    def requests(
        self, since: int, agents: Mapping[str, str], user: str | None = None
    ) -> list[Request]:
        """Every request after `since` whose user agent starts with one of `agents`' prefixes
        (and made as `user`, when given), once each."""
        seen: set[str] = set()
        found = []
        for event in self._events(since, agents):
            if user is not None and (event.get("user") or {}).get("username") != user:
                continue
            audit_id = str(event["auditID"])
            if audit_id in seen:
                continue
            seen.add(audit_id)
            found.append(_request(event, agents))
        return found

    def _events(self, since: int, agents: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        # The log grows by hundreds of MB at 1000 TaskManagers; only lines naming one of our
        # agents are parsed (Go's encoder writes `"userAgent":"..."` with no space).
        needles = [f'"userAgent":"{prefix}' for prefix in agents]
        with self.path.open("rb") as log:
            if log.seek(0, 2) < since:
                # Rotated since the mark: the window's lines are in another file, and counting
                # from here would report requests that were made as none.
                raise RuntimeError(
                    f"{self.path} was rotated during the run: recreate the cluster with "
                    "hack/cluster.sh (CLUSTER_AUDIT=1 turns rotation off)"
                )
            log.seek(since)
            for raw in log:
                # A mark taken while the API server wrote a line falls inside it: that line's
                # rest, and a line still being written at the end, are not whole events.
                if not raw.startswith(b"{") or not raw.endswith(b"\n"):
                    continue
                line = raw.decode(errors="replace")
                if any(needle in line for needle in needles):
                    yield json.loads(line)


def _request(event: Mapping[str, object], agents: Mapping[str, str]) -> Request:
    agent = str(event.get("userAgent", ""))
    reference = event.get("objectRef")
    resource = "(none)"
    if isinstance(reference, dict):
        resource = str(reference.get("resource", "(none)"))
        if reference.get("subresource"):
            resource = f"{resource}/{reference['subresource']}"
    return Request(
        agent=next(name for prefix, name in agents.items() if agent.startswith(prefix)),
        verb=str(event["verb"]),
        resource=resource,
        received=datetime.fromisoformat(str(event["requestReceivedTimestamp"])),
    )


def count(requests: list[Request], window: Window) -> Counts:
    inside = [r for r in requests if window.start <= r.received < window.end]
    return Counts(
        by_verb=dict(Counter(r.verb for r in inside).most_common()),
        by_agent=dict(Counter(r.agent for r in inside).most_common()),
        by_resource=dict(Counter(f"{r.verb} {r.resource}" for r in inside).most_common()),
    )
