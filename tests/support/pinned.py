"""What hack/versions.env pins, read without importing anything heavy (the S3 tests load no
Kubernetes client)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def pinned_version(key: str) -> str:
    for line in (REPO / "hack" / "versions.env").read_text().splitlines():
        name, _, value = line.partition("=")
        if name == key:
            return value.strip()
    raise AssertionError(f"hack/versions.env pins no {key}")
