"""The managed Redis's readiness probe against a real redis-server: ready with the password of the
config file it reads, not ready with another one or when nothing listens."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from taskmanager_operator.builders.managed import redis_ping
from tests.support.services import RedisServer, free_port

pytestmark = pytest.mark.redis


def probe(config: Path, port: int) -> int:
    command = redis_ping(str(config), port)
    result = subprocess.run(["sh", "-c", command], capture_output=True, timeout=30, check=False)
    return result.returncode


def test_readiness_pings_with_the_password_of_the_config(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    assert redis_server.host == "127.0.0.1", "redis-cli's default host"
    config = tmp_path / "redis.conf"
    config.write_text(f"requirepass {redis_server.password}\nport {redis_server.port}\n")
    assert probe(config, redis_server.port) == 0
    config.write_text(f"requirepass not-{redis_server.password}\n")
    assert probe(config, redis_server.port) != 0
    assert probe(config, free_port()) != 0
