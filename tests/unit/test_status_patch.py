"""The status is written as a JSON merge patch: what the writer sends must turn the stored status
into the computed one, nested keys that went away included, and nothing is sent when they agree
(a patch that changes nothing is still a write request)."""

from __future__ import annotations

from typing import Any

import pytest

from taskmanager_operator.reconcile.status_writer import merge_patch
from tests.support.fake_kube import _merge_patch as apply_merge_patch

CASES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    # A key dropped inside an object: once written by an older reconcile, it stayed for good.
    (
        {"phase": "Ready", "monitoring": {"objects": ["ConfigMap/a"], "selectedBy": []}},
        {"phase": "Ready", "monitoring": {"objects": ["ConfigMap/a"]}},
    ),
    # A key dropped at the top, or set to None, goes.
    ({"phase": "Ready", "backup": {"next": "x"}}, {"phase": "Ready"}),
    ({"phase": "Ready", "backup": {"next": "x"}}, {"phase": "Ready", "backup": None}),
    # Lists are replaced whole; new keys and objects come.
    ({"conditions": [{"type": "Ready"}]}, {"conditions": [], "version": "1.2.0"}),
    ({}, {"phase": "Pending", "monitoring": {"objects": []}}),
]


@pytest.mark.parametrize(("stored", "computed"), CASES)
def test_the_patch_turns_the_stored_status_into_the_computed_one(
    stored: dict[str, Any], computed: dict[str, Any]
) -> None:
    patch = merge_patch(stored, computed)
    assert patch
    wanted = {key: value for key, value in computed.items() if value is not None}
    assert apply_merge_patch(stored, patch) == wanted
    assert merge_patch(wanted, computed) == {}


def test_a_status_that_agrees_needs_no_patch() -> None:
    status = {"phase": "Ready", "monitoring": {"objects": ["ConfigMap/a"]}, "conditions": []}
    assert merge_patch(status, dict(status)) == {}
    assert merge_patch(status, status | {"externalURL": None}) == {}
