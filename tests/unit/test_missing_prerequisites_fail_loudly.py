"""A missing prerequisite must fail the run with what to do, never skip its way to green."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_pytest(node: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", node],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("node", "env", "hint"),
    [
        pytest.param(
            "tests/cluster/test_cluster_is_real.py::test_server_side_apply_of_the_same_object_writes_nothing",
            {"KUBECONFIG": "/nonexistent/kubeconfig"},
            "make cluster-up",
            id="no-cluster",
        ),
        pytest.param(
            "tests/integration/test_postgres.py::test_wrong_password_is_refused",
            {"PG_BINDIR": "/nonexistent/bin"},
            "apt-get install -y postgresql",
            id="no-postgres",
        ),
        pytest.param(
            "tests/integration/test_redis.py::test_a_client_with_a_wrong_password_is_refused",
            {"PATH": "/nonexistent"},
            "apt-get install -y postgresql redis-server",
            id="no-redis",
        ),
        pytest.param(
            "tests/unit/test_alert_rules.py::test_promtool_unit_tests_pass[defaults]",
            {"PATH": "/nonexistent"},
            "apt-get install prometheus",
            id="no-promtool",
        ),
    ],
)
def test_a_missing_component_fails_with_what_to_install(
    node: str, env: dict[str, str], hint: str
) -> None:
    result = run_pytest(node, **env)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "1 error" in output, output
    assert "skipped" not in output, output
    assert hint in output, output
