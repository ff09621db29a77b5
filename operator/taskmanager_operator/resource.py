"""A TaskManager as the operator reads it: identity from metadata, desired state from spec."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from taskmanager_operator.api.v1alpha1 import GROUP, KIND, VERSION, TaskManagerSpec


@dataclass(frozen=True)
class TaskManager:
    name: str
    namespace: str
    uid: str
    generation: int
    spec: TaskManagerSpec

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> TaskManager:
        """Parse an object read from the API server (its defaults already applied there)."""
        metadata = body["metadata"]
        return cls(
            name=metadata["name"],
            namespace=metadata["namespace"],
            uid=metadata["uid"],
            generation=int(metadata.get("generation", 1)),
            spec=TaskManagerSpec.model_validate(body.get("spec") or {}),
        )

    def quiesced(self) -> TaskManager:
        """The same TaskManager with its API held at 0 pods and no autoscaler (a restore)."""
        autoscaling = self.spec.autoscaling.model_copy(update={"enabled": False})
        spec = self.spec.model_copy(update={"replicas": 0, "autoscaling": autoscaling})
        return replace(self, spec=spec)

    @property
    def api_version(self) -> str:
        return f"{GROUP}/{VERSION}"

    @property
    def kind(self) -> str:
        return KIND
