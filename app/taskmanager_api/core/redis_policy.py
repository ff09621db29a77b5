"""Which Redis eviction policies keep the revocation set, read by the API and by the operator.

The API keeps revoked sessions in one Redis key without a TTL (the durable record is in the
database). Under a `volatile-*` policy or `noeviction` Redis never evicts a key without a TTL, so
only the cache and rate-limit keys (which all have one) make room. An `allkeys-*` policy may evict
the revocation set itself: the API notices (the set's marker goes with it) and reloads it from
the database, so nothing revoked comes back, but every such eviction costs each replica a reload
and sends requests to the database until it is done.
"""

from __future__ import annotations

# The policy of the Redis the operator manages: evict the least recently used key that has a TTL.
RECOMMENDED_POLICY = "volatile-lru"

# maxmemory-policy values under which Redis may evict a key that has no TTL.
EVICTS_KEYS_WITHOUT_TTL = frozenset({"allkeys-lru", "allkeys-lfu", "allkeys-random"})


def evicts_revocations(policy: str) -> bool:
    """True when a Redis with this maxmemory-policy may evict the revocation set."""
    return policy.strip().lower() in EVICTS_KEYS_WITHOUT_TTL


def policy_warning(policy: str) -> str | None:
    """What an admin should read about this policy, or None when it is safe."""
    if not evicts_revocations(policy):
        return None
    return (
        f"Redis evicts keys without a TTL (maxmemory-policy {policy}): the revocation set can be "
        "evicted, and every eviction makes each API replica reload it from the database; "
        f"set maxmemory-policy to {RECOMMENDED_POLICY}"
    )
