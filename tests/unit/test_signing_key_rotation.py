"""Signing-key rotation: the ring's steps, the Secret that carries them, and the reconcile that
takes them, with time under the test's control (a clock the reconciler reads)."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml

from taskmanager_api.core.config import key_id_for, load_settings
from taskmanager_api.core.security import KeyRing, TokenService, TokenType
from taskmanager_operator import signing_keys
from taskmanager_operator.builders.secrets import (
    JWT_PREVIOUS_KEYS,
    JWT_SIGNING_KEY,
    build_generated_secret,
    decode_secret_data,
)
from taskmanager_operator.reconcile import Outcome, Reconciler
from taskmanager_operator.resource import TaskManager
from taskmanager_operator.settings import OperatorSettings
from tests.support.fake_kube import FakeKube, settle
from tests.unit.test_reconcile import NS, REPOSITORY, SAMPLE, Cluster, FakeProbe

START = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
INTERVAL, REFRESH_TTL = 30 * DAY, 7 * DAY


@dataclass
class Keys:
    """A CSPRNG stand-in that hands out distinct, strong, recognisable keys."""

    made: list[str] = field(default_factory=list)

    def __call__(self, nbytes: int) -> str:
        value = f"key-{len(self.made):02d}-" + "abcdefghijklmnopqrstuvwxyz0123456789"[: nbytes // 2]
        value = (value * 4)[: nbytes + 16]
        self.made.append(value)
        return value


def advance(
    ring: list[signing_keys.SigningKey], now: datetime, *, rolled: bool, keys: Keys
) -> tuple[list[signing_keys.SigningKey], list[str]]:
    ring, steps = signing_keys.advance(
        ring,
        now=now,
        interval=INTERVAL,
        refresh_ttl=REFRESH_TTL,
        every_pod_has_the_ring=rolled,
        new_key=keys,
    )
    return ring, [step.reason for step in steps]


def roles(ring: list[signing_keys.SigningKey]) -> list[tuple[str, str]]:
    return sorted((key.kid, key.role) for key in ring)


def test_a_key_is_published_then_promoted_then_retired() -> None:
    keys = Keys()
    ring, steps = advance([], START, rolled=True, keys=keys)
    (first,) = ring
    assert (first.role, steps) == ("signing", [])

    ring, steps = advance(ring, START + INTERVAL - timedelta(seconds=1), rolled=True, keys=keys)
    assert (len(ring), steps) == (1, []), "not due yet"

    published_at = START + INTERVAL
    ring, steps = advance(ring, published_at, rolled=True, keys=keys)
    second = key_id_for(keys.made[1])
    assert steps == ["SigningKeyPublished"]
    assert roles(ring) == sorted([(first.kid, "signing"), (second, "next")])

    # Until every pod verifies with the new key, the old one keeps signing.
    ring, steps = advance(ring, published_at + DAY, rolled=False, keys=keys)
    assert (steps, signing_keys.signing(ring).kid) == ([], first.kid)

    promoted_at = published_at + DAY
    ring, steps = advance(ring, promoted_at, rolled=True, keys=keys)
    assert steps == ["SigningKeyPromoted"]
    assert roles(ring) == sorted([(first.kid, "retiring"), (second, "signing")])
    assert signing_keys.verification_keys(ring) == {first.kid: first.value}

    ring, steps = advance(
        ring, promoted_at + REFRESH_TTL - timedelta(seconds=1), rolled=True, keys=keys
    )
    assert steps == [], "the old key verifies for the whole refresh-token TTL"
    ring, steps = advance(ring, promoted_at + REFRESH_TTL, rolled=True, keys=keys)
    assert steps == ["SigningKeyRetired"]
    assert roles(ring) == [(second, "signing")]


def test_the_clock_says_when_to_look_again() -> None:
    keys = Keys()
    ring, _ = advance([], START, rolled=True, keys=keys)
    assert signing_keys.next_due(ring, START + DAY, INTERVAL, REFRESH_TTL) == INTERVAL - DAY
    ring, _ = advance(ring, START + INTERVAL, rolled=True, keys=keys)
    assert signing_keys.next_due(ring, START + INTERVAL, INTERVAL, REFRESH_TTL) is None, (
        "a published key waits for the pods, not for the clock"
    )
    ring, _ = advance(ring, START + INTERVAL, rolled=True, keys=keys)
    due = signing_keys.next_due(ring, START + INTERVAL + DAY, INTERVAL, REFRESH_TTL)
    assert due == REFRESH_TTL - DAY
    # Rotation turned off: only the retiring key's end is still due.
    assert signing_keys.next_due(ring, START + INTERVAL, None, REFRESH_TTL) == REFRESH_TTL


def test_the_ring_round_trips_through_the_secret_and_never_shows_a_key() -> None:
    keys = Keys()
    ring, _ = advance([], START, rolled=True, keys=keys)
    ring, _ = advance(ring, START + INTERVAL, rolled=True, keys=keys)
    tm = TaskManager.from_body(
        {
            "apiVersion": "taskmanager.dev/v1alpha1",
            "kind": "TaskManager",
            "metadata": {"name": "demo", "namespace": NS, "uid": "u", "generation": 1},
            "spec": {"auth": {"signingKeyRotation": {"interval": "30d"}}},
        }
    )
    secret = build_generated_secret(tm, {}, keys, ring)
    assert secret is not None
    data = decode_secret_data(secret["data"])
    assert data[JWT_SIGNING_KEY] == keys.made[0]
    assert json.loads(data[JWT_PREVIOUS_KEYS]) == {key_id_for(keys.made[1]): keys.made[1]}
    recorded = secret["metadata"]["annotations"][signing_keys.RING_ANNOTATION]
    shown = json.dumps(signing_keys.status(ring)) + recorded
    assert not [value for value in keys.made if value in shown]
    again = signing_keys.read_ring(
        data[JWT_SIGNING_KEY], json.loads(data[JWT_PREVIOUS_KEYS]), recorded, START + 5 * DAY
    )
    assert again == ring


def test_a_secret_from_before_rotation_starts_the_ring_with_its_key() -> None:
    ring = signing_keys.read_ring("an-existing-key-" * 4, {}, None, START)
    assert [(key.role, key.created_at) for key in ring] == [("signing", START)]


def test_the_api_verifies_every_key_of_the_ring_and_signs_with_one(tmp_path: Path) -> None:
    """What a pod reads from the Secret's files: tokens from a pod still signing with the old key
    verify on a pod signing with the new one, and the other way round."""
    keys = Keys()
    ring, _ = advance([], START, rolled=True, keys=keys)
    before = token_service(tmp_path / "before", ring)
    ring, _ = advance(ring, START + INTERVAL, rolled=True, keys=keys)
    published = token_service(tmp_path / "published", ring)
    ring, _ = advance(ring, START + INTERVAL, rolled=True, keys=keys)
    promoted = token_service(tmp_path / "promoted", ring)

    old_token, _ = before.issue(uuid.uuid4(), TokenType.ACCESS, family="f")
    new_token, _ = promoted.issue(uuid.uuid4(), TokenType.ACCESS, family="f")
    assert jwt.get_unverified_header(new_token)["kid"] == key_id_for(keys.made[1])
    for service in (published, promoted):
        service.decode(old_token, TokenType.ACCESS)
    published.decode(new_token, TokenType.ACCESS)


def token_service(directory: Path, ring: list[signing_keys.SigningKey]) -> TokenService:
    directory.mkdir()
    (directory / JWT_SIGNING_KEY).write_text(signing_keys.signing(ring).value)
    if previous := signing_keys.verification_keys(ring):
        (directory / JWT_PREVIOUS_KEYS).write_text(json.dumps(previous))
    settings = load_settings(_secrets_dir=str(directory), environment="development")
    assert KeyRing.from_settings(settings).verification_keys.keys() == {k.kid for k in ring}
    return TokenService.from_settings(settings)


# -- the reconcile ------------------------------------------------------------------------------


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


def rotating(clock: Clock, keys: Keys) -> Cluster:
    kube, probe = FakeKube(), FakeProbe()
    reconciler = Reconciler(
        kube,
        OperatorSettings(image_repository=REPOSITORY),
        redis_probe=probe,
        clock=clock,
        new_key=keys,
    )
    cluster = Cluster(kube, probe, reconciler)
    sample = yaml.safe_load(SAMPLE.read_text())
    auth = {**sample["spec"]["auth"], "signingKeyRotation": {"interval": "30d"}}
    kube.create_taskmanager(NS, "demo", {**sample["spec"], "auth": auth})
    cluster.bring_up("demo")
    return cluster


def secret_data(cluster: Cluster) -> dict[str, str]:
    return decode_secret_data(cluster.generated_secrets("demo"))


def rotation_events(outcome: Outcome) -> list[str]:
    return [event.reason for event in outcome.events if event.reason.startswith("SigningKey")]


def checksum_of_pods(cluster: Cluster) -> Any:
    return cluster.deployment("demo-api")["spec"]["template"]["metadata"]["annotations"]


def test_the_reconcile_rotates_without_a_moment_when_a_pod_lacks_a_key() -> None:
    clock, keys = Clock(), Keys()
    cluster = rotating(clock, keys)
    first = key_id_for(secret_data(cluster)[JWT_SIGNING_KEY])
    assert [(k["kid"], k["role"]) for k in cluster.status("demo")["signingKeys"]] == [
        (first, "signing")
    ]
    assert cluster.reconcile("demo").requeue_after == pytest.approx(INTERVAL.total_seconds())

    clock.now = START + INTERVAL
    rolled_before = checksum_of_pods(cluster)
    outcome = cluster.reconcile("demo")
    assert rotation_events(outcome) == ["SigningKeyPublished"]
    second = key_id_for(keys.made[-1])
    assert key_id_for(secret_data(cluster)[JWT_SIGNING_KEY]) == first
    assert json.loads(secret_data(cluster)[JWT_PREVIOUS_KEYS]) == {second: keys.made[-1]}
    assert checksum_of_pods(cluster) != rolled_before, "the pods roll to get the new key"

    # The pods have not rolled yet: the old key keeps signing, and the operator looks again soon.
    outcome = cluster.reconcile("demo")
    assert not rotation_events(outcome)
    assert key_id_for(secret_data(cluster)[JWT_SIGNING_KEY]) == first
    assert outcome.requeue_after == cluster.reconciler.settings.progress_poll_seconds

    settle(cluster.kube, NS)
    clock.now += timedelta(minutes=1)
    outcome = cluster.reconcile("demo")
    assert rotation_events(outcome) == ["SigningKeyPromoted"]
    assert key_id_for(secret_data(cluster)[JWT_SIGNING_KEY]) == second
    assert set(json.loads(secret_data(cluster)[JWT_PREVIOUS_KEYS])) == {first}
    assert [(k["kid"], k["role"]) for k in cluster.status("demo")["signingKeys"]] == [
        (second, "signing"),
        (first, "retiring"),
    ]

    settle(cluster.kube, NS)
    clock.now += REFRESH_TTL
    outcome = cluster.reconcile("demo")
    assert rotation_events(outcome) == ["SigningKeyRetired"]
    assert JWT_PREVIOUS_KEYS not in secret_data(cluster)
    assert [k["kid"] for k in cluster.status("demo")["signingKeys"]] == [second]


def test_a_users_own_signing_key_is_never_rotated() -> None:
    clock, keys = Clock(), Keys()
    cluster = rotating(clock, keys)
    cluster.kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "jwt", "namespace": NS},
            "data": {"key": base64.b64encode(b"user-key-" * 8).decode()},
        }
    )
    sample = yaml.safe_load(SAMPLE.read_text())
    cluster.patch_spec(
        "demo",
        {"auth": {**sample["spec"]["auth"], "signingKeySecretRef": {"name": "jwt", "key": "key"}}},
    )
    clock.now = START + 2 * INTERVAL
    outcome = cluster.reconcile("demo")
    assert not rotation_events(outcome)
    assert JWT_SIGNING_KEY not in secret_data(cluster)
    assert "signingKeys" not in cluster.status("demo")


def test_the_api_pods_read_the_verification_keys_whenever_the_secret_has_them() -> None:
    """The rotation's verification keys reach the pods as a file beside the signing key; the
    Secret has them only while a rotation overlaps, so the pods must start without them."""
    clock, keys = Clock(), Keys()
    cluster = rotating(clock, keys)
    volume = next(
        v
        for v in cluster.deployment("demo-api")["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "secrets"
    )
    mounted = {
        item["key"]: source["secret"].get("optional", False)
        for source in volume["projected"]["sources"]
        for item in source["secret"]["items"]
        if source["secret"]["name"] == "demo-secrets"
    }
    assert mounted[JWT_SIGNING_KEY] is False
    assert mounted[JWT_PREVIOUS_KEYS] is True
