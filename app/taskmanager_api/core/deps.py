"""What every request handler may depend on, as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from taskmanager_api.auth.revocations import Revocations
from taskmanager_api.core.config import Settings
from taskmanager_api.core.security import PasswordService, TokenService
from taskmanager_api.core.state_store import Store
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
    revocations: Revocations
    tokens: TokenService
    passwords: PasswordService
    metrics: Metrics


def services_of(request: Request) -> Services:
    """For hot paths: the services without a dependency node (FastAPI's per-request cost grows
    with every node in a route's dependency graph)."""
    services: Services = request.app.state.services
    return services


async def get_services(request: Request) -> Services:
    # async on purpose: FastAPI runs a plain `def` dependency in a worker thread, per request.
    return services_of(request)


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
