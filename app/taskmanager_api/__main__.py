"""The command line: `python -m taskmanager_api serve | migrate ... | create-admin | backup ...`."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from taskmanager_api.backup import cli as backup_cli
from taskmanager_api.core.config import SettingsError, load_settings
from taskmanager_api.core.logging import configure_logging

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


def _admin_password(args: argparse.Namespace) -> str:
    if args.password_file is not None:
        return str(args.password_file.read_text()).strip()
    if password := os.environ.get(ADMIN_PASSWORD_VARIABLE):
        return password
    return getpass.getpass("password for the new admin: ")


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
    # Only now: these commands import the app (uvicorn, SQLAlchemy, Alembic, the auth service),
    # seconds of start-up that the backup command, which needs none of it, must not pay.
    from taskmanager_api import commands  # noqa: PLC0415

    try:
        if args.command == "serve":
            return commands.serve(settings, args)
        if args.command == "migrate":
            return commands.migrate_database(settings, args)
        return commands.create_admin(settings, args.email, _admin_password(args))
    except commands.CommandError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
