"""Other projects' CRDs for the cluster tests: read from their Go modules at the versions
hack/versions.env pins, installed and removed on the test cluster.

`go mod download` fetches a module into Go's module cache (read-only, shared, not committed);
tests/support/monitoring_crds.py and gateway_api_crds.py name the module and the files.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.dynamic import DynamicClient

from tests.support.pinned import pinned_version
from tests.support.wait import wait_until

REPO = Path(__file__).resolve().parents[2]


def module_dir(module: str, version_key: str) -> Path:
    """The directory of the Go module at the version hack/versions.env pins under version_key."""
    go = shutil.which("go")
    if go is None:
        pytest.fail(f"Go is needed to fetch {module}'s CRDs (Debian: golang >= 1.24)")
    versioned = f"{module}@{pinned_version(version_key)}"
    # Outside any module, so the download does not touch a go.mod of ours.
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run(
            [go, "mod", "download", "-json", versioned],
            cwd=scratch,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    if result.returncode != 0:
        pytest.fail(f"go mod download {versioned} failed:\n{result.stdout}\n{result.stderr}")
    return Path(json.loads(result.stdout)["Dir"])


def module_crds(
    module: str, version_key: str, directory: str, files: Iterable[str]
) -> list[dict[str, Any]]:
    """The CRDs in `files` of the module's `directory`, as dicts ready for a server-side apply."""
    where = module_dir(module, version_key) / directory
    return [yaml.safe_load((where / name).read_text()) for name in files]


class ForeignCrds:
    """Another project's CRDs on the test cluster, installed and removed by the tests."""

    def __init__(self, api_client: ApiClient, manifests: Sequence[dict[str, Any]], what: str):
        self.api_client = api_client
        self.extensions = client.ApiextensionsV1Api(api_client)
        self.dynamic = DynamicClient(api_client)
        self.manifests = list(manifests)
        self.what = what
        self.names = [manifest["metadata"]["name"] for manifest in self.manifests]

    @contextlib.contextmanager
    def absent_around(self) -> Iterator[ForeignCrds]:
        """Absent when the tests start and removed again afterwards, so the rest of the suite
        runs on the cluster it expects."""
        self.uninstall()
        try:
            yield self
        finally:
            self.uninstall()

    def install(self) -> None:
        crds = self.dynamic.resources.get(
            api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
        )
        for manifest in self.manifests:
            crds.server_side_apply(
                body=manifest, field_manager="taskmanager-tests", force_conflicts=True
            )
        wait_until(
            lambda: all(self._established(name) for name in self.names) or None,
            timeout=60,
            what=f"{self.what} to be Established",
        )

    def uninstall(self) -> None:
        for name in self.names:
            if not self._gone(name):
                self.extensions.delete_custom_resource_definition(name)
        wait_until(
            lambda: all(self._gone(name) for name in self.names) or None,
            timeout=60,
            what=f"{self.what} to be gone",
        )

    def _gone(self, name: str) -> bool:
        found = self.extensions.list_custom_resource_definition(
            field_selector=f"metadata.name={name}"
        )
        return not found.items

    def _established(self, name: str) -> bool:
        conditions = self.extensions.read_custom_resource_definition(name).status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)
