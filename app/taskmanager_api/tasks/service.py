"""Task persistence and the rules on tasks. Knows nothing of HTTP.

Never commits a session it is given (the caller owns that transaction); `create_task` runs in a
transaction of its own on the engine, since a create needs no session at all.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from taskmanager_api.core.db import utcnow
from taskmanager_api.tasks.models import PRIORITY_RANK, Task, TaskTag
from taskmanager_api.tasks.schemas import TaskQuery, TaskSort
from taskmanager_api.users.models import User


class UnknownAssigneeError(Exception):
    """The assignee named is no active user."""


def is_visible(
    *,
    task_created_by: uuid.UUID,
    task_assignee: uuid.UUID | None,
    user_id: uuid.UUID,
    is_admin: bool,
) -> bool:
    return is_admin or user_id in (task_created_by, task_assignee)


def may_delete(*, task_created_by: uuid.UUID, user_id: uuid.UUID, is_admin: bool) -> bool:
    # An assignee sees and changes a task but may not delete it.
    return is_admin or user_id == task_created_by


async def get_task(session: AsyncSession, *, task_id: uuid.UUID) -> Task | None:
    return await session.get(Task, task_id)


_ACTIVE_USER = sa.select(User.id).where(
    User.id == sa.bindparam("user_id"), User.is_active.is_(True)
)


async def _check_assignee(
    db: AsyncSession | AsyncConnection, assignee_id: uuid.UUID | None
) -> None:
    """A task may be assigned to active users only."""
    if (
        assignee_id is not None
        and (await db.execute(_ACTIVE_USER, {"user_id": assignee_id})).first() is None
    ):
        raise UnknownAssigneeError


async def update_task(session: AsyncSession, *, task: Task, changes: dict[str, Any]) -> Task:
    await _check_assignee(session, changes.get("assignee_id"))
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


# The hot paths (list, create) run Core statements on the tables, not ORM queries: no identity
# map, no unit of work, no ORM compile step. Each statement is built once, with bound
# parameters, and reused: SQLAlchemy memoizes its cache key and finds its compiled form at once.
TASKS = cast(sa.Table, Task.__table__)
TAGS = cast(sa.Table, TaskTag.__table__)
_T = TASKS.c

_SORT_COLUMNS: dict[str, Any] = {
    "created_at": _T.created_at,
    "updated_at": _T.updated_at,
    "due_at": _T.due_at,
    "title": _T.title,
    "priority": sa.case(PRIORITY_RANK, value=_T.priority, else_=0),
}


def _order(sort: TaskSort) -> list[Any]:
    name = sort.value.lstrip("-")
    column = _SORT_COLUMNS[name]
    descending = sort.value.startswith("-")
    ordered = column.desc() if descending else column.asc()
    if name == "due_at":
        ordered = ordered.nulls_last()
    tiebreak = _T.id.desc() if descending else _T.id.asc()
    return [ordered, tiebreak]


PUBLIC_COLUMNS = (
    _T.id,
    _T.title,
    _T.description,
    _T.status,
    _T.priority,
    _T.due_at,
    _T.assignee_id,
    _T.created_by,
    _T.created_at,
    _T.updated_at,
)
_PUBLIC_KEYS = tuple(column.key for column in PUBLIC_COLUMNS)

# Filters by name: the condition each adds, on a bound parameter of the same name.
_FILTERS: dict[str, Any] = {
    "status": lambda: _T.status == sa.bindparam("status"),
    "priority": lambda: _T.priority == sa.bindparam("priority"),
    "assignee_id": lambda: _T.assignee_id == sa.bindparam("assignee_id"),
    "tag": lambda: sa.exists().where(
        TAGS.c.task_id == _T.id, TAGS.c.tag == sa.bindparam("tag", type_=TAGS.c.tag.type)
    ),
    "due_before": lambda: _T.due_at < sa.bindparam("due_before"),
    "due_after": lambda: _T.due_at > sa.bindparam("due_after"),
    # The value is escaped in `_like_escaped`: `autoescape` works on literals only.
    "q": lambda: sa.or_(
        _T.title.icontains(sa.bindparam("q", type_=sa.String()), escape=_ESCAPE),
        _T.description.icontains(sa.bindparam("q", type_=sa.String()), escape=_ESCAPE),
    ),
}
_ESCAPE = "/"


def _like_escaped(text: str) -> str:
    """What `autoescape=True` does to a literal: `%`, `_` and the escape character match
    themselves."""
    return (
        text.replace(_ESCAPE, _ESCAPE * 2).replace("%", _ESCAPE + "%").replace("_", _ESCAPE + "_")
    )


def _conditions(filters: tuple[str, ...], *, is_admin: bool) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if not is_admin:
        user = sa.bindparam("user_id", type_=_T.created_by.type)
        conditions.append(sa.or_(_T.created_by == user, _T.assignee_id == user))
    conditions += [_FILTERS[name]() for name in filters]
    return conditions


# Postgres reads a page's tags in the page query itself: a correlated ARRAY(subquery) that the
# planner evaluates after the sort and limit (20 index probes, not one per matching task), which
# saves a second statement and round trip per page.
_TAGS_ARRAY = sa.func.array(
    sa.select(TAGS.c.tag).where(TAGS.c.task_id == _T.id).order_by(TAGS.c.tag).scalar_subquery(),
    type_=postgresql.ARRAY(sa.String()),
).label("tags")


@functools.cache
def _page_statement(
    filters: tuple[str, ...], sort: TaskSort, is_admin: bool, dialect: str
) -> sa.Select[Any]:
    # The total rides along with the page (a window function), saving a second query.
    extra = [_TAGS_ARRAY] if dialect == "postgresql" else []
    return (
        sa.select(*PUBLIC_COLUMNS, *extra, sa.func.count().over().label("total"))
        .where(*_conditions(filters, is_admin=is_admin))
        .order_by(*_order(sort))
        .limit(sa.bindparam("limit", type_=sa.Integer()))
        .offset(sa.bindparam("offset", type_=sa.Integer()))
    )


@functools.cache
def _count_statement(filters: tuple[str, ...], is_admin: bool) -> sa.Select[Any]:
    return (
        sa.select(sa.func.count())
        .select_from(TASKS)
        .where(*_conditions(filters, is_admin=is_admin))
    )


# Elsewhere (SQLite) the tags of a page come in a second statement.
_PAGE_TAGS = (
    sa.select(TAGS.c.task_id, TAGS.c.tag)
    .where(TAGS.c.task_id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(TAGS.c.tag)
)


async def list_tasks(
    connection: AsyncConnection, *, query: TaskQuery, user_id: uuid.UUID, is_admin: bool
) -> tuple[list[dict[str, Any]], int]:
    params: dict[str, Any] = {"user_id": user_id, "limit": query.limit, "offset": query.offset}
    filters = tuple(name for name in _FILTERS if getattr(query, name) is not None)
    for name in filters:
        params[name] = getattr(query, name)
    if query.q is not None:
        params["q"] = _like_escaped(query.q)
    dialect = connection.dialect.name
    # Plain rows, not entities: a page is read, never changed.
    statement = _page_statement(filters, query.sort, is_admin, dialect)
    rows = (await connection.execute(statement, params)).all()
    if not rows:
        if query.offset == 0:
            return [], 0
        # Past the last page the window has no row to ride on: count separately.
        count = await connection.execute(_count_statement(filters, is_admin), params)
        return [], count.scalar_one()
    width = len(_PUBLIC_KEYS)
    if dialect == "postgresql":
        tasks = []
        for row in rows:
            task = dict(zip(_PUBLIC_KEYS, row, strict=False))
            task["tags"] = row[width]
            tasks.append(task)
        return tasks, int(rows[0][-1])
    tags: dict[uuid.UUID, list[str]] = {row[0]: [] for row in rows}
    for task_id, tag in await connection.execute(_PAGE_TAGS, {"ids": list(tags)}):
        tags[task_id].append(tag)
    tasks = []
    for row in rows:
        task = dict(zip(_PUBLIC_KEYS, row, strict=False))
        task["tags"] = tags[row[0]]
        tasks.append(task)
    return tasks, int(rows[0][-1])


_INSERT_TASK = sa.insert(TASKS).returning(*PUBLIC_COLUMNS)
_INSERT_TAGS = sa.insert(TAGS)


async def create_task(
    engine: AsyncEngine, *, created_by: uuid.UUID, fields: dict[str, Any]
) -> dict[str, Any]:
    """Create a task, committed on return; returns it as the API shows it."""
    # Core statements in one transaction: the task and its tags commit together, or neither.
    async with engine.begin() as connection:
        await _check_assignee(connection, fields.get("assignee_id"))
        return await _insert_task(connection, created_by=created_by, fields=fields)


async def _insert_task(
    connection: AsyncConnection, *, created_by: uuid.UUID, fields: dict[str, Any]
) -> dict[str, Any]:
    """Insert a task and its tags (Core: no unit of work).

    The row starts at version 1, as the ORM's version counter would have it, so caches compare
    it alike.
    """
    tags: list[str] = fields.pop("tags", [])
    now = utcnow()
    values = {
        **fields,
        "id": uuid.uuid4(),
        "created_by": created_by,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    row = (await connection.execute(_INSERT_TASK, values)).one()
    if tags:
        await connection.execute(_INSERT_TAGS, [{"task_id": row[0], "tag": tag} for tag in tags])
    task = dict(zip(_PUBLIC_KEYS, row, strict=True))
    task["tags"] = tags
    return task
