"""The signing-key rotation step of a reconcile: the ring the generated Secret should hold now.

The decisions are signing_keys.advance's; this reads the Secret's current state for it and says
when to look again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from taskmanager_operator import signing_keys
from taskmanager_operator.api.v1alpha1 import ttl_timedelta
from taskmanager_operator.builders.secrets import JWT_PREVIOUS_KEYS, JWT_SIGNING_KEY
from taskmanager_operator.k8s import Object
from taskmanager_operator.resource import TaskManager


@dataclass
class Rotation:
    # The keys for the generated Secret; empty when the signing key does not rotate.
    ring: list[signing_keys.SigningKey] = field(default_factory=list)
    steps: list[signing_keys.Step] = field(default_factory=list)
    # When the clock alone brings the next step.
    due: timedelta | None = None


def rotate(
    tm: TaskManager,
    secret: Object | None,
    data: Mapping[str, str],
    *,
    every_pod_has_the_ring: bool,
    now: datetime,
    new_key: Callable[[int], str],
) -> Rotation:
    """The ring after this reconcile's step, for a TaskManager whose key rotates or did."""
    auth = tm.spec.auth
    recorded = ((secret or {}).get("metadata", {}).get("annotations") or {}).get(
        signing_keys.RING_ANNOTATION
    )
    if auth.signing_key_secret_ref is not None or (
        auth.signing_key_rotation is None and recorded is None
    ):
        return Rotation()
    interval = (
        ttl_timedelta(auth.signing_key_rotation.interval) if auth.signing_key_rotation else None
    )
    refresh_ttl = ttl_timedelta(auth.refresh_token_ttl)
    ring = signing_keys.read_ring(
        data.get(JWT_SIGNING_KEY), json.loads(data.get(JWT_PREVIOUS_KEYS) or "{}"), recorded, now
    )
    ring, steps = signing_keys.advance(
        ring,
        now=now,
        interval=interval,
        refresh_ttl=refresh_ttl,
        every_pod_has_the_ring=every_pod_has_the_ring,
        new_key=new_key,
    )
    if interval is None and len(ring) == 1:
        # Rotation is off and nothing is left in flight: the plain generated key again.
        return Rotation(steps=steps)
    return Rotation(ring, steps, signing_keys.next_due(ring, now, interval, refresh_ttl))
