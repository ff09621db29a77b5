"""The operator's Kubernetes client against a real HTTP server on 127.0.0.1: it names itself,
counts its requests by method, and gives up on a server that never answers instead of holding a
reconcile worker forever."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kubernetes import client
from prometheus_client import REGISTRY
from urllib3.exceptions import HTTPError

from taskmanager_operator import k8s
from taskmanager_operator.k8s import USER_AGENT, CountingApiClient

NAMESPACES = {"kind": "NamespaceList", "apiVersion": "v1", "metadata": {}, "items": []}


@dataclass
class Seen:
    agents: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


@dataclass
class Server:
    core: client.CoreV1Api
    seen: Seen


@pytest.fixture
def server() -> Iterator[Server]:
    """Answers a namespace listing, and never answers a read of one namespace (a server that
    stopped responding) until the test ends."""
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.agents.append(self.headers.get("User-Agent", ""))
            if self.path.startswith("/api/v1/namespaces/"):
                seen.release.wait(30)
                return
            body = json.dumps(NAMESPACES).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{http.server_address[1]}"
    api_client = CountingApiClient(configuration)
    yield Server(client.CoreV1Api(api_client), seen)
    seen.release.set()
    api_client.close()
    http.shutdown()
    http.server_close()


def gets() -> float:
    labels = {"method": "GET"}
    return REGISTRY.get_sample_value("taskmanager_operator_api_requests_total", labels) or 0.0


def test_requests_carry_our_name_and_are_counted(server: Server) -> None:
    before = gets()
    server.core.list_namespace()
    assert server.seen.agents == [USER_AGENT]
    assert gets() == before + 1


def test_a_server_that_never_answers_fails_the_request_in_bounded_time(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(k8s, "REQUEST_TIMEOUT", (1.0, 1.0))
    started = time.monotonic()
    with pytest.raises(HTTPError, match="timed out"):
        server.core.read_namespace("silent")
    # urllib3 tries a GET a few times, each bounded by the read timeout.
    assert time.monotonic() - started < 10
    assert len(server.seen.agents) >= 1
