"""/api/v1/tasks/{task_id}/comments: visible to whoever can see the task."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from taskmanager_api.auth.dependencies import CurrentUser
from taskmanager_api.comments import service as comments
from taskmanager_api.comments.schemas import CommentCreate, CommentPublic, CommentsPublic
from taskmanager_api.core.deps import ReadSessionDep, SessionDep
from taskmanager_api.core.errors import (
    AUTHENTICATED_ERRORS,
    ForbiddenError,
    NotFoundError,
    error_responses,
)
from taskmanager_api.tasks.dependencies import VisibleTaskJSON

router = APIRouter(prefix="/tasks/{task_id}/comments", tags=["comments"])

MAX_PAGE_SIZE = 100


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CommentPublic,
    responses=error_responses(*AUTHENTICATED_ERRORS, 404),
)
async def add_comment(
    body: CommentCreate, visible: VisibleTaskJSON, user: CurrentUser, session: SessionDep
) -> CommentPublic:
    """Comment on a task the caller can see."""
    comment = await comments.add_comment(
        session, task_id=visible.task.id, author_id=user.id, body=body.body
    )
    await session.commit()
    return CommentPublic.model_validate(comment)


@router.get(
    "", response_model=CommentsPublic, responses=error_responses(*AUTHENTICATED_ERRORS, 404)
)
async def list_comments(
    visible: VisibleTaskJSON,
    session: ReadSessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> CommentsPublic:
    """A task's comments, oldest first."""
    rows, count = await comments.list_comments(
        session, task_id=visible.task.id, limit=limit, offset=offset
    )
    return CommentsPublic(data=[CommentPublic.model_validate(row) for row in rows], count=count)


@router.delete(
    "/{comment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(*AUTHENTICATED_ERRORS, 403, 404, 409),
)
async def delete_comment(
    comment_id: uuid.UUID, visible: VisibleTaskJSON, user: CurrentUser, session: SessionDep
) -> None:
    """Delete one's own comment (admins: any)."""
    comment = await comments.get_comment(session, task_id=visible.task.id, comment_id=comment_id)
    if comment is None:
        raise NotFoundError("comment")
    if comment.author_id != user.id and not user.is_admin:
        raise ForbiddenError("only the author or an admin may delete a comment")
    await session.delete(comment)
    await session.commit()
