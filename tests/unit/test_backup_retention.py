"""Which backups are deleted: scheduled ones past the retention (never the last good copies, never
another type's, never one still running), and any backup past its own ttl."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from taskmanager_operator.api.v1alpha1 import BackupRetention
from taskmanager_operator.backups.retention import StoredBackup, expired, ttl_expired

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
RETENTION = BackupRetention(days=30, min_keep=3)
OTHER_TYPES = ["Manual", "PreUpgrade", "PreRestore", "Final"]


def backup(
    name: str,
    days_ago: float,
    *,
    type: str = "Scheduled",
    phase: str | None = "Completed",
    ttl: str | None = None,
) -> StoredBackup:
    """A backup created `days_ago` days before NOW; a finished one finished ten minutes later."""
    created = NOW - timedelta(days=days_ago)
    finished = phase in {"Completed", "Failed"}
    completed = created + timedelta(minutes=10) if finished else None
    return StoredBackup(name, type, phase, completed, created, ttl)


def daily(count: int, first_days_ago: int, **fields: str) -> list[StoredBackup]:
    """`count` daily scheduled backups, the newest `first_days_ago` days old."""
    return [
        backup(f"s{first_days_ago + age:03}", first_days_ago + age, **fields)
        for age in range(count)
    ]


# --- retention ------------------------------------------------------------------------------


def test_scheduled_backups_past_the_retention_are_deleted_oldest_first() -> None:
    backups = daily(10, first_days_ago=25)  # 25 to 34 days old
    assert expired(backups, RETENTION, NOW) == ["s034", "s033", "s032", "s031"]


def test_recent_backups_are_kept_however_many() -> None:
    assert expired(daily(30, first_days_ago=0), RETENTION, NOW) == []


def test_min_keep_keeps_the_newest_even_when_all_are_old() -> None:
    backups = daily(6, first_days_ago=100)
    assert expired(backups, RETENTION, NOW) == ["s105", "s104", "s103"]


def test_older_than_days_is_strictly_older() -> None:
    retention = BackupRetention(days=30, min_keep=1)
    edge = StoredBackup("edge", "Scheduled", "Completed", NOW - timedelta(days=30), NOW)
    older = StoredBackup(
        "older", "Scheduled", "Completed", NOW - timedelta(days=30, microseconds=1), NOW
    )
    newest = backup("newest", 0)
    assert expired([edge, older, newest], retention, NOW) == ["older"]


@pytest.mark.parametrize("backup_type", OTHER_TYPES)
@pytest.mark.parametrize("phase", ["Completed", "Failed"])
def test_other_types_are_never_deleted_by_the_retention(backup_type: str, phase: str) -> None:
    old = [backup(f"old-{age}", age, type=backup_type, phase=phase) for age in range(100, 110)]
    assert expired([*old, *daily(3, first_days_ago=0)], RETENTION, NOW) == []


def test_other_types_do_not_count_toward_min_keep() -> None:
    # Three recent Manual backups do not let the retention delete the newest scheduled ones.
    manual = [backup(f"manual-{age}", age, type="Manual") for age in range(3)]
    assert expired([*manual, *daily(5, first_days_ago=100)], RETENTION, NOW) == ["s104", "s103"]


def test_the_newest_good_backup_is_kept_when_it_is_a_manual_one() -> None:
    manual = backup("manual", 200, type="Manual")
    scheduled = daily(5, first_days_ago=300)
    assert expired([manual, *scheduled], RETENTION, NOW) == ["s304", "s303"]


def test_the_newest_good_backup_is_kept_even_without_min_keep() -> None:
    # The schema's min_keep >= 1 keeps it already; the rule must not hang on that bound.
    retention = BackupRetention.model_construct(days=30, min_keep=0)
    newest_failed = backup("failed", 50, phase="Failed")
    assert expired([newest_failed, *daily(3, first_days_ago=100)], retention, NOW) == [
        "s102",
        "s101",
        "failed",
    ]


def test_old_failed_scheduled_backups_are_deleted_and_never_count_toward_min_keep() -> None:
    failed = [backup(f"failed-{age}", age, phase="Failed") for age in (40, 41, 5)]
    good = daily(4, first_days_ago=100)
    # The three newest scheduled are Failed: the three newest Completed ones are kept instead.
    assert expired([*failed, *good], RETENTION, NOW) == ["s103", "failed-41", "failed-40"]


def test_a_failed_backup_is_aged_by_its_creation() -> None:
    # Failed long after it was created (a Job stuck for days): its creation dates it.
    stuck = StoredBackup("stuck", "Scheduled", "Failed", NOW, NOW - timedelta(days=31))
    assert expired([stuck, *daily(3, first_days_ago=0)], RETENTION, NOW) == ["stuck"]


@pytest.mark.parametrize("phase", ["Pending", "Running", None])
def test_unfinished_backups_are_never_deleted(phase: str | None) -> None:
    unfinished = [backup(f"u{age}", age, phase=phase) for age in range(100, 105)]
    assert expired([*unfinished, *daily(3, first_days_ago=0)], RETENTION, NOW) == []


def test_a_completed_backup_without_a_completion_time_is_kept() -> None:
    undated = StoredBackup("undated", "Scheduled", "Completed", None, NOW - timedelta(days=100))
    assert expired([undated, *daily(3, first_days_ago=0)], RETENTION, NOW) == []


def test_the_answer_does_not_depend_on_the_listing_order() -> None:
    backups = [
        *daily(10, first_days_ago=25),
        *(backup(f"failed-{age}", age, phase="Failed") for age in (35, 45)),
        backup("manual", 60, type="Manual"),
    ]
    expected = expired(backups, RETENTION, NOW)
    rng = random.Random(7)  # noqa: S311 - fixed seed: a failure is reproducible
    for _ in range(20):
        rng.shuffle(backups)
        assert expired(backups, RETENTION, NOW) == expected


def test_ties_are_broken_by_name() -> None:
    # Same completion time: the greater name counts as the newer, in both the keeping and the
    # order of deletion, so two replicas always pick the same ones.
    same = [backup(name, 100) for name in ("c", "a", "d", "b")]
    retention = BackupRetention(days=30, min_keep=2)
    assert expired(same, retention, NOW) == ["a", "b"]


# --- ttl ------------------------------------------------------------------------------------


def test_a_backup_past_its_ttl_expires_whatever_its_type() -> None:
    backups = [
        backup("manual", 8, type="Manual", ttl="7d"),
        backup("final", 2, type="Final", ttl="36h"),
        backup("scheduled", 1, ttl="15m"),
        backup("failed", 1, phase="Failed", ttl="1h"),
    ]
    assert ttl_expired(backups, NOW) == ["manual", "final", "failed", "scheduled"]


def test_a_backup_within_its_ttl_is_kept() -> None:
    assert ttl_expired([backup("manual", 6, type="Manual", ttl="7d")], NOW) == []


def test_past_the_ttl_is_strictly_past() -> None:
    at_edge = StoredBackup("edge", "Manual", "Completed", NOW - timedelta(days=7), NOW, "7d")
    assert ttl_expired([at_edge], NOW) == []
    assert ttl_expired([at_edge], NOW + timedelta(microseconds=1)) == ["edge"]


def test_a_backup_without_a_ttl_never_expires() -> None:
    assert ttl_expired([backup("manual", 3650, type="Manual")], NOW) == []


@pytest.mark.parametrize("phase", ["Pending", "Running"])
def test_an_unfinished_backup_does_not_expire(phase: str) -> None:
    assert ttl_expired([backup("running", 30, phase=phase, ttl="1m")], NOW) == []
