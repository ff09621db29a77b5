"""The operator's own alerts and dashboard: the chart's generated copies are current, every alert
is complete and has a runbook, Prometheus's promtool accepts the rules and each alert fires on the
series that should fire it and stays quiet on a healthy operator's.

promtool comes from Debian's `prometheus` package; without it the tests fail with what to install.
`make manifests` rewrites the chart's files (taskmanager_operator.monitoring.operator_rules).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest

from taskmanager_operator import metrics
from taskmanager_operator.api.v1alpha1 import DEFAULT_RUNBOOK_BASE_URL
from taskmanager_operator.monitoring import operator_dashboard, operator_rules
from taskmanager_operator.monitoring.operator_rules import (
    BACKLOG,
    NOT_READY,
    OPERATOR_ALERT_NAMES,
    OPERATOR_DOWN,
    RECONCILE_ERRORS,
    SLOW_RECONCILES,
)

REPO = Path(__file__).resolve().parents[2]
CHART_FILES = REPO / operator_rules.CHART_FILES
RUNBOOKS = REPO / "docs" / "runbooks"
PROMTOOL = Path("/usr/bin/promtool")
INSTALL_HINT = "install it: make install (or apt-get install prometheus)"
# What the chart renders for release "tm" in "taskmanager-system" (tests/chart use the same).
JOB = "tm-taskmanager-operator-metrics"
NAMESPACE = "taskmanager-system"
RUNBOOK_SECTIONS = ("## Meaning", "## Impact", "## Diagnosis", "## Mitigation")


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run promtool; a failure shows its output."""
    if not PROMTOOL.is_file():
        pytest.fail(f"{PROMTOOL} not found: {INSTALL_HINT}")
    result = subprocess.run(
        [str(PROMTOOL), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, (
        f"promtool {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
    )
    return result


def check_rules(groups: list[dict[str, Any]], workdir: Path) -> None:
    path = workdir / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    promtool("check", "rules", path.name, cwd=workdir)


def _expanded(text: str, labels: dict[str, str]) -> str:
    for label, value in labels.items():
        text = text.replace(f"{{{{ $labels.{label} }}}}", value)
    return text


def _expected(alert_name: str, groups: list[dict[str, Any]], **labels: str) -> dict[str, Any]:
    """The alert as promtool reports it: our labels, the series' labels, expanded annotations."""
    (rule,) = [rule for group in groups for rule in group["rules"] if rule["alert"] == alert_name]
    return {
        "exp_labels": {**rule["labels"], **labels},
        "exp_annotations": {
            key: _expanded(value, labels) for key, value in rule["annotations"].items()
        },
    }


def _case(
    series: dict[str, str], alert_name: str, eval_time: str, expected: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": [{"series": name, "values": values} for name, values in series.items()],
        "alert_rule_test": [
            {"eval_time": eval_time, "alertname": alert_name, "exp_alerts": expected}
        ],
    }


def promtool_tests(groups: list[dict[str, Any]], job: str, namespace: str) -> list[dict[str, Any]]:
    """One case per alert that fires it, and one healthy operator that fires none."""
    operator = f'job="{job}", namespace="{namespace}"'
    taskmanager = f'job="{job}", namespace="team-a", name="demo"'
    reconciles = "taskmanager_operator_reconciles_total"
    buckets = "taskmanager_operator_reconcile_duration_seconds_bucket"
    ready = "taskmanager_operator_taskmanager_ready"
    depth = "taskmanager_operator_queue_depth"
    tm = {"namespace": "team-a", "name": "demo"}
    cases = [
        _case(
            {f'up{{{operator}, instance="10.0.0.1:8081"}}': "0x20"},
            OPERATOR_DOWN,
            "10m",
            [_expected(OPERATOR_DOWN, groups)],
        ),
        # No series at all (nothing scrapes the operator) is down too.
        _case(
            {f'up{{job="other", namespace="{namespace}"}}': "1x20"},
            OPERATOR_DOWN,
            "10m",
            [_expected(OPERATOR_DOWN, groups)],
        ),
        _case(
            {f'{reconciles}{{{taskmanager}, result="error"}}': "0+1x40"},
            RECONCILE_ERRORS,
            "20m",
            [_expected(RECONCILE_ERRORS, groups, **tm)],
        ),
        _case(
            {
                f'{buckets}{{{taskmanager}, le="10.0"}}': "0x40",
                f'{buckets}{{{taskmanager}, le="30.0"}}': "0+10x40",
                f'{buckets}{{{taskmanager}, le="+Inf"}}': "0+10x40",
            },
            SLOW_RECONCILES,
            "30m",
            [_expected(SLOW_RECONCILES, groups)],
        ),
        _case({f"{depth}{{{operator}}}": "20x40"}, BACKLOG, "20m", [_expected(BACKLOG, groups)]),
        _case(
            {f"{ready}{{{taskmanager}}}": "0x40"},
            NOT_READY,
            "35m",
            [_expected(NOT_READY, groups, **tm)],
        ),
    ]
    healthy = {
        f'up{{{operator}, instance="10.0.0.1:8081"}}': "1x90",
        f'{reconciles}{{{taskmanager}, result="success"}}': "0+1x90",
        f'{reconciles}{{{taskmanager}, result="error"}}': "0x90",
        f'{buckets}{{{taskmanager}, le="0.1"}}': "0+1x90",
        f'{buckets}{{{taskmanager}, le="10.0"}}': "0+1x90",
        f'{buckets}{{{taskmanager}, le="+Inf"}}': "0+1x90",
        f"{depth}{{{operator}}}": "2x90",
        # Not Ready for 20 minutes while it started, Ready since: no alert.
        f"{ready}{{{taskmanager}}}": "0x20 1x70",
    }
    quiet = _case(healthy, OPERATOR_DOWN, "60m", [])
    quiet["alert_rule_test"] = [
        {"eval_time": "60m", "alertname": name, "exp_alerts": []} for name in OPERATOR_ALERT_NAMES
    ]
    return [*cases, quiet]


def run_promtool_tests(
    groups: list[dict[str, Any]], job: str, namespace: str, workdir: Path
) -> None:
    """`promtool test rules` of promtool_tests() against these groups."""
    (workdir / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    (workdir / "tests.yaml").write_text(
        yaml.safe_dump(
            {
                "rule_files": ["rules.yaml"],
                "evaluation_interval": "1m",
                "tests": promtool_tests(groups, job, namespace),
            }
        )
    )
    promtool("test", "rules", "tests.yaml", cwd=workdir)


def substituted_groups(job: str = JOB, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """The committed rule file with the placeholders filled in, as the chart's template does."""
    text = (CHART_FILES / operator_rules.RULES_FILE).read_text()
    text = text.replace(operator_rules.JOB_PLACEHOLDER, job)
    text = text.replace(operator_rules.NAMESPACE_PLACEHOLDER, namespace)
    groups: list[dict[str, Any]] = yaml.safe_load(text)["groups"]
    return groups


def test_the_chart_files_are_current(tmp_path: Path) -> None:
    operator_rules.write(tmp_path)
    for name in (operator_rules.RULES_FILE, operator_rules.DASHBOARD_FILE):
        committed = CHART_FILES / name
        assert committed.is_file(), f"{committed} is missing: run `make manifests`"
        assert committed.read_text() == (tmp_path / name).read_text(), (
            f"{committed} is stale: run `make manifests`"
        )


def test_the_committed_rules_are_the_generated_ones_with_placeholders() -> None:
    assert substituted_groups() == operator_rules.rule_groups(JOB, NAMESPACE)
    text = (CHART_FILES / operator_rules.RULES_FILE).read_text()
    assert operator_rules.JOB_PLACEHOLDER in text
    assert operator_rules.NAMESPACE_PLACEHOLDER in text


def test_every_alert_is_complete_and_named_in_the_list() -> None:
    (group,) = operator_rules.rule_groups(JOB, NAMESPACE)
    names = [rule["alert"] for rule in group["rules"]]
    assert tuple(names) == OPERATOR_ALERT_NAMES
    for rule in group["rules"]:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule
        assert rule["for"], rule
        annotations = rule["annotations"]
        assert annotations["summary"], rule
        assert annotations["description"], rule
        assert annotations["runbook_url"] == f"{DEFAULT_RUNBOOK_BASE_URL}{rule['alert']}.md"
    severities = {rule["alert"]: rule["labels"]["severity"] for rule in group["rules"]}
    assert severities[OPERATOR_DOWN] == "critical"
    not_ready = group["rules"][names.index(NOT_READY)]["annotations"]["description"]
    assert "{{ $labels.namespace }}/{{ $labels.name }}" in not_ready


@pytest.mark.parametrize("alert", OPERATOR_ALERT_NAMES)
def test_every_alert_has_a_runbook_with_its_sections(alert: str) -> None:
    runbook = RUNBOOKS / f"{alert}.md"
    assert runbook.is_file(), f"{runbook} is missing"
    text = runbook.read_text()
    assert text.startswith(f"# {alert}\n"), runbook
    positions = [text.find(f"\n{section}\n") for section in RUNBOOK_SECTIONS]
    assert all(position > 0 for position in positions), f"{runbook}: needs {RUNBOOK_SECTIONS}"
    assert positions == sorted(positions), f"{runbook}: sections out of order"


def test_the_rules_read_series_the_operator_exports() -> None:
    # Imported for its registrations: the operator's metrics in the default registry.
    assert metrics.TASKMANAGER_READY is not None
    exported = generate_latest(REGISTRY).decode()
    for family, kind in (
        (operator_rules.RECONCILES_TOTAL, "counter"),
        (operator_rules.RECONCILE_DURATION, "histogram"),
        (operator_rules.QUEUE_DEPTH, "gauge"),
        (operator_rules.TASKMANAGER_READY, "gauge"),
    ):
        assert f"# TYPE {family} {kind}\n" in exported, family


def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    check_rules(substituted_groups(), tmp_path)


def test_each_alert_fires_on_its_series_and_none_on_a_healthy_operator(tmp_path: Path) -> None:
    run_promtool_tests(substituted_groups(), JOB, NAMESPACE, tmp_path)


def test_the_dashboard_has_its_fixed_uid_and_the_panels_asked_for() -> None:
    model = json.loads((CHART_FILES / operator_rules.DASHBOARD_FILE).read_text())
    assert model["uid"] == "taskmanager-operator"
    titles = {panel["title"] for panel in model["panels"]}
    assert {
        "Reconciles per second by result",
        "Reconcile duration",
        "Queue depth",
        "TaskManagers Ready vs not Ready",
        "Up",
    } <= titles
    variables = {variable["name"] for variable in model["templating"]["list"]}
    assert variables == {"datasource", "job"}
    for panel in model["panels"]:
        for target in panel.get("targets", []):
            assert 'job=~"$job"' in target["expr"], (panel["title"], target["expr"])


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule's expression, Grafana's variables filled."""
    rules = [
        {
            "record": f"dashboard:query_{index}",
            "expr": query.expr.replace("$__rate_interval", "5m").replace("$job", JOB),
        }
        for index, query in enumerate(operator_dashboard.queries())
    ]
    check_rules([{"name": "dashboard", "rules": rules}], tmp_path)
