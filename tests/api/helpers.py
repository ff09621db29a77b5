"""A thin client for the API under test: register, log in, and call with a user's token."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "correct horse battery staple"
API = "/api/v1"


@dataclass(frozen=True)
class Account:
    id: uuid.UUID
    email: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class ApiClient:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.http = client

    async def request(
        self, method: str, path: str, *, as_: Account | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if as_ is not None:
            headers.update(as_.headers)
        return await self.http.request(method, path, headers=headers, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kwargs)

    async def register(self, email: str | None = None, password: str = PASSWORD) -> uuid.UUID:
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
        response = await self.post(
            f"{API}/auth/register", json={"email": email, "password": password}
        )
        assert response.status_code == 201, response.text
        return uuid.UUID(response.json()["id"])

    async def login(self, email: str, password: str = PASSWORD) -> Account:
        response = await self.post(f"{API}/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        body = response.json()
        user = await self.get(
            f"{API}/users/me", headers={"Authorization": f"Bearer {body['access_token']}"}
        )
        assert user.status_code == 200, user.text
        return Account(
            id=uuid.UUID(user.json()["id"]),
            email=email,
            access_token=body["access_token"],
            refresh_token=body["refresh_token"],
        )

    async def account(self, email: str | None = None) -> Account:
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
        await self.register(email)
        return await self.login(email)

    async def create_task(self, owner: Account, **fields: Any) -> dict[str, Any]:
        body = {"title": "a task"} | fields
        response = await self.post(f"{API}/tasks", as_=owner, json=body)
        assert response.status_code == 201, response.text
        task: dict[str, Any] = response.json()
        return task


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Every 4xx/5xx has the one error shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert {"code", "message", "request_id"} <= set(error), error
    if code is not None:
        assert error["code"] == code, error
    return error
