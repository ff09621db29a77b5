"""Request and response bodies for authentication: credentials in, tokens out."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from taskmanager_api.core.schemas import StrictModel

Email = Annotated[
    str,
    StringConstraints(
        min_length=3, max_length=254, pattern=r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"
    ),
]
# argon2 cost does not grow with length, but a cap keeps request bodies and hashing bounded.
NewPassword = Annotated[str, StringConstraints(min_length=12, max_length=128)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class UserRegister(StrictModel):
    email: Email
    password: NewPassword


class UserLogin(StrictModel):
    email: Email
    password: Password


class RefreshRequest(StrictModel):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth 2 scheme name
    expires_in: int = Field(description="Seconds until the access token expires.")
