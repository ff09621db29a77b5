"""The local cluster's real node, as hack/node.env describes it: its names, addresses and images.

The values are read from hack/node.env (the one place they live), so the tests and the scripts
cannot drift apart.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
NODE_ENV = REPO / "hack" / "node.env"
NODE_SCRIPT = REPO / "hack" / "node.sh"
NODE_STATE = REPO / ".local" / "node"


@cache
def node_settings() -> dict[str, str]:
    """hack/node.env's KEY=value lines."""
    settings: dict[str, str] = {}
    for raw in NODE_ENV.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        settings[key] = shlex.split(value)[0] if value else ""
    return settings


@dataclass(frozen=True)
class RealNode:
    name: str
    ip: str
    bridge: str
    pod_cidr: str
    service_cidr: str
    kwok_pod_cidr: str
    nft_table: str
    label_key: str
    taint_key: str
    storage_class: str
    pause_image: str
    postgres_image: str
    redis_image: str
    api_image: str

    @property
    def placement(self) -> dict[str, Any]:
        """nodeSelector and tolerations (pod-spec field names) that put a pod on this node."""
        return {
            "nodeSelector": {self.label_key: "true"},
            "tolerations": [
                {
                    "key": self.taint_key,
                    "operator": "Equal",
                    "value": "true",
                    "effect": "NoSchedule",
                }
            ],
        }


def real_node() -> RealNode:
    env = node_settings()
    return RealNode(
        name=env["NODE_NAME"],
        ip=env["NODE_IP"],
        bridge=env["NODE_BRIDGE"],
        pod_cidr=env["POD_CIDR"],
        service_cidr=env["SERVICE_CIDR"],
        kwok_pod_cidr=env["KWOK_POD_CIDR"],
        nft_table=env["NODE_NFT_TABLE"],
        label_key=env["NODE_LABEL_KEY"],
        taint_key=env["NODE_TAINT_KEY"],
        storage_class=env["NODE_STORAGE_CLASS"],
        pause_image=env["NODE_PAUSE_IMAGE"],
        postgres_image=env["NODE_POSTGRES_IMAGE"],
        redis_image=env["NODE_REDIS_IMAGE"],
        api_image=env["NODE_API_IMAGE"],
    )
