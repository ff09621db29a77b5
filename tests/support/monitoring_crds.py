"""prometheus-operator's CRDs, from its Go module at the version hack/versions.env pins: the
files its example/prometheus-operator-crd directory holds."""

from __future__ import annotations

import functools
from typing import Any

from tests.support.foreign_crds import module_crds

MODULE = "github.com/prometheus-operator/prometheus-operator"
# The kinds the operator makes or reads.
KINDS = ("servicemonitors", "podmonitors", "prometheusrules", "prometheuses")


@functools.cache
def crd_manifests() -> list[dict[str, Any]]:
    """The CRDs of KINDS."""
    files = [f"monitoring.coreos.com_{kind}.yaml" for kind in KINDS]
    return module_crds(
        MODULE, "PROMETHEUS_OPERATOR_VERSION", "example/prometheus-operator-crd", files
    )
