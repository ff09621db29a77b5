"""The Gateway API's CRDs, from its Go module at the version hack/versions.env pins: the files
of its standard channel (config/crd/standard)."""

from __future__ import annotations

import functools
from typing import Any

from tests.support.foreign_crds import module_crds

MODULE = "sigs.k8s.io/gateway-api"
# The kind the operator makes, the one it reads, and the class a Gateway names.
KINDS = ("httproutes", "gateways", "gatewayclasses")


@functools.cache
def crd_manifests() -> list[dict[str, Any]]:
    """The CRDs of KINDS."""
    files = [f"gateway.networking.k8s.io_{kind}.yaml" for kind in KINDS]
    return module_crds(MODULE, "GATEWAY_API_VERSION", "config/crd/standard", files)
