"""User persistence. Knows nothing of HTTP; never commits (the caller owns the transaction)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from taskmanager_api.users.models import Role, User


class EmailTakenError(Exception):
    pass


class SelfDemotionError(Exception):
    """An admin tried to take away their own role or account."""


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


def apply_admin_update(user: User, *, changes: dict[str, Any], admin_id: uuid.UUID) -> User:
    """Apply an admin's change of role or activity. Admins cannot demote or deactivate
    themselves (another admin must), so nobody locks themselves out by accident."""
    if user.id == admin_id and (
        changes.get("role", Role.ADMIN) is not Role.ADMIN or changes.get("is_active") is False
    ):
        raise SelfDemotionError
    for field, value in changes.items():
        setattr(user, field, value)
    return user
