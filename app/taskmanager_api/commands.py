"""The app's own commands: `serve`, `migrate ...` and `create-admin`.

Apart from the command line (__main__.py) because they import the app (uvicorn, SQLAlchemy's
asyncio layer, Alembic, the auth service: about 3 s of start-up on 2 cores), which the CLI imports
only once one of them runs: the backup command, which needs none of it, starts without it.
"""

from __future__ import annotations

import argparse
import asyncio

import uvicorn
from pydantic import ValidationError

from taskmanager_api.auth.schemas import UserRegister
from taskmanager_api.auth.service import AuthenticatedUser, cache_user
from taskmanager_api.core import migrate
from taskmanager_api.core.config import Settings
from taskmanager_api.core.db import create_engine, create_sessionmaker
from taskmanager_api.core.security import PasswordService
from taskmanager_api.core.state_store import RedisStore
from taskmanager_api.users import service as users
from taskmanager_api.users.models import Role


class CommandError(Exception):
    """A refusal, printed as `error: ...`; the CLI exits with its configuration code."""


def serve(settings: Settings, args: argparse.Namespace) -> int:
    if args.migrate:
        migrate.upgrade(settings)
    uvicorn.run(
        "taskmanager_api.main:create_app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=args.forwarded_allow_ips,
        timeout_graceful_shutdown=args.graceful_timeout,
        server_header=False,
    )
    return 0


async def _current(settings: Settings) -> str | None:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(migrate.current_revision)
    finally:
        await engine.dispose()


def migrate_database(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "upgrade":
        migrate.upgrade(settings, args.revision)
    elif args.action == "downgrade":
        migrate.downgrade(settings, args.revision)
    current = asyncio.run(_current(settings))
    print(f"current: {current or 'base'} (head: {migrate.head_revision(settings)})")
    return 0


async def _create_admin(settings: Settings, email: str, password: str) -> str:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            user = await users.get_user_by_email(session, email=email)
            if user is None:
                password_hash = await PasswordService().hash(password)
                user = await users.create_user(
                    session, email=email, password_hash=password_hash, role=Role.ADMIN
                )
                outcome = "created"
            else:
                user.role, user.is_active = Role.ADMIN, True
                outcome = "promoted"
            await session.commit()
        if outcome == "promoted":
            await _recache_user(settings, AuthenticatedUser.of(user))
        return f"{outcome} admin {user.email} ({user.id})"
    finally:
        await engine.dispose()


async def _recache_user(settings: Settings, user: AuthenticatedUser) -> None:
    """Running replicas read the caller from the shared cache: give them the promoted user now,
    rather than after the cache TTL. The version compare keeps a newer entry if there is one."""
    if settings.redis_url is None:
        return  # no shared cache; each process caches on its own
    store = RedisStore.from_settings(settings)
    try:
        await cache_user(store, user, settings.cache_ttl)
    finally:
        await store.aclose()


def create_admin(settings: Settings, email: str, password: str) -> int:
    # The same rules as registration, so an admin password is never the weakest one.
    try:
        UserRegister(email=email, password=password)
    except ValidationError as error:
        fields = ", ".join(str(item["loc"][0]) for item in error.errors())
        raise CommandError(f"invalid {fields} (passwords need at least 12 characters)") from None
    print(asyncio.run(_create_admin(settings, email, password)))
    return 0
