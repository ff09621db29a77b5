"""Task persistence and visibility. Knows nothing of HTTP; never commits."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from taskmanager_api.core.db import utcnow
from taskmanager_api.tasks.models import PRIORITY_RANK, Task, TaskTag
from taskmanager_api.tasks.schemas import TaskQuery, TaskSort
from taskmanager_api.users.models import User


def is_visible(
    *,
    task_created_by: uuid.UUID,
    task_assignee: uuid.UUID | None,
    user_id: uuid.UUID,
    is_admin: bool,
) -> bool:
    return is_admin or user_id in (task_created_by, task_assignee)


def visibility(*, user_id: uuid.UUID, is_admin: bool) -> sa.ColumnElement[bool]:
    if is_admin:
        return sa.true()
    return sa.or_(Task.created_by == user_id, Task.assignee_id == user_id)


async def get_task(session: AsyncSession, *, task_id: uuid.UUID) -> Task | None:
    return await session.get(Task, task_id)


async def active_user_exists(session: AsyncSession, *, user_id: uuid.UUID) -> bool:
    query = sa.select(User.id).where(User.id == user_id, User.is_active.is_(True))
    return (await session.execute(query)).first() is not None


async def create_task(
    session: AsyncSession, *, created_by: uuid.UUID, fields: dict[str, Any]
) -> Task:
    tags = fields.pop("tags", [])
    task = Task(created_by=created_by, **fields)
    task.tag_rows = [TaskTag(tag=tag) for tag in tags]
    session.add(task)
    await session.flush()
    return task


async def update_task(session: AsyncSession, *, task: Task, changes: dict[str, Any]) -> Task:
    if "tags" in changes:
        wanted = set(changes.pop("tags"))
        task.tag_rows = [row for row in task.tag_rows if row.tag in wanted] + [
            TaskTag(tag=tag) for tag in sorted(wanted - set(task.tags))
        ]
    for field, value in changes.items():
        setattr(task, field, value)
    # Always touches the row, so a change to the tags alone still bumps the version that
    # caches compare.
    task.updated_at = utcnow()
    await session.flush()
    return task


_SORT_COLUMNS: dict[str, Any] = {
    "created_at": Task.created_at,
    "updated_at": Task.updated_at,
    "due_at": Task.due_at,
    "title": Task.title,
    "priority": sa.case(PRIORITY_RANK, value=Task.priority, else_=0),
}


def _order(sort: TaskSort) -> list[Any]:
    name = sort.value.lstrip("-")
    column = _SORT_COLUMNS[name]
    descending = sort.value.startswith("-")
    ordered = column.desc() if descending else column.asc()
    if name == "due_at":
        ordered = ordered.nulls_last()
    tiebreak = Task.id.desc() if descending else Task.id.asc()
    return [ordered, tiebreak]


PUBLIC_COLUMNS = (
    Task.id,
    Task.title,
    Task.description,
    Task.status,
    Task.priority,
    Task.due_at,
    Task.assignee_id,
    Task.created_by,
    Task.created_at,
    Task.updated_at,
)


async def list_tasks(
    session: AsyncSession, *, query: TaskQuery, user_id: uuid.UUID, is_admin: bool
) -> tuple[list[dict[str, Any]], int]:
    conditions: list[sa.ColumnElement[bool]] = [visibility(user_id=user_id, is_admin=is_admin)]
    if query.status is not None:
        conditions.append(Task.status == query.status)
    if query.priority is not None:
        conditions.append(Task.priority == query.priority)
    if query.assignee_id is not None:
        conditions.append(Task.assignee_id == query.assignee_id)
    if query.tag is not None:
        conditions.append(Task.tag_rows.any(TaskTag.tag == query.tag))
    if query.due_before is not None:
        conditions.append(Task.due_at < query.due_before)
    if query.due_after is not None:
        conditions.append(Task.due_at > query.due_after)
    if query.q is not None:
        conditions.append(
            sa.or_(
                Task.title.icontains(query.q, autoescape=True),
                Task.description.icontains(query.q, autoescape=True),
            )
        )
    # Plain columns, not entities: a page is read, never changed, so it skips the ORM's identity
    # map and instance state (most of the cost of a list). The total rides along with the page
    # (a window function), saving a second query.
    statement = (
        sa.select(*PUBLIC_COLUMNS, sa.func.count().over().label("total"))
        .where(*conditions)
        .order_by(*_order(query.sort))
        .limit(query.limit)
        .offset(query.offset)
    )
    rows = (await session.execute(statement)).all()
    if not rows:
        if query.offset == 0:
            return [], 0
        # Past the last page the window has no row to ride on: count separately.
        count = sa.select(sa.func.count()).select_from(Task).where(*conditions)
        return [], (await session.execute(count)).scalar_one()
    tags: dict[uuid.UUID, list[str]] = {row.id: [] for row in rows}
    tag_rows = await session.execute(
        sa.select(TaskTag.task_id, TaskTag.tag)
        .where(TaskTag.task_id.in_(list(tags)))
        .order_by(TaskTag.tag)
    )
    for task_id, tag in tag_rows:
        tags[task_id].append(tag)
    tasks = [
        {
            **{column.key: row[index] for index, column in enumerate(PUBLIC_COLUMNS)},
            "tags": tags[row.id],
        }
        for row in rows
    ]
    return tasks, int(rows[0].total)
