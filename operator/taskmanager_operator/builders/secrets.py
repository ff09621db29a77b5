"""The Secret the operator generates: JWT signing key and credentials of managed services.

Values are created once with a CSPRNG and carried over from the existing Secret on every
reconcile, so they never change under running pods; they never appear in logs or ConfigMaps.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import quote

from kubernetes.utils import parse_quantity

from taskmanager_api.core.redis_policy import RECOMMENDED_POLICY
from taskmanager_operator import signing_keys
from taskmanager_operator.api.v1alpha1 import REDIS_MAXMEMORY_PERCENT, ManagedRedis
from taskmanager_operator.builders.common import (
    API,
    POSTGRES_PORT,
    REDIS_PORT,
    Manifest,
    cache_name,
    database_name,
    generated_secret_name,
    metadata,
)
from taskmanager_operator.builders.config import setting
from taskmanager_operator.resource import TaskManager

# Keys of the Secret and names of the files the API reads them from (TASKMANAGER_SECRETS_DIR).
JWT_SIGNING_KEY = setting("jwt_signing_key")
JWT_PREVIOUS_KEYS = setting("jwt_previous_keys")
DATABASE_URL = setting("database_url")
REDIS_URL = setting("redis_url")
POSTGRES_PASSWORD = "POSTGRES_PASSWORD"  # noqa: S105 - a key name
REDIS_PASSWORD = "REDIS_PASSWORD"  # noqa: S105 - a key name
# Redis reads its password from its config file: on the command line `ps` would show it.
REDIS_CONFIG = "redis.conf"
POSTGRES_USER = "taskmanager"
POSTGRES_DB = "taskmanager"

TokenFactory = Callable[[int], str]
# Redis's `mb` is a mebibyte.
MIB = 1024 * 1024


def _generated_values(
    tm: TaskManager,
    existing: Mapping[str, str],
    token: TokenFactory,
    ring: Sequence[signing_keys.SigningKey],
) -> dict[str, str]:
    def keep_or_new(key: str, nbytes: int) -> str:
        return existing.get(key) or token(nbytes)

    values: dict[str, str] = {}
    if tm.spec.auth.signing_key_secret_ref is None and ring:
        values[JWT_SIGNING_KEY] = signing_keys.signing(ring).value
        if verifying := signing_keys.verification_keys(ring):
            values[JWT_PREVIOUS_KEYS] = json.dumps(verifying, separators=(",", ":"))
    elif tm.spec.auth.signing_key_secret_ref is None:
        values[JWT_SIGNING_KEY] = keep_or_new(JWT_SIGNING_KEY, signing_keys.KEY_BYTES)
    if tm.spec.database.managed is not None:
        password = keep_or_new(POSTGRES_PASSWORD, 24)
        values[POSTGRES_PASSWORD] = password
        host = f"{database_name(tm)}.{tm.namespace}.svc"
        values[DATABASE_URL] = (
            f"postgresql+asyncpg://{POSTGRES_USER}:{quote(password, safe='')}"
            f"@{host}:{POSTGRES_PORT}/{POSTGRES_DB}"
        )
    if tm.spec.redis.managed is not None:
        password = keep_or_new(REDIS_PASSWORD, 24)
        values[REDIS_PASSWORD] = password
        host = f"{cache_name(tm)}.{tm.namespace}.svc"
        values[REDIS_URL] = f"redis://:{quote(password, safe='')}@{host}:{REDIS_PORT}/0"
        values[REDIS_CONFIG] = _redis_config(password, tm.spec.redis.managed)
    return values


def _redis_config(password: str, managed: ManagedRedis) -> str:
    return f"requirepass {password}\n{redis_settings(managed)}"


def redis_maxmemory_mib(managed: ManagedRedis) -> int:
    """How much Redis fills with data before it evicts: a share of its container's memory limit,
    the rest left for Redis's own overhead (client buffers, fragmentation)."""
    limit_bytes = int(parse_quantity(managed.resources.limits.memory))
    return limit_bytes * REDIS_MAXMEMORY_PERCENT // 100 // MIB


def redis_settings(managed: ManagedRedis) -> str:
    """The managed Redis's config apart from its password: what its pods' checksum covers."""
    return (
        f"port {REDIS_PORT}\n"
        # No persistence: the durable record of revocations is in the database, and the API
        # reloads them into an empty Redis after a restart; the rest is cache and rate limits.
        'save ""\nappendonly no\n'
        "protected-mode no\n"
        # Below the container's memory limit, so Redis evicts before it is OOM-killed; and it
        # evicts only keys with a TTL (cache, rate limits), never the revocation set.
        f"maxmemory {redis_maxmemory_mib(managed)}mb\n"
        f"maxmemory-policy {RECOMMENDED_POLICY}\n"
    )


def build_generated_secret(
    tm: TaskManager,
    existing: Mapping[str, str] | None = None,
    token: TokenFactory = secrets.token_urlsafe,
    ring: Sequence[signing_keys.SigningKey] = (),
) -> Manifest | None:
    """The generated Secret, or None when every secret value comes from the user's Secrets.

    `existing` is the decoded data of the Secret as it is now, so generated values are kept.
    `ring`, while the signing key rotates, gives the signing and verification keys, and the
    annotation that records them.
    """
    values = _generated_values(tm, existing or {}, token, ring)
    if not values:
        return None
    secret_metadata = metadata(tm, generated_secret_name(tm), API)
    if ring:
        secret_metadata["annotations"] = {
            signing_keys.RING_ANNOTATION: signing_keys.annotation(ring)
        }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": secret_metadata,
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in values.items()},
    }


def decode_secret_data(data: Mapping[str, str] | None) -> dict[str, str]:
    """A Secret's `data` as text."""
    return {key: base64.b64decode(value).decode() for key, value in (data or {}).items()}
