"""An outage of the local cluster's kube-apiserver, and a write made while it lasts.

`hack/cluster.sh stop-apiserver` kills the API server (nothing else of the cluster) and keeps its
command line in .local/kube-apiserver.cmdline; `start-apiserver` starts it again from there. While
it is down, a change can still reach the cluster's storage directly through etcd's JSON gateway:
as another API server of a highly available control plane would have accepted it. The restarted
API server serves it as any other object; the watches that were open before the outage cannot
resume across it (their resourceVersion predates the restarted server's watch cache: 410 Gone), so
only a client that lists again sees the change.
"""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = REPO / "hack" / "cluster.sh"
SAVED_COMMAND = REPO / ".local" / "kube-apiserver.cmdline"


def _cluster(verb: str) -> None:
    done = subprocess.run(
        ["bash", str(CLUSTER_SCRIPT), verb],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if done.returncode != 0:
        raise AssertionError(f"hack/cluster.sh {verb} failed:\n{done.stdout}{done.stderr}")


def _flag(name: str) -> str:
    for argument in SAVED_COMMAND.read_bytes().split(b"\0"):
        text = argument.decode()
        if text.startswith(f"--{name}="):
            return text.split("=", 1)[1]
    raise AssertionError(f"the stopped kube-apiserver had no --{name}")


@contextmanager
def apiserver_down() -> Iterator[None]:
    """The API server stopped for the block, started again (and answering) after it."""
    _cluster("stop-apiserver")
    try:
        yield
    finally:
        _cluster("start-apiserver")


def _etcd(path: str, request: dict[str, str]) -> dict[str, Any]:
    url = _flag("etcd-servers").split(",")[0]
    # The local etcd's loopback URL, from the API server's own command line.
    post = urllib.request.Request(  # noqa: S310
        f"{url}{path}", data=json.dumps(request).encode(), method="POST"
    )
    with urllib.request.urlopen(post, timeout=10) as response:  # noqa: S310
        answer: dict[str, Any] = json.load(response)
        return answer


def edit_stored(
    group: str, plural: str, namespace: str, name: str, change: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """Change a custom object in etcd while the API server is down (`apiserver_down`), as an API
    server would: `change` edits the spec, the generation moves on. Returns the stored object."""
    prefix = _flag("etcd-prefix").rstrip("/")
    key = base64.b64encode(f"{prefix}/{group}/{plural}/{namespace}/{name}".encode()).decode()
    (stored,) = _etcd("/v3/kv/range", {"key": key})["kvs"]
    body: dict[str, Any] = json.loads(base64.b64decode(stored["value"]))
    change(body)
    body["metadata"]["generation"] += 1
    value = base64.b64encode(json.dumps(body).encode()).decode()
    _etcd("/v3/kv/put", {"key": key, "value": value})
    return body
