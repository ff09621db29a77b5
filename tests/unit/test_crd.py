"""The CRD is generated from the pydantic models, structural, and documented field by field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from taskmanager_operator.api.crd import (
    KINDS,
    TASKMANAGER,
    CrdKind,
    build_crd,
    render_crd,
    structural_schema,
)
from taskmanager_operator.api.v1alpha1 import Model

REPO = Path(__file__).resolve().parents[2]
# Kubernetes documents these itself.
UNDOCUMENTED = {"apiVersion", "kind", "metadata"}


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, prop in schema.get("properties", {}).items():
        yield from walk(prop, f"{path}.{name}")
    if "items" in schema:
        yield from walk(schema["items"], f"{path}[]")


class FreeForm(Model):
    anything: dict[str, Any] | None = None
    """Whatever is written, kept."""
    labels: dict[str, str] = Field(default_factory=dict)
    """A map of strings."""


def root_schema(kind: CrdKind = TASKMANAGER) -> dict[str, Any]:
    version = build_crd(kind)["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def test_crds_folder_matches_the_models() -> None:
    generated = {kind.crd_file for kind in KINDS}
    assert {path.name for path in (REPO / "crds").glob("*.yaml")} == generated
    for kind in KINDS:
        committed = (REPO / "crds" / kind.crd_file).read_text()
        assert committed == render_crd(kind), (
            f"crds/{kind.crd_file} is stale: run `make manifests` and commit the result"
        )


def test_the_charts_copy_matches_crds() -> None:
    for kind in KINDS:
        chart_copy = REPO / "charts" / "taskmanager-operator" / "files" / "crds" / kind.crd_file
        assert chart_copy.read_text() == (REPO / "crds" / kind.crd_file).read_text(), (
            "the chart's CRDs are stale: run `make manifests` and commit the result"
        )


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.kind)
def test_schema_is_structural(kind: CrdKind) -> None:
    for path, node in walk(root_schema(kind)):
        assert not {"$ref", "anyOf", "oneOf", "allOf"} & node.keys(), path
        assert "type" in node, f"{path} has no type"
        # A map (`dict[str, str]`) has a value schema, and then no properties of its own.
        if "additionalProperties" in node:
            assert isinstance(node["additionalProperties"], dict), path
            assert "properties" not in node, path


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.kind)
def test_every_field_has_a_description(kind: CrdKind) -> None:
    missing = [
        path
        for path, node in walk(root_schema(kind))
        if path
        and path.rsplit(".", 1)[-1] not in UNDOCUMENTED
        and not node.get("description")
        and not path.endswith("[]")
    ]
    assert missing == []


def test_a_free_form_object_is_kept_as_written() -> None:
    # Without the marker the API server would prune every field of a `dict[str, Any]`.
    properties = structural_schema(FreeForm)["properties"]
    assert properties["anything"] == {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "description": "Whatever is written, kept.",
    }
    # A map with a value schema stays a map: its keys are free, its values are not.
    assert properties["labels"]["additionalProperties"] == {"type": "string"}
    assert "x-kubernetes-preserve-unknown-fields" not in properties["labels"]
