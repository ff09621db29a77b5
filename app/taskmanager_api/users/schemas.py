"""Request and response bodies for user accounts."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, StrictBool, field_validator
from pydantic.json_schema import SkipJsonSchema

from taskmanager_api.core.schemas import StrictModel
from taskmanager_api.users.models import Role


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
