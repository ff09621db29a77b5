"""CacheEvictionSafe: what each reading of Redis's maxmemory-policy makes of the condition, the
probe's cache, and the one Warning event a transition to False posts."""

from __future__ import annotations

import pytest

from taskmanager_api.core.redis_policy import RECOMMENDED_POLICY, policy_warning
from taskmanager_operator import status as st
from taskmanager_operator.reconcile import condition_events
from taskmanager_operator.redis_probe import CachedPolicyProbe, PolicyReading, eviction_condition


def test_the_managed_redis_is_safe_and_says_its_policy() -> None:
    condition = eviction_condition(None)
    assert (condition.type, condition.status, condition.reason) == (
        "CacheEvictionSafe",
        "True",
        "Managed",
    )
    assert RECOMMENDED_POLICY in condition.message


@pytest.mark.parametrize("policy", ["volatile-lru", "volatile-ttl", "noeviction"])
def test_an_external_redis_that_keeps_keys_without_ttl_is_safe(policy: str) -> None:
    condition = eviction_condition(PolicyReading(policy=policy))
    assert (condition.status, condition.reason) == ("True", "KeepsKeysWithoutTTL")
    assert policy in condition.message


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random"])
def test_an_external_redis_that_evicts_any_key_is_not(policy: str) -> None:
    condition = eviction_condition(PolicyReading(policy=policy))
    assert (condition.status, condition.reason) == ("False", "EvictsRevocations")
    assert condition.message == policy_warning(policy)


def test_an_unreadable_redis_is_unknown_and_named_by_its_error_type() -> None:
    condition = eviction_condition(PolicyReading(error="ConnectionError"))
    assert (condition.status, condition.reason) == ("Unknown", "Unreachable")
    assert "ConnectionError" in condition.message


class FakeRead:
    def __init__(self, policy: str) -> None:
        self.policy = policy
        self.urls: list[str] = []

    def __call__(self, url: str) -> PolicyReading:
        self.urls.append(url)
        return PolicyReading(policy=self.policy)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_probe_reads_each_url_once_per_ttl() -> None:
    read, clock = FakeRead("allkeys-lru"), Clock()
    probe = CachedPolicyProbe(60, read=read, clock=clock)
    assert {probe("redis://a") for _ in range(5)} == {PolicyReading(policy="allkeys-lru")}
    probe("redis://b")
    assert read.urls == ["redis://a", "redis://b"]

    read.policy = "volatile-lru"
    clock.now += 59
    assert probe("redis://a").policy == "allkeys-lru", "still cached"
    clock.now += 2
    assert probe("redis://a").policy == "volatile-lru"
    assert read.urls == ["redis://a", "redis://b", "redis://a"]


def test_a_zero_ttl_reads_every_time() -> None:
    read = FakeRead("noeviction")
    probe = CachedPolicyProbe(0, read=read, clock=Clock())
    probe("redis://a")
    probe("redis://a")
    assert len(read.urls) == 2


UNSAFE = eviction_condition(PolicyReading(policy="allkeys-lru"))
SAFE = eviction_condition(PolicyReading(policy="volatile-lru"))
UNKNOWN = eviction_condition(PolicyReading(error="TimeoutError"))


def as_status(condition: st.Condition) -> dict[str, str]:
    return {"type": condition.type, "status": condition.status, "reason": condition.reason}


@pytest.mark.parametrize("before", [None, SAFE, UNKNOWN])
def test_turning_unsafe_posts_one_warning(before: st.Condition | None) -> None:
    previous = [as_status(before)] if before else []
    events = condition_events(previous, [UNSAFE])
    assert [(e.type, e.reason, e.message) for e in events] == [
        ("Warning", "EvictsRevocations", UNSAFE.message)
    ]


@pytest.mark.parametrize(
    ("before", "after"),
    [(UNSAFE, UNSAFE), (UNSAFE, SAFE), (SAFE, UNKNOWN), (None, SAFE), (None, UNKNOWN)],
)
def test_staying_unsafe_or_any_other_state_posts_nothing(
    before: st.Condition | None, after: st.Condition
) -> None:
    previous = [as_status(before)] if before else []
    assert condition_events(previous, [after]) == []
