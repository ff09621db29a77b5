"""What one reconcile hands back to the controller, and what it observed on the way."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from taskmanager_operator import status as st


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass
class Outcome:
    """What the caller does after a reconcile: post events, and when to look again."""

    events: list[Event] = field(default_factory=list)
    # Seconds until the next reconcile even if nothing changes; None waits for a change.
    requeue_after: float | None = None
    # Set when the reconcile could not finish for a reason that may heal (retry with backoff).
    retry_reason: str | None = None
    # False once the TaskManager is gone: nothing more to do for it.
    exists: bool = True
    uid: str | None = None
    # Whether the status just written says Ready=True (None when the TaskManager is gone).
    ready: bool | None = None


@dataclass
class Observed:
    """What the status will say: conditions in the order they are written, and the API's pods."""

    conditions: list[st.Condition] = field(default_factory=list)
    replicas: int | None = None
    ready_replicas: int | None = None
    version: str | None = None
    # A migration or a rollout in progress: look again soon.
    poll: bool = False
    # status.monitoring: the monitoring objects and the Prometheus objects that pick them up.
    monitoring: dict[str, Any] | None = None
    # status.signingKeys: the rotating JWT keys (ids, roles, times).
    signing_keys: list[dict[str, str]] | None = None
    # status.backup: the last good, failed and verified backups and the next slot.
    backup: dict[str, Any] | None = None
    # status.externalURL: the URL the Ingress or the HTTPRoute gives, once it exists.
    external_url: str | None = None
    # Waiting for an object no watch of ours sees (the Gateway an HTTPRoute names): look again
    # after the recheck period rather than at the resync.
    awaits_unwatched: bool = False
    # The reconcile stopped before it observed the children (the API server refused one): the
    # status keeps what the last reconcile that did said of them.
    children_unobserved: bool = False
