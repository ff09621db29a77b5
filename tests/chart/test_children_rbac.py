"""The chart grants the operator exactly the rights the registry of children needs, in every watch
scope: a kind of child without its rule would fail in production, a rule for a kind that is no
child grants more than the operator uses. No cluster: the chart is rendered with `helm template`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import pytest

from taskmanager_operator.api.backups import BACKUP_PLURAL, RESTORE_PLURAL
from taskmanager_operator.api.v1alpha1 import GROUP, PLURAL
from taskmanager_operator.children import CHILD_VERBS, CHILDREN
from tests.chart.helm import Manifest, render

Rights = Mapping[tuple[str, str], frozenset[str]]

# How the chart grants the operator its rights, per watch scope.
SCOPES: dict[str, dict[str, str | int | bool]] = {
    "all-namespaces": {},
    "namespace-list-roles": {
        "watch.allNamespaces": False,
        "watch.namespaces[0]": "team-a",
        "watch.namespaces[1]": "team-b",
    },
    "namespace-list-cluster-role": {
        "watch.allNamespaces": False,
        "watch.namespaces[0]": "team-a",
        "rbac.namespaced": False,
    },
    "namespace-glob-cluster-role": {
        "watch.allNamespaces": False,
        "watch.namespaces[0]": "team-*",
        "rbac.namespaced": False,
    },
}
# The operator's Role (per namespace) or ClusterRole for release "tm" in "taskmanager-system";
# the chart's other roles (kopf's, leader election's) must grant nothing on a child.
OPERATOR_ROLES = {"tm-taskmanager-operator", "taskmanager-system-tm-taskmanager-operator"}
# What the operator role grants besides the children: its own resources, the events it posts,
# the pods it lists to say why a rollout or a migration is stuck (and to read a backup Job's
# result), and the backups' claim, which no TaskManager owns.
NOT_CHILDREN = {
    (GROUP, PLURAL),
    (GROUP, f"{PLURAL}/status"),
    (GROUP, BACKUP_PLURAL),
    (GROUP, f"{BACKUP_PLURAL}/status"),
    (GROUP, RESTORE_PLURAL),
    (GROUP, f"{RESTORE_PLURAL}/status"),
    ("", "events"),
    ("", "pods"),
    ("", "persistentvolumeclaims"),
}
EXPECTED: Rights = {(child.group, child.plural): CHILD_VERBS for child in CHILDREN}
WHERE = "taskmanager-operator.operatorRules in charts/taskmanager-operator/templates/_helpers.tpl"


def rights(role: Manifest) -> Rights:
    """(apiGroup, resource) -> verbs, over all of a role's rules."""
    granted: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    for rule in role["rules"]:
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                granted[group, resource] |= set(rule["verbs"])
    return {key: frozenset(verbs) for key, verbs in granted.items()}


def differences(granted: Rights, expected: Rights) -> list[str]:
    """Each way the granted rights of children differ from the registry's, as a sentence."""
    found = [f"missing: {key} {sorted(expected[key])}" for key in expected.keys() - granted.keys()]
    found += [f"one too many: {key}" for key in granted.keys() - expected.keys()]
    found += [
        f"{key}: verbs {sorted(granted[key])}, the registry needs {sorted(expected[key])}"
        for key in granted.keys() & expected.keys()
        if granted[key] != expected[key]
    ]
    return sorted(found)


def child_rights(role: Manifest) -> Rights:
    return {key: verbs for key, verbs in rights(role).items() if key not in NOT_CHILDREN}


@pytest.mark.parametrize("values", SCOPES.values(), ids=SCOPES.keys())
def test_the_operator_roles_grant_exactly_the_registered_children(
    values: dict[str, str | int | bool],
) -> None:
    roles = [obj for obj in render(values) if obj["kind"] in {"Role", "ClusterRole"}]
    operator_roles = [role for role in roles if role["metadata"]["name"] in OPERATOR_ROLES]
    assert operator_roles, [role["metadata"]["name"] for role in roles]
    for role in operator_roles:
        problems = differences(child_rights(role), EXPECTED)
        assert not problems, f"{role['kind']} {role['metadata']['name']} ({WHERE}): {problems}"
    for role in roles:
        if role not in operator_roles:
            assert not rights(role).keys() & EXPECTED.keys(), role["metadata"]["name"]


def test_a_missing_rule_one_too_many_and_wrong_verbs_are_each_reported() -> None:
    missing, narrowed, *_ = EXPECTED
    granted = {**EXPECTED, narrowed: frozenset({"get"}), ("", "nodes"): CHILD_VERBS}
    del granted[missing]
    assert differences(granted, EXPECTED) == sorted(
        [
            f"missing: {missing} {sorted(CHILD_VERBS)}",
            "one too many: ('', 'nodes')",
            f"{narrowed}: verbs ['get'], the registry needs {sorted(CHILD_VERBS)}",
        ]
    )
