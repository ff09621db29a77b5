"""Sessions as token families: login opens one, refresh rotates within it, logout revokes it."""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import asdict, dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from taskmanager_api.auth.revocations import Revocations
from taskmanager_api.cache_keys import user_cache_key
from taskmanager_api.core.security import InvalidTokenError, TokenService, TokenType
from taskmanager_api.core.state_store import Store
from taskmanager_api.users import service as users
from taskmanager_api.users.models import Role, User


@dataclass(frozen=True, slots=True)
class AuthenticatedUser:
    """What a request knows about its caller; cached so most requests skip the database."""

    id: uuid.UUID
    email: str
    role: Role
    is_active: bool
    version: int

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @classmethod
    def of(cls, user: User) -> AuthenticatedUser:
        return cls(user.id, user.email, user.role, user.is_active, user.version)

    def dump(self) -> bytes:
        return json.dumps(asdict(self) | {"id": str(self.id)}).encode()

    @classmethod
    # The same cached bytes come back on every request of a user: parsed once (the value is
    # immutable, and a changed user is different bytes).
    @functools.lru_cache(maxsize=4096)
    def load(cls, raw: bytes) -> AuthenticatedUser:
        data = json.loads(raw)
        return cls(
            id=uuid.UUID(data["id"]),
            email=data["email"],
            role=Role(data["role"]),
            is_active=data["is_active"],
            version=data["version"],
        )


async def cache_user(store: Store, user: AuthenticatedUser, ttl: timedelta) -> None:
    """Put the user in the shared cache, unless the cache already holds a newer version."""
    await store.cache_put(
        user_cache_key(user.id), user.version, user.dump(), int(ttl.total_seconds() * 1000)
    )


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int


class RefreshRejectedError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def issue_pair(
    tokens: TokenService, *, user_id: uuid.UUID, family: str | None = None
) -> IssuedTokens:
    family = family or uuid.uuid4().hex
    access, _ = tokens.issue(user_id, TokenType.ACCESS, family)
    refresh, _ = tokens.issue(user_id, TokenType.REFRESH, family)
    return IssuedTokens(
        access_token=access,
        refresh_token=refresh,
        expires_in=int(tokens.ttl[TokenType.ACCESS].total_seconds()),
    )


async def refresh(
    session: AsyncSession, *, tokens: TokenService, revocations: Revocations, refresh_token: str
) -> IssuedTokens:
    try:
        claims = tokens.decode(refresh_token, TokenType.REFRESH)
    except InvalidTokenError as error:
        raise RefreshRejectedError(error.reason) from None
    # The database, not the store: rotation is rare, and its answer must not depend on what
    # Redis still remembers.
    if await revocations.is_revoked(claims.family):
        raise RefreshRejectedError("revoked")
    if not await revocations.spend(claims.token_id, claims.expires_at):
        # A used refresh token came back: it was stolen or the client is confused. Either way
        # nobody can tell which copy is legitimate, so the whole session ends.
        await revocations.revoke(claims.family)
        raise RefreshRejectedError("reused")
    user = await users.get_user(session, user_id=claims.subject)
    if user is None or not user.is_active:
        raise RefreshRejectedError("inactive")
    return issue_pair(tokens, user_id=user.id, family=claims.family)
