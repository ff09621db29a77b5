"""/api/v1/auth: register, login, refresh, logout."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from taskmanager_api.auth import service as auth
from taskmanager_api.auth.dependencies import (
    AccessClaims,
    AddressRateLimit,
    CurrentUser,
    limit_login,
)
from taskmanager_api.auth.schemas import RefreshRequest, TokenPair, UserLogin, UserRegister
from taskmanager_api.core.deps import ServicesDep, SessionDep
from taskmanager_api.core.errors import (
    AUTHENTICATED_ERRORS,
    COMMON_ERRORS,
    ConflictError,
    UnauthorizedError,
    error_responses,
)
from taskmanager_api.users import service as users
from taskmanager_api.users.schemas import UserPublic

router = APIRouter(prefix="/auth", tags=["auth"])


def _pair(issued: auth.IssuedTokens) -> TokenPair:
    return TokenPair(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
    )


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserPublic,
    responses=error_responses(*COMMON_ERRORS, 409),
)
async def register(
    _limit: AddressRateLimit, body: UserRegister, services: ServicesDep, session: SessionDep
) -> UserPublic:
    """Create a member account."""
    password_hash = await services.passwords.hash(body.password)
    try:
        user = await users.create_user(session, email=body.email, password_hash=password_hash)
    except users.EmailTakenError:
        raise ConflictError("this e-mail address is already registered") from None
    await session.commit()
    return UserPublic.model_validate(user)


@router.post("/login", response_model=TokenPair, responses=error_responses(*AUTHENTICATED_ERRORS))
async def login(
    body: UserLogin, request: Request, services: ServicesDep, session: SessionDep
) -> TokenPair:
    """Exchange an e-mail address and password for an access and a refresh token."""
    await limit_login(request, services, body.email)
    user = await users.get_user_by_email(session, email=body.email)
    # Verified even for an unknown user, so the answer time does not tell who has an account.
    valid = await services.passwords.verify(user.password_hash if user else None, body.password)
    if user is None or not valid or not user.is_active:
        services.metrics.auth_failures.labels(reason="bad_credentials").inc()
        raise UnauthorizedError("wrong e-mail address or password")
    if services.passwords.needs_rehash(user.password_hash):
        user.password_hash = await services.passwords.hash(body.password)
        await session.commit()
    return _pair(auth.issue_pair(services.tokens, user_id=user.id))


@router.post(
    "/refresh",
    response_model=TokenPair,
    responses=error_responses(*AUTHENTICATED_ERRORS),
)
async def refresh(
    _limit: AddressRateLimit, body: RefreshRequest, services: ServicesDep, session: SessionDep
) -> TokenPair:
    """Rotate a refresh token: the one presented is spent; presenting it again ends the session."""
    try:
        issued = await auth.refresh(
            session,
            tokens=services.tokens,
            revocations=services.revocations,
            refresh_token=body.refresh_token,
        )
    except auth.RefreshRejectedError as error:
        services.metrics.auth_failures.labels(reason=f"refresh_{error.reason}").inc()
        raise UnauthorizedError from None
    return _pair(issued)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(*AUTHENTICATED_ERRORS),
)
async def logout(user: CurrentUser, claims: AccessClaims, services: ServicesDep) -> None:
    """End this session: its access and refresh tokens stop working on every replica."""
    del user  # only to refuse revoked or deactivated callers; the session is the token's family
    await services.revocations.revoke(claims.family)
