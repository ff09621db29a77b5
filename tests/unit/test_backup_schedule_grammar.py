"""The schedule grammar the CRD checks at apply and croniter, which computes the times, agree:
whatever the schema lets through, the operator can schedule; what it refuses is refused with the
field named. Time zones are the pinned tzdata's, the same list in the schema and at run time."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from pydantic import ValidationError

from taskmanager_api.core.config import S3_ACCESS_KEY_ID_FILE, S3_SECRET_ACCESS_KEY_FILE
from taskmanager_operator.api.crd import TASKMANAGER, build_crd
from taskmanager_operator.api.cron import (
    CRON_PATTERN,
    MACROS,
    MONTH_NAMES,
    WEEKDAY_NAMES,
    time_zones,
)
from taskmanager_operator.api.v1alpha1 import Backup

# Each field's bounds and its names, as cron reads them.
FIELDS = [(0, 59, ()), (0, 23, ()), (1, 31, ()), (1, 12, MONTH_NAMES), (0, 7, WEEKDAY_NAMES)]


def random_field(rng: random.Random, low: int, high: int, names: tuple[str, ...]) -> str:
    def value() -> str:
        number = rng.randint(low, high)
        if names and rng.random() < 0.3:
            return names[(number - low) % len(names)]
        return str(number)

    def element() -> str:
        shape = rng.choice(["*", "value", "range"])
        text = "*" if shape == "*" else value()
        if shape == "range":
            first, last = sorted(rng.sample(range(low, high + 1), 2))
            text = f"{first}-{last}"
        if rng.random() < 0.3:
            text += f"/{rng.randint(1, 30)}"
        return text

    return ",".join(element() for _ in range(rng.randint(1, 3)))


def test_every_schedule_the_schema_accepts_croniter_schedules() -> None:
    rng = random.Random(20261206)  # noqa: S311 - fixed seed: a failure is reproducible
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(2000):
        expression = " ".join(random_field(rng, *field) for field in FIELDS)
        assert re.match(CRON_PATTERN, expression), expression
        assert croniter.is_valid(expression), expression
        # Some never fire (30 February): croniter says so rather than returning a wrong time.
        if "2" not in expression.split()[3]:
            croniter(expression, start).get_next(datetime)
    for macro in MACROS:
        assert re.match(CRON_PATTERN, macro), macro
        assert croniter.is_valid(macro), macro


@pytest.mark.parametrize(
    "expression",
    [
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * 32 * *",
        "* * * 13 *",
        "* * * * 8",
        "*/0 * * * *",
        "0 3 * *",
        "0 3 * * * *",
        "daily",
        "@reboot",
        "0 3 * * mon",
        " 0 3 * * *",
        "0  3 * * *",
        "0 3 * * 1,",
    ],
)
def test_the_schema_refuses_what_is_not_a_schedule(expression: str) -> None:
    assert not re.match(CRON_PATTERN, expression)
    with pytest.raises(ValidationError, match="schedule"):
        Backup.model_validate({"schedule": expression})


def test_the_default_schedule_is_daily_at_three_in_the_zone() -> None:
    backup = Backup()
    after = datetime(2026, 3, 27, 12, 0, tzinfo=ZoneInfo("Europe/Paris"))
    paris = Backup.model_validate({"timeZone": "Europe/Paris"})
    assert paris.time_zone == "Europe/Paris"
    next_run = croniter(backup.schedule, after).get_next(datetime)
    # Across the change to summer time (29 March 2026), still 03:00 on the wall clock.
    following = croniter(backup.schedule, next_run).get_next(datetime)
    assert (next_run.hour, following.hour) == (3, 3)
    assert following.utcoffset() != next_run.utcoffset()


def test_time_zones_are_the_pinned_databases_in_schema_and_model() -> None:
    zones = time_zones()
    assert {"UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"} <= set(zones)
    for zone in zones:
        ZoneInfo(zone)  # every one the schema offers is one the operator can read
    spec = build_crd(TASKMANAGER)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    time_zone = spec["properties"]["spec"]["properties"]["backup"]["properties"]["timeZone"]
    assert time_zone["enum"] == list(zones)
    with pytest.raises(ValidationError, match="unknown time zone"):
        Backup.model_validate({"timeZone": "Mars/Olympus"})


def test_the_credentials_secrets_keys_are_the_files_the_backup_command_reads() -> None:
    spec = build_crd(TASKMANAGER)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    backup = spec["properties"]["spec"]["properties"]["backup"]["properties"]
    s3 = backup["storage"]["properties"]["s3"]["properties"]
    described = s3["credentialsSecretRef"]["description"]
    assert f"`{S3_ACCESS_KEY_ID_FILE}`" in described
    assert f"`{S3_SECRET_ACCESS_KEY_FILE}`" in described
