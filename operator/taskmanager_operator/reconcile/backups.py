"""A TaskManager's backups as its reconcile sees them: the scheduled one that is due, the ones
retention or their ttl let go, and what status.backup and LastBackupSucceeded say.

The reconcile runs on the acting replica only, so only it schedules. A slot's backup has the
slot's name: a restart or a second replica computing the same slot gets AlreadyExists, never a
second backup. The slot a backup was made for is kept in an annotation, so the last slot taken
is read from the backups themselves, not from memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

from taskmanager_operator import status as st
from taskmanager_operator.api.backups import BACKUP_PLURAL
from taskmanager_operator.backups.lifecycle import VERIFY_ANNOTATION
from taskmanager_operator.backups.retention import StoredBackup, expired, ttl_expired
from taskmanager_operator.backups.schedule import (
    ScheduleError,
    due_slot,
    next_slot,
    scheduled_backup_name,
)
from taskmanager_operator.builders.backup import build_backup_record
from taskmanager_operator.k8s import Object, api_message
from taskmanager_operator.reconcile.outcome import Event
from taskmanager_operator.resource import TaskManager

SLOT_ANNOTATION = "taskmanager.dev/slot"


class PreUpgradeApi(Protocol):
    def get_ours(self, plural: str, namespace: str, name: str) -> Object | None: ...

    def create_ours(self, plural: str, namespace: str, body: Mapping[str, Any]) -> bool: ...


class BackupsApi(Protocol):
    def list_ours(self, plural: str, namespace: str) -> list[Object]: ...

    def annotate_ours(
        self, plural: str, namespace: str, name: str, annotations: Mapping[str, str]
    ) -> None: ...

    def create_ours(self, plural: str, namespace: str, body: Mapping[str, Any]) -> bool: ...

    def delete_ours(self, plural: str, namespace: str, name: str) -> None: ...


@dataclass
class BackupsSeen:
    conditions: list[st.Condition] = field(default_factory=list)
    status: dict[str, Any] | None = None
    events: list[Event] = field(default_factory=list)
    # Seconds until the next slot: the reconcile looks again then.
    due_in: float | None = None


def _time(text: str | None) -> datetime | None:
    return st.parse_timestamp(text) if text else None


def _stored(body: Object) -> StoredBackup:
    metadata, spec, status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
    # The API server sets creationTimestamp on every object.
    created = _time(metadata["creationTimestamp"]) or datetime.fromtimestamp(0, UTC)
    return StoredBackup(
        name=metadata["name"],
        type=spec.get("type", "Manual"),
        phase=status.get("phase"),
        completed=_time(status.get("completionTime")),
        created=created,
        ttl=spec.get("ttl"),
    )


def _reference(body: Object) -> dict[str, Any]:
    status = body.get("status") or {}
    reference = {
        "name": body["metadata"]["name"],
        "time": status.get("completionTime"),
        "location": status.get("location"),
        "size": status.get("size"),
    }
    if status.get("phase") == "Failed":
        reference["message"] = status.get("error")
    return {key: value for key, value in reference.items() if value is not None}


def scheduled_backup(tm: TaskManager, slot: datetime) -> dict[str, Any]:
    name = scheduled_backup_name(tm.name, slot)
    return build_backup_record(tm, name, "Scheduled", {SLOT_ANNOTATION: st.timestamp(slot)})


def observe_backups(
    kube: BackupsApi, tm: TaskManager, created: datetime, now: datetime
) -> BackupsSeen:
    """Schedule what is due, let go what expired, and say how the backups stand."""
    backup = tm.spec.backup
    if not backup.enabled:
        return BackupsSeen()
    seen = BackupsSeen()
    mine = [
        body
        for body in kube.list_ours(BACKUP_PLURAL, tm.namespace)
        if (body.get("spec") or {}).get("taskManager") == tm.name
    ]
    try:
        if not backup.suspend:
            seen.events += _schedule(kube, tm, mine, since=created, now=now)
            seen.events += _request_verification(kube, tm, mine, since=created, now=now)
        upcoming = next_slot(backup.schedule, backup.time_zone, now)
    except ScheduleError as error:
        seen.conditions.append(st.false(st.LAST_BACKUP_SUCCEEDED, "InvalidSchedule", str(error)))
        return seen
    seen.due_in = max((upcoming - now).total_seconds(), 1.0)
    stored = [_stored(body) for body in mine]
    for name in sorted(set(expired(stored, backup.retention, now)) | set(ttl_expired(stored, now))):
        kube.delete_ours(BACKUP_PLURAL, tm.namespace, name)
        seen.events.append(Event("Normal", "BackupExpired", f"Deleted backup {name} and its data"))
    seen.status = _status(mine, upcoming)
    seen.conditions.append(_last_backup_condition(mine))
    if (verified := _verified_condition(mine, backup.verification.schedule)) is not None:
        seen.conditions.append(verified)
    return seen


def _schedule(
    kube: BackupsApi, tm: TaskManager, mine: list[Object], *, since: datetime, now: datetime
) -> list[Event]:
    """Create the due slot's backup (added to `mine`); the events that tell of it."""
    backup = tm.spec.backup
    events: list[Event] = []
    taken = [
        _time(body["metadata"].get("annotations", {}).get(SLOT_ANNOTATION))
        for body in mine
        if (body.get("spec") or {}).get("type") == "Scheduled"
    ]
    last_taken = max((slot for slot in taken if slot is not None), default=None)
    slot = due_slot(backup.schedule, backup.time_zone, now, last_taken, since)
    if slot is None:
        return events
    manifest = scheduled_backup(tm, slot.time)
    if kube.create_ours(BACKUP_PLURAL, tm.namespace, manifest):
        name = manifest["metadata"]["name"]
        mine.append(
            manifest | {"metadata": manifest["metadata"] | {"creationTimestamp": st.timestamp(now)}}
        )
        events.append(Event("Normal", "BackupScheduled", f"Created backup {name}"))
    if slot.missed:
        events.append(
            Event(
                "Warning",
                "BackupsMissed",
                f"{slot.missed_text} older scheduled backups were missed while the operator was "
                f"not running; only the newest slot ({st.timestamp(slot.time)}) was taken",
            )
        )
    return events


def _request_verification(
    kube: BackupsApi, tm: TaskManager, mine: list[Object], *, since: datetime, now: datetime
) -> list[Event]:
    """On spec.backup.verification.schedule: ask the newest completed backup to be verified
    (its annotation; the backup's lifecycle runs the verify Job and records the answer)."""
    schedule = tm.spec.backup.verification.schedule
    if schedule is None:
        return []
    asked = [_annotation_time(body) for body in mine]
    last = max((moment for moment in asked if moment is not None), default=None)
    slot = due_slot(schedule, tm.spec.backup.time_zone, now, last, since)
    newest = _newest(mine, "Completed")
    if slot is None or newest is None:
        return []
    name = newest["metadata"]["name"]
    kube.annotate_ours(
        BACKUP_PLURAL, tm.namespace, name, {VERIFY_ANNOTATION: st.timestamp(slot.time)}
    )
    return [Event("Normal", "VerificationRequested", f"Verifying backup {name}")]


def _annotation_time(body: Object) -> datetime | None:
    value = ((body.get("metadata") or {}).get("annotations") or {}).get(VERIFY_ANNOTATION)
    try:
        return _time(value)
    except ValueError:
        return None  # a user's own request (any value): not a slot of the schedule


def _verified_condition(mine: list[Object], schedule: str | None) -> st.Condition | None:
    """BackupVerified: what the newest verification found; Unknown until there is one."""
    answered = [b for b in mine if _verification(b)]
    if not answered:
        if schedule is None:
            return None
        return st.Condition(
            st.BACKUP_VERIFIED, "Unknown", "NotVerifiedYet", "no backup has been verified yet"
        )
    newest = max(answered, key=lambda b: _verification(b)["time"])
    verification, name = _verification(newest), newest["metadata"]["name"]
    if verification["result"] == "Passed":
        return st.true(
            st.BACKUP_VERIFIED,
            "Passed",
            f"backup {name} restored into a scratch database as it recorded, at "
            f"{verification['time']}",
        )
    return st.false(
        st.BACKUP_VERIFIED,
        "VerificationFailed",
        f"backup {name} did not restore as it recorded: {verification.get('message')}",
    )


def _newest(bodies: list[Object], phase: str) -> Object | None:
    # One without a completion time cannot be dated (a status edited by hand): it is not named
    # as the last one, whose time the status schema requires.
    finished = [
        b
        for b in bodies
        if (b.get("status") or {}).get("phase") == phase and b["status"].get("completionTime")
    ]
    return max(finished, key=lambda b: b["status"]["completionTime"], default=None)


def _status(mine: list[Object], upcoming: datetime) -> dict[str, Any]:
    status: dict[str, Any] = {"nextScheduledTime": st.timestamp(upcoming)}
    if (good := _newest(mine, "Completed")) is not None:
        status["lastSuccessful"] = _reference(good)
    if (bad := _newest(mine, "Failed")) is not None:
        status["lastFailed"] = _reference(bad)
    passed = [b for b in mine if _verification(b).get("result") == "Passed"]
    if passed:
        newest = max(passed, key=lambda b: _verification(b)["time"])
        status["lastVerified"] = _reference(newest) | {"time": _verification(newest)["time"]}
    return status


def _verification(body: Object) -> dict[str, Any]:
    return dict((body.get("status") or {}).get("verification") or {})


def _last_backup_condition(mine: list[Object]) -> st.Condition:
    good, bad = _newest(mine, "Completed"), _newest(mine, "Failed")
    good_time = (good or {}).get("status", {}).get("completionTime") or ""
    bad_time = (bad or {}).get("status", {}).get("completionTime") or ""
    if bad is not None and bad_time > good_time:
        name = bad["metadata"]["name"]
        error = bad["status"].get("error") or "failed"
        reason = error.split(":", 1)[0] if ":" in error else "BackupFailed"
        return st.false(st.LAST_BACKUP_SUCCEEDED, reason, f"backup {name} failed: {error}")
    if good is None:
        return st.Condition(
            st.LAST_BACKUP_SUCCEEDED, "Unknown", "NoBackupYet", "no backup has finished yet"
        )
    name = good["metadata"]["name"]
    return st.true(
        st.LAST_BACKUP_SUCCEEDED,
        "Completed",
        f"backup {name} completed at {good_time}: {good['status'].get('size')} at "
        f"{good['status'].get('location')}",
    )


def pre_upgrade_backup_name(tm: TaskManager, image: str) -> str:
    """One per image upgraded to: a retried reconcile finds the same backup."""
    return f"{tm.name}-upgrade-{hashlib.sha256(image.encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class PreUpgrade:
    """What the backup before a migration says: go on, or hold the migration (and why)."""

    proceed: bool
    reason: str = ""
    message: str = ""
    # Required and it failed: the TaskManager is Degraded until it is retried or relaxed.
    failed: bool = False


def pre_upgrade_backup(kube: PreUpgradeApi, tm: TaskManager, image: str) -> PreUpgrade:
    """spec.backup.beforeUpgrade, for a migration about to start: a PreUpgrade backup first.
    Required holds the migration until it completes (a failure holds it for good); BestEffort
    waits for it to finish either way; Disabled (or backups off) takes none."""
    backup = tm.spec.backup
    if not backup.enabled or backup.before_upgrade == "Disabled":
        return PreUpgrade(proceed=True)
    name = pre_upgrade_backup_name(tm, image)
    found = kube.get_ours(BACKUP_PLURAL, tm.namespace, name)
    if found is None:
        kube.create_ours(BACKUP_PLURAL, tm.namespace, build_backup_record(tm, name, "PreUpgrade"))
    phase = ((found or {}).get("status") or {}).get("phase")
    if phase == "Completed" or (phase == "Failed" and backup.before_upgrade == "BestEffort"):
        return PreUpgrade(proceed=True)
    if phase == "Failed":
        error = (found or {}).get("status", {}).get("error")
        return PreUpgrade(
            proceed=False,
            reason="PreUpgradeBackupFailed",
            message=f"backup {name} before the migration to {image} failed ({error}), and "
            "spec.backup.beforeUpgrade is Required: the upgrade waits. Delete the backup to "
            "try again, or set beforeUpgrade to BestEffort",
            failed=True,
        )
    return PreUpgrade(
        proceed=False,
        reason="BackingUp",
        message=f"backup {name} is taken before the migration to {image}",
    )


# Holds a TaskManager whose managed database goes with it until its final backup finished.
FINAL_BACKUP_FINALIZER = "taskmanager.dev/final-backup"
FINAL_BACKUP_TIMEOUT = timedelta(minutes=15)


def wants_final_backup(tm: TaskManager) -> bool:
    """Backups on, finalBackup on, and a managed database, which is deleted with it (an external
    one outlives the TaskManager and needs none)."""
    backup = tm.spec.backup
    return backup.enabled and backup.final_backup and tm.spec.database.managed is not None


def final_backup_name(tm: TaskManager) -> str:
    return f"{tm.name}-final-{tm.uid[:8]}"


@dataclass(frozen=True)
class FinalBackup:
    done: bool
    events: list[Event] = field(default_factory=list)


def final_backup(
    kube: PreUpgradeApi, tm: TaskManager, deleting_since: datetime, now: datetime
) -> FinalBackup:
    """The backup taken as a TaskManager with a managed database is deleted: done once it
    finished, or could not be made (the namespace is being deleted too), or after
    FINAL_BACKUP_TIMEOUT, each said in an event."""
    name = final_backup_name(tm)
    try:
        found = kube.get_ours(BACKUP_PLURAL, tm.namespace, name)
        if found is None:
            record = build_backup_record(tm, name, "Final")
            kube.create_ours(BACKUP_PLURAL, tm.namespace, record)
            message = f"Taking backup {name} before {tm.name} and its database are deleted"
            return FinalBackup(done=False, events=[Event("Normal", "FinalBackup", message)])
    except ApiException as error:
        message = (
            f"no final backup of {tm.name} could be made ({api_message(error)}); it is deleted "
            "without one"
        )
        return FinalBackup(done=True, events=[Event("Warning", "FinalBackupImpossible", message)])
    status = found.get("status") or {}
    if status.get("phase") == "Completed":
        message = f"Final backup {name} completed: {status.get('location')}; it outlives {tm.name}"
        return FinalBackup(done=True, events=[Event("Normal", "FinalBackupCompleted", message)])
    if status.get("phase") == "Failed":
        message = f"Final backup {name} failed ({status.get('error')}); {tm.name} is deleted"
        return FinalBackup(done=True, events=[Event("Warning", "FinalBackupFailed", message)])
    if now - deleting_since > FINAL_BACKUP_TIMEOUT:
        message = (
            f"Final backup {name} did not finish within {FINAL_BACKUP_TIMEOUT}; {tm.name} is "
            "deleted without waiting longer"
        )
        return FinalBackup(done=True, events=[Event("Warning", "FinalBackupTimedOut", message)])
    return FinalBackup(done=False)
