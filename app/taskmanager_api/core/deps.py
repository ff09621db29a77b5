"""What every request handler may depend on, as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from taskmanager_api.core.config import Settings
from taskmanager_api.core.redis import Store
from taskmanager_api.core.security import PasswordService, TokenService
from taskmanager_api.metrics import Metrics


@dataclass(slots=True)
class Services:
    """Everything the app opens at start-up and closes at shutdown."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]
    # The engine in autocommit: Core reads on a bare connection, no session, no transaction.
    read_engine: AsyncEngine
    store: Store
    tokens: TokenService
    passwords: PasswordService
    metrics: Metrics


async def get_services(request: Request) -> Services:
    # async on purpose: FastAPI runs a plain `def` dependency in a worker thread, per request.
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    # Nothing is committed unless a handler says so: a failed request leaves no partial write.
    async with services.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_read_session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    async with services.read_sessions() as session:
        yield session


# For handlers that only read: no transaction, so no BEGIN and ROLLBACK round trips.
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]


async def get_read_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    # Straight from the app state, not through ServicesDep: one dependency less to resolve.
    services: Services = request.app.state.services
    async with services.read_engine.connect() as connection:
        yield connection


# For hot read paths that run Core statements: no session, no identity map, no transaction.
ReadConnectionDep = Annotated[AsyncConnection, Depends(get_read_connection)]
