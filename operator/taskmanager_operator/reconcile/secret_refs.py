"""The user's Secrets the spec refers to: read before anything is applied, because every pod
mounts them and a missing one is better reported than crash-looping."""

from __future__ import annotations

from dataclasses import dataclass, field

from taskmanager_operator import status as st
from taskmanager_operator.api.v1alpha1 import SecretKeyRef
from taskmanager_operator.builders.common import checksum
from taskmanager_operator.k8s import KubeApi
from taskmanager_operator.resource import TaskManager

REDIS_URL_REF = "spec.redis.external.urlSecretRef"


@dataclass
class UserSecrets:
    """The user's Secret values the pods mount, as the reconcile found them."""

    # Digest per Secret key: a change rolls the pods.
    digests: dict[str, str] = field(default_factory=dict)
    # The base64 value per spec path (spec.redis.external.urlSecretRef, ...).
    values: dict[str, str] = field(default_factory=dict)
    # (reason, message) per reference that cannot be read.
    missing: list[tuple[str, str]] = field(default_factory=list)


def secret_refs(tm: TaskManager) -> dict[str, SecretKeyRef]:
    """Each Secret reference of the spec, by its path in the spec."""
    refs: dict[str, SecretKeyRef] = {}
    spec = tm.spec
    if spec.auth.signing_key_secret_ref is not None:
        refs["spec.auth.signingKeySecretRef"] = spec.auth.signing_key_secret_ref
    if spec.database.external is not None:
        refs["spec.database.external.urlSecretRef"] = spec.database.external.url_secret_ref
    if spec.redis.external is not None:
        refs[REDIS_URL_REF] = spec.redis.external.url_secret_ref
    return refs


def read_user_secrets(kube: KubeApi, tm: TaskManager) -> UserSecrets:
    """The user's Secret values the pods mount, and the references that cannot be read."""
    found = UserSecrets()
    for path, ref in secret_refs(tm).items():
        secret = kube.get("v1", "Secret", tm.namespace, ref.name)
        if secret is None:
            found.missing.append(
                (
                    "SecretNotFound",
                    f"{path}: Secret {ref.name!r} not found in namespace {tm.namespace}",
                )
            )
        elif ref.key not in (secret.get("data") or {}):
            found.missing.append(
                ("SecretKeyNotFound", f"{path}: Secret {ref.name!r} has no key {ref.key!r}")
            )
        else:
            found.digests[f"{ref.name}/{ref.key}"] = checksum(secret["data"][ref.key])
            found.values[path] = secret["data"][ref.key]
    return found


def missing_conditions(missing: list[tuple[str, str]]) -> list[st.Condition]:
    """The conditions of a reconcile that stops at a missing Secret; the first one names why."""
    reason, message = missing[0]
    return [
        st.false(st.SECRETS_READY, reason, "; ".join(m for _, m in missing)),
        st.true(st.DEGRADED, reason, message),
        st.false(st.READY, reason, message),
    ]
