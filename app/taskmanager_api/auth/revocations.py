"""Revocations that outlive Redis: the database is the record, the store the fast path.

Why this split: every authenticated request must know whether its session was revoked, and a
database read per request would cost the hot path what the benchmark guards. Redis answers in
the same round trip that already fetches the cached user and the rate limit. But Redis may restart
empty, be flushed or evict, and a forgotten revocation lets a logged-out or stolen session back in.
So each revocation is written to the database first and to the store second, and the store
tells when it lost its set (`AccessState.revocations_loaded`): requests then ask the database
until one reload, per replica, has copied the set back.

Refresh-token rotation is rare next to requests, so its one-time use is decided by the database
alone: an INSERT that only one of two concurrent refreshes can win, on any replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from taskmanager_api.auth.models import RevokedFamily, SpentRefreshToken
from taskmanager_api.core.state_store import Store, StoreUnavailableError

logger = logging.getLogger(__name__)

_INSERTS: dict[str, Callable[[Any], Any]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _moment(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, UTC)


class Revocations:
    def __init__(
        self,
        engine: AsyncEngine,
        store: Store,
        *,
        session_ttl: timedelta,
        on_reload: Callable[[], None] = lambda: None,
    ) -> None:
        self._engine = engine
        self._store = store
        # Every token of a family expires within one refresh TTL of its newest one.
        self._session_ttl = session_ttl
        self._on_reload = on_reload
        self._reload: asyncio.Task[None] | None = None
        self._retries: set[asyncio.Task[None]] = set()

    async def revoke(self, family: str) -> None:
        """End a session on every replica, for good: recorded, then mirrored to the store."""
        expires_at = datetime.now(UTC) + self._session_ttl
        insert = self._insert(RevokedFamily).values(family=family, expires_at=expires_at)
        await self._record(
            RevokedFamily,
            insert.on_conflict_do_update(
                index_elements=[RevokedFamily.family],
                set_={"expires_at": insert.excluded.expires_at},
            ),
        )
        try:
            await self._store.revoke_family(family, _millis(expires_at))
        except StoreUnavailableError:
            # Recorded, and refused on every request while the store is unreachable (fail closed).
            # A store that comes back empty reloads it; one that kept its data gets it from here.
            self._retry_in_background(family, _millis(expires_at))
            raise

    async def spend(self, token_id: str, expires_at: int) -> bool:
        """Mark a refresh token used; False when it had been used before (on any replica)."""
        inserted = await self._record(
            SpentRefreshToken,
            self._insert(SpentRefreshToken)
            .values(token_id=token_id, expires_at=_moment(expires_at * 1000))
            .on_conflict_do_nothing(index_elements=[SpentRefreshToken.token_id]),
        )
        return inserted == 1

    def _insert(self, model: type[RevokedFamily | SpentRefreshToken]) -> Any:
        """INSERT ... ON CONFLICT in the engine's dialect (both speak it; SQLAlchemy has no
        dialect-neutral spelling)."""
        return _INSERTS[self._engine.dialect.name](model)

    async def _record(
        self, model: type[RevokedFamily | SpentRefreshToken], statement: Any, *rows: Any
    ) -> int:
        """Run one write in its own transaction, then drop the rows that protect nothing any
        more (their tokens expired): apart, so the clean-up never holds up or fails the write."""
        async with self._engine.begin() as connection:
            written = (await connection.execute(statement, *rows)).rowcount
        with contextlib.suppress(SQLAlchemyError):
            async with self._engine.begin() as connection:
                await connection.execute(
                    sa.delete(model).where(model.expires_at < datetime.now(UTC))
                )
        return int(written)

    async def is_revoked(self, family: str) -> bool:
        """The database's answer, for when the store's cannot be trusted (or is not asked)."""
        query = sa.select(sa.literal(1)).where(
            RevokedFamily.family == family, RevokedFamily.expires_at > datetime.now(UTC)
        )
        async with self._engine.connect() as connection:
            return (await connection.execute(query)).first() is not None

    async def import_legacy(self) -> None:
        """Record what earlier versions kept in Redis alone, so an upgrade forgets nothing."""
        legacy = await self._store.legacy_revocations()
        if not legacy.families and not legacy.spent_tokens:
            return
        for model, column, entries in (
            (RevokedFamily, RevokedFamily.family, legacy.families),
            (SpentRefreshToken, SpentRefreshToken.token_id, legacy.spent_tokens),
        ):
            if entries:
                await self._record(
                    model,
                    self._insert(model).on_conflict_do_nothing(index_elements=[column]),
                    [
                        {column.key: name, "expires_at": _moment(expires_ms)}
                        for name, expires_ms in entries
                    ],
                )
        for family, expires_ms in legacy.families:
            await self._store.revoke_family(family, expires_ms)
        logger.info(
            "imported revocations kept in Redis by an earlier version",
            extra={"families": len(legacy.families), "tokens": len(legacy.spent_tokens)},
        )

    def reload_in_background(self) -> None:
        """Copy the record back into the store, once at a time per process."""
        if self._reload is None or self._reload.done():
            self._reload = asyncio.create_task(self._load())
            self._reload.add_done_callback(_log_failure)

    async def aclose(self) -> None:
        """Stop the background work, and wait for it: none may write after the app stopped."""
        tasks = [task for task in [*self._retries, self._reload] if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _load(self) -> None:
        started = time.perf_counter()
        # Before the read: the store then knows which load a later restart or flush overtook.
        load = await self._store.begin_revocations_load()
        query = sa.select(RevokedFamily.family, RevokedFamily.expires_at).where(
            RevokedFamily.expires_at > datetime.now(UTC)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        families = ((family, _millis(expires)) for family, expires in rows)
        if not await self._store.load_revocations(families, load):
            # Redis lost the set again meanwhile, or another load began after this one: the
            # requests go on asking the database until a load that was not overtaken finishes.
            logger.info("revocation reload overtaken; the next request starts another")
            return
        self._on_reload()
        logger.info(
            "revocations reloaded into the store",
            extra={"families": len(rows), "ms": round((time.perf_counter() - started) * 1000)},
        )

    def _retry_in_background(self, family: str, expires_at_ms: int) -> None:
        task = asyncio.create_task(self._mirror_until_stored(family, expires_at_ms))
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    async def _mirror_until_stored(self, family: str, expires_at_ms: int) -> None:
        delay = 0.5
        # After the session's expiry the tokens are refused anyway: no point going on.
        while time.time() * 1000 < expires_at_ms:
            await asyncio.sleep(delay)
            try:
                await self._store.revoke_family(family, expires_at_ms)
            except StoreUnavailableError:
                delay = min(delay * 2, 30.0)
            else:
                return


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        # The next request that finds the set missing starts another reload.
        logger.warning("reloading revocations failed: %s", type(error).__name__)
