"""Password hashing (argon2id) and JWTs (HS256 pinned, several verification keys by kid)."""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from starlette.concurrency import run_in_threadpool

from taskmanager_api.core.config import Settings, key_id_for

logger = logging.getLogger(__name__)

ALGORITHM = "HS256"
VERIFIED_CACHE_SIZE = 10_000
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "typ", "jti", "fam"]


class TokenType(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


class InvalidTokenError(Exception):
    """The token cannot be trusted; the reason is for logs and metrics, never for the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: uuid.UUID
    token_id: str
    family: str
    type: TokenType
    issued_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class KeyRing:
    signing_kid: str
    signing_key: str
    verification_keys: dict[str, str]

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        if settings.jwt_signing_key is None:
            # Only reachable in development (settings refuse it elsewhere): tokens die on restart.
            logger.warning("no signing key configured: using a random one for this process only")
            key = secrets.token_urlsafe(48)
        else:
            key = settings.jwt_signing_key.get_secret_value()
        kid = settings.jwt_signing_key_id or key_id_for(key)
        previous = {
            kid_: value.get_secret_value() for kid_, value in settings.jwt_previous_keys.items()
        }
        return cls(signing_kid=kid, signing_key=key, verification_keys={**previous, kid: key})


class TokenService:
    def __init__(
        self,
        keys: KeyRing,
        *,
        issuer: str,
        audience: str,
        access_ttl: timedelta,
        refresh_ttl: timedelta,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self.ttl = {TokenType.ACCESS: access_ttl, TokenType.REFRESH: refresh_ttl}
        # Verified tokens, so a client's next request skips the signature and claim checks:
        # the outcome for the same token string cannot change, except by expiry (checked on
        # every hit). Revocation is not decided here but by the shared store, on every request.
        self._verified: dict[str, TokenClaims] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenService:
        return cls(
            KeyRing.from_settings(settings),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            access_ttl=settings.access_token_ttl,
            refresh_ttl=settings.refresh_token_ttl,
        )

    def issue(self, subject: uuid.UUID, kind: TokenType, family: str) -> tuple[str, TokenClaims]:
        now = int(time.time())
        claims = TokenClaims(
            subject=subject,
            token_id=uuid.uuid4().hex,
            family=family,
            type=kind,
            issued_at=now,
            expires_at=now + int(self.ttl[kind].total_seconds()),
        )
        payload = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(subject),
            "typ": kind.value,
            "jti": claims.token_id,
            "fam": family,
            "iat": claims.issued_at,
            "exp": claims.expires_at,
        }
        token = jwt.encode(
            payload,
            self._keys.signing_key,
            algorithm=ALGORITHM,
            headers={"kid": self._keys.signing_kid},
        )
        return token, claims

    def decode(self, token: str, expected: TokenType) -> TokenClaims:
        claims = self._verified.get(token)
        if claims is None:
            claims = self._decode(token, expected)
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = claims
        if claims.type is not expected:
            raise InvalidTokenError("type")
        if claims.expires_at <= time.time():
            raise InvalidTokenError("expired")
        return claims

    def _decode(self, token: str, expected: TokenType) -> TokenClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidTokenError("malformed") from None
        # Checked before PyJWT so that `none` or an asymmetric algorithm never reaches a key.
        if header.get("alg") != ALGORITHM:
            raise InvalidTokenError("algorithm")
        kid = header.get("kid")
        key = self._keys.verification_keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidTokenError("unknown_kid")
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": REQUIRED_CLAIMS, "strict_aud": True},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidTokenError("expired") from None
        except jwt.InvalidSignatureError:
            raise InvalidTokenError("signature") from None
        except (jwt.InvalidAudienceError, jwt.InvalidIssuerError):
            raise InvalidTokenError("audience_or_issuer") from None
        except jwt.InvalidTokenError:
            raise InvalidTokenError("invalid") from None
        if payload["typ"] != expected.value:
            raise InvalidTokenError("type")
        try:
            subject = uuid.UUID(str(payload["sub"]))
        except ValueError:
            raise InvalidTokenError("subject") from None
        token_id, family = payload["jti"], payload["fam"]
        if not isinstance(token_id, str) or not isinstance(family, str):
            raise InvalidTokenError("invalid")
        return TokenClaims(
            subject=subject,
            token_id=token_id,
            family=family,
            type=expected,
            issued_at=int(payload["iat"]),
            expires_at=int(payload["exp"]),
        )


class PasswordService:
    """argon2id with the library's recommended parameters; hashing runs off the event loop."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        # Verified against when the user does not exist, so timing does not reveal who exists.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await run_in_threadpool(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await run_in_threadpool(self._verify, password_hash, password)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            self._hasher.verify(password_hash or self._dummy_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
