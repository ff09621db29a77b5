"""When scheduled backups are due: cron slots in a time zone as UTC instants, across daylight
saving changes, the slot due after downtime (with the missed ones counted, at a bounded cost),
schedules that never fire, and the deterministic names that make a slot's backup idempotent."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise, takewhile
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from taskmanager_operator.api.crd import MAX_NAME_LENGTH
from taskmanager_operator.api.v1alpha1 import DNS_LABEL_PATTERN
from taskmanager_operator.backups.schedule import (
    MISSED_CAP,
    ScheduleError,
    Slot,
    due_slot,
    next_slot,
    scheduled_backup_name,
    slots,
    verification_name,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def forward(schedule: str, zone: str, start: datetime, count: int) -> list[datetime]:
    return list(islice(slots(schedule, zone, start), count))


def wall(moments: list[datetime], zone: ZoneInfo) -> list[str]:
    return [moment.astimezone(zone).strftime("%m-%d %H:%M%z") for moment in moments]


# --- daylight saving time -------------------------------------------------------------------
# Europe/Paris: 2026-03-29 02:00 CET -> 03:00 CEST, 2026-10-25 03:00 CEST -> 02:00 CET.
# America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT, 2026-11-01 02:00 EDT -> 01:00 EST.


@pytest.mark.parametrize("start", [utc(2026, 3, 27, 12), utc(2026, 10, 23, 12)])
def test_a_daily_slot_stays_at_its_wall_clock_time_across_a_change(start: datetime) -> None:
    taken = forward("0 3 * * *", "Europe/Paris", start, 4)
    assert [moment.astimezone(PARIS).hour for moment in taken] == [3, 3, 3, 3]
    assert all(moment.tzinfo is UTC for moment in taken)
    # One day's gap is 23 or 25 hours: the UTC time moved, the wall clock did not.
    assert {later - earlier for earlier, later in pairwise(taken)} == {
        timedelta(hours=24),
        timedelta(hours=23 if start.month == 3 else 25),
    }


def test_a_slot_in_the_skipped_hour_fires_once_at_the_end_of_the_gap() -> None:
    # croniter's behaviour: 02:30 does not exist on 29 March, so it moves to 03:00 CEST.
    taken = forward("30 2 * * *", "Europe/Paris", utc(2026, 3, 27, 12), 3)
    assert taken == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)]
    assert wall(taken, PARIS) == ["03-28 02:30+0100", "03-29 03:00+0200", "03-30 02:30+0200"]


def test_a_wildcard_hour_has_no_slot_in_the_skipped_hour() -> None:
    # croniter's behaviour, as cron's: a job that runs every hour runs every real hour, so the
    # 02:30 that does not exist is neither taken nor moved to 03:00.
    taken = forward("30 * * * *", "Europe/Paris", utc(2026, 3, 28, 23), 4)
    assert wall(taken, PARIS) == [
        "03-29 00:30+0100",
        "03-29 01:30+0100",
        "03-29 03:30+0200",
        "03-29 04:30+0200",
    ]


def test_croniter_itself_yields_a_time_of_the_repeated_hour_twice() -> None:
    # Why slots() filters: on 25 October croniter gives 02:30 at +02:00 and again at +01:00.
    cron = croniter("30 2 * * *", utc(2026, 10, 24, 12).astimezone(PARIS), ret_type=datetime)
    raw = [cron.get_next() for _ in range(3)]
    assert [moment.isoformat() for moment in raw] == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-26T02:30:00+01:00",
    ]


def test_a_slot_in_the_repeated_hour_fires_once_at_its_first_occurrence() -> None:
    taken = forward("30 2 * * *", "Europe/Paris", utc(2026, 10, 23, 12), 3)
    assert taken == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_an_hourly_schedule_takes_the_repeated_hour_once() -> None:
    taken = forward("0 * * * *", "Europe/Paris", utc(2026, 10, 24, 23, 30), 3)
    assert wall(taken, PARIS) == ["10-25 02:00+0200", "10-25 03:00+0100", "10-25 04:00+0100"]


def test_new_york_skipped_and_repeated_hours() -> None:
    spring = forward("30 2 * * *", "America/New_York", utc(2026, 3, 7, 12), 2)
    assert wall(spring, NEW_YORK) == ["03-08 03:00-0400", "03-09 02:30-0400"]
    autumn = forward("30 1 * * *", "America/New_York", utc(2026, 10, 31, 12), 2)
    assert autumn == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]


# Each zone's changes in 2026 (Lord Howe's clocks move by 30 minutes).
CHANGES = [
    ("Europe/Paris", utc(2026, 3, 29)),
    ("Europe/Paris", utc(2026, 10, 25)),
    ("America/New_York", utc(2026, 3, 8)),
    ("America/New_York", utc(2026, 11, 1)),
    ("Australia/Lord_Howe", utc(2026, 4, 4)),
    ("Australia/Lord_Howe", utc(2026, 10, 3)),
]


@pytest.mark.parametrize(("zone", "change"), CHANGES)
@pytest.mark.parametrize(
    "schedule", ["30 2 * * *", "30 1 * * *", "0 * * * *", "*/15 * * * *", "15,45 2 * * *"]
)
def test_walking_back_meets_the_same_slots_as_walking_forward(
    zone: str, change: datetime, schedule: str
) -> None:
    # due_slot walks back from now, next_slot forward: across every change they must agree, or
    # a slot would be taken twice or never.
    start, end = change - timedelta(days=2), change + timedelta(days=2)
    ahead = list(takewhile(lambda moment: moment < end, slots(schedule, zone, start)))
    behind = list(
        takewhile(lambda moment: moment > start, slots(schedule, zone, end, backwards=True))
    )
    assert ahead == behind[::-1]
    assert ahead == sorted(set(ahead))


def test_a_repeated_hour_slot_taken_is_not_due_again_in_the_second_pass() -> None:
    # 01:45 UTC is 02:45 CET, the second pass through 02:xx: the 02:30 slot was taken at 00:30 UTC.
    assert (
        due_slot(
            "30 2 * * *",
            "Europe/Paris",
            now=utc(2026, 10, 25, 1, 45),
            last_taken=utc(2026, 10, 25, 0, 30),
            since=utc(2026, 1, 1),
        )
        is None
    )


# --- macros and schedules that never fire ---------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("@daily", utc(2026, 1, 1, 23)),  # midnight in Paris
        ("@midnight", utc(2026, 1, 1, 23)),
        ("@hourly", utc(2026, 1, 1, 13)),
        ("@weekly", utc(2026, 1, 3, 23)),  # Sunday 00:00
        ("@monthly", utc(2026, 1, 31, 23)),
        ("@yearly", utc(2026, 12, 31, 23)),
    ],
)
def test_macros(schedule: str, expected: datetime) -> None:
    assert next_slot(schedule, "Europe/Paris", utc(2026, 1, 1, 12, 30)) == expected


@pytest.mark.parametrize("schedule", ["0 0 31 2 *", "0 0 30 2 *", "0 3 31 4,6,9,11 *"])
def test_a_schedule_that_never_fires_is_a_schedule_error(schedule: str) -> None:
    with pytest.raises(ScheduleError) as raised:
        next_slot(schedule, "UTC", utc(2026, 1, 1))
    assert str(raised.value) == (
        f"schedule {schedule!r} never fires: no date matches it (a day its months do not have, "
        "such as 31 February)"
    )
    with pytest.raises(ScheduleError, match="never fires"):
        due_slot(schedule, "UTC", utc(2026, 1, 1), None, utc(2025, 1, 1))


def test_29_february_fires_in_leap_years() -> None:
    assert next_slot("0 0 29 2 *", "UTC", utc(2026, 1, 1)) == utc(2028, 2, 29)


@pytest.mark.parametrize("schedule", ["*/0 * * * *", "0 3 * *", "@reboot", "60 * * * *"])
def test_a_schedule_croniter_refuses_is_a_schedule_error_at_once(schedule: str) -> None:
    # Raised by slots() itself, before any slot is asked for.
    with pytest.raises(ScheduleError, match=re.escape(f"schedule {schedule!r} is not a cron")):
        slots(schedule, "UTC", utc(2026, 1, 1))


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../etc/passwd", ""])
def test_an_unknown_time_zone_is_a_schedule_error(zone: str) -> None:
    with pytest.raises(ScheduleError, match="is not in the operator's time zone database"):
        next_slot("0 3 * * *", zone, utc(2026, 1, 1))


def test_a_schedule_error_is_a_value_error() -> None:
    assert issubclass(ScheduleError, ValueError)


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        next_slot("0 3 * * *", "UTC", datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="has no time zone"):
        due_slot("0 3 * * *", "UTC", utc(2026, 1, 1), None, datetime(2025, 1, 1))


# --- next_slot and due_slot -----------------------------------------------------------------


def test_next_slot_is_strictly_after() -> None:
    assert next_slot("0 3 * * *", "UTC", utc(2026, 1, 1, 3)) == utc(2026, 1, 2, 3)
    just_before = utc(2026, 1, 1, 3) - timedelta(microseconds=1)
    assert next_slot("0 3 * * *", "UTC", just_before) == utc(2026, 1, 1, 3)


def test_a_slot_at_now_is_due() -> None:
    slot, since = utc(2026, 1, 2, 3), utc(2026, 1, 1, 12)
    assert due_slot("0 3 * * *", "UTC", slot, None, since) == Slot(time=slot, missed=0)
    just_before = slot - timedelta(microseconds=1)
    assert due_slot("0 3 * * *", "UTC", just_before, None, since) is None


def test_a_new_taskmanager_gets_no_backup_for_a_slot_before_it_existed() -> None:
    since = utc(2026, 1, 1, 10)
    assert due_slot("0 3 * * *", "UTC", utc(2026, 1, 1, 12), None, since) is None
    # A slot exactly at `since` predates the backups too.
    assert due_slot("0 3 * * *", "UTC", utc(2026, 1, 1, 12), None, utc(2026, 1, 1, 3)) is None
    assert due_slot("0 3 * * *", "UTC", utc(2026, 1, 2, 4), None, since) == Slot(
        time=utc(2026, 1, 2, 3), missed=0
    )


def test_a_slot_taken_is_not_due_again() -> None:
    since = utc(2025, 1, 1)
    taken = utc(2026, 1, 2, 3)
    assert due_slot("0 3 * * *", "UTC", utc(2026, 1, 2, 23), taken, since) is None
    assert due_slot("0 3 * * *", "UTC", utc(2026, 1, 3, 3), taken, since) == Slot(
        time=utc(2026, 1, 3, 3), missed=0
    )


def test_after_downtime_the_newest_slot_is_due_and_the_older_are_counted() -> None:
    # Down from just after the 1 January backup to 6 January 12:00: the 2nd to 5th are skipped.
    slot = due_slot("0 3 * * *", "UTC", utc(2026, 1, 6, 12), utc(2026, 1, 1, 3), utc(2025, 1, 1))
    assert slot == Slot(time=utc(2026, 1, 6, 3), missed=4)
    assert slot.missed_text == "4"


def test_missed_slots_count_from_since_when_none_was_taken() -> None:
    slot = due_slot("0 * * * *", "UTC", utc(2026, 1, 1, 10, 30), None, utc(2026, 1, 1, 7, 30))
    assert slot == Slot(time=utc(2026, 1, 1, 10), missed=2)


def test_a_minutely_schedule_after_60_days_down_costs_a_bounded_number_of_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps = 0
    get_prev: Any = croniter.get_prev

    def counting_get_prev(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal steps
        steps += 1
        return get_prev(self, *args, **kwargs)

    monkeypatch.setattr(croniter, "get_prev", counting_get_prev)
    now = utc(2026, 3, 1, 12) + timedelta(seconds=30)
    slot = due_slot("* * * * *", "UTC", now, now - timedelta(days=60), utc(2025, 1, 1))
    # 86,400 minutes were missed; the count stops at the cap, and so do the steps: the newest
    # slot, then one step per missed slot counted.
    assert slot == Slot(time=utc(2026, 3, 1, 12), missed=MISSED_CAP)
    assert slot.missed_text == f"{MISSED_CAP}+"
    assert steps == MISSED_CAP + 1


def test_the_count_below_the_cap_is_exact() -> None:
    now = utc(2026, 3, 1, 12)
    slot = due_slot("* * * * *", "UTC", now, now - timedelta(minutes=MISSED_CAP), utc(2025, 1, 1))
    assert slot == Slot(time=now, missed=MISSED_CAP - 1)
    assert slot.missed_text == str(MISSED_CAP - 1)


# --- names ----------------------------------------------------------------------------------


def test_a_slot_has_one_name_however_its_time_is_written() -> None:
    slot = utc(2026, 3, 29, 1)
    assert scheduled_backup_name("tasks", slot) == "tasks-202603290100"
    assert scheduled_backup_name("tasks", slot.astimezone(PARIS)) == "tasks-202603290100"
    assert verification_name("tasks", slot) == "tasks-verify-202603290100"


def test_names_of_the_longest_taskmanager_fit_a_label_value() -> None:
    longest = "t" * MAX_NAME_LENGTH
    slot = utc(2099, 12, 31, 23, 59)
    for name in (scheduled_backup_name(longest, slot), verification_name(longest, slot)):
        assert len(name) <= 63
        assert re.match(DNS_LABEL_PATTERN, name)
    assert scheduled_backup_name(longest, slot) != verification_name(longest, slot)


def test_distinct_slots_have_distinct_names() -> None:
    taken = forward("*/15 * * * *", "Europe/Paris", utc(2026, 10, 24, 22), 24)
    assert len({scheduled_backup_name("tasks", moment) for moment in taken}) == 24
