"""The registry of children agrees with what reads it and what it describes: the kopf watches,
the builders, and the reconcile's delete of optional children. The chart's RBAC is checked against
it in tests/chart/test_children_rbac.py."""

from __future__ import annotations

import kopf
import pytest

from taskmanager_operator.builders.common import Capabilities
from taskmanager_operator.children import CHILDREN, ChildKind, WhenWanted, optional_children
from taskmanager_operator.handlers import OWNED
from tests.unit.test_builders import EVERYTHING_ON, children, taskmanager

# Every optional child off: no autoscaling, one replica (no budget), no policy, no Ingress, no
# monitoring, the user's ServiceAccount.
EVERYTHING_OFF = {
    "replicas": 1,
    "serviceAccountName": "tasks",
    "networkPolicy": {"enabled": False},
    "monitoring": {"enabled": False},
}
# A ServiceMonitor and a PodMonitor exclude each other, as an Ingress and an HTTPRoute do: every
# option on, either way.
ROUTED = {"enabled": True, "host": "tasks.example.com", "gateway": {"name": "public"}}
ALL_ON = [
    EVERYTHING_ON,
    EVERYTHING_ON | {"monitoring": {"scrape": "PodMonitor"}, "ingress": ROUTED},
]


def test_kopf_watches_every_kind_of_child_and_nothing_else() -> None:
    # kopf keeps the plural as the selector's any_name; the children's watches are the ones
    # filtered on our managed-by label.
    selectors = [
        handler.selector
        for handler in kopf.get_default_registry()._watching.get_all_handlers()
        if handler.labels == OWNED
    ]
    watched = {(s.group, s.version, s.any_name) for s in selectors if s is not None}
    assert len(watched) == len(selectors)
    assert watched == {(child.group, child.version, child.plural) for child in CHILDREN}


def test_the_builders_make_exactly_the_registered_kinds() -> None:
    # A kind missing here would be made but neither watched nor granted by the chart.
    built = {
        (child["apiVersion"], child["kind"])
        for spec in ALL_ON
        for child in children(taskmanager(spec))
    }
    assert built == {(child.api_version, child.kind) for child in CHILDREN}


def test_the_registry_names_each_kind_once() -> None:
    assert len({child.kind for child in CHILDREN}) == len(CHILDREN)
    assert len({child.resource for child in CHILDREN}) == len(CHILDREN)


@pytest.mark.parametrize(
    ("child", "when"), optional_children(), ids=[c.kind for c, _ in optional_children()]
)
def test_an_optional_child_is_deleted_under_the_name_and_kind_it_was_built_with(
    child: ChildKind, when: WhenWanted
) -> None:
    built = [(tm, when.build(tm, Capabilities())) for tm in map(taskmanager, ALL_ON)]
    tm, manifest = next(((tm, m) for tm, m in built if m is not None), built[0])
    assert manifest is not None, f"{child.kind} is not built with every option on"
    assert (manifest["apiVersion"], manifest["kind"]) == (child.api_version, child.kind)
    assert manifest["metadata"]["name"] == when.name(tm)
    off = when.build(taskmanager(EVERYTHING_OFF), Capabilities())
    assert off is None, f"{child.kind} cannot be turned off"
