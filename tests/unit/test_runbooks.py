"""Every alert the project ships has a runbook in docs/runbooks/, and every runbook an alert.

An alert's `runbook_url` points at docs/runbooks/<Alert>.md by default: a missing page is a dead
link in the middle of an incident, a stale one misleads. Each page has the same four sections, so
whoever is paged finds what they need in the same place every time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from taskmanager_operator.api.v1alpha1 import DEFAULT_RUNBOOK_BASE_URL, Monitoring
from taskmanager_operator.monitoring import operator_rules, rules
from taskmanager_operator.monitoring.series import Scope

REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO / "docs" / "runbooks"
INDEX = RUNBOOKS / "README.md"
SECTIONS = ("Meaning", "Impact", "Diagnosis", "Mitigation")
_LINK = re.compile(r"\]\((?!https?://|#)([^)#\s]+)")


def shipped_alerting_rules() -> list[dict[str, Any]]:
    """Every alerting rule the project ships, as generated with the defaults: a TaskManager's (with
    autoscaling, which adds one) and the operator's own. Alerts of a new module go here."""
    groups = [
        *rules.rule_groups(Scope("team-a", "demo", "demo-api"), Monitoring(), autoscaling=True),
        *operator_rules.rule_groups("taskmanager-operator-metrics", "taskmanager-system"),
    ]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def alert_names() -> list[str]:
    return sorted({rule["alert"] for rule in shipped_alerting_rules()})


def sections(text: str) -> dict[str, str]:
    """The `## ` sections of a page, by heading, with their text."""
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], (body.strip() for body in parts[2::2]), strict=True))


def test_the_alerts_are_the_declared_ones() -> None:
    declared = {*rules.ALERT_NAMES, *operator_rules.OPERATOR_ALERT_NAMES}
    assert set(alert_names()) == declared


@pytest.mark.parametrize("alert", alert_names())
def test_every_alert_has_a_runbook_with_the_four_sections(alert: str) -> None:
    path = RUNBOOKS / f"{alert}.md"
    assert path.is_file(), f"{alert} has no runbook: write {path.relative_to(REPO)}"
    text = path.read_text()
    assert text.splitlines()[0] == f"# {alert}", f"{path.name} must start with `# {alert}`"
    found = sections(text)
    assert tuple(found) == SECTIONS, f"{path.name} has the sections {list(found)}, not {SECTIONS}"
    empty = [heading for heading, body in found.items() if not body]
    assert not empty, f"{path.name} has empty sections: {empty}"


def test_every_runbook_belongs_to_an_alert() -> None:
    pages = {path.stem for path in RUNBOOKS.glob("*.md") if path != INDEX}
    stale = pages - set(alert_names())
    assert not stale, f"runbooks of alerts that do not exist: {sorted(stale)}"


def test_the_index_lists_every_alert() -> None:
    index = INDEX.read_text()
    missing = [alert for alert in alert_names() if f"[{alert}]({alert}.md)" not in index]
    assert not missing, f"{INDEX.relative_to(REPO)} does not list {missing}"


@pytest.mark.parametrize("page", sorted(RUNBOOKS.glob("*.md")), ids=lambda path: path.name)
def test_runbook_links_lead_to_files_in_the_repository(page: Path) -> None:
    missing = [
        link for link in _LINK.findall(page.read_text()) if not (page.parent / link).exists()
    ]
    assert not missing, f"{page.name} links to {missing}, which are not in the repository"


def test_every_runbook_url_leads_to_its_runbook_by_default() -> None:
    assert DEFAULT_RUNBOOK_BASE_URL.endswith("/docs/runbooks/")
    for rule in shipped_alerting_rules():
        url = rule["annotations"]["runbook_url"]
        assert url.endswith(f"docs/runbooks/{rule['alert']}.md"), f"{rule['alert']}: {url}"
        assert (RUNBOOKS / url.rsplit("/", 1)[1]).is_file(), url
