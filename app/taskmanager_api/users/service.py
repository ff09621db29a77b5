"""User persistence. Knows nothing of HTTP; never commits (the caller owns the transaction)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from taskmanager_api.users.models import Role, User


class EmailTakenError(Exception):
    pass


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def get_user(session: AsyncSession, *, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def get_user_by_email(session: AsyncSession, *, email: str) -> User | None:
    result = await session.execute(sa.select(User).where(User.email == normalize_email(email)))
    return result.scalar_one_or_none()


async def create_user(
    session: AsyncSession, *, email: str, password_hash: str, role: Role = Role.MEMBER
) -> User:
    user = User(email=normalize_email(email), password_hash=password_hash, role=role)
    session.add(user)
    try:
        # Flushed here so a duplicate e-mail (even from a concurrent request) is reported as such.
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise EmailTakenError(email) from None
    return user


async def list_users(session: AsyncSession, *, limit: int, offset: int) -> tuple[list[User], int]:
    count = (await session.execute(sa.select(sa.func.count()).select_from(User))).scalar_one()
    result = await session.execute(
        sa.select(User).order_by(User.created_at, User.id).limit(limit).offset(offset)
    )
    return list(result.scalars()), count


async def count_active_admins(session: AsyncSession) -> int:
    query = sa.select(sa.func.count()).where(User.role == Role.ADMIN, User.is_active.is_(True))
    return (await session.execute(query)).scalar_one()
