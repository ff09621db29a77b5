"""What the operator remembers of the cluster (what it serves, the Prometheus objects, namespace
labels) is read once per window, read again after it, and forgotten at once on a CRD event."""

from __future__ import annotations

import pytest

from taskmanager_operator.k8s import Remembered


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_value_is_read_once_per_window_and_again_after_it(clock: Clock) -> None:
    reads: list[str] = []
    remembered: Remembered[str, int] = Remembered(30, clock)

    def read() -> int:
        reads.append("read")
        return len(reads)

    assert remembered.get("monitoring.coreos.com/v1", read) == 1
    clock.now += 29
    assert remembered.get("monitoring.coreos.com/v1", read) == 1
    assert remembered.get("other/v1", read) == 2, "each key has its own value"
    clock.now += 2
    assert remembered.get("monitoring.coreos.com/v1", read) == 3


def test_clear_forgets_everything_at_once(clock: Clock) -> None:
    remembered: Remembered[str, str | None] = Remembered(30, clock)
    assert remembered.get("monitoring.coreos.com/v1", lambda: None) is None
    remembered.clear()
    assert remembered.get("monitoring.coreos.com/v1", lambda: "served") == "served"
    clock.now += 1
    assert remembered.get("monitoring.coreos.com/v1", lambda: None) == "served"
