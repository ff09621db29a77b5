"""Rotation of the generated JWT signing key, with an overlap so nobody is logged out.

A key goes through three roles. `next`: published to every pod as a verification key only.
`signing`: once every API pod verifies with it, it signs the new tokens, and the key it replaces
becomes `retiring`: still verifying the tokens it signed, until the refresh-token TTL has passed
since it stopped signing; then it is dropped. Each step changes the generated Secret, which rolls
the API pods, so at any moment every running pod verifies every key a live token may carry.

The ring lives in the generated Secret: the keys in its data (the signing key, and the others as
`jwt_previous_keys`), and each key's id, role and times in an annotation (no secret in it), so
the rotation survives operator restarts and a test can move time by rewriting those times.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from taskmanager_api.core.config import key_id_for
from taskmanager_operator.api.v1alpha1 import TTL_UNIT_SECONDS
from taskmanager_operator.status import timestamp

Role = Literal["next", "signing", "retiring"]
# The generated Secret's annotation that records the ring.
RING_ANNOTATION = "taskmanager.dev/signing-keys"
# The key's size, as the generated signing key has always been made.
KEY_BYTES = 48


@dataclass(frozen=True)
class SigningKey:
    kid: str
    value: str
    role: Role
    created_at: datetime
    # When it took its current role (for a retiring key: when it stopped signing).
    since: datetime


@dataclass(frozen=True)
class Step:
    """What a reconcile did to the ring, for an event."""

    reason: Literal["SigningKeyPublished", "SigningKeyPromoted", "SigningKeyRetired"]
    message: str


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def read_ring(
    signing_value: str | None,
    previous: Mapping[str, str],
    annotation: str | None,
    now: datetime,
) -> list[SigningKey]:
    """The ring as the Secret records it: its signing key, the other keys by kid, and the
    annotation. A Secret from before rotation (or a lost annotation) starts a ring with its
    signing key, dated now; keys whose values are gone are dropped."""
    values = {**previous, **({key_id_for(signing_value): signing_value} if signing_value else {})}
    ring: list[SigningKey] = []
    for entry in json.loads(annotation) if annotation else []:
        value = values.get(entry["kid"])
        if value is None:
            continue
        ring.append(
            SigningKey(
                kid=entry["kid"],
                value=value,
                role=entry["role"],
                created_at=_time(entry["createdAt"]),
                since=_time(entry["since"]),
            )
        )
    if signing_value and not any(
        key.role == "signing" and key.value == signing_value for key in ring
    ):
        kid = key_id_for(signing_value)
        ring = [key for key in ring if key.kid != kid and key.role != "signing"]
        ring.append(SigningKey(kid, signing_value, "signing", now, now))
    return ring


def annotation(ring: Sequence[SigningKey]) -> str:
    return json.dumps(
        [
            {
                "kid": key.kid,
                "role": key.role,
                "createdAt": key.created_at.isoformat(),
                "since": key.since.isoformat(),
            }
            for key in ring
        ],
        separators=(",", ":"),
    )


def signing(ring: Sequence[SigningKey]) -> SigningKey:
    (found,) = [key for key in ring if key.role == "signing"]
    return found


def verification_keys(ring: Sequence[SigningKey]) -> dict[str, str]:
    """Every key but the signing one, by kid: what the API reads as jwt_previous_keys."""
    return {key.kid: key.value for key in ring if key.role != "signing"}


def advance(
    ring: Sequence[SigningKey],
    *,
    now: datetime,
    interval: timedelta | None,
    refresh_ttl: timedelta,
    every_pod_has_the_ring: bool,
    new_key: Callable[[int], str],
) -> tuple[list[SigningKey], list[Step]]:
    """At most one step of each kind: retire what has served its overlap, promote a published
    key once every pod verifies with it, publish a new key when the signing one is due (never
    while `interval` is None: rotation turned off finishes what it started, and starts nothing).
    An empty ring gets its first signing key."""
    if not ring:
        value = new_key(KEY_BYTES)
        return [SigningKey(key_id_for(value), value, "signing", now, now)], []
    keys, steps = list(ring), []
    for key in [k for k in keys if k.role == "retiring" and now - k.since >= refresh_ttl]:
        keys.remove(key)
        steps.append(Step("SigningKeyRetired", f"key {key.kid} no longer verifies tokens"))
    upcoming = [key for key in keys if key.role == "next"]
    current = signing(keys)
    if upcoming and every_pod_has_the_ring:
        (promoted,) = upcoming
        keys = [
            replace(key, role="retiring", since=now)
            if key is current
            else replace(key, role="signing", since=now)
            if key is promoted
            else key
            for key in keys
        ]
        steps.append(
            Step(
                "SigningKeyPromoted",
                f"key {promoted.kid} signs new tokens; {current.kid} verifies for "
                f"{_duration(refresh_ttl)} more",
            )
        )
    elif not upcoming and interval is not None and now - current.since >= interval:
        value = new_key(KEY_BYTES)
        kid = key_id_for(value)
        keys.append(SigningKey(kid, value, "next", now, now))
        steps.append(
            Step(
                "SigningKeyPublished", f"key {kid} verifies tokens; it signs once every pod has it"
            )
        )
    return keys, steps


def next_due(
    ring: Sequence[SigningKey], now: datetime, interval: timedelta | None, refresh_ttl: timedelta
) -> timedelta | None:
    """How long until the ring has a step to take by the clock alone (None: it has none, or it
    waits for the pods to roll)."""
    if any(key.role == "next" for key in ring):
        return None
    dues = [key.since + refresh_ttl for key in ring if key.role == "retiring"]
    if interval is not None:
        dues.append(signing(ring).since + interval)
    return max(min(dues) - now, timedelta(0)) if dues else None


def status(ring: Sequence[SigningKey]) -> list[dict[str, str]]:
    """status.signingKeys: each key's id, role and times (never its value)."""
    order: dict[Role, int] = {"signing": 0, "next": 1, "retiring": 2}
    return [
        {
            "kid": key.kid,
            "role": key.role,
            "createdAt": timestamp(key.created_at),
            "since": timestamp(key.since),
        }
        for key in sorted(ring, key=lambda k: (order[k.role], k.created_at))
    ]


def _duration(span: timedelta) -> str:
    """A duration as the spec's TTLs spell it, in the largest unit that divides it (`7d`)."""
    seconds = int(span.total_seconds())
    for unit, size in sorted(TTL_UNIT_SECONDS.items(), key=lambda item: -item[1]):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
