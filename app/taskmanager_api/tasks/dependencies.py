"""Task lookups that 404 unless the caller may see the task, through the read cache."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from taskmanager_api.auth.dependencies import CurrentUser
from taskmanager_api.auth.service import AuthenticatedUser
from taskmanager_api.cache_keys import task_cache_key
from taskmanager_api.core.deps import Services, SessionDep, services_of
from taskmanager_api.core.errors import NotFoundError
from taskmanager_api.core.state_store import TOMBSTONE, Cached
from taskmanager_api.tasks import service as tasks
from taskmanager_api.tasks.models import Task
from taskmanager_api.tasks.schemas import TaskPublic


def _ttl_ms(services: Services) -> int:
    return int(services.settings.cache_ttl.total_seconds() * 1000)


async def cache_task(services: Services, task: Task) -> bytes:
    """Cache a task as committed; returns the JSON it cached (also the response body)."""
    body = TaskPublic.model_validate(task).model_dump_json().encode()
    await services.store.cache_put(task_cache_key(task.id), task.version, body, _ttl_ms(services))
    return body


async def forget_task(services: Services, task_id: uuid.UUID) -> None:
    # A tombstone, not a delete: a replica that read the row before it was deleted cannot put
    # it back in the cache.
    await services.store.cache_tombstone(task_cache_key(task_id), _ttl_ms(services))


def _visible(task: TaskPublic | Task, user: AuthenticatedUser) -> bool:
    return tasks.is_visible(
        task_created_by=task.created_by,
        task_assignee=task.assignee_id,
        user_id=user.id,
        is_admin=user.is_admin,
    )


@dataclass(frozen=True, slots=True)
class VisibleTask:
    """A task the caller may see, as the API shows it."""

    task: TaskPublic
    # Its JSON, as cached: already the body of a response that returns the task.
    body: bytes


async def visible_task_json(task_id: uuid.UUID, request: Request, user: CurrentUser) -> VisibleTask:
    """The task as the API shows it, from the cache when possible, or 404."""
    # services_of, not ServicesDep: a hot path (see services_of).
    services = services_of(request)
    key = task_cache_key(task_id)
    prefetched = getattr(request.state, "prefetched", {})
    # Usually fetched already, in the same round trip that authenticated the caller.
    cached = prefetched[key] if key in prefetched else await services.store.cache_get(key)
    if cached == TOMBSTONE:
        services.metrics.cache_hits.inc()
        raise NotFoundError("task")
    if isinstance(cached, Cached):
        services.metrics.cache_hits.inc()
        body = cached.value
        task = TaskPublic.model_validate_json(body)
    else:
        services.metrics.cache_misses.inc()
        # A session of its own, only on a miss: a cached read never touches the database.
        async with services.read_sessions() as session:
            row = await tasks.get_task(session, task_id=task_id)
            if row is None:
                raise NotFoundError("task")
            task = TaskPublic.model_validate(row)
        body = await cache_task(services, row)
    # The same answer as for a missing task: a task id tells nothing about a task one cannot see.
    if not _visible(task, user):
        raise NotFoundError("task")
    return VisibleTask(task, body)


VisibleTaskJSON = Annotated[VisibleTask, Depends(visible_task_json)]


async def visible_task_row(task_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> Task:
    """The task row itself, for changes, or 404."""
    row = await tasks.get_task(session, task_id=task_id)
    if row is None or not _visible(row, user):
        raise NotFoundError("task")
    return row


VisibleTaskRow = Annotated[Task, Depends(visible_task_row)]
