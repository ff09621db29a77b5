"""Which TaskManagerBackups to delete: scheduled ones past spec.backup.retention, and any past its
own spec.ttl.

Retention only ever deletes Scheduled backups: the others (Manual, PreUpgrade, PreRestore,
Final) were asked for or taken before something risky, and are kept until a user deletes them
or their ttl passes. Whatever the retention says, the newest Completed backup of the TaskManager
is kept: deleting the only good copy of the data because it is old would leave none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from taskmanager_operator.api.v1alpha1 import BackupRetention, ttl_timedelta

SCHEDULED = "Scheduled"
COMPLETED = "Completed"
FAILED = "Failed"


@dataclass(frozen=True)
class StoredBackup:
    """What the operator reads from one TaskManagerBackup of a TaskManager."""

    name: str
    type: str
    """spec.type: Manual, Scheduled, PreUpgrade, PreRestore or Final."""
    phase: str | None
    """status.phase; None before the operator first wrote it."""
    completed: datetime | None
    """status.completionTime: when it completed or failed."""
    created: datetime
    """metadata.creationTimestamp."""
    ttl: str | None = None
    """spec.ttl (`30d`), if any."""


def expired(
    backups: Sequence[StoredBackup], retention: BackupRetention, now: datetime
) -> list[str]:
    """The scheduled backups the retention deletes, oldest first (ties by name).

    A Completed one goes once it completed more than `retention.days` ago, unless it is among
    the newest `retention.min_keep` Completed scheduled backups or is the newest Completed backup
    of any type. A Failed one goes once it was created more than `days` ago: it holds no data,
    so it never counts toward min_keep. Pending and Running ones are never deleted here.
    """
    cutoff = now - timedelta(days=retention.days)
    # A Completed backup without a completion time cannot be dated: it is neither deleted nor
    # counted, which can only keep more.
    good = sorted(
        (b for b in backups if b.phase == COMPLETED and b.completed is not None),
        key=_age,
        reverse=True,
    )
    newest_scheduled = [b.name for b in good if b.type == SCHEDULED][: retention.min_keep]
    # min_keep >= 1 keeps the newest good one already when it is scheduled; it is named here so
    # the last good copy does not hang on a schema bound.
    kept = {*newest_scheduled, *(b.name for b in good[:1])}
    doomed = [
        b
        for b in backups
        if b.type == SCHEDULED
        and b.name not in kept
        and (
            (b.phase == COMPLETED and b.completed is not None and b.completed < cutoff)
            or (b.phase == FAILED and b.created < cutoff)
        )
    ]
    return [b.name for b in sorted(doomed, key=_age)]


def ttl_expired(backups: Sequence[StoredBackup], now: datetime) -> list[str]:
    """The backups, of any type, more than their spec.ttl past completion (or failure), oldest
    first. One that has not finished has no completion time and does not expire: its Job may
    still be writing the data."""
    doomed = [
        b
        for b in backups
        if b.ttl is not None
        and b.completed is not None
        and now > b.completed + ttl_timedelta(b.ttl)
    ]
    return [b.name for b in sorted(doomed, key=_age)]


def _age(backup: StoredBackup) -> tuple[datetime, str]:
    # Completion orders finished backups (a long dump completes after a short one started later);
    # the name breaks ties so two replicas decide alike.
    return (backup.completed or backup.created, backup.name)
