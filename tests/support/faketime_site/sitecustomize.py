"""Loaded (through PYTHONPATH) into a process the tests run under libfaketime: Debian's
libfaketime 0.9.10 fails Python's time.sleep with EINVAL when the monotonic clock is left real
(FAKETIME_DONT_FAKE_MONOTONIC), because it shifts the absolute deadline that
clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) is given. A timed wait on an event is what
time.sleep does by other means, on the same real monotonic clock, and libfaketime leaves it
alone. Nothing else in the process changes."""

from __future__ import annotations

import threading
import time
from typing import SupportsIndex


def _sleep(seconds: float | SupportsIndex) -> None:
    duration = float(seconds)
    if duration < 0:
        raise ValueError("sleep length must be non-negative")
    threading.Event().wait(duration)


time.sleep = _sleep
