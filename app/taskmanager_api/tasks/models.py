"""The task and task-tag tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from taskmanager_api.core.db import Base, TimestampedMixin


class TaskStatus(StrEnum):
    TODO = "todo"
    IN_PROGRESS = "in_progress"
    DONE = "done"


class TaskPriority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"


# Sorting by priority must follow urgency, not the alphabet.
PRIORITY_RANK = {
    TaskPriority.LOW.value: 0,
    TaskPriority.MEDIUM.value: 1,
    TaskPriority.HIGH.value: 2,
    TaskPriority.URGENT.value: 3,
}


def _enum(kind: type[StrEnum], name: str) -> sa.Enum:
    return sa.Enum(
        kind,
        name=name,
        native_enum=False,
        # A CHECK constraint keeps rows valid whatever writes them (a manual fix, a script).
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
    )


class Task(TimestampedMixin, Base):
    __tablename__ = "tasks"
    __table_args__ = (
        sa.Index("ix_tasks_created_by_created_at", "created_by", "created_at"),
        sa.Index("ix_tasks_assignee_id_created_at", "assignee_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    status: Mapped[TaskStatus] = mapped_column(_enum(TaskStatus, "task_status"), index=True)
    priority: Mapped[TaskPriority] = mapped_column(_enum(TaskPriority, "task_priority"))
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(default=1)

    tag_rows: Mapped[list[TaskTag]] = relationship(
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="TaskTag.tag",
        passive_deletes=True,
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's own convention

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]


class TaskTag(Base):
    __tablename__ = "task_tags"

    task_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(sa.String(50), primary_key=True, index=True)
