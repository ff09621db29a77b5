"""Request and response bodies for users and authentication."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from taskmanager_api.users.models import Role

Email = Annotated[
    str,
    StringConstraints(
        min_length=3, max_length=254, pattern=r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"
    ),
]
# argon2 cost does not grow with length, but a cap keeps request bodies and hashing bounded.
NewPassword = Annotated[str, StringConstraints(min_length=12, max_length=128)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class StrictModel(BaseModel):
    # Unknown fields are errors, so nobody can smuggle in id, role or created_by.
    model_config = ConfigDict(extra="forbid")


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


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    role: Role
    is_active: bool
    created_at: datetime


class UsersPublic(BaseModel):
    data: list[UserPublic]
    count: int


class UserAdminUpdate(StrictModel):
    role: Role | SkipJsonSchema[None] = None
    is_active: StrictBool | SkipJsonSchema[None] = None

    @field_validator("role", "is_active", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out but not set to null")
        return value
