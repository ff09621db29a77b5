"""Waiting on a condition with a deadline: the only way tests wait (never a bare sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeoutError(AssertionError):
    """The condition did not hold before the deadline; the message says what was last seen."""


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.5,
    what: str,
) -> T:
    """Call `probe` until it returns a truthy value, and return that value.

    Exceptions raised by `probe` count as "not yet" (the thing may not exist yet); the last one is
    reported when the deadline passes, so a failure says what went wrong rather than only "timeout".
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = probe()
        except Exception as error:  # noqa: BLE001 - reported when the deadline passes
            last = error
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise WaitTimeoutError(
                f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}"
            )
        time.sleep(interval)


def holds_for(
    probe: Callable[[], object], *, seconds: float, interval: float = 1.0, what: str
) -> int:
    """Call `probe` every `interval` for `seconds`; it must be truthy every time. Returns how many
    times it was asked. A falsy answer or an exception fails at once, naming `what`."""
    deadline, asked = time.monotonic() + seconds, 0
    while True:
        value = probe()
        asked += 1
        if not value:
            raise AssertionError(f"{what} stopped holding after {asked} checks: {value!r}")
        if time.monotonic() >= deadline:
            return asked
        time.sleep(interval)
