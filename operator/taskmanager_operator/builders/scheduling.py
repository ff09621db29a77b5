"""Where the pods run: spec.scheduling as pod-spec fields, for every workload the operator makes."""

from __future__ import annotations

from typing import Any

from taskmanager_operator.api.v1alpha1 import Scheduling, to_manifest
from taskmanager_operator.resource import TaskManager


def pod_scheduling(tm: TaskManager, own: Scheduling | None = None) -> dict[str, Any]:
    """nodeSelector, tolerations, affinity and priorityClassName for one workload's pod spec.

    `own` is the workload's own scheduling (a managed database's or Redis's): when set it replaces
    the TaskManager's as a whole, nothing merged. Empty fields are left out, so a TaskManager
    without scheduling renders the same pods as before the field existed.
    """
    scheduling = tm.spec.scheduling if own is None else own
    return {field: value for field, value in to_manifest(scheduling).items() if value}
