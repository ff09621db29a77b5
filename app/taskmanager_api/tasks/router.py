"""/api/v1/tasks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from taskmanager_api.auth.dependencies import CurrentUser
from taskmanager_api.core.deps import ServicesDep, SessionDep, services_of
from taskmanager_api.core.errors import (
    AUTHENTICATED_ERRORS,
    ForbiddenError,
    NotFoundError,
    error_responses,
)
from taskmanager_api.tasks import service as tasks
from taskmanager_api.tasks.dependencies import (
    VisibleTaskJSON,
    VisibleTaskRow,
    cache_task,
    forget_task,
)
from taskmanager_api.tasks.schemas import TaskCreate, TaskPublic, TaskQuery, TasksPublic, TaskUpdate

router = APIRouter(prefix="/tasks", tags=["tasks"])

JSON = "application/json"


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TaskPublic,
    responses=error_responses(*AUTHENTICATED_ERRORS, 404),
)
async def create_task(body: TaskCreate, request: Request, user: CurrentUser) -> Response:
    """Create a task; the caller is its creator. An unknown assignee answers 404."""
    # services_of, not ServicesDep: a hot path (see services_of).
    services = services_of(request)
    try:
        task = await tasks.create_task(
            services.engine, created_by=user.id, fields=body.model_dump()
        )
    except tasks.UnknownAssigneeError:
        raise NotFoundError("assignee") from None
    # Not cached here: the cache is filled by reads (a new id has nothing stale to replace), so a
    # create costs no Redis round trip beyond authentication.
    payload = TaskPublic.model_validate(task).model_dump_json()
    return Response(payload, status_code=status.HTTP_201_CREATED, media_type=JSON)


@router.get("", response_model=TasksPublic, responses=error_responses(*AUTHENTICATED_ERRORS))
async def list_tasks(
    query: Annotated[TaskQuery, Query()], request: Request, user: CurrentUser
) -> Response:
    """Tasks the caller created or is assigned to (admins: all), filtered, sorted and paged."""
    # services_of, not ServicesDep: a hot path (see services_of).
    services = services_of(request)
    # Opened here, not by a yield dependency: FastAPI wraps those in a shielded exit stack per
    # request, measured at ~28 µs of a ~750 µs list request.
    async with services.read_engine.connect() as connection:
        rows, count = await tasks.list_tasks(
            connection, query=query, user_id=user.id, is_admin=user.is_admin
        )
    page = TasksPublic.model_validate(
        {"data": rows, "count": count, "limit": query.limit, "offset": query.offset}
    )
    # Serialized once here; returning the model would have FastAPI validate it all again.
    return Response(page.model_dump_json(), media_type=JSON)


@router.get(
    "/{task_id}", response_model=TaskPublic, responses=error_responses(*AUTHENTICATED_ERRORS, 404)
)
async def read_task(visible: VisibleTaskJSON) -> Response:
    """One task."""
    # The cached JSON is already the response body: no need to serialize it again.
    return Response(visible.body, media_type=JSON)


@router.patch(
    "/{task_id}",
    response_model=TaskPublic,
    responses=error_responses(*AUTHENTICATED_ERRORS, 404, 409),
)
async def update_task(
    body: TaskUpdate, task: VisibleTaskRow, services: ServicesDep, session: SessionDep
) -> Response:
    """Change the fields sent."""
    try:
        await tasks.update_task(session, task=task, changes=body.model_dump(exclude_unset=True))
    except tasks.UnknownAssigneeError:
        raise NotFoundError("assignee") from None
    await session.commit()
    return Response(await cache_task(services, task), media_type=JSON)


@router.delete(
    "/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(*AUTHENTICATED_ERRORS, 403, 404, 409),
)
async def delete_task(
    task: VisibleTaskRow, user: CurrentUser, services: ServicesDep, session: SessionDep
) -> None:
    """Delete a task: its creator or an admin may; an assignee may not."""
    if not tasks.may_delete(
        task_created_by=task.created_by, user_id=user.id, is_admin=user.is_admin
    ):
        raise ForbiddenError("only the creator or an admin may delete a task")
    await session.delete(task)
    await session.commit()
    await forget_task(services, task.id)
