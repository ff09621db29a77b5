"""One reconcile of one TaskManager: spec -> desired -> apply -> observe -> status.

Whatever state a reconcile starts from (fresh, half-built, after an operator restart), it moves
the cluster toward the spec; nothing depends on remembering what an earlier run did.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from kubernetes.client.exceptions import ApiException

from taskmanager_operator import metrics, signing_keys
from taskmanager_operator import status as st
from taskmanager_operator.api.backups import RESTORE_PLURAL
from taskmanager_operator.backups.restore import quiescing_restore
from taskmanager_operator.builders import api, config, managed, migration
from taskmanager_operator.builders import secrets as secret_builder
from taskmanager_operator.builders.common import (
    API,
    api_name,
    cache_name,
    checksum,
    database_headless_name,
    database_name,
    generated_secret_name,
    image,
    selector_labels,
)
from taskmanager_operator.k8s import ApplyRefusedError, KubeApi, Object
from taskmanager_operator.reconcile import (
    exposure,
    key_rotation,
    migration_gate,
    monitoring,
    observe,
    pods,
)
from taskmanager_operator.reconcile.apply import Applier
from taskmanager_operator.reconcile.backups import (
    FINAL_BACKUP_FINALIZER,
    final_backup,
    observe_backups,
    pre_upgrade_backup,
    wants_final_backup,
)
from taskmanager_operator.reconcile.outcome import Event, Events, Observed, Outcome
from taskmanager_operator.reconcile.secret_refs import (
    REDIS_URL_REF,
    missing_conditions,
    read_user_secrets,
)
from taskmanager_operator.reconcile.status_writer import write_status
from taskmanager_operator.redis_probe import CachedPolicyProbe, PolicyProbe, eviction_condition
from taskmanager_operator.resource import TaskManager
from taskmanager_operator.settings import OperatorSettings


class Reconciler:
    def __init__(
        self,
        kube: KubeApi,
        settings: OperatorSettings,
        redis_probe: PolicyProbe | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_key: Callable[[int], str] = secrets.token_urlsafe,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.clock = clock
        self.new_key = new_key
        if redis_probe is None:
            redis_probe = CachedPolicyProbe(settings.redis_probe_cache_seconds)
        self.redis_probe = redis_probe

    def reconcile(self, namespace: str, name: str) -> Outcome:
        body = self.kube.get_taskmanager(namespace, name)
        if body is None:
            return Outcome(exists=False)
        tm = TaskManager.from_body(body)
        if body["metadata"].get("deletionTimestamp"):
            # Its children go with it through their ownerReferences; its final backup first.
            return self._deleting(tm, body)
        outcome = Outcome(uid=tm.uid)
        if tm.spec.paused:
            previous = (body.get("status") or {}).get("conditions", [])
            observed, phase = Observed(observe.paused(previous)), "Paused"
        else:
            try:
                restore = self._restore_holding(tm)
                # A restore holds the API at 0 pods: that is the desired state meanwhile.
                observed = self._converge(tm.quiesced() if restore else tm, outcome)
                if restore is not None:
                    observed.conditions = observe.restoring(observed.conditions, restore)
                created = datetime.fromisoformat(
                    body["metadata"]["creationTimestamp"].replace("Z", "+00:00")
                )
                self._backups(tm, created, observed, outcome)
            except ApplyRefusedError as refused:
                # Seen in the status and a Warning event (Degraded), then retried with backoff.
                previous = (body.get("status") or {}).get("conditions", [])
                observed = Observed(
                    observe.apply_failed(previous, str(refused)), children_unobserved=True
                )
                outcome.retry_reason = str(refused)
            phase = observe.phase(observed.conditions)
        self._hold_for_final_backup(tm, body)
        outcome.events += write_status(self.kube, tm, body, observed, phase)
        outcome.ready = any(
            condition.type == st.READY and condition.status == "True"
            for condition in observed.conditions
        )
        return outcome

    def _converge(self, tm: TaskManager, outcome: Outcome) -> Observed:
        """The children that serve the API, then the API itself through the migration gate."""
        user_secrets = read_user_secrets(self.kube, tm)
        if missing := user_secrets.missing:
            outcome.retry_reason = missing[0][1]
            return Observed(missing_conditions(missing))
        observed = Observed([st.true(st.SECRETS_READY, "Found", "")])
        applier = Applier(self.kube, tm, outcome.events)

        existing_secret = self.kube.get("v1", "Secret", tm.namespace, generated_secret_name(tm))
        existing_data = secret_builder.decode_secret_data((existing_secret or {}).get("data"))
        config_map = config.build_config_map(tm)
        current = self.kube.get("apps/v1", "Deployment", tm.namespace, api_name(tm))

        def rollout_checksum_with(secret: Object | None) -> str:
            """What the API pods run with: the config and the secret values."""
            return checksum(config_map["data"], (secret or {}).get("data"), user_secrets.digests)

        rotation = key_rotation.rotate(
            tm,
            existing_secret,
            existing_data,
            # The pods run the Secret as it is when the Deployment rolled out with its checksum.
            every_pod_has_the_ring=observe.rolled_out_with(
                current, rollout_checksum_with(existing_secret)
            ),
            now=self.clock(),
            new_key=self.new_key,
        )
        outcome.events += [Event("Normal", step.reason, step.message) for step in rotation.steps]
        generated = secret_builder.build_generated_secret(
            tm, existing_data, self.new_key, rotation.ring
        )
        applier.generated_secret(generated, generated_secret_name(tm))
        applier.apply(config_map)
        # What the workloads below need before their pods can be made: the API's ServiceAccount.
        applier.optional(monitoring.capabilities(self.kube), before_workloads=True)

        database = ("apps/v1", "StatefulSet", database_name(tm))
        cache = ("apps/v1", "Deployment", cache_name(tm))
        database_ready = applier.managed(
            managed.build_postgres(tm), database, [database_name(tm), database_headless_name(tm)]
        )
        cache_ready = applier.managed(managed.build_redis(tm), cache, [cache_name(tm)])
        spec = tm.spec
        observed.conditions += [
            observe.readiness(
                st.DATABASE_READY, spec.database.external is not None, database_ready, "PostgreSQL"
            ),
            observe.readiness(
                st.CACHE_READY, spec.redis.external is not None, cache_ready, "Redis"
            ),
            self._cache_eviction(user_secrets.values.get(REDIS_URL_REF)),
        ]
        rollout_checksum = rollout_checksum_with(generated)
        seen_monitoring = self._roll_out(
            tm,
            applier,
            current,
            rollout_checksum=rollout_checksum,
            database_ready=database_ready,
            observed=observed,
        )
        if rotation.ring and tm.spec.auth.signing_key_rotation is not None:
            observed.signing_keys = signing_keys.status(rotation.ring)
        waits = [
            self.settings.progress_poll_seconds if observed.poll else None,
            self.settings.selection_recheck_seconds
            if seen_monitoring.awaits_selection or observed.awaits_unwatched
            else None,
            # A published key is promoted once the pods roll: poll that like a rollout.
            self.settings.progress_poll_seconds
            if any(key.role == "next" for key in rotation.ring)
            else None,
            rotation.due.total_seconds() if rotation.due is not None else None,
        ]
        if due := [wait for wait in waits if wait is not None]:
            outcome.requeue_after = min(due)
        return observed

    def _hold_for_final_backup(self, tm: TaskManager, body: Object) -> None:
        """The finalizer that makes a deletion wait for the final backup, while one is wanted."""
        finalizers = list(body["metadata"].get("finalizers") or [])
        held = FINAL_BACKUP_FINALIZER in finalizers
        if held == wants_final_backup(tm):
            return
        if held:
            finalizers.remove(FINAL_BACKUP_FINALIZER)
        else:
            finalizers.append(FINAL_BACKUP_FINALIZER)
        try:
            self.kube.set_taskmanager_finalizers(
                tm.namespace, tm.name, finalizers, body["metadata"]["resourceVersion"]
            )
        except ApiException as error:
            if error.status != 409:
                raise
            # Changed since it was read: that change's event reconciles it again.

    def _deleting(self, tm: TaskManager, body: Object) -> Outcome:
        """A TaskManager being deleted: release it once its final backup finished."""
        finalizers = list(body["metadata"].get("finalizers") or [])
        if FINAL_BACKUP_FINALIZER not in finalizers:
            return Outcome(exists=False)
        since = datetime.fromisoformat(body["metadata"]["deletionTimestamp"].replace("Z", "+00:00"))
        final = final_backup(self.kube, tm, since, self.clock())
        outcome = Outcome(uid=tm.uid, events=Events(final.events))
        if final.done:
            finalizers.remove(FINAL_BACKUP_FINALIZER)
            self.kube.set_taskmanager_finalizers(
                tm.namespace, tm.name, finalizers, body["metadata"]["resourceVersion"]
            )
        else:
            outcome.requeue_after = self.settings.progress_poll_seconds
        return outcome

    def _restore_holding(self, tm: TaskManager) -> str | None:
        """The name of the restore that holds this TaskManager's API at 0 pods, if one does
        (restores need backups on, so no request is made for a TaskManager without them)."""
        if not tm.spec.backup.enabled:
            return None
        holding = quiescing_restore(self.kube.list_ours(RESTORE_PLURAL, tm.namespace), tm.name)
        return None if holding is None else str(holding["metadata"]["name"])

    def _backups(
        self, tm: TaskManager, created: datetime, observed: Observed, outcome: Outcome
    ) -> None:
        seen = observe_backups(self.kube, tm, created, self.clock())
        observed.conditions += seen.conditions
        observed.backup = seen.status
        last = ((seen.status or {}).get("lastSuccessful") or {}).get("time")
        if last:
            moment = datetime.fromisoformat(last.replace("Z", "+00:00"))
            metrics.LAST_SUCCESSFUL_BACKUP.labels(tm.namespace, tm.name).set(moment.timestamp())
        else:
            metrics.LAST_SUCCESSFUL_BACKUP.remove(tm.namespace, tm.name)
        outcome.events += seen.events
        if seen.due_in is not None:
            waits = [outcome.requeue_after, seen.due_in]
            outcome.requeue_after = min(wait for wait in waits if wait is not None)

    def _roll_out(
        self,
        tm: TaskManager,
        applier: Applier,
        current: Object | None,
        *,
        rollout_checksum: str,
        database_ready: bool,
        observed: Observed,
    ) -> monitoring.MonitoringSeen:
        """The API's Deployment on the image the migration gate allows, its Service, the
        optional children, and what the rollout and the monitoring objects say. observed.poll
        is set while a migration or a rollout is in progress: look again soon rather than wait
        for an event."""
        gate = self._migration_gate(tm, applier, current, database_ready)
        observed.conditions.append(gate.condition)
        if gate.degraded is not None:
            observed.conditions.append(gate.degraded)
        deployment: Object | None = None
        if current is not None and tm.spec.autoscaling.enabled:
            self.kube.hand_over_replicas(current)
        if gate.serve is not None:
            deployment = applier.apply(
                api.build_deployment(tm, image=gate.serve, rollout_checksum=rollout_checksum)
            )
        applier.apply(api.build_service(tm))
        capabilities = monitoring.capabilities(self.kube)
        optional = applier.optional(capabilities)
        observed.conditions += monitoring.autoscaling_condition(tm, capabilities)
        seen_monitoring = monitoring.observe_monitoring(self.kube, tm, optional)
        observed.conditions += seen_monitoring.conditions
        observed.monitoring = seen_monitoring.status
        seen_exposure = exposure.observe_exposure(self.kube, tm, optional)
        observed.conditions += seen_exposure.conditions
        observed.external_url = seen_exposure.external_url
        observed.awaits_unwatched = seen_exposure.awaits_gateway
        problem: pods.PodProblem | None = None
        if deployment is not None and not observe.rollout(deployment).done:
            # Only while the rollout is stuck or under way: why its pods do not run.
            problem = pods.pod_problem(self.kube.list_pods(tm.namespace, selector_labels(tm, API)))
        seen = observe.observe_api(
            deployment,
            gate.serve,
            image(tm, self.settings.image_repository),
            tm.spec.version,
            observe.degraded_reason(observed.conditions),
            pod_problem=problem,
        )
        observed.conditions += seen.conditions
        if seen.replicas is not None:
            observed.replicas, observed.ready_replicas = seen.replicas, seen.ready_replicas
        observed.version = seen.version
        observed.poll = gate.poll or seen.poll
        return seen_monitoring

    def _migration_gate(
        self, tm: TaskManager, applier: Applier, current: Object | None, database_ready: bool
    ) -> migration_gate.Gate:
        """Read the migration Job only when the gate needs it, and create it when told to."""
        desired = image(tm, self.settings.image_repository)
        current_image = observe.api_image(current)
        job_name = migration.migration_job_name(tm, desired)
        job: migration_gate.JobState = "Absent"
        failure: str | None = None
        problem: pods.PodProblem | None = None
        if migration_gate.job_matters(current_image, desired, database_ready):
            found = self.kube.get("batch/v1", "Job", tm.namespace, job_name)
            job = migration_gate.job_state(found)
            failure = migration_gate.job_failure(found)
            if job in ("Running", "Failed"):
                job_pods = self.kube.list_pods(tm.namespace, {pods.JOB_NAME_LABEL: job_name})
                problem = pods.pod_problem(job_pods)
        gate = migration_gate.decide(
            current_image,
            desired,
            job,
            database_ready,
            job_name,
            failure=failure,
            pod_problem=problem,
        )
        if gate.create_job and current_image is not None:
            # An upgrade of data that exists: spec.backup.beforeUpgrade may want a backup first.
            before = pre_upgrade_backup(self.kube, tm, desired)
            if not before.proceed:
                held = st.false(st.MIGRATIONS_APPLIED, before.reason, before.message)
                degraded = st.true(st.DEGRADED, before.reason, before.message)
                return replace(
                    gate,
                    condition=held,
                    create_job=False,
                    degraded=degraded if before.failed else None,
                )
        if gate.create_job:
            applier.apply(migration.build_migration_job(tm, image=desired))
        return gate

    def _cache_eviction(self, encoded_url: str | None) -> st.Condition:
        """CacheEvictionSafe: an external Redis is asked for its policy; ours has a safe one."""
        if encoded_url is None:
            return eviction_condition(None)
        # Undecodable bytes make a URL that fails to connect: reported, not a failed reconcile.
        url = base64.b64decode(encoded_url).decode(errors="replace")
        return eviction_condition(self.redis_probe(url))
