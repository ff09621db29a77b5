"""The backup schedule and the retention on the local cluster, with the operator's clock moved
(libfaketime): a slot's backup comes at its time, once, whether two replicas compute it, the
leader is killed or the operator restarts; a slot missed while no operator ran is taken once,
with a Warning; retention deletes exactly the backups it should, and their data through their
Jobs.

These namespaces lie outside the session operator's (`test-*`): only the operators started here,
with their clocks, act in them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes.client import ApiClient

from taskmanager_operator.api.backups import BACKUP_KIND, BACKUP_PLURAL
from taskmanager_operator.backups.schedule import scheduled_backup_name
from taskmanager_operator.builders.backup import TASKMANAGER_LABEL
from tests.cluster.backup_jobs import RESULT_ANNOTATION, BackupJobs, failed_line
from tests.cluster.test_operator import TaskManagers
from tests.support.operator import OperatorProcess, operators
from tests.support.wait import wait_until

pytestmark = pytest.mark.usefixtures("taskmanager_crd")
NAME = "nightly"
SCHEDULE = "17 4 * * *"  # 04:17 UTC daily
DAY = timedelta(days=1)


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def next_daily_slot(after: datetime) -> datetime:
    """The first 04:17 UTC after `after` (SCHEDULE's next slot, worked out by hand)."""
    slot = after.replace(hour=4, minute=17, second=0, microsecond=0)
    return slot if slot > after else slot + DAY


def clock_reading(moment: datetime) -> float:
    """The clock offset that makes an operator started now read `moment`."""
    return (moment - datetime.now(UTC)).total_seconds()


def backup_status(tms: TaskManagers) -> dict[str, Any]:
    return dict((tms.get(NAME).get("status") or {}).get("backup") or {})


def acting(replicas: list[OperatorProcess], namespace: str) -> OperatorProcess:
    """The one replica that reconciled the TaskManager; fails when both did."""
    counts = {replica: replica.reconciles(namespace, NAME) for replica in replicas}
    assert sorted(counts.values())[:-1] == [0] * (len(replicas) - 1), f"several acted: {counts}"
    return max(counts, key=lambda replica: counts[replica])


def test_a_slot_is_backed_up_on_time_and_once_across_replicas_restarts_and_missed_days(
    api_client: ApiClient, isolated_namespace: str
) -> None:
    namespace = isolated_namespace
    tms, backups = TaskManagers(api_client, namespace), BackupJobs(api_client, namespace)
    # No verification: its Jobs would queue ahead of the backups this test feeds.
    spec = {"enabled": True, "schedule": SCHEDULE, "verification": {"schedule": None}}
    created = tms.create(NAME, {"backup": spec})
    slot = next_daily_slot(parse(created["metadata"]["creationTimestamp"]))
    expected = scheduled_backup_name(NAME, slot)

    # Two replicas whose clocks read a minute before the slot.
    ahead = clock_reading(slot - timedelta(seconds=60))
    with operators(namespace, ahead, replicas=2) as replicas:
        status = wait_until(
            lambda: backup_status(tms).get("nextScheduledTime"),
            timeout=60,
            what="status.backup.nextScheduledTime",
        )
        assert status == z(slot)

        backup = wait_until(
            lambda: backups.backups().get(expected),
            timeout=100,
            what=f"backup {expected} at {z(slot)} on the operators' clock",
        )
        # Made at the slot on the operators' clock: not before it, and within seconds after it.
        made = parse(backup["metadata"]["creationTimestamp"]) + timedelta(seconds=ahead)
        assert slot - timedelta(seconds=1) <= made <= slot + timedelta(seconds=30), made
        assert backup["spec"] == {"taskManager": NAME, "type": "Scheduled"}
        assert backup["metadata"]["labels"][TASKMANAGER_LABEL] == NAME
        assert "ownerReferences" not in backup["metadata"]  # it outlives its TaskManager

        backups.complete_backup(expected)
        done = wait_until(
            lambda: (
                (status := backup_status(tms)).get("lastSuccessful", {}).get("name") == expected
                and status
            ),
            timeout=30,
            what="status.backup.lastSuccessful to name the backup",
        )
        assert done["nextScheduledTime"] == z(slot + DAY)
        assert (tms.condition(NAME, "LastBackupSucceeded") or {}).get("status") == "True"
        tms.wait_event(NAME, "BackupScheduled", "Normal")

        # The replicas made one backup between them, and only the leader acted.
        leader = acting(replicas, namespace)
        assert list(backups.backups()) == [expected]
        # The leader dies at once; the other takes over, past the slot, and makes no second one.
        leader.process.kill()
        leader.process.wait()
        (follower,) = (replica for replica in replicas if replica is not leader)
        wait_until(
            lambda: follower.reconciles(namespace, NAME) > 0,
            timeout=30,
            what="the other replica to take over",
        )
        assert list(backups.backups()) == [expected]

    # A restart later the same day: still the one backup.
    with operators(namespace, clock_reading(slot + timedelta(minutes=5))) as (again,):
        wait_until(
            lambda: again.reconciles(namespace, NAME) > 0,
            timeout=30,
            what="the restarted operator to reconcile",
        )
        assert list(backups.backups()) == [expected]

    # Back after three days away: the newest slot is taken, once, and the two missed are told.
    with operators(namespace, clock_reading(slot + 3 * DAY + timedelta(minutes=1))):
        newest = scheduled_backup_name(NAME, slot + 3 * DAY)
        wait_until(lambda: newest in backups.backups(), timeout=60, what=f"backup {newest}")
        missed = tms.wait_event(NAME, "BackupsMissed", "Warning")
        assert "2 older scheduled backups were missed" in missed.message
        backups.complete_backup(newest)
        assert sorted(backups.backups()) == sorted([expected, newest])


def test_retention_deletes_exactly_the_expired_backups_and_their_data(
    api_client: ApiClient, isolated_namespace: str
) -> None:
    namespace = isolated_namespace
    tms, backups = TaskManagers(api_client, namespace), BackupJobs(api_client, namespace)
    # Suspended: the backups here are the test's own, dated by the operators' clocks.
    spec = {
        "enabled": True,
        "suspend": True,
        "retention": {"days": 2, "minKeep": 1},
        "verification": {"schedule": None},
    }
    tms.create(NAME, {"backup": spec})
    # The first backups are made on the real clock: a failed one is dated by its creation, which
    # the API server's clock stamps.
    start = datetime.now(UTC)

    def backup(name: str, kind: str = "Scheduled", ttl: str | None = None) -> None:
        backups.create(
            BACKUP_PLURAL,
            BACKUP_KIND,
            name,
            {"taskManager": NAME, "type": kind} | ({"ttl": ttl} if ttl else {}),
        )

    with operators(namespace, clock_reading(start)):
        for name, kind, ttl in [
            ("old", "Scheduled", None),
            ("old-manual", "Manual", None),
            ("old-with-ttl", "Manual", "1d"),
        ]:
            backup(name, kind, ttl)
            backups.complete_backup(name)
        backup("old-failed")
        backups.wait_phase(BACKUP_PLURAL, "old-failed", "Running")
        backups.feed("create", "old-failed", failed_line("create", "StorageError", "disk full"))
        backups.wait_phase(BACKUP_PLURAL, "old-failed", "Failed")

    # A day and a half on: half a day inside the retention still (hours of margin, whatever the
    # test's own pace), but past the ttl.
    with operators(namespace, clock_reading(start + DAY + DAY / 2)):
        feed_deletions(backups, {"old-with-ttl"})
        backup("recent")
        backups.complete_backup("recent")
        assert set(backups.backups()) == {"old", "old-manual", "old-failed", "recent"}

    # Three days on: the scheduled ones older than two days go; the manual one stays, and so does
    # the newest good backup.
    with operators(namespace, clock_reading(start + 3 * DAY)):
        feed_deletions(backups, {"old", "old-failed"})
        assert set(backups.backups()) == {"old-manual", "recent"}
        expired = {event.message for event in tms.events(NAME) if event.reason == "BackupExpired"}
        assert expired == {
            f"Deleted backup {name} and its data" for name in ("old", "old-failed", "old-with-ttl")
        }


def feed_deletions(backups: BackupJobs, names: set[str], timeout: float = 90) -> None:
    """Wait for backups `names` to be deleted, finishing their delete Jobs (the data's removal)
    as they start."""

    def gone() -> bool:
        present = backups.backups()
        for name in names & set(present):
            pod = backups.running_pod("delete", name)
            if pod is not None and RESULT_ANNOTATION not in (pod.metadata.annotations or {}):
                backups.finish(pod, {"ok": True, "action": "delete"})
        return not names & set(present)

    wait_until(gone, timeout=timeout, what=f"backups {sorted(names)} to be deleted")
