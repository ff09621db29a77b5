"""`kubectl explain` documents the spec's newer fields as the API server serves the CRD: a user
who reads it learns what each field does, down to the nested ones."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from taskmanager_operator.api.crd import TASKMANAGER, build_crd
from tests.cluster.test_operator import KUBECTL

# One or two levels into each field the spec gained for the admins (issue: the spec admins
# expect), the status fields beside them, and the managed services' resources.
FIELDS = [
    "spec.podTemplate.labels",
    "spec.podTemplate.annotations",
    "spec.imagePullSecrets.name",
    "spec.serviceAccountName",
    "spec.autoscaling.behavior.scaleUp.stabilizationWindowSeconds",
    "spec.autoscaling.behavior.scaleDown.policies.type",
    "spec.ingress.annotations",
    "spec.ingress.path",
    "spec.ingress.pathType",
    "spec.ingress.issuerRef.kind",
    "spec.ingress.gateway.sectionName",
    "spec.database.managed.resources.limits.ephemeral-storage",
    "spec.redis.managed.resources.limits.memory",
    "spec.cors.allowOrigins",
    "spec.cors.allowCredentials",
    "spec.securityHeaders.hstsMaxAgeSeconds",
    "spec.auth.signingKeyRotation.interval",
    "status.externalURL",
    "status.signingKeys.role",
]


def schema_description(path: str) -> str:
    node: dict[str, Any] = build_crd(TASKMANAGER)["spec"]["versions"][0]["schema"][
        "openAPIV3Schema"
    ]
    for name in path.split("."):
        node = node.get("items", node)["properties"][name]
    description: str = node["description"]
    return description


def words(text: str) -> list[str]:
    return text.split()


@pytest.mark.parametrize("path", FIELDS)
def test_kubectl_explain_documents_the_field(path: str) -> None:
    explained = subprocess.run(
        [str(KUBECTL), "explain", f"taskmanager.{path}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert explained.returncode == 0, explained.stderr
    # kubectl re-wraps the text: compare word by word.
    description = words(schema_description(path))
    assert description, path
    output = words(explained.stdout)
    assert any(output[i : i + len(description)] == description for i in range(len(output))), (
        f"{path}: {schema_description(path)!r} not in:\n{explained.stdout}"
    )
