"""When a scheduled backup (or a verification) is due: the slots of a cron schedule in a time zone.

croniter reads the schedule in the zone's wall clock; the slots come out as aware UTC datetimes,
so the rest of the operator never handles a local time. Around a change of daylight saving time
(tests/unit/test_backup_schedule.py holds these):

- spring forward: croniter moves a slot whose hour is fixed and falls in the skipped hour to the
  first minute after it (`30 2 * * *` in Europe/Paris fires at 03:00 that day), once; a schedule
  whose hour is a wildcard has no slot in the skipped hour (`30 * * * *` goes 01:30, 03:30), as in
  cron.
- fall back: croniter yields a wall-clock time of the repeated hour twice, once per offset. Here a
  slot is a wall-clock time: it fires at its first occurrence only, so a daily backup is not taken
  twice (and an hourly one skips an hour once a year).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice, takewhile
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

# A slot missed while the operator was down is taken once; the older missed ones are only
# counted, and counting stops here, so a minutely schedule after a month down costs this many
# croniter steps rather than 40,000. A count of MISSED_CAP means "MISSED_CAP or more".
MISSED_CAP = 1000
# croniter's get_prev returns slots strictly before its start; a slot at `now` itself is due.
_TICK = timedelta(microseconds=1)


class ScheduleError(ValueError):
    """A schedule (or time zone) the schema let through that yields no slot; the message, for a
    condition on the TaskManager, names it and says why."""


@dataclass(frozen=True)
class Slot:
    """The slot to take a backup for now, and how many older due slots are skipped for it."""

    time: datetime
    missed: int

    @property
    def missed_text(self) -> str:
        """The count for an event: `1000+` when counting stopped at the cap."""
        return f"{self.missed}+" if self.missed >= MISSED_CAP else str(self.missed)


def slots(
    schedule: str, time_zone: str, start: datetime, *, backwards: bool = False
) -> Iterator[datetime]:
    """The schedule's slots strictly after `start` (strictly before it when `backwards`), nearest
    first, as aware UTC datetimes. Raises ScheduleError for a schedule croniter refuses or an
    unknown zone at once, and for one that never fires when the first slot is asked for."""
    zone = _zone(time_zone)
    try:
        cron = croniter(schedule, _aware(start).astimezone(zone), ret_type=datetime)
    except CroniterError as error:
        raise ScheduleError(f"schedule {schedule!r} is not a cron schedule: {error}") from error
    return _walk(schedule, cron, backwards=backwards)


def next_slot(schedule: str, time_zone: str, after: datetime) -> datetime:
    """The first slot strictly after `after`."""
    return next(slots(schedule, time_zone, after))


def due_slot(
    schedule: str, time_zone: str, now: datetime, last_taken: datetime | None, since: datetime
) -> Slot | None:
    """The newest slot in (max(last_taken, since), now], or None when there is none.

    Slots at or before `last_taken` were taken already; those at or before `since` (when backups
    were enabled) predate them, so a new TaskManager gets no backup for yesterday's slot.
    """
    floor = _aware(since)
    if last_taken is not None:
        floor = max(floor, _aware(last_taken))
    earlier = slots(schedule, time_zone, _aware(now) + _TICK, backwards=True)
    newest = next(earlier)
    if newest <= floor:
        return None
    missed = sum(1 for _ in takewhile(lambda slot: slot > floor, islice(earlier, MISSED_CAP)))
    return Slot(time=newest, missed=missed)


def scheduled_backup_name(taskmanager: str, slot: datetime) -> str:
    """The TaskManagerBackup for a slot. The name is the slot's, so two replicas or a restart
    computing the same slot create the same object: the second create is AlreadyExists, not a
    duplicate backup. A 40-character TaskManager name gives 53 characters."""
    return f"{taskmanager}-{_stamp(slot)}"


def verification_name(taskmanager: str, slot: datetime) -> str:
    """The restore test for a verification slot, deterministic for the same reason (60 characters
    at most)."""
    return f"{taskmanager}-verify-{_stamp(slot)}"


def _walk(schedule: str, cron: croniter[datetime], *, backwards: bool) -> Iterator[datetime]:
    while True:
        try:
            local = cron.get_prev() if backwards else cron.get_next()
        except CroniterBadDateError as error:
            raise ScheduleError(
                f"schedule {schedule!r} never fires: no date matches it (a day its months do not "
                "have, such as 31 February)"
            ) from error
        # The second occurrence of a wall-clock time in the repeated hour has another offset than
        # the first (fold=0 is always the earlier instant); the slot was the first.
        if local.replace(fold=0).utcoffset() == local.utcoffset():
            yield local.astimezone(UTC)


def _zone(time_zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ScheduleError(
            f"time zone {time_zone!r} is not in the operator's time zone database"
        ) from error


def _aware(moment: datetime) -> datetime:
    # A naive datetime would be read as the machine's local time: wrong, and silently.
    if moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone")
    return moment


def _stamp(slot: datetime) -> str:
    return f"{_aware(slot).astimezone(UTC):%Y%m%d%H%M}"
