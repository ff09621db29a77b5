"""The grammar of a backup schedule, as the CRD's schema checks it at `kubectl apply`.

A schedule is five fields, minute hour day-of-month month day-of-week, as a CronJob's; each is
`*` or a value or range, with an optional `/step`, in a comma list; months and weekdays also by
their three-letter English names (upper case). `@daily` and its kin stand for their five fields.
The operator computes the times with croniter, which reads everything this grammar accepts (a
test feeds it samples of every shape). A time zone is a name of the IANA database that the
pinned tzdata package carries: the same list the schema enumerates and the operator reads.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")

# Each field's values, as regular expressions (no leading zeros beyond one, as cron reads them).
_MINUTE = r"[0-5]?[0-9]"
_HOUR = r"(1[0-9]|2[0-3]|0?[0-9])"
_DAY_OF_MONTH = r"(3[01]|[12][0-9]|0?[1-9])"
_MONTH = r"(1[0-2]|0?[1-9]|" + "|".join(MONTH_NAMES) + ")"
_WEEKDAY = r"([0-7]|" + "|".join(WEEKDAY_NAMES) + ")"
_STEP = r"(/([1-9][0-9]?))?"


def _field(value: str) -> str:
    element = rf"(\*|{value}(-{value})?){_STEP}"
    return rf"{element}(,{element})*"


CRON_PATTERN = (
    "^("
    + " ".join(_field(value) for value in (_MINUTE, _HOUR, _DAY_OF_MONTH, _MONTH, _WEEKDAY))
    + "|"
    + "|".join(MACROS)
    + ")$"
)
CRON_MAX_LENGTH = 200


@cache
def time_zones() -> tuple[str, ...]:
    """Every zone name of the pinned tzdata package, sorted (its `zones` file lists them)."""
    listed = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return tuple(sorted(name for name in listed.split() if name))
