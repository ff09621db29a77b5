"""Scheduled backups through the TaskManager's reconcile, on the in-memory API server with the
clock under the test's control: a slot's backup appears once, under the slot's name; a missed
slot is taken once on return, with a Warning naming how many were skipped; retention and a
backup's ttl delete exactly what expired; status.backup and LastBackupSucceeded tell the truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from taskmanager_operator.api.backups import BACKUP_KIND, BACKUP_PLURAL
from taskmanager_operator.api.v1alpha1 import KIND
from taskmanager_operator.backups.lifecycle import VERIFY_ANNOTATION, BackupLifecycle
from taskmanager_operator.reconcile import Reconciler
from taskmanager_operator.settings import OperatorSettings
from tests.support.fake_kube import TASKMANAGER_API_VERSION, FakeKube
from tests.unit.test_reconcile import NS, REPOSITORY, SAMPLE, Cluster, FakeProbe
from tests.unit.test_restore import finish_job
from tests.unit.test_signing_key_rotation import Clock

CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BACKUP = {"enabled": True, "schedule": "0 3 * * *", "retention": {"days": 7, "minKeep": 2}}


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def clock() -> Clock:
    return Clock(CREATED)


def backed_up(clock: Clock, **backup: Any) -> Cluster:
    kube, probe = FakeKube(), FakeProbe()
    settings = OperatorSettings(image_repository=REPOSITORY)
    cluster = Cluster(kube, probe, Reconciler(kube, settings, redis_probe=probe, clock=clock))
    sample = yaml.safe_load(SAMPLE.read_text())
    kube.create_taskmanager(NS, "demo", {**sample["spec"], "backup": BACKUP | backup})
    kube.set_created(TASKMANAGER_API_VERSION, KIND, NS, "demo", stamp(CREATED))
    cluster.bring_up("demo")
    kube.events.clear()
    return cluster


def backups(cluster: Cluster) -> dict[str, dict[str, Any]]:
    return {b["metadata"]["name"]: b for b in cluster.kube.list_ours(BACKUP_PLURAL, NS)}


def finish(cluster: Cluster, name: str, phase: str, at: datetime, **status: Any) -> None:
    cluster.kube.set_status(
        TASKMANAGER_API_VERSION,
        BACKUP_KIND,
        NS,
        name,
        {"phase": phase, "completionTime": stamp(at), **status},
    )


def events(cluster: Cluster) -> list[tuple[str, str]]:
    return [(event["type"], event["reason"]) for event in cluster.kube.events]


def test_a_slots_backup_appears_once_under_the_slots_name(clock: Clock) -> None:
    cluster = backed_up(clock)
    assert backups(cluster) == {}, "created at noon: no slot has passed yet"
    status = cluster.status("demo")["backup"]
    assert status["nextScheduledTime"] == "2026-03-02T03:00:00Z"
    assert cluster.conditions("demo")["LastBackupSucceeded"] == ("Unknown", "NoBackupYet")

    clock.now = datetime(2026, 3, 2, 3, 0, 5, tzinfo=UTC)
    outcome = cluster.reconcile("demo")
    assert list(backups(cluster)) == ["demo-202603020300"]
    body = backups(cluster)["demo-202603020300"]
    assert body["spec"] == {"taskManager": "demo", "type": "Scheduled"}
    assert ("Normal", "BackupScheduled") in events(cluster)
    # Looked at again when the next slot is due, not at the resync.
    assert outcome.requeue_after == pytest.approx(timedelta(hours=24, seconds=-5).total_seconds())

    # A restart, or a second replica: the same slot, no second backup.
    cluster.reconcile("demo")
    assert list(backups(cluster)) == ["demo-202603020300"]


def test_a_missed_slot_is_taken_once_on_return_and_the_rest_are_counted(clock: Clock) -> None:
    cluster = backed_up(clock)
    clock.now = datetime(2026, 3, 6, 9, 0, tzinfo=UTC)  # five slots passed: 2 to 6 March
    cluster.reconcile("demo")
    assert list(backups(cluster)) == ["demo-202603060300"]
    missed = [e for e in cluster.kube.events if e["reason"] == "BackupsMissed"]
    assert len(missed) == 1
    assert missed[0]["type"] == "Warning"
    assert missed[0]["message"].startswith("4 older scheduled backups were missed")


def test_suspended_takes_nothing_and_a_slot_in_the_zone_is_its_wall_clock(clock: Clock) -> None:
    cluster = backed_up(clock, suspend=True, timeZone="Asia/Kolkata")
    clock.now = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    cluster.reconcile("demo")
    assert backups(cluster) == {}
    # 03:00 in Kolkata (UTC+5:30) is 21:30 UTC the day before.
    assert cluster.status("demo")["backup"]["nextScheduledTime"] == "2026-03-03T21:30:00Z"


def test_the_status_and_condition_follow_the_newest_finished_backup(clock: Clock) -> None:
    cluster = backed_up(clock)
    clock.now = datetime(2026, 3, 2, 3, 1, tzinfo=UTC)
    cluster.reconcile("demo")
    finish(
        cluster,
        "demo-202603020300",
        "Completed",
        clock.now,
        location="file:///backups/demo-202603020300",
        size="1.5Mi",
    )
    cluster.reconcile("demo")
    # The operator's metric, for an alert on backups growing old.
    last = REGISTRY.get_sample_value(
        "taskmanager_operator_last_successful_backup_timestamp_seconds",
        {"namespace": NS, "name": "demo"},
    )
    assert last == clock.now.timestamp()
    good = cluster.status("demo")["backup"]["lastSuccessful"]
    assert good == {
        "name": "demo-202603020300",
        "time": "2026-03-02T03:01:00Z",
        "location": "file:///backups/demo-202603020300",
        "size": "1.5Mi",
    }
    assert cluster.conditions("demo")["LastBackupSucceeded"] == ("True", "Completed")

    clock.now = datetime(2026, 3, 3, 3, 2, tzinfo=UTC)
    cluster.reconcile("demo")
    finish(
        cluster,
        "demo-202603030300",
        "Failed",
        clock.now,
        error="DumpFailed: pg_dump failed (1): disk full",
    )
    cluster.kube.events.clear()
    cluster.reconcile("demo")
    assert cluster.conditions("demo")["LastBackupSucceeded"] == ("False", "DumpFailed")
    assert ("Warning", "DumpFailed") in events(cluster)
    assert cluster.status("demo")["backup"]["lastSuccessful"]["name"] == "demo-202603020300"
    assert cluster.status("demo")["backup"]["lastFailed"]["message"].endswith("disk full")
    assert cluster.conditions("demo")["Ready"][0] == "True", "a failed backup is no outage"


def test_retention_deletes_exactly_the_expired_scheduled_backups(clock: Clock) -> None:
    cluster = backed_up(clock)
    for day in range(2, 14):  # twelve daily backups, each completed a minute after its slot
        clock.now = datetime(2026, 3, day, 3, 0, tzinfo=UTC)
        cluster.reconcile("demo")
        finish(cluster, f"demo-202603{day:02d}0300", "Completed", clock.now + timedelta(minutes=1))
    cluster.kube.create_ours(
        BACKUP_PLURAL,
        NS,
        {
            "apiVersion": TASKMANAGER_API_VERSION,
            "kind": BACKUP_KIND,
            "metadata": {"name": "before-upgrade"},
            "spec": {"taskManager": "demo", "type": "Manual"},
        },
    )
    finish(cluster, "before-upgrade", "Completed", datetime(2026, 3, 2, 12, tzinfo=UTC))
    clock.now = datetime(2026, 3, 13, 12, 0, tzinfo=UTC)
    cluster.reconcile("demo")
    kept = sorted(backups(cluster))
    # Seven days back from 13 March 12:00: the 7th's and older went; manual ones stay.
    assert kept == ["before-upgrade"] + [f"demo-202603{d:02d}0300" for d in range(7, 14)]
    expired = [e for e in cluster.kube.events if e["reason"] == "BackupExpired"]
    assert len(expired) == 5


def test_an_impossible_schedule_is_a_condition_not_a_crash(clock: Clock) -> None:
    cluster = backed_up(clock, schedule="0 0 31 2 *")
    assert cluster.conditions("demo")["LastBackupSucceeded"] == ("False", "InvalidSchedule")
    assert "never fires" in cluster.condition("demo", "LastBackupSucceeded")["message"]
    assert cluster.phase("demo") == "Ready"


def test_backups_off_leaves_no_trace_in_the_status(clock: Clock) -> None:
    cluster = backed_up(clock, enabled=False)
    clock.now = datetime(2026, 3, 9, tzinfo=UTC)
    cluster.reconcile("demo")
    assert backups(cluster) == {}
    assert "backup" not in cluster.status("demo")
    assert "LastBackupSucceeded" not in cluster.conditions("demo")


# -- a backup before an upgrade's migration --------------------------------------------------------


def migrations(cluster: Cluster) -> list[str]:
    return [
        job["metadata"]["name"]
        for job in cluster.jobs()
        if job["metadata"]["name"].startswith("demo-migrate-")
    ]


def upgrade(cluster: Cluster) -> tuple[list[str], str]:
    """0.1.0 to 0.2.0: the migration Jobs before, and the name of the PreUpgrade backup."""
    before = migrations(cluster)
    cluster.patch_spec("demo", {"version": "0.2.0"})
    cluster.reconcile("demo")
    upgrade_backups = [
        name for name, body in backups(cluster).items() if body["spec"]["type"] == "PreUpgrade"
    ]
    assert len(upgrade_backups) == 1, backups(cluster)
    return before, upgrade_backups[0]


@pytest.mark.parametrize("policy", ["BestEffort", "Required"])
def test_an_upgrade_waits_for_its_backup_then_migrates(clock: Clock, policy: str) -> None:
    cluster = backed_up(clock, beforeUpgrade=policy)
    before, name = upgrade(cluster)
    assert migrations(cluster) == before, "no migration before the backup"
    assert cluster.conditions("demo")["MigrationsApplied"] == ("False", "BackingUp")
    assert cluster.api_image("demo").endswith(":0.1.0")
    cluster.reconcile("demo")
    assert len(backups(cluster)) == 1, "the same backup, not another"
    finish(cluster, name, "Completed", clock.now)
    cluster.reconcile("demo")
    assert len(migrations(cluster)) == len(before) + 1
    assert cluster.conditions("demo")["MigrationsApplied"] == ("False", "MigrationRunning")


def test_a_required_backup_that_fails_holds_the_upgrade_and_degrades(clock: Clock) -> None:
    cluster = backed_up(clock, beforeUpgrade="Required")
    before, name = upgrade(cluster)
    finish(cluster, name, "Failed", clock.now, error="DumpFailed: disk full")
    cluster.kube.events.clear()
    cluster.reconcile("demo")
    assert migrations(cluster) == before
    assert cluster.conditions("demo")["Degraded"] == ("True", "PreUpgradeBackupFailed")
    assert "disk full" in cluster.condition("demo", "MigrationsApplied")["message"]
    assert ("Warning", "PreUpgradeBackupFailed") in events(cluster)
    assert cluster.api_image("demo").endswith(":0.1.0"), "the old version keeps serving"


def test_a_best_effort_backup_that_fails_lets_the_upgrade_go_on(clock: Clock) -> None:
    cluster = backed_up(clock)
    before, name = upgrade(cluster)
    finish(cluster, name, "Failed", clock.now, error="DumpFailed: disk full")
    cluster.reconcile("demo")
    assert len(migrations(cluster)) == len(before) + 1


def test_disabled_takes_no_backup_before_an_upgrade(clock: Clock) -> None:
    cluster = backed_up(clock, beforeUpgrade="Disabled")
    before = migrations(cluster)
    cluster.patch_spec("demo", {"version": "0.2.0"})
    cluster.reconcile("demo")
    assert backups(cluster) == {}
    assert len(migrations(cluster)) == len(before) + 1


# -- verification on schedule ---------------------------------------------------------------------


def test_the_newest_good_backup_is_verified_on_schedule(clock: Clock) -> None:
    cluster = backed_up(clock)  # verification by default: Sundays at 05:00
    for day in (2, 3):
        clock.now = datetime(2026, 3, day, 3, 0, tzinfo=UTC)
        cluster.reconcile("demo")
        finish(cluster, f"demo-202603{day:02d}0300", "Completed", clock.now)
    cluster.reconcile("demo")
    assert cluster.conditions("demo")["BackupVerified"] == ("Unknown", "NotVerifiedYet")

    clock.now = datetime(2026, 3, 8, 2, 0, tzinfo=UTC)  # Sunday, before its backup slot
    cluster.reconcile("demo")
    clock.now = datetime(2026, 3, 8, 5, 0, 30, tzinfo=UTC)
    cluster.kube.events.clear()
    cluster.reconcile("demo")
    asked = backups(cluster)["demo-202603030300"]["metadata"]["annotations"]
    assert asked[VERIFY_ANNOTATION] == "2026-03-08T05:00:00Z"
    assert ("Normal", "VerificationRequested") in events(cluster)
    cluster.reconcile("demo")
    assert events(cluster).count(("Normal", "VerificationRequested")) == 1, "once per slot"

    # The backup's lifecycle runs the verify Job and records its answer.
    lifecycle = BackupLifecycle(cluster.kube, REPOSITORY)
    lifecycle.reconcile(backups(cluster)["demo-202603030300"])
    (job,) = [j for j in cluster.jobs() if j["metadata"]["name"].startswith("demo-verify-")]
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:3] == ["backup", "verify", "--from"]
    finish_job(cluster, job["metadata"]["name"], {"ok": True, "operation": "verify"})
    lifecycle.reconcile(backups(cluster)["demo-202603030300"])
    verification = backups(cluster)["demo-202603030300"]["status"]["verification"]
    assert (verification["result"], verification["requested"]) == ("Passed", "2026-03-08T05:00:00Z")
    assert lifecycle.reconcile(backups(cluster)["demo-202603030300"]) is None, "answered"

    cluster.reconcile("demo")
    assert cluster.conditions("demo")["BackupVerified"] == ("True", "Passed")
    assert cluster.status("demo")["backup"]["lastVerified"]["name"] == "demo-202603030300"


def test_a_failed_verification_is_a_warning_on_the_taskmanager(clock: Clock) -> None:
    cluster = backed_up(clock)
    clock.now = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    cluster.reconcile("demo")
    finish(cluster, "demo-202603020300", "Completed", clock.now)
    cluster.kube.annotate_ours(
        BACKUP_PLURAL, NS, "demo-202603020300", {VERIFY_ANNOTATION: "by-hand-1"}
    )
    lifecycle = BackupLifecycle(cluster.kube, REPOSITORY)
    lifecycle.reconcile(backups(cluster)["demo-202603020300"])
    (job,) = [j for j in cluster.jobs() if j["metadata"]["name"].startswith("demo-verify-")]
    mismatch = {"ok": False, "reason": "VerifyMismatch", "message": "public.tasks: 3 != 2"}
    finish_job(cluster, job["metadata"]["name"], mismatch)
    lifecycle.reconcile(backups(cluster)["demo-202603020300"])
    cluster.kube.events.clear()
    cluster.reconcile("demo")
    assert cluster.conditions("demo")["BackupVerified"] == ("False", "VerificationFailed")
    assert "public.tasks" in cluster.condition("demo", "BackupVerified")["message"]
    assert ("Warning", "VerificationFailed") in events(cluster)


# -- a final backup when the TaskManager is deleted -----------------------------------------------

FINALIZER = "taskmanager.dev/final-backup"


def finalizers(cluster: Cluster) -> list[str]:
    body = cluster.kube.get_taskmanager(NS, "demo")
    assert body is not None
    return list(body["metadata"].get("finalizers") or [])


def test_a_deletion_waits_for_the_final_backup_which_outlives_it(clock: Clock) -> None:
    cluster = backed_up(clock)
    assert finalizers(cluster) == [FINALIZER]
    cluster.kube.delete_taskmanager(NS, "demo", stamp(clock.now))
    cluster.kube.events.clear()
    cluster.reconcile("demo")
    assert cluster.kube.get_taskmanager(NS, "demo") is not None, "held for its backup"
    (final,) = [b for b in backups(cluster).values() if b["spec"]["type"] == "Final"]
    assert ("Normal", "FinalBackup") in events(cluster)
    cluster.reconcile("demo")
    assert len(backups(cluster)) == 1, "the same backup, not another"
    finish(cluster, final["metadata"]["name"], "Completed", clock.now, location="file:///x")
    cluster.reconcile("demo")
    assert cluster.kube.get_taskmanager(NS, "demo") is None
    assert ("Normal", "FinalBackupCompleted") in events(cluster)
    assert final["metadata"]["name"] in backups(cluster), "the backup outlives the TaskManager"


def test_a_final_backup_that_hangs_lets_the_deletion_go_after_the_timeout(clock: Clock) -> None:
    cluster = backed_up(clock)
    cluster.kube.delete_taskmanager(NS, "demo", stamp(clock.now))
    cluster.reconcile("demo")
    clock.now += timedelta(minutes=16)
    cluster.kube.events.clear()
    cluster.reconcile("demo")
    assert cluster.kube.get_taskmanager(NS, "demo") is None
    assert ("Warning", "FinalBackupTimedOut") in events(cluster)


@pytest.mark.parametrize(
    "spec",
    [
        {"backup": BACKUP | {"finalBackup": False}},
        {"backup": BACKUP | {"enabled": False}},
    ],
    ids=["final-backup-off", "backups-off"],
)
def test_no_final_backup_no_finalizer(clock: Clock, spec: dict[str, Any]) -> None:
    cluster = backed_up(clock)
    cluster.patch_spec("demo", spec)
    cluster.reconcile("demo")
    assert finalizers(cluster) == []
    cluster.kube.delete_taskmanager(NS, "demo", stamp(clock.now))
    assert cluster.kube.get_taskmanager(NS, "demo") is None
