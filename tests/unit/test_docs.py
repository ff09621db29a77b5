"""The docs point only at files in the repository: a link to a file that is not here (a design
note elsewhere, a renamed module) misleads whoever follows it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [
    "README.md",
    "CONTRIBUTING.md",
    "docs/architecture.md",
    "docs/monitoring.md",
    "charts/taskmanager-operator/README.md",
]
_LINK = re.compile(r"\]\((?!https?://|#)([^)#\s]+)")


@pytest.mark.parametrize("doc", DOCS)
def test_links_lead_to_files_in_the_repository(doc: str) -> None:
    path = REPO / doc
    text = path.read_text()
    missing = [link for link in _LINK.findall(text) if not (path.parent / link).exists()]
    assert not missing, f"{doc} links to {missing}, which are not in the repository"
    outside = [
        link for link in _LINK.findall(text) if REPO not in (path.parent / link).resolve().parents
    ]
    assert not outside, f"{doc} links outside the repository: {outside}"
    assert "../shared/" not in text, f"{doc} refers to ../shared/, which is not in the repository"
