"""schemathesis against the running app's OpenAPI: every default check, every phase, fixed seed.

Bounded by examples per operation (FUZZ_EXAMPLES), so it takes well under a minute on 2 cores.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.api.conftest import API_REDIS_DB
from tests.api.helpers import PASSWORD
from tests.api.processes import api_environment, run_api
from tests.support.services import RedisServer

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SEED = 20261125
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
REPOSITORY = Path(__file__).resolve().parents[2]


def test_schemathesis_finds_no_failure(
    create_database: Callable[[str], str], redis_server: RedisServer, tmp_path: Path
) -> None:
    env = api_environment(
        environment="production",
        jwt_signing_key=secrets.token_urlsafe(48),
        database_url=create_database(f"taskmanager_fuzz_{uuid.uuid4().hex[:8]}"),
        redis_url=redis_server.url(API_REDIS_DB),
        redis_key_prefix=f"fuzz-{uuid.uuid4().hex[:8]}:",
        # The fuzzer is one client sending thousands of requests: limits would only answer 429.
        rate_limit_per_minute=10_000_000,
        login_rate_limit_per_minute=10_000_000,
        login_ip_rate_limit_per_minute=10_000_000,
        log_level="WARNING",
    )
    migrate = subprocess.run(
        [sys.executable, "-m", "taskmanager_api", "migrate", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    # An admin, so that the admin-only operations are exercised too.
    email = "fuzzer@example.com"
    admin = subprocess.run(
        [sys.executable, "-m", "taskmanager_api", "create-admin", "--email", email],
        env={**env, "TASKMANAGER_ADMIN_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert admin.returncode == 0, admin.stderr
    with run_api(env, tmp_path, name="fuzzed") as api:
        fuzz_env = {
            **os.environ,
            "FUZZ_API_URL": api.url,
            "FUZZ_EMAIL": email,
            "FUZZ_PASSWORD": PASSWORD,
            "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks",
            "PYTHONPATH": str(REPOSITORY),
        }
        result = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                f"{api.url}/openapi.json",
                "--seed",
                str(SEED),
                "--max-examples",
                str(EXAMPLES),
                "--generation-database",
                "none",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--workers",
                "1",
                "--no-color",
            ],
            env=fuzz_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        server_log = api.output()
    assert result.returncode == 0, f"{result.stdout[-20000:]}\n{result.stderr[-5000:]}"
    assert "Traceback" not in server_log, server_log[-10000:]
