"""The TaskManager resource: pydantic models that are the single source of its CRD."""

from taskmanager_operator.api.v1alpha1 import (
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    TaskManagerSpec,
    TaskManagerStatus,
)

__all__ = ["GROUP", "KIND", "PLURAL", "VERSION", "TaskManagerSpec", "TaskManagerStatus"]
