"""prometheus-operator's CRDs, from its Go module at the version hack/versions.env pins.

`go mod download` fetches the module into Go's module cache (read-only, shared, not committed);
the CRDs are the files its example/prometheus-operator-crd directory holds.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MODULE = "github.com/prometheus-operator/prometheus-operator"
# The kinds the operator makes or reads.
KINDS = ("servicemonitors", "podmonitors", "prometheusrules", "prometheuses")


def pinned_version() -> str:
    for line in (REPO / "hack" / "versions.env").read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "PROMETHEUS_OPERATOR_VERSION":
            return value.strip()
    raise AssertionError("hack/versions.env pins no PROMETHEUS_OPERATOR_VERSION")


@functools.cache
def crd_manifests() -> list[dict[str, Any]]:
    """The CRDs of KINDS, as dicts ready for a server-side apply."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("Go is needed to fetch prometheus-operator's CRDs (Debian: golang >= 1.24)")
    module = f"{MODULE}@{pinned_version()}"
    # Outside any module, so the download does not touch a go.mod of ours.
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run(
            [go, "mod", "download", "-json", module],
            cwd=scratch,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    if result.returncode != 0:
        pytest.fail(f"go mod download {module} failed:\n{result.stdout}\n{result.stderr}")
    directory = Path(json.loads(result.stdout)["Dir"]) / "example" / "prometheus-operator-crd"
    return [
        yaml.safe_load((directory / f"monitoring.coreos.com_{kind}.yaml").read_text())
        for kind in KINDS
    ]
