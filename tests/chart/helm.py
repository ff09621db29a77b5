"""helm and kubectl, run as subprocesses against the local cluster; a missing binary is built
(or waited for, while `make test` builds it in the background), and a failed build fails loudly."""

from __future__ import annotations

import functools
import os
import subprocess
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.support.tools import built_tool

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "taskmanager-operator"
LOCAL_KUBECONFIG = REPO / ".local" / "kubeconfig"
# Each binary's build in hack/build-tools.sh and the key of its pinned version.
BUILDS = {"helm": ("helm", "HELM_VERSION"), "kubectl": ("kubernetes", "KUBERNETES_VERSION")}

Manifest = dict[str, Any]


@functools.cache
def binary(name: str) -> Path:
    build, version_key = BUILDS[name]
    return built_tool(build, name, version_key)


def run(
    tool: str, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run helm or kubectl against the local cluster; a failure shows the command's output."""
    result = subprocess.run(
        [str(binary(tool)), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        # Always the local cluster: a KUBECONFIG from the caller's shell may name a real one.
        env={**os.environ, "KUBECONFIG": str(LOCAL_KUBECONFIG)},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{tool} {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result


def set_args(values: Mapping[str, str | int | bool]) -> list[str]:
    """--set/--set-string flags: strings stay strings, numbers and booleans keep their type."""
    args: list[str] = []
    for key, value in values.items():
        if isinstance(value, str):
            args += ["--set-string", f"{key}={value}"]
        else:
            args += ["--set", f"{key}={str(value).lower()}"]
    return args


def template(
    values: Mapping[str, str | int | bool] | None = None,
    *,
    release: str = "tm",
    namespace: str = "taskmanager-system",
    extra: Iterable[str] = (),
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    return run(
        "helm",
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        *set_args(values or {}),
        *extra,
        check=check,
    )


def render(values: Mapping[str, str | int | bool] | None = None, **kwargs: Any) -> list[Manifest]:
    """The chart's objects for these values."""
    return [doc for doc in yaml.safe_load_all(template(values, **kwargs).stdout) if doc]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
