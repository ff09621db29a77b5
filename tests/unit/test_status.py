"""Conditions follow the API conventions, and an unchanged observation writes nothing new."""

from __future__ import annotations

from taskmanager_operator.status import Condition, merge_conditions, transitions


def test_last_transition_time_moves_only_when_the_status_does() -> None:
    previous = [
        {"type": "Ready", "status": "True", "reason": "Ready", "lastTransitionTime": "T0"},
        {"type": "Degraded", "status": "False", "reason": "AsExpected", "lastTransitionTime": "T0"},
    ]
    merged = merge_conditions(
        previous,
        [
            Condition("Ready", "True", "Ready", "2/2 ready"),
            Condition("Degraded", "True", "MigrationFailed", "job failed"),
        ],
        generation=4,
    )
    ready, degraded = merged
    assert ready["lastTransitionTime"] == "T0"
    assert degraded["lastTransitionTime"] != "T0"
    assert {c["observedGeneration"] for c in merged} == {4}


def test_transitions_are_changes_of_status_or_reason() -> None:
    previous = [{"type": "Ready", "status": "False", "reason": "RollingOut"}]
    same = [Condition("Ready", "False", "RollingOut", "1/2")]
    assert transitions(previous, same) == []
    reason_changed = [Condition("Ready", "False", "MigrationFailed")]
    assert transitions(previous, reason_changed) == reason_changed
    new = [Condition("Paused", "True", "Paused")]
    assert transitions(previous, new) == new
