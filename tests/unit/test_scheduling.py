"""spec.scheduling: where the pods run. Every workload gets the TaskManager's nodeSelector,
tolerations, affinity and priorityClassName; a managed database's or Redis's own scheduling
replaces it for that pod; and a TaskManager without scheduling renders the pods it always did.

The CRD's part is checked against the generated schema here, with no cluster: its types, enums,
patterns and limits, and its CEL rules read as Python (the subset they use)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.utils import parse_quantity

from taskmanager_operator.api.v1alpha1 import TaskManagerSpec
from taskmanager_operator.builders import managed, migration
from taskmanager_operator.builders.common import Manifest
from tests.unit.test_builders import (
    EVERYTHING_ON,
    IMAGE,
    SPECS,
    children,
    deployment,
    pod_spec,
    taskmanager,
    workloads,
)
from tests.unit.test_crd import root_schema, walk

SCHEDULING_FIELDS = {"nodeSelector", "tolerations", "affinity", "priorityClassName"}
ANTI_AFFINITY = {
    "preferredDuringSchedulingIgnoredDuringExecution": [
        {
            "weight": 100,
            "podAffinityTerm": {
                "topologyKey": "kubernetes.io/hostname",
                "labelSelector": {"matchLabels": {"team": "a"}},
            },
        }
    ]
}
NODE_AFFINITY = {
    "requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}
        ]
    }
}
UNREACHABLE = {
    "key": "node.kubernetes.io/unreachable",
    "operator": "Exists",
    "effect": "NoExecute",
    "tolerationSeconds": 60,
}
SCHEDULING = {
    "nodeSelector": {"pool": "apps"},
    "tolerations": [{"key": "dedicated", "value": "apps", "effect": "NoSchedule"}, UNREACHABLE],
    "affinity": {"podAntiAffinity": ANTI_AFFINITY},
    "priorityClassName": "tasks-high",
}
# The same scheduling as the pods carry it: core/v1 fields, the default operator spelled out.
RENDERED = SCHEDULING | {
    "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "apps", "effect": "NoSchedule"},
        UNREACHABLE,
    ]
}
OWN_SCHEDULING = {"nodeSelector": {"disk": "ssd"}, "affinity": {"nodeAffinity": NODE_AFFINITY}}


def scheduling_of(workload: Manifest) -> dict[str, Any]:
    return {k: v for k, v in pod_spec(workload).items() if k in SCHEDULING_FIELDS}


def postgres(spec: dict[str, Any]) -> Manifest:
    return managed.build_postgres(taskmanager(spec))[0]


def redis(spec: dict[str, Any]) -> Manifest:
    return managed.build_redis(taskmanager(spec))[0]


def migration_job(spec: dict[str, Any]) -> Manifest:
    return migration.build_migration_job(taskmanager(spec), image=IMAGE)


def api_deployment(spec: dict[str, Any]) -> Manifest:
    return deployment(taskmanager(spec))


WORKLOADS = [
    pytest.param(api_deployment, id="api"),
    pytest.param(migration_job, id="migration-job"),
    pytest.param(postgres, id="postgres"),
    pytest.param(redis, id="redis"),
]


# -- builders -----------------------------------------------------------------------------------


@pytest.mark.parametrize("build", WORKLOADS)
def test_every_workload_runs_where_the_taskmanager_says(build: Any) -> None:
    assert scheduling_of(build({"scheduling": SCHEDULING})) == RENDERED


def test_no_pod_template_is_left_out() -> None:
    built = workloads(taskmanager({"scheduling": SCHEDULING}))
    for workload in built:
        assert scheduling_of(workload) == RENDERED, workload["metadata"]["name"]


def test_the_api_pods_keep_spreading_over_nodes_and_zones() -> None:
    spread = pod_spec(api_deployment({}))["topologySpreadConstraints"]
    scheduled = pod_spec(api_deployment({"scheduling": SCHEDULING}))
    assert scheduled["topologySpreadConstraints"] == spread


@pytest.mark.parametrize(
    ("spec", "workload", "other"),
    [
        pytest.param(
            {"scheduling": SCHEDULING, "database": {"managed": {"scheduling": OWN_SCHEDULING}}},
            postgres,
            redis,
            id="database",
        ),
        pytest.param(
            {"scheduling": SCHEDULING, "redis": {"managed": {"scheduling": OWN_SCHEDULING}}},
            redis,
            postgres,
            id="redis",
        ),
    ],
)
def test_a_managed_services_own_scheduling_replaces_the_taskmanagers_whole(
    spec: dict[str, Any], workload: Any, other: Any
) -> None:
    # Not merged: the tolerations and priority class of spec.scheduling do not reach this pod.
    assert scheduling_of(workload(spec)) == OWN_SCHEDULING
    for unaffected in (other, api_deployment, migration_job):
        assert scheduling_of(unaffected(spec)) == RENDERED


def test_an_empty_own_scheduling_keeps_the_managed_pod_unconstrained() -> None:
    spec = {"scheduling": SCHEDULING, "database": {"managed": {"scheduling": {}}}}
    assert scheduling_of(postgres(spec)) == {}
    assert scheduling_of(redis(spec)) == RENDERED


def test_affinity_reaches_the_pods_as_written() -> None:
    affinity = {"nodeAffinity": NODE_AFFINITY, "podAntiAffinity": ANTI_AFFINITY}
    pod = pod_spec(api_deployment({"scheduling": {"affinity": affinity}}))
    assert pod["affinity"] == affinity
    assert SCHEDULING_FIELDS & pod.keys() == {"affinity"}


@pytest.mark.parametrize("spec", [*SPECS, pytest.param(EVERYTHING_ON, id="everything-on")])
def test_unset_scheduling_adds_nothing_to_the_pods(spec: dict[str, Any]) -> None:
    tm = taskmanager(spec)
    for workload in workloads(tm):
        assert scheduling_of(workload) == {}, workload["metadata"]["name"]
    empty: list[dict[str, Any]] = [{}, {"nodeSelector": {}, "tolerations": [], "affinity": {}}]
    for scheduling in empty:
        same = taskmanager({**spec, "scheduling": scheduling})
        assert list(children(same)) == list(children(tm)), scheduling


# -- CRD ----------------------------------------------------------------------------------------


def spec_schema() -> dict[str, Any]:
    schema: dict[str, Any] = root_schema()["properties"]["spec"]
    return schema


class CelQuantity:
    """CEL's quantity(), as far as our rules use it: compareTo()."""

    def __init__(self, text: str) -> None:
        self.value = parse_quantity(text)

    def compare_to(self, other: CelQuantity) -> int:
        return int(self.value > other.value) - int(self.value < other.value)


def cel_path(fields: str) -> str:
    """`.a.b` as Python subscripts; CEL spells a field name's `-` as `__dash__`."""
    return "".join(f"['{field.replace('__dash__', '-')}']" for field in fields.split(".")[1:])


def cel_holds(rule: str, this: dict[str, Any], **bound: Any) -> bool:
    """A CEL rule over `self`, read as Python: has(), ==, !=, !, &&, ||, +, `in`, startsWith(),
    contains(), quantity() with compareTo() and a whole rule `self.field.all(x, ...)` are all ours
    use. Anything left untranslated fails the test loudly."""
    if macro := re.fullmatch(r"self\.(\w+)\.all\((\w+), (.*)\)", rule):
        field, variable, body = macro.groups()
        return all(cel_holds(body, this, **bound, **{variable: item}) for item in this[field])
    python = re.sub(
        r"has\(self((?:\.\w+)*)\.(\w+)\)", lambda m: f"('{m[2]}' in self{cel_path(m[1])})", rule
    )
    # A field path, up to a method call (`self.path.contains(...)`).
    python = re.sub(r"self((?:\.\w+\b(?!\())+)", lambda m: f"self{cel_path(m[1])}", python)
    python = python.replace("&&", " and ").replace("||", " or ")
    python = re.sub(r"!(?!=)", " not ", python).replace(".startsWith(", ".startswith(")
    python = python.replace(".contains(", ".__contains__(").replace(".compareTo(", ".compare_to(")
    untranslated = re.sub(r" in self(\['[\w-]+'\])*", "", python)
    untranslated = untranslated.replace(".startswith(", ".").replace(".__contains__(", ".")
    untranslated = untranslated.replace("quantity(", "(").replace(".compare_to(", ".")
    assert not re.search(r"[?:]|\w\(", untranslated), python
    names = {"self": this, "quantity": CelQuantity, **bound}
    return bool(eval(python, {"__builtins__": {}}, names))  # noqa: S307


def crd_errors(schema: dict[str, Any], value: Any, path: str) -> Iterator[str]:
    """What the API server says about `value` (a subset of its checks: the ones our schema uses).
    Only the fields given are checked, with the defaults of their object filled in for CEL."""
    kind = schema["type"]
    if kind == "object":
        yield from object_errors(schema, value, path)
    elif kind == "array":
        if len(value) > schema.get("maxItems", len(value)):
            yield f"{path}: Too many: must have at most {schema['maxItems']} items"
        if len(value) < schema.get("minItems", 0):
            yield f"{path}: should have at least {schema['minItems']} items"
        for index, item in enumerate(value):
            yield from crd_errors(schema["items"], item, f"{path}[{index}]")
    elif kind == "string":
        if value not in schema.get("enum", [value]):
            yield f"{path}: Unsupported value: supported values: {schema['enum']}"
        if len(value) > schema.get("maxLength", len(value)):
            yield f"{path}: Too long: may not be more than {schema['maxLength']} bytes"
        if not re.search(schema.get("pattern", ""), value):
            yield f"{path}: Invalid value: should match '{schema['pattern']}'"
    elif kind == "integer" and value < schema.get("minimum", value):
        yield f"{path}: should be greater than or equal to {schema['minimum']}"
    elif kind == "integer" and value > schema.get("maximum", value):
        yield f"{path}: should be less than or equal to {schema['maximum']}"


def defaulted(schema: dict[str, Any], value: Any) -> Any:
    """`value` as the API server stores it: the defaults of its fields filled in, at every
    depth."""
    if schema.get("type") != "object" or not isinstance(value, dict):
        return value
    properties = schema.get("properties", {})
    defaults = {name: prop["default"] for name, prop in properties.items() if "default" in prop}
    return {
        name: defaulted(properties.get(name, {}), item) for name, item in (defaults | value).items()
    }


def object_errors(schema: dict[str, Any], value: Any, path: str) -> Iterator[str]:
    if not isinstance(value, dict):
        yield f"{path}: must be an object"
        return
    if len(value) > schema.get("maxProperties", len(value)):
        yield f"{path}: Too many: must have at most {schema['maxProperties']} items"
    properties = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            yield f"{path}.{name}: Required value"
    for name, item in value.items():
        item_schema = properties.get(name, schema.get("additionalProperties"))
        if item_schema is not None:
            yield from crd_errors(item_schema, item, f"{path}.{name}")
        elif not schema.get("x-kubernetes-preserve-unknown-fields"):
            yield f'unknown field "{path}.{name}"'
    for rule in schema.get("x-kubernetes-validations", []):
        if not cel_holds(rule["rule"], defaulted(schema, value)):
            yield f"{path}{rule.get('fieldPath', '')}: {rule['message']}"


def rejected(spec: dict[str, Any]) -> list[str]:
    return list(crd_errors(spec_schema(), spec, "spec"))


def assert_rejected(spec: dict[str, Any], message: str) -> None:
    """The API server refuses `spec`, and one of its errors says `message`."""
    errors = rejected(spec)
    assert any(message in error for error in errors), errors


def assert_accepted(spec: dict[str, Any]) -> None:
    """The API server and the operator's models both take `spec`."""
    assert rejected(spec) == []
    TaskManagerSpec.model_validate(spec)


def toleration(**fields: Any) -> dict[str, Any]:
    return {"scheduling": {"tolerations": [fields]}}


TOLERATION = "spec.scheduling.tolerations[0]"
EXISTS_WITH_VALUE = "a toleration with operator Exists must not have a value"
SECONDS_NEED_NO_EXECUTE = "tolerationSeconds is allowed only with effect NoExecute"
# (spec, what the API server's message says, id)
INVALID_CASES: list[tuple[dict[str, Any], str, str]] = [
    (
        toleration(key="dedicated", operator="Exists", value="apps"),
        f"{TOLERATION}.value: {EXISTS_WITH_VALUE}",
        "exists-with-value",
    ),
    (
        toleration(key="dedicated", value="apps", effect="NoSchedule", tolerationSeconds=60),
        f"{TOLERATION}.tolerationSeconds: {SECONDS_NEED_NO_EXECUTE}",
        "seconds-without-no-execute",
    ),
    (
        toleration(key="dedicated", operator="Exists", tolerationSeconds=60),
        f"{TOLERATION}.tolerationSeconds: {SECONDS_NEED_NO_EXECUTE}",
        "seconds-without-effect",
    ),
    (
        toleration(value="apps"),
        f"{TOLERATION}.operator: a toleration without a key must have operator Exists",
        "no-key-operator-equal",
    ),
    (toleration(key="k", operator="In"), f"{TOLERATION}.operator: Unsupported value", "operator"),
    (toleration(key="k", effect="NoRun"), f"{TOLERATION}.effect: Unsupported value", "effect"),
    (toleration(key="bad key"), f"{TOLERATION}.key: Invalid value", "key-not-a-label-key"),
    (
        toleration(key="k", effect="NoExecute", tolerationSeconds=-1),
        f"{TOLERATION}.tolerationSeconds: should be greater than or equal to 0",
        "negative-seconds",
    ),
    (
        {"scheduling": {"tolerations": [{"operator": "Exists"}] * 33}},
        "spec.scheduling.tolerations: Too many",
        "too-many-tolerations",
    ),
    (
        {"scheduling": {"priorityClassName": "High_Priority"}},
        "spec.scheduling.priorityClassName: Invalid value",
        "priority-class-not-a-dns-subdomain",
    ),
    (
        {"scheduling": {"priorityClassName": "a" * 254}},
        "spec.scheduling.priorityClassName: Too long",
        "priority-class-too-long",
    ),
    (
        {"scheduling": {"nodeSelector": {"pool": "a" * 64}}},
        "spec.scheduling.nodeSelector.pool: Too long",
        "node-selector-value-too-long",
    ),
    (
        {"scheduling": {"affinity": {"nodeAfinity": NODE_AFFINITY}}},
        'unknown field "spec.scheduling.affinity.nodeAfinity"',
        "affinity-typo",
    ),
    (
        {"scheduling": {"nodeName": "node-1"}},
        'unknown field "spec.scheduling.nodeName"',
        "unknown-field",
    ),
    (
        {"database": {"managed": toleration(operator="Exists", value="x")}},
        f"spec.database.managed.scheduling.tolerations[0].value: {EXISTS_WITH_VALUE}",
        "managed-database-override",
    ),
    (
        {"redis": {"managed": {"scheduling": {"priorityClassName": "-high"}}}},
        "spec.redis.managed.scheduling.priorityClassName: Invalid value",
        "managed-redis-override",
    ),
]
INVALID = [pytest.param(spec, message, id=id_) for spec, message, id_ in INVALID_CASES]

VALID: list[Any] = [
    pytest.param({"scheduling": SCHEDULING}, id="everything"),
    pytest.param(toleration(operator="Exists"), id="tolerate-every-taint"),
    pytest.param(toleration(key="dedicated", operator="Exists", effect="NoSchedule"), id="exists"),
    pytest.param(toleration(key="dedicated"), id="equal-empty-value"),
    pytest.param(
        toleration(key="k", operator="Equal", value="v", effect="NoExecute", tolerationSeconds=0),
        id="no-execute-with-seconds",
    ),
    pytest.param(
        {"scheduling": {"affinity": {"nodeAffinity": NODE_AFFINITY, "podAffinity": {"x": [1]}}}},
        id="affinity-free-form",
    ),
    pytest.param(
        {"scheduling": SCHEDULING, "database": {"managed": {"scheduling": OWN_SCHEDULING}}},
        id="managed-override",
    ),
]


@pytest.mark.parametrize(("spec", "message"), INVALID)
def test_the_crd_rejects_bad_scheduling_naming_the_field(
    spec: dict[str, Any], message: str
) -> None:
    assert_rejected(spec, message)


@pytest.mark.parametrize("spec", VALID)
def test_the_crd_and_the_operator_accept_good_scheduling(spec: dict[str, Any]) -> None:
    assert_accepted(spec)


def test_the_cel_reader_reads_the_rules_it_is_given() -> None:
    """The reader above is only as good as its translation: pin it on rules both ways."""
    assert cel_holds("self.operator != 'Exists' || !has(self.value)", {"operator": "Equal"})
    assert not cel_holds(
        "self.operator != 'Exists' || !has(self.value)", {"operator": "Exists", "value": "v"}
    )
    assert cel_holds("has(self.a) && (self.a == 'x')", {"a": "x"})
    with pytest.raises(AssertionError):
        cel_holds("self.a > 1 ? true : false", {"a": 2})


def test_affinity_is_kept_as_written_and_nothing_else_is_free_form() -> None:
    free_form = {
        path
        for path, node in walk(root_schema())
        if node.get("x-kubernetes-preserve-unknown-fields")
    }
    parts = {".nodeAffinity", ".podAffinity", ".podAntiAffinity"}
    assert free_form == {
        f"{scheduling}.affinity{part}"
        for scheduling in (
            ".spec.scheduling",
            ".spec.database.managed.scheduling",
            ".spec.redis.managed.scheduling",
        )
        for part in parts
    }


def test_the_default_spec_has_empty_scheduling_and_no_managed_override() -> None:
    default = spec_schema()["default"]
    assert default["scheduling"] == {"nodeSelector": {}, "tolerations": []}
    spec = TaskManagerSpec()
    assert spec.database.managed is not None
    assert spec.database.managed.scheduling is None
    assert spec.redis.managed is not None
    assert spec.redis.managed.scheduling is None
