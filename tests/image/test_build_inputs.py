"""What the image is built from: locks that pin what requirements.lock pins, a clean Dockerfile."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^ ;\\]+)", re.MULTILINE)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")
REGENERATE = "regenerate them with hack/image/lock.sh (make lock)"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: str) -> dict[str, str]:
    text = (REPO / lock).read_text()
    return {normalize(name): version for name, version in PIN.findall(text)}


def requirement_names(requirements: list[str]) -> set[str]:
    return {normalize(match.group()) for req in requirements if (match := NAME.match(req))}


@pytest.mark.parametrize("lock", ["requirements-runtime.lock", "requirements-build.lock"])
def test_image_lock_pins_the_versions_of_requirements_lock(lock: str) -> None:
    dev = pins("requirements.lock")
    image = pins(lock)
    assert image, f"{lock} pins nothing"
    differing = {name: (version, dev.get(name)) for name, version in image.items()}
    differing = {name: pair for name, pair in differing.items() if pair[0] != pair[1]}
    assert not differing, f"{lock} differs from requirements.lock {differing}: {REGENERATE}"


def test_runtime_lock_has_every_dependency_and_no_dev_tool() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    runtime = set(pins("requirements-runtime.lock"))
    missing = requirement_names(project["project"]["dependencies"]) - runtime
    assert not missing, f"requirements-runtime.lock lacks {sorted(missing)}: {REGENERATE}"
    tools = {"pytest", "mypy", "ruff", "schemathesis", "hatchling", "editables"} & runtime
    assert not tools, f"dev tools in requirements-runtime.lock {sorted(tools)}: {REGENERATE}"


def test_build_lock_has_the_build_backend() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    backend = requirement_names(project["build-system"]["requires"])
    missing = backend - set(pins("requirements-build.lock"))
    assert not missing, f"requirements-build.lock lacks {sorted(missing)}: {REGENERATE}"


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [str(REPO / "hack/image/lint.sh")], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"{result.stdout}{result.stderr}"


def test_missing_podman_fails_the_image_tests_with_what_to_install(tmp_path: Path) -> None:
    # A PATH with every tool build.sh uses except podman and apt-get (so it cannot install them).
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("bash", "env", "dirname", "sha256sum", "cut", "sort", "id", "mkdir", "flock"):
        if found := shutil.which(tool):
            (tools / tool).symlink_to(found)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "tests/image/test_image.py::test_image_user_is_a_fixed_non_root_uid"],
        cwd=REPO, env={**os.environ, "PATH": str(tools)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "1 error" in output, output
    assert "skipped" not in output, output
    assert "apt-get install -y --no-install-recommends podman" in output, output
