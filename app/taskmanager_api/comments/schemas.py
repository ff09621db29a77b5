"""Comment bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from taskmanager_api.core.schemas import StrictModel


class CommentCreate(StrictModel):
    body: Annotated[str, StringConstraints(min_length=1, max_length=5_000, pattern=r"\S")]


class CommentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    task_id: uuid.UUID
    author_id: uuid.UUID
    body: str
    created_at: datetime


class CommentsPublic(BaseModel):
    data: list[CommentPublic]
    count: int
