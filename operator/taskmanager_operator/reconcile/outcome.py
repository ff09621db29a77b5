"""What one reconcile hands back to the controller, and what it observed on the way."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

from taskmanager_operator import status as st
from taskmanager_operator.k8s import EVENT_MESSAGE_LIMIT


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str
    # What an event about objects alike names, as "Kind name" each, its message being its reason
    # followed by them (`listing`): in one reconcile's Events, those of one type and reason are
    # one event that names them all.
    objects: tuple[str, ...] = ()

    @classmethod
    def listing(
        cls, type: Literal["Normal", "Warning"], reason: str, objects: Iterable[str]
    ) -> Event:
        """`Created Deployment demo-api, Service demo-api`: every object named, as many as fit
        the API server's cap on a message, then how many more there are."""
        named = tuple(objects)
        return cls(type, reason, _listed(reason, named), named)


def _listed(lead: str, objects: Sequence[str]) -> str:
    """`lead` and the objects, within EVENT_MESSAGE_LIMIT: a name is never cut in half, the
    ones that do not fit are counted ("and 3 more")."""
    message = f"{lead} {', '.join(objects)}"
    shown = len(objects)
    while len(message) > EVENT_MESSAGE_LIMIT and shown > 1:
        shown -= 1
        message = f"{lead} {', '.join(objects[:shown])} and {len(objects) - shown} more"
    return message


class Events(Sequence[Event]):
    """The events of one reconcile, in the order they happened, as they are to be posted.

    The one place events are merged, so that a reconcile that changes many children posts a few
    events rather than one per child: events listing objects (`Event.listing`) of the same type
    and reason become one, where the first of them was, naming every object in order; an event
    equal to one already here adds nothing. Any other event stays its own, even with the type
    and reason of another: a Warning for a distinct cause is not merged away."""

    def __init__(self, events: Iterable[Event] = ()) -> None:
        self._events: list[Event] = []
        self.extend(events)

    def append(self, event: Event) -> None:
        if event in self._events:
            return
        if event.objects:
            for index, there in enumerate(self._events):
                if there.objects and (there.type, there.reason) == (event.type, event.reason):
                    new = [name for name in event.objects if name not in there.objects]
                    self._events[index] = Event.listing(
                        there.type, there.reason, there.objects + tuple(new)
                    )
                    return
        self._events.append(event)

    def extend(self, events: Iterable[Event]) -> None:
        for event in events:
            self.append(event)

    def __iadd__(self, events: Iterable[Event]) -> Events:
        self.extend(events)
        return self

    @overload
    def __getitem__(self, index: int) -> Event: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Event]: ...

    def __getitem__(self, index: int | slice) -> Event | Sequence[Event]:
        return self._events[index]

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Events):
            return self._events == other._events
        if isinstance(other, list):
            return self._events == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Events({self._events!r})"


@dataclass
class Outcome:
    """What the caller does after a reconcile: post events, and when to look again."""

    events: Events = field(default_factory=Events)
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
