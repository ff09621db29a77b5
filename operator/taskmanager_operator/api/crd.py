"""Generates the TaskManager CustomResourceDefinition from the pydantic models.

Kubernetes wants a structural schema: every type spelled out inline (no `$ref`), no `anyOf` for
optional fields, no `additionalProperties: false` next to `properties` (unknown fields are pruned,
and rejected by strict field validation), and a free-form object (`dict[str, Any]`) marked
`x-kubernetes-preserve-unknown-fields`. pydantic's JSON schema is rewritten into that shape.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from taskmanager_operator.api.backups import (
    BACKUP_KIND,
    BACKUP_PLURAL,
    BACKUP_SHORT_NAMES,
    BACKUP_SINGULAR,
    RESTORE_KIND,
    RESTORE_PLURAL,
    RESTORE_SHORT_NAMES,
    RESTORE_SINGULAR,
    TaskManagerBackupSpec,
    TaskManagerBackupStatus,
    TaskManagerRestoreSpec,
    TaskManagerRestoreStatus,
)
from taskmanager_operator.api.v1alpha1 import (
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
    TaskManagerSpec,
    TaskManagerStatus,
)

JsonSchema = dict[str, Any]

# Keys of pydantic's schema that have no place in a CRD.
_DROPPED_KEYS = {"title", "additionalProperties", "$defs"}


_EXCLUSIVE_BOUNDS = {"exclusiveMinimum": "minimum", "exclusiveMaximum": "maximum"}


def _unwrap(schema: JsonSchema, defs: dict[str, JsonSchema]) -> JsonSchema | None:
    """A `$ref` or an optional (`X | None`) resolved to its schema; None when it is neither."""
    if "$ref" in schema:
        target = defs[schema["$ref"].rsplit("/", 1)[-1]]
        extra = {k: v for k, v in schema.items() if k != "$ref"}
        return _resolve({**target, **extra}, defs)
    if "anyOf" in schema:
        # `X | None` is how pydantic spells an optional field; in a CRD it is just "not required".
        variants = [v for v in schema["anyOf"] if v.get("type") != "null"]
        if len(variants) != 1:
            raise ValueError(f"only `X | None` unions map to a structural schema: {schema}")
        extra = {k: v for k, v in schema.items() if k != "anyOf"}
        if extra.get("default", ...) is None:
            del extra["default"]
        return _resolve({**variants[0], **extra}, defs)
    return None


def _resolve(schema: JsonSchema, defs: dict[str, JsonSchema]) -> JsonSchema:
    if (unwrapped := _unwrap(schema, defs)) is not None:
        return unwrapped
    out: JsonSchema = {}
    # A map's value schema stays (`dict[str, str]`); `false` (extra="forbid") is implied.
    if isinstance(values := schema.get("additionalProperties"), dict):
        out["additionalProperties"] = _resolve(values, defs)
    elif values is True:
        # A free-form object (`dict[str, Any]`): kept as written rather than pruned to nothing.
        out["x-kubernetes-preserve-unknown-fields"] = True
    for key, value in schema.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "properties":
            out[key] = {name: _resolve(prop, defs) for name, prop in value.items()}
            # A nested object that is not optional (`X | None`) is defaulted as a whole, so its
            # fields' defaults apply when it is left out.
            required = set(schema.get("required", []))
            for name, prop in value.items():
                resolved = out[key][name]
                defaultable = "anyOf" not in prop and name not in required
                if resolved.get("type") == "object" and "default" not in resolved and defaultable:
                    resolved["default"] = _materialized_default(resolved)
        elif key == "items":
            out[key] = _resolve(value, defs)
        elif key in _EXCLUSIVE_BOUNDS:
            # JSON Schema's number form; the API server's OpenAPI v3 takes the bound and a flag.
            out.update({_EXCLUSIVE_BOUNDS[key]: value, key: True})
        else:
            out[key] = value
    return out


def _materialized_default(schema: JsonSchema) -> dict[str, Any]:
    """The object that defaulting would build; the API server checks CEL rules against it."""
    return {
        name: prop["default"]
        for name, prop in schema.get("properties", {}).items()
        if "default" in prop
    }


def structural_schema(model: type[Any]) -> JsonSchema:
    schema: JsonSchema = model.model_json_schema(by_alias=True, mode="serialization")
    return _resolve(schema, schema.get("$defs", {}))


def _status_schema(model: type[Any]) -> JsonSchema:
    status = structural_schema(model)
    conditions = status["properties"]["conditions"]
    # Conditions are a map keyed by type (the Kubernetes API conventions), so a merge keeps others.
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    conditions.pop("default", None)
    return status


# Children are named after the TaskManager plus a suffix; the longest, a migration Job
# (`-migrate-` and a 10-character digest), must still fit the 63 characters of a label value.
MAX_NAME_LENGTH = 40
# The suffix of the API's children's names (builders/common.py `api_name` reads it), its
# ServiceAccount among them.
API_SUFFIX = "-api"


def name_rules() -> list[JsonSchema]:
    return [
        {
            "rule": f"self.metadata.name.size() <= {MAX_NAME_LENGTH}",
            "message": f"metadata.name must be at most {MAX_NAME_LENGTH} characters: the names "
            "of its children add suffixes such as -migrate-<digest>",
        },
        {
            "rule": "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
            "message": "metadata.name must be a DNS label (lowercase letters, digits, '-', no "
            "dots): its Services are named after it",
        },
        {
            # The operator deletes its own ServiceAccount once serviceAccountName is set: naming
            # that one would leave the pods without the ServiceAccount they run as.
            "rule": "!has(self.spec) || !has(self.spec.serviceAccountName) || "
            f"self.spec.serviceAccountName != self.metadata.name + '{API_SUFFIX}'",
            "message": f"spec.serviceAccountName must not be <metadata.name>{API_SUFFIX}: that is "
            "the ServiceAccount the operator makes while serviceAccountName is unset",
            "fieldPath": ".spec.serviceAccountName",
        },
    ]


def printer_columns() -> list[JsonSchema]:
    return [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
        {"name": "Replicas", "type": "integer", "jsonPath": ".status.replicas"},
        {"name": "Version", "type": "string", "jsonPath": ".status.version"},
        {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint", "priority": 0},
        # Wide output only (`kubectl get -o wide`): the default columns stay one screen wide.
        {
            "name": "External-URL",
            "type": "string",
            "jsonPath": ".status.externalURL",
            "priority": 1,
        },
        {
            "name": "Last-Backup",
            "type": "date",
            "jsonPath": ".status.backup.lastSuccessful.time",
        },
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]


@dataclass(frozen=True)
class CrdKind:
    """One kind of ours, as its CustomResourceDefinition describes it."""

    kind: str
    plural: str
    singular: str
    short_names: list[str]
    description: str
    spec: type[Any]
    status: type[Any]
    printer_columns: list[JsonSchema]
    # Rules on the whole object (metadata with spec).
    validations: list[JsonSchema] = field(default_factory=list)
    scale: bool = False
    # Left out of `kubectl get all`: backups and restores are records, not running things.
    in_category_all: bool = True
    # The spec defaults as a whole when left out (every field of it has a default).
    spec_defaults: bool = False

    @property
    def crd_file(self) -> str:
        return f"{GROUP}_{self.plural}.yaml"


def _spec_schema(kind: CrdKind) -> JsonSchema:
    spec = structural_schema(kind.spec)
    if kind.spec_defaults:
        spec["default"] = _materialized_default(spec)
    return spec


def build_crd(kind: CrdKind) -> JsonSchema:
    subresources: JsonSchema = {"status": {}}
    if kind.scale:
        subresources["scale"] = {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        }
    root: JsonSchema = {
        "description": kind.description,
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": _spec_schema(kind),
            "status": _status_schema(kind.status),
        },
    }
    if not kind.spec_defaults:
        root["required"] = ["spec"]
    if kind.validations:
        root["x-kubernetes-validations"] = kind.validations
    names: JsonSchema = {
        "kind": kind.kind,
        "listKind": f"{kind.kind}List",
        "plural": kind.plural,
        "singular": kind.singular,
        "shortNames": kind.short_names,
    }
    if kind.in_category_all:
        names["categories"] = ["all"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{kind.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "taskmanager-operator"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": names,
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": subresources,
                    "additionalPrinterColumns": kind.printer_columns,
                }
            ],
        },
    }


AGE_COLUMN = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}

TASKMANAGER = CrdKind(
    kind=KIND,
    plural=PLURAL,
    singular=SINGULAR,
    short_names=SHORT_NAMES,
    description="TaskManager runs the task-manager API: its Deployment, Service, autoscaling, "
    "secrets, database and cache, backups and monitoring.",
    spec=TaskManagerSpec,
    status=TaskManagerStatus,
    printer_columns=printer_columns(),
    validations=name_rules(),
    scale=True,
    spec_defaults=True,
)

BACKUP = CrdKind(
    kind=BACKUP_KIND,
    plural=BACKUP_PLURAL,
    singular=BACKUP_SINGULAR,
    short_names=BACKUP_SHORT_NAMES,
    description="TaskManagerBackup is one backup of a TaskManager's database: a dump and its "
    "manifest in the TaskManager's backup storage. Deleting it deletes the data.",
    spec=TaskManagerBackupSpec,
    status=TaskManagerBackupStatus,
    printer_columns=[
        {"name": "TaskManager", "type": "string", "jsonPath": ".spec.taskManager"},
        {"name": "Type", "type": "string", "jsonPath": ".spec.type"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Size", "type": "string", "jsonPath": ".status.size"},
        {"name": "Completed", "type": "date", "jsonPath": ".status.completionTime"},
        {"name": "Verified", "type": "string", "jsonPath": ".status.verification.result"},
        AGE_COLUMN,
    ],
    in_category_all=False,
)

RESTORE = CrdKind(
    kind=RESTORE_KIND,
    plural=RESTORE_PLURAL,
    singular=RESTORE_SINGULAR,
    short_names=RESTORE_SHORT_NAMES,
    description="TaskManagerRestore restores a backup into its TaskManager in place: the API "
    "stops, the database is replaced in one transaction and migrated, the API comes back.",
    spec=TaskManagerRestoreSpec,
    status=TaskManagerRestoreStatus,
    printer_columns=[
        {"name": "TaskManager", "type": "string", "jsonPath": ".spec.taskManager"},
        {"name": "Backup", "type": "string", "jsonPath": ".spec.backup.name"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Duration", "type": "number", "jsonPath": ".status.durationSeconds"},
        AGE_COLUMN,
    ],
    in_category_all=False,
)

# Every kind of ours: `make manifests` writes one file each into crds/.
KINDS = (TASKMANAGER, BACKUP, RESTORE)
CRD_FILE = TASKMANAGER.crd_file
GENERATED_HEADER = "# Generated by `make manifests` from taskmanager_operator.api; do not edit.\n"


def render_crd(kind: CrdKind = TASKMANAGER) -> str:
    return GENERATED_HEADER + yaml.safe_dump(build_crd(kind), sort_keys=True, width=100)


def main() -> None:
    out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "crds")
    out_dir.mkdir(parents=True, exist_ok=True)
    for kind in KINDS:
        (out_dir / kind.crd_file).write_text(render_crd(kind))


if __name__ == "__main__":
    main()
