"""Comment persistence. Knows nothing of HTTP; never commits."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from taskmanager_api.comments.models import Comment


async def add_comment(
    session: AsyncSession, *, task_id: uuid.UUID, author_id: uuid.UUID, body: str
) -> Comment:
    comment = Comment(task_id=task_id, author_id=author_id, body=body)
    session.add(comment)
    await session.flush()
    return comment


async def list_comments(
    session: AsyncSession, *, task_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[Comment], int]:
    where = Comment.task_id == task_id
    count = (
        await session.execute(sa.select(sa.func.count()).select_from(Comment).where(where))
    ).scalar_one()
    result = await session.execute(
        sa.select(Comment)
        .where(where)
        .order_by(Comment.created_at, Comment.id)
        .limit(limit)
        .offset(offset)
    )
    return list(result.scalars()), count


async def get_comment(
    session: AsyncSession, *, task_id: uuid.UUID, comment_id: uuid.UUID
) -> Comment | None:
    comment = await session.get(Comment, comment_id)
    return comment if comment is not None and comment.task_id == task_id else None
