"""The baseline: bare Starlette + asyncpg running the same SQL as the API, nothing else.

No authentication, no cache, no validation library, no metrics or logs: the floor that the
framework and the database allow on this machine. `BENCH_DATABASE_URL` names the database.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

SELECT_TASK = (
    "SELECT id, title, description, status, priority, due_at, assignee_id, created_by, "
    "created_at, updated_at FROM tasks WHERE id = $1"
)
SELECT_TAGS = "SELECT tag FROM task_tags WHERE task_id = $1 ORDER BY tag"
LIST_TASKS = (
    "SELECT id, title, description, status, priority, due_at, assignee_id, created_by, "
    "created_at, updated_at, "
    "array((SELECT tag FROM task_tags WHERE task_id = tasks.id ORDER BY tag)) AS tags, "
    "count(*) OVER () AS total FROM tasks "
    "WHERE created_by = $1 OR assignee_id = $1 "
    "ORDER BY created_at DESC, id DESC LIMIT 20 OFFSET 0"
)
INSERT_TASK = (
    "INSERT INTO tasks (id, title, description, status, priority, due_at, assignee_id, "
    "created_by, version, created_at, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6, 1, $7, $7) RETURNING id, title, description, "
    "status, priority, due_at, assignee_id, created_by, created_at, updated_at"
)
INSERT_TAG = "INSERT INTO task_tags (task_id, tag) VALUES ($1, $2)"


def _row(row: Any, tags: list[str]) -> dict[str, Any]:
    task = dict(row)
    for key in ("id", "assignee_id", "created_by"):
        task[key] = str(task[key]) if task[key] is not None else None
    for key in ("due_at", "created_at", "updated_at"):
        task[key] = task[key].isoformat() if task[key] is not None else None
    task["tags"] = tags
    return task


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status_code=status, media_type="application/json")


async def read_task(request: Request) -> Response:
    pool: Any = request.app.state.pool
    task_id = uuid.UUID(request.path_params["task_id"])
    async with pool.acquire() as connection:
        row = await connection.fetchrow(SELECT_TASK, task_id)
        if row is None:
            return _json({"error": "not found"}, 404)
        tags = await connection.fetch(SELECT_TAGS, task_id)
    return _json(_row(row, [tag["tag"] for tag in tags]))


async def list_tasks(request: Request) -> Response:
    pool: Any = request.app.state.pool
    user = uuid.UUID(request.query_params["user"])
    async with pool.acquire() as connection:
        rows = await connection.fetch(LIST_TASKS, user)
    data = [
        _row({k: v for k, v in row.items() if k not in ("total", "tags")}, row["tags"])
        for row in rows
    ]
    return _json({"data": data, "count": rows[0]["total"] if rows else 0, "limit": 20, "offset": 0})


async def create_task(request: Request) -> Response:
    pool: Any = request.app.state.pool
    body = await request.json()
    user = uuid.UUID(request.query_params["user"])
    task_id, now = uuid.uuid4(), datetime.now(UTC)
    tags = sorted(set(body.get("tags", [])))
    async with pool.acquire() as connection, connection.transaction():
        row = await connection.fetchrow(
            INSERT_TASK,
            task_id,
            body["title"],
            body.get("description", ""),
            body.get("status", "todo"),
            body.get("priority", "medium"),
            user,
            now,
        )
        if tags:
            await connection.executemany(
                INSERT_TAG,
                [(task_id, tag) for tag in tags],
            )
    return _json(_row(row, tags), 201)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    url = os.environ["BENCH_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    # The same connection budget as the API in the benchmark (20).
    app.state.pool = await asyncpg.create_pool(url, min_size=20, max_size=20)
    try:
        yield
    finally:
        await app.state.pool.close()


app = Starlette(
    routes=[
        Route("/tasks/{task_id}", read_task),
        Route("/tasks", list_tasks, methods=["GET"]),
        Route("/tasks", create_task, methods=["POST"]),
    ],
    lifespan=lifespan,
)
