"""The CRD is generated from the pydantic models, structural, and documented field by field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import Field

from taskmanager_operator.api.crd import CRD_FILE, build_crd, render_crd, structural_schema
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


def root_schema() -> dict[str, Any]:
    schema: dict[str, Any] = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_crds_folder_matches_the_models() -> None:
    committed = (REPO / "crds" / CRD_FILE).read_text()
    assert committed == render_crd(), "crds/ is stale: run `make manifests` and commit the result"


def test_the_charts_copy_matches_crds() -> None:
    chart_copy = REPO / "charts" / "taskmanager-operator" / "files" / "crds" / CRD_FILE
    assert chart_copy.read_text() == (REPO / "crds" / CRD_FILE).read_text(), (
        "the chart's CRD is stale: run `make manifests` and commit the result"
    )


def test_schema_is_structural() -> None:
    for path, node in walk(root_schema()):
        assert not {"$ref", "anyOf", "oneOf", "allOf"} & node.keys(), path
        assert "type" in node, f"{path} has no type"
        # A map (`dict[str, str]`) has a value schema, and then no properties of its own.
        if "additionalProperties" in node:
            assert isinstance(node["additionalProperties"], dict), path
            assert "properties" not in node, path


def test_every_field_has_a_description() -> None:
    missing = [
        path
        for path, node in walk(root_schema())
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
