"""Request, query and response shapes for tasks."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from taskmanager_api.core.schemas import StrictModel
from taskmanager_api.tasks.models import TaskPriority, TaskStatus

MAX_PAGE_SIZE = 100
MAX_TAGS = 20

Title = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"\S")]
Description = Annotated[str, StringConstraints(max_length=10_000)]
Tag = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,49}$")]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS)]


_NUMBER = re.compile(r"^\s*[+-]?\d+(\.\d*)?\s*$")


def _iso_only(value: object) -> object:
    """pydantic would read a number as a Unix timestamp; the schema promises ISO 8601 only."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.match(value)):
        raise ValueError("must be an ISO 8601 date-time with a time zone")
    return value


# Stored and answered in UTC, whatever offset the client wrote.
DueAt = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_only),
    AfterValidator(lambda value: value.astimezone(UTC)),
]


def _distinct(tags: list[str]) -> list[str]:
    return sorted(set(tags))


class TaskCreate(StrictModel):
    title: Title
    description: Description = ""
    status: TaskStatus = TaskStatus.TODO
    priority: TaskPriority = TaskPriority.MEDIUM
    due_at: DueAt | None = None
    assignee_id: uuid.UUID | None = None
    tags: Tags = Field(default_factory=list)

    _tags = field_validator("tags")(_distinct)


class TaskUpdate(StrictModel):
    """Only the fields sent change; `due_at` and `assignee_id` may be cleared with null."""

    title: Title | SkipJsonSchema[None] = None
    description: Description | SkipJsonSchema[None] = None
    status: TaskStatus | SkipJsonSchema[None] = None
    priority: TaskPriority | SkipJsonSchema[None] = None
    due_at: DueAt | None = None
    assignee_id: uuid.UUID | None = None
    tags: Tags | SkipJsonSchema[None] = None

    @field_validator("title", "description", "status", "priority", "tags", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out but not set to null")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _distinct(value)


class TaskPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    description: str
    status: TaskStatus
    priority: TaskPriority
    due_at: datetime | None
    assignee_id: uuid.UUID | None
    created_by: uuid.UUID
    tags: list[str]
    created_at: datetime
    updated_at: datetime


class TasksPublic(BaseModel):
    data: list[TaskPublic]
    count: int = Field(description="How many tasks match the filters, across all pages.")
    limit: int
    offset: int


class TaskSort(StrEnum):
    CREATED_AT = "created_at"
    CREATED_AT_DESC = "-created_at"
    UPDATED_AT = "updated_at"
    UPDATED_AT_DESC = "-updated_at"
    DUE_AT = "due_at"
    DUE_AT_DESC = "-due_at"
    PRIORITY = "priority"
    PRIORITY_DESC = "-priority"
    TITLE = "title"
    TITLE_DESC = "-title"


class TaskQuery(StrictModel):
    status: TaskStatus | None = None
    priority: TaskPriority | None = None
    assignee_id: uuid.UUID | None = None
    tag: Tag | None = None
    due_before: DueAt | None = None
    due_after: DueAt | None = None
    q: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None, description="Case-insensitive text search in title and description."
    )
    sort: TaskSort = TaskSort.CREATED_AT_DESC
    limit: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE)
    offset: int = Field(default=0, ge=0, le=100_000)
