"""An API client of the task-manager API as a user's program would be, and a bounded load of
requests that counts every failure (for the zero-downtime tests)."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.wait import wait_until

API = "/api/v1"


@dataclass
class Session:
    """A registered user, logged in, against one base URL."""

    base_url: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def http(base_url: str) -> httpx.Client:
    # No keep-alive: each request is a new connection, so it goes wherever the Service sends it.
    return httpx.Client(
        base_url=base_url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)
    )


def reachable(base_url: str, timeout: float = 30) -> None:
    """Wait until a connection to the Service is taken. A TaskManager is Ready once its pods are;
    the node's kube-proxy programs the Service's new endpoints a moment later (a connection is
    refused until then), as on any cluster: a client's first call waits that moment out, and
    only that (any HTTP answer ends the wait)."""

    def connects() -> bool:
        with http(base_url) as client:
            client.get("/health")
        return True

    wait_until(connects, timeout=timeout, interval=0.5, what=f"{base_url} to take connections")


def sign_up(base_url: str) -> Session:
    """Register a new user and log in (both must succeed)."""
    reachable(base_url)
    email = f"e2e-{uuid.uuid4().hex[:10]}@example.com"
    password = f"pw-{uuid.uuid4().hex}"
    with http(base_url) as client:
        credentials = {"email": email, "password": password}
        registered = client.post(f"{API}/auth/register", json=credentials)
        assert registered.status_code == 201, registered.text
        login = client.post(f"{API}/auth/login", json=credentials)
        assert login.status_code == 200, login.text
        tokens = login.json()
    return Session(base_url, email, password, tokens["access_token"], tokens["refresh_token"])


def exercise(session: Session) -> dict[str, Any]:
    """What an API client does: refresh, task CRUD and list, comments. Returns the final task."""
    with http(session.base_url) as client:
        refreshed = client.post(
            f"{API}/auth/refresh", json={"refresh_token": session.refresh_token}
        )
        assert refreshed.status_code == 200, refreshed.text
        session.access_token = refreshed.json()["access_token"]
        session.refresh_token = refreshed.json()["refresh_token"]
        headers = session.headers

        body = {"title": "run on a real node", "priority": "high"}
        created = client.post(f"{API}/tasks", json=body, headers=headers)
        assert created.status_code == 201, created.text
        task = created.json()
        got = client.get(f"{API}/tasks/{task['id']}", headers=headers)
        assert got.status_code == 200, got.text
        assert got.json()["title"] == body["title"], got.text
        updated = client.patch(
            f"{API}/tasks/{task['id']}", json={"status": "in_progress"}, headers=headers
        )
        assert updated.status_code == 200, updated.text
        listed = client.get(f"{API}/tasks", headers=headers)
        assert listed.status_code == 200, listed.text
        assert task["id"] in [item["id"] for item in listed.json()["data"]], listed.text

        comment = client.post(
            f"{API}/tasks/{task['id']}/comments", json={"body": "works"}, headers=headers
        )
        assert comment.status_code == 201, comment.text
        comments = client.get(f"{API}/tasks/{task['id']}/comments", headers=headers)
        assert comments.status_code == 200, comments.text
        assert [c["body"] for c in comments.json()["data"]] == ["works"], comments.text

        scratch = client.post(f"{API}/tasks", json={"title": "to delete"}, headers=headers)
        assert scratch.status_code == 201, scratch.text
        deleted = client.delete(f"{API}/tasks/{scratch.json()['id']}", headers=headers)
        assert deleted.status_code == 204, deleted.text
        gone = client.get(f"{API}/tasks/{scratch.json()['id']}", headers=headers)
        assert gone.status_code == 404, gone.text
        final: dict[str, Any] = updated.json()
        return final


@dataclass
class Load:
    """Authenticated GETs at a steady pace from a background thread, bounded in count and time.

    Every response that is not 200, and every connection error, is a failure.
    """

    session: Session
    per_second: float = 20
    max_requests: int = 4000
    max_seconds: float = 240
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Load:
        self._thread = threading.Thread(target=self._run, name="e2e-load", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    @property
    def sent(self) -> int:
        return sum(self.outcomes.values())

    @property
    def failed(self) -> int:
        return self.sent - self.outcomes["200"]

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with http(self.session.base_url) as client:
            while not self._stop.is_set() and self.sent < self.max_requests:
                if time.monotonic() > deadline:
                    break
                try:
                    response = client.get(f"{API}/tasks", headers=self.session.headers)
                    self.outcomes[str(response.status_code)] += 1
                    if response.status_code != 200:
                        self.errors.append(f"{response.status_code}: {response.text[:200]}")
                except httpx.HTTPError as error:
                    self.outcomes[type(error).__name__] += 1
                    self.errors.append(repr(error))
                # The pace of the load, not a wait for a condition.
                self._stop.wait(1 / self.per_second)

    def report(self) -> str:
        return f"{self.sent} requests: {dict(self.outcomes)}; first errors: {self.errors[:5]}"
