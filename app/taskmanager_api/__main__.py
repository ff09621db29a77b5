"""The command line: `python -m taskmanager_api serve | migrate ... | create-admin | backup ...`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from taskmanager_api.auth.schemas import UserRegister
from taskmanager_api.auth.service import AuthenticatedUser, cache_user
from taskmanager_api.backup import cli as backup_cli
from taskmanager_api.core import migrate
from taskmanager_api.core.config import Settings, SettingsError, load_settings
from taskmanager_api.core.db import create_engine, create_sessionmaker
from taskmanager_api.core.logging import configure_logging
from taskmanager_api.core.security import PasswordService
from taskmanager_api.users import service as users
from taskmanager_api.users.models import Role

logger = logging.getLogger("taskmanager_api.cli")

EXIT_CONFIG = 2
ADMIN_PASSWORD_VARIABLE = "TASKMANAGER_ADMIN_PASSWORD"  # noqa: S105 - a variable's name


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m taskmanager_api", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API with uvicorn")
    serve.add_argument("--host", default=os.environ.get("TASKMANAGER_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("TASKMANAGER_PORT", "8000")))
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--migrate", action="store_true", help="upgrade the database to head before serving"
    )
    serve.add_argument(
        "--graceful-timeout",
        type=float,
        default=25.0,
        help="seconds in-flight requests get to finish on SIGTERM (below the pod's grace period)",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        default=os.environ.get("TASKMANAGER_FORWARDED_ALLOW_IPS", "127.0.0.1"),
        help="proxies trusted for X-Forwarded-For (the client address rate limits use)",
    )

    migrate_cmd = commands.add_parser("migrate", help="database migrations")
    steps = migrate_cmd.add_subparsers(dest="action", required=True)
    up = steps.add_parser("upgrade", help="upgrade to a revision (default: head)")
    up.add_argument("revision", nargs="?", default="head")
    down = steps.add_parser("downgrade", help="downgrade to a revision (e.g. -1 or base)")
    down.add_argument("revision")
    steps.add_parser("current", help="print the database's revision and the code's head")

    admin = commands.add_parser(
        "create-admin", help="create an admin (or promote an existing user)"
    )
    admin.add_argument("--email", required=True)
    admin.add_argument(
        "--password-file",
        type=Path,
        help=f"file holding the password (else ${ADMIN_PASSWORD_VARIABLE}, else a prompt)",
    )
    backup_cli.add_parser(commands)
    return parser


def _serve(settings: Settings, args: argparse.Namespace) -> int:
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
    engine: AsyncEngine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(migrate.current_revision)
    finally:
        await engine.dispose()


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "upgrade":
        migrate.upgrade(settings, args.revision)
    elif args.action == "downgrade":
        migrate.downgrade(settings, args.revision)
    current = asyncio.run(_current(settings))
    print(f"current: {current or 'base'} (head: {migrate.head_revision(settings)})")
    return 0


def _admin_password(args: argparse.Namespace) -> str:
    if args.password_file is not None:
        return str(args.password_file.read_text()).strip()
    if password := os.environ.get(ADMIN_PASSWORD_VARIABLE):
        return password
    return getpass.getpass("password for the new admin: ")


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
    from taskmanager_api.main import create_store  # noqa: PLC0415 - the app, for this path only

    store = create_store(settings)
    try:
        await cache_user(store, user, settings.cache_ttl)
    finally:
        await store.aclose()


def _admin(settings: Settings, args: argparse.Namespace) -> int:
    password = _admin_password(args)
    # The same rules as registration, so an admin password is never the weakest one.
    try:
        UserRegister(email=args.email, password=password)
    except ValidationError as error:
        fields = ", ".join(str(item["loc"][0]) for item in error.errors())
        print(f"error: invalid {fields} (passwords need at least 12 characters)", file=sys.stderr)
        return EXIT_CONFIG
    print(asyncio.run(_create_admin(settings, args.email, password)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "backup":
        # It reports every outcome, a bad configuration included, as its one JSON line.
        return backup_cli.run(args)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level, json=settings.log_json)
    handlers = {"serve": _serve, "migrate": _migrate, "create-admin": _admin}
    return handlers[args.command](settings, args)


if __name__ == "__main__":
    sys.exit(main())
