"""Fixtures for the chart tests: the cluster fixtures of tests/cluster, and a release per test."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from tests.chart.helm import CHART, run, unique
from tests.cluster.conftest import api_client, taskmanager_crd

__all__ = ["api_client", "release", "taskmanager_crd"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent) and (
            "api_client" in getattr(item, "fixturenames", ())
        ):
            item.add_marker(pytest.mark.cluster)


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str

    def install(self, *args: str, timeout: str = "60s") -> subprocess.CompletedProcess[str]:
        """`helm install` of the chart as this release, waiting until it is ready."""
        return run(
            "helm",
            "install",
            self.name,
            str(CHART),
            "--namespace",
            self.namespace,
            *args,
            "--wait",
            f"--timeout={timeout}",
        )


@pytest.fixture
def release(api_client: ApiClient) -> Iterator[Release]:
    """A fresh namespace and release name; uninstalled and deleted afterwards."""
    core = client.CoreV1Api(api_client)
    found = Release(name=unique("tmo"), namespace=unique("chart"))
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=found.namespace)))
    try:
        yield found
    finally:
        listed = run("helm", "list", "--namespace", found.namespace, "--short", "--all").stdout
        if found.name in listed.split():
            run("helm", "uninstall", found.name, "--namespace", found.namespace, "--wait")
        core.delete_namespace(found.namespace, propagation_policy="Background")
