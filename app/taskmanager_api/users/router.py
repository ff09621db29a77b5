"""/api/v1/users: the caller's own account, and user administration for admins."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from taskmanager_api.auth.dependencies import AdminUser, CurrentUser, cache_user
from taskmanager_api.auth.service import AuthenticatedUser
from taskmanager_api.core.deps import ReadSessionDep, ServicesDep, SessionDep
from taskmanager_api.core.errors import (
    AUTHENTICATED_ERRORS,
    ConflictError,
    NotFoundError,
    error_responses,
)
from taskmanager_api.users import service as users
from taskmanager_api.users.schemas import UserAdminUpdate, UserPublic, UsersPublic

router = APIRouter(prefix="/users", tags=["users"])

MAX_PAGE_SIZE = 100


@router.get("/me", response_model=UserPublic, responses=error_responses(*AUTHENTICATED_ERRORS))
async def read_me(user: CurrentUser, session: ReadSessionDep) -> UserPublic:
    """The caller's own account."""
    row = await users.get_user(session, user_id=user.id)
    if row is None:
        raise NotFoundError("user")
    return UserPublic.model_validate(row)


@router.get("", response_model=UsersPublic, responses=error_responses(*AUTHENTICATED_ERRORS, 403))
async def list_users(
    _admin: AdminUser,
    session: ReadSessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> UsersPublic:
    """Every account (admins only)."""
    rows, count = await users.list_users(session, limit=limit, offset=offset)
    return UsersPublic(data=[UserPublic.model_validate(row) for row in rows], count=count)


@router.patch(
    # The uuid convertor keeps "/users/me" from matching here: PATCH /users/me is then a 405.
    "/{user_id:uuid}",
    response_model=UserPublic,
    responses=error_responses(*AUTHENTICATED_ERRORS, 403, 404, 409),
)
async def update_user(
    user_id: uuid.UUID,
    body: UserAdminUpdate,
    admin: AdminUser,
    services: ServicesDep,
    session: SessionDep,
) -> UserPublic:
    """Change a user's role or deactivate them (admins only); takes effect on their next call."""
    row = await users.get_user(session, user_id=user_id)
    if row is None:
        raise NotFoundError("user")
    try:
        users.apply_admin_update(
            row, changes=body.model_dump(exclude_unset=True), admin_id=admin.id
        )
    except users.SelfDemotionError:
        raise ConflictError("admins cannot demote or deactivate themselves") from None
    await session.commit()
    # Written through after the commit: the newer version replaces what any replica cached.
    await cache_user(services, AuthenticatedUser.of(row))
    return UserPublic.model_validate(row)
