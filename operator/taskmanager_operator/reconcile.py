"""The level-based reconcile: read the TaskManager and its children, apply what should be, observe
what is, and write status only when it differs.

Whatever state a reconcile starts from (fresh, half-built, after an operator restart), it moves
the cluster toward the spec; nothing depends on remembering what an earlier run did.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from taskmanager_operator import status as st
from taskmanager_operator.api.v1alpha1 import SecretKeyRef
from taskmanager_operator.builders import api, config, managed, migration
from taskmanager_operator.builders import secrets as secret_builder
from taskmanager_operator.builders.common import (
    API,
    Manifest,
    api_name,
    cache_name,
    checksum,
    database_name,
    generated_secret_name,
    image,
    selector_labels,
)
from taskmanager_operator.children import optional_children
from taskmanager_operator.k8s import KubeApi, Object
from taskmanager_operator.redis_probe import CachedPolicyProbe, PolicyProbe, eviction_condition
from taskmanager_operator.resource import TaskManager
from taskmanager_operator.settings import OperatorSettings

logger = logging.getLogger(__name__)

REDIS_URL_REF = "spec.redis.external.urlSecretRef"
# A condition entering one of these (type, status) posts a Warning event with its reason.
WARNED_STATES = frozenset({(st.DEGRADED, "True"), (st.CACHE_EVICTION_SAFE, "False")})


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


@dataclass
class Observed:
    conditions: list[st.Condition] = field(default_factory=list)
    replicas: int | None = None
    ready_replicas: int | None = None
    version: str | None = None


@dataclass
class UserSecrets:
    """The user's Secret values the pods mount, as the reconcile found them."""

    # Digest per Secret key: a change rolls the pods.
    digests: dict[str, str] = field(default_factory=dict)
    # The base64 value per spec path (spec.redis.external.urlSecretRef, ...).
    values: dict[str, str] = field(default_factory=dict)
    # (reason, message) per reference that cannot be read.
    missing: list[tuple[str, str]] = field(default_factory=list)


class Reconciler:
    def __init__(
        self, kube: KubeApi, settings: OperatorSettings, redis_probe: PolicyProbe | None = None
    ) -> None:
        self.kube = kube
        self.settings = settings
        if redis_probe is None:
            redis_probe = CachedPolicyProbe(settings.redis_probe_cache_seconds)
        self.redis_probe = redis_probe

    def reconcile(self, namespace: str, name: str) -> Outcome:
        body = self.kube.get_taskmanager(namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            # Its children go with it through their ownerReferences.
            return Outcome(exists=False)
        tm = TaskManager.from_body(body)
        outcome = Outcome(uid=tm.uid)
        observed = Observed()
        if tm.spec.paused:
            observed.conditions = [
                st.Condition(
                    st.PAUSED, "True", "Paused", "spec.paused is true: children are not changed"
                )
            ]
            keep = [
                st.Condition(c["type"], c["status"], c["reason"], c.get("message", ""))
                for c in (body.get("status") or {}).get("conditions", [])
                if c["type"] != st.PAUSED
            ]
            observed.conditions += keep
            self._write_status(tm, body, observed, outcome, phase="Paused")
            return outcome
        self._converge(tm, observed, outcome)
        self._write_status(tm, body, observed, outcome, phase=_phase(observed.conditions))
        return outcome

    # -- convergence -------------------------------------------------------------------------

    def _apply(self, manifest: Manifest, outcome: Outcome) -> Object:
        result = self.kube.apply(manifest)
        if result.changed:
            verb = "Created" if result.created else "Updated"
            what = f"{manifest['kind']} {manifest['metadata']['name']}"
            outcome.events.append(Event("Normal", verb, f"{verb} {what}"))
            logger.info("%s %s in %s", verb.lower(), what, manifest["metadata"]["namespace"])
        return result.object

    def _converge(self, tm: TaskManager, observed: Observed, outcome: Outcome) -> None:
        user_secrets = self._referenced_secrets(tm)
        if missing := user_secrets.missing:
            observed.conditions += [
                st.Condition(
                    st.SECRETS_READY, "False", missing[0][0], "; ".join(m for _, m in missing)
                ),
                st.Condition(st.DEGRADED, "True", missing[0][0], missing[0][1]),
                st.Condition(st.READY, "False", missing[0][0], missing[0][1]),
            ]
            outcome.retry_reason = missing[0][1]
            return
        observed.conditions.append(st.Condition(st.SECRETS_READY, "True", "Found", ""))

        existing_secret = self.kube.get("v1", "Secret", tm.namespace, generated_secret_name(tm))
        generated = secret_builder.build_generated_secret(
            tm, secret_builder.decode_secret_data((existing_secret or {}).get("data"))
        )
        if generated is not None:
            self._apply(generated, outcome)
        else:
            self.kube.delete_owned("v1", "Secret", tm.namespace, generated_secret_name(tm), tm.uid)
        config_map = config.build_config_map(tm)
        self._apply(config_map, outcome)

        database_ready = self._converge_managed(
            tm, managed.build_postgres(tm), ("apps/v1", "StatefulSet", database_name(tm)), outcome
        )
        cache_ready = self._converge_managed(
            tm, managed.build_redis(tm), ("apps/v1", "Deployment", cache_name(tm)), outcome
        )
        observed.conditions.append(
            _readiness(
                st.DATABASE_READY,
                tm.spec.database.external is not None,
                database_ready,
                "PostgreSQL",
            )
        )
        observed.conditions.append(
            _readiness(st.CACHE_READY, tm.spec.redis.external is not None, cache_ready, "Redis")
        )
        observed.conditions.append(self._cache_eviction(user_secrets.values.get(REDIS_URL_REF)))

        rollout_checksum = checksum(
            config_map["data"], (generated or {}).get("data"), user_secrets.digests
        )
        current = self.kube.get("apps/v1", "Deployment", tm.namespace, api_name(tm))
        serving_image = self._converge_migration(tm, current, observed, outcome, database_ready)
        deployment: Object | None = None
        if current is not None and tm.spec.autoscaling.enabled:
            self.kube.hand_over_replicas(current)
        if serving_image is not None:
            deployment = self._apply(
                api.build_deployment(tm, image=serving_image, rollout_checksum=rollout_checksum),
                outcome,
            )
        self._apply(api.build_service(tm), outcome)
        self._converge_optional(tm, outcome)
        self._observe_api(tm, deployment, serving_image, observed, outcome)

    def _referenced_secrets(self, tm: TaskManager) -> UserSecrets:
        """The user's Secret values the pods mount, and the references that cannot be read."""
        refs: dict[str, SecretKeyRef] = {}
        spec = tm.spec
        if spec.auth.signing_key_secret_ref is not None:
            refs["spec.auth.signingKeySecretRef"] = spec.auth.signing_key_secret_ref
        if spec.database.external is not None:
            refs["spec.database.external.urlSecretRef"] = spec.database.external.url_secret_ref
        if spec.redis.external is not None:
            refs[REDIS_URL_REF] = spec.redis.external.url_secret_ref
        found = UserSecrets()
        for path, ref in refs.items():
            secret = self.kube.get("v1", "Secret", tm.namespace, ref.name)
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

    def _cache_eviction(self, encoded_url: str | None) -> st.Condition:
        """CacheEvictionSafe: an external Redis is asked for its policy; ours has a safe one."""
        if encoded_url is None:
            return eviction_condition(None)
        # Undecodable bytes make a URL that fails to connect: reported, not a failed reconcile.
        url = base64.b64decode(encoded_url).decode(errors="replace")
        return eviction_condition(self.redis_probe(url))

    def _converge_managed(
        self,
        tm: TaskManager,
        manifests: list[Manifest],
        workload: tuple[str, str, str],
        outcome: Outcome,
    ) -> bool:
        """Apply a managed service, or remove it when the spec points at an external one."""
        api_version, kind, name = workload
        if not manifests:
            self.kube.delete_owned(api_version, kind, tm.namespace, name, tm.uid)
            self.kube.delete_owned("v1", "Service", tm.namespace, name, tm.uid)
            return True
        applied = [self._apply(manifest, outcome) for manifest in manifests]
        workload_status = applied[0].get("status") or {}
        return int(workload_status.get("readyReplicas") or 0) >= 1

    def _converge_migration(
        self,
        tm: TaskManager,
        current: Object | None,
        observed: Observed,
        outcome: Outcome,
        database_ready: bool,
    ) -> str | None:
        """The image the Deployment may run: the new one only once its migration Job completed."""
        desired = image(tm, self.settings.image_repository)
        current_image = _api_image(current)
        if current_image == desired:
            observed.conditions.append(
                st.Condition(
                    st.MIGRATIONS_APPLIED, "True", "UpToDate", f"schema migrated for {desired}"
                )
            )
            return desired
        if not database_ready:
            observed.conditions.append(
                st.Condition(
                    st.MIGRATIONS_APPLIED,
                    "False",
                    "WaitingForDatabase",
                    "the database is not ready yet",
                )
            )
            return current_image
        job_name = migration.migration_job_name(tm, desired)
        job = self.kube.get("batch/v1", "Job", tm.namespace, job_name)
        if job is None:
            # A Job's pod template cannot change: it is created once per image, never re-applied.
            self._apply(migration.build_migration_job(tm, image=desired), outcome)
            state = "Running"
        else:
            state = _job_state(job)
        if state == "Complete":
            observed.conditions.append(
                st.Condition(
                    st.MIGRATIONS_APPLIED,
                    "True",
                    "MigrationSucceeded",
                    f"Job {job_name} migrated the schema for {desired}",
                )
            )
            return desired
        if state == "Failed":
            message = (
                f"Job {job_name} failed to migrate the schema for {desired}; "
                + (f"{current_image} keeps serving" if current_image else "nothing is serving yet")
                + f" (kubectl logs job/{job_name}; delete the Job to retry)"
            )
            observed.conditions.append(
                st.Condition(st.MIGRATIONS_APPLIED, "False", "MigrationFailed", message)
            )
            observed.conditions.append(
                st.Condition(st.DEGRADED, "True", "MigrationFailed", message)
            )
            return current_image
        observed.conditions.append(
            st.Condition(
                st.MIGRATIONS_APPLIED,
                "False",
                "MigrationRunning",
                f"Job {job_name} is migrating the schema for {desired}",
            )
        )
        outcome.requeue_after = self.settings.progress_poll_seconds
        return current_image

    def _converge_optional(self, tm: TaskManager, outcome: Outcome) -> None:
        """Apply each optional child the spec asks for; delete the ones it no longer wants."""
        for child, when in optional_children():
            manifest = when.build(tm)
            if manifest is not None:
                self._apply(manifest, outcome)
                continue
            name = when.name(tm)
            if self.kube.delete_owned(child.api_version, child.kind, tm.namespace, name, tm.uid):
                outcome.events.append(Event("Normal", "Deleted", f"Deleted {child.kind} {name}"))

    def _observe_api(
        self,
        tm: TaskManager,
        deployment: Object | None,
        serving_image: str | None,
        observed: Observed,
        outcome: Outcome,
    ) -> None:
        if deployment is None:
            observed.conditions.append(
                st.Condition(
                    st.PROGRESSING,
                    "True",
                    "WaitingForMigration",
                    "the API starts once the schema is migrated",
                )
            )
            observed.conditions.append(
                st.Condition(st.READY, "False", "WaitingForMigration", "the API is not running yet")
            )
            return
        spec = deployment.get("spec") or {}
        status = deployment.get("status") or {}
        wanted = int(spec.get("replicas") or 0)
        ready = int(status.get("readyReplicas") or 0)
        updated = int(status.get("updatedReplicas") or 0)
        total = int(status.get("replicas") or 0)
        observed.replicas = total
        observed.ready_replicas = ready
        rolled_out = (
            int(status.get("observedGeneration") or 0)
            >= int(deployment["metadata"].get("generation") or 0)
            and updated == wanted
            and total == wanted
            and ready >= wanted
        )
        desired_image = image(tm, self.settings.image_repository)
        on_desired = serving_image == desired_image
        if rolled_out:
            observed.version = tm.spec.version if on_desired else _version_of(serving_image)
        if rolled_out and on_desired:
            observed.conditions.append(
                st.Condition(
                    st.PROGRESSING,
                    "False",
                    "RolloutComplete",
                    f"{ready}/{wanted} API pods ready on {desired_image}",
                )
            )
        else:
            observed.conditions.append(
                st.Condition(
                    st.PROGRESSING,
                    "True",
                    "RollingOut",
                    f"{updated}/{wanted} API pods updated, {ready} ready",
                )
            )
            outcome.requeue_after = self.settings.progress_poll_seconds
        degraded = any(c.type == st.DEGRADED for c in observed.conditions)
        if rolled_out and on_desired and not degraded:
            observed.conditions.append(
                st.Condition(st.READY, "True", "Ready", f"{ready}/{wanted} API pods ready")
            )
        elif degraded:
            reason = next(c.reason for c in observed.conditions if c.type == st.DEGRADED)
            observed.conditions.append(
                st.Condition(st.READY, "False", reason, f"{ready}/{wanted} API pods ready")
            )
        else:
            observed.conditions.append(
                st.Condition(st.READY, "False", "RollingOut", f"{ready}/{wanted} API pods ready")
            )
        if not degraded:
            observed.conditions.append(st.Condition(st.DEGRADED, "False", "AsExpected", ""))

    # -- status ------------------------------------------------------------------------------

    def _write_status(
        self, tm: TaskManager, body: Object, observed: Observed, outcome: Outcome, phase: str
    ) -> None:
        previous = body.get("status") or {}
        previous_conditions = previous.get("conditions") or []
        outcome.events += condition_events(previous_conditions, observed.conditions)
        status: dict[str, Any] = {
            "observedGeneration": tm.generation,
            "phase": phase,
            "conditions": st.merge_conditions(
                previous_conditions, observed.conditions, tm.generation
            ),
            "selector": ",".join(f"{k}={v}" for k, v in selector_labels(tm, API).items()),
            "endpoint": api.endpoint(tm),
        }
        if observed.replicas is not None:
            status["replicas"] = observed.replicas
            status["readyReplicas"] = observed.ready_replicas
        else:
            status["replicas"] = previous.get("replicas", 0)
            status["readyReplicas"] = previous.get("readyReplicas", 0)
        status["version"] = observed.version or previous.get("version")
        status = {key: value for key, value in status.items() if value is not None}
        if phase == "Paused":
            status["replicas"] = previous.get("replicas", 0)
            status["readyReplicas"] = previous.get("readyReplicas", 0)
        if _same_status(previous, status):
            return
        self.kube.patch_taskmanager_status(tm.namespace, tm.name, status)


def condition_events(
    previous: Sequence[Mapping[str, Any]], current: Sequence[st.Condition]
) -> list[Event]:
    """The events a status change deserves: one per condition that moved to a notable state."""
    events: list[Event] = []
    for condition in st.transitions(previous, current):
        if (condition.type, condition.status) in WARNED_STATES:
            events.append(Event("Warning", condition.reason, condition.message))
        elif condition.type == st.READY and condition.status == "True":
            events.append(Event("Normal", "Ready", condition.message))
        elif condition.type == st.PAUSED:
            events.append(Event("Normal", "Paused", condition.message))
    return events


def _same_status(previous: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    return {k: previous.get(k) for k in current} == dict(current) and set(previous) <= set(current)


def _readiness(kind: str, external: bool, ready: bool, what: str) -> st.Condition:
    if external:
        return st.Condition(kind, "True", "External", f"an external {what} is configured")
    if ready:
        return st.Condition(kind, "True", "Ready", f"the managed {what} is ready")
    return st.Condition(kind, "False", "NotReady", f"the managed {what} is starting")


def _api_image(deployment: Object | None) -> str | None:
    if deployment is None:
        return None
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next((str(c["image"]) for c in containers if c["name"] == "api"), None)


def _job_state(job: Object) -> str:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in {"Complete", "Failed"}:
            return str(condition["type"])
    return "Running"


def _version_of(image_ref: str | None) -> str | None:
    if image_ref is None or ":" not in image_ref.rsplit("/", 1)[-1]:
        return None
    return image_ref.rsplit(":", 1)[-1]


def _phase(conditions: list[st.Condition]) -> str:
    by_type = {c.type: c for c in conditions}
    if (degraded := by_type.get(st.DEGRADED)) and degraded.status == "True":
        return "Degraded"
    if (ready := by_type.get(st.READY)) and ready.status == "True":
        return "Ready"
    if (progressing := by_type.get(st.PROGRESSING)) and progressing.status == "True":
        return "Progressing"
    return "Pending"
