"""The Go tools hack/build-tools.sh builds from their modules, for the tests that run one.

`make test` builds the cluster's tools and helm in the background (hack/test.sh); a test that
needs one asks for it here, which waits for that tool's build (the script locks each tool) or
builds it when nothing else does (the S3 server, which only the backup suite runs). On a warm
cache this answers at once.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.pinned import REPO, pinned_version

BUILD_TOOLS = REPO / "hack" / "build-tools.sh"
# A tool's cold build on a busy machine; the control plane's is the longest (about 5 min idle).
BUILD_TIMEOUT = 1800
LOG_TAIL_CHARS = 4000


def built_tool(tool: str, binary: str, version_key: str) -> Path:
    """The binary `binary`-<version> of hack/build-tools.sh's `tool`, built first if missing."""
    result = subprocess.run(
        [str(BUILD_TOOLS), tool],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"`hack/build-tools.sh {tool}` failed ({result.returncode}); it needs Go >= 1.24 and "
            f"the Go module proxy:\n{result.stderr[-LOG_TAIL_CHARS:]}"
        )
    path = Path(result.stdout.splitlines()[-1]) / f"{binary}-{pinned_version(version_key)}"
    if not path.is_file():
        pytest.fail(f"`hack/build-tools.sh {tool}` left no {path}")
    return path
