"""`python -m taskmanager_api backup create|restore|verify|delete`: one JSON line per outcome.

The line goes to stdout and to the termination log (`--termination-log`, by default
$TASKMANAGER_TERMINATION_LOG): run as a Kubernetes Job with /dev/termination-log, it becomes the
pod's termination message, which the operator reads. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from taskmanager_api.backup import engine
from taskmanager_api.backup.errors import BackupError, Reason
from taskmanager_api.core.config import (
    TERMINATION_LOG_VARIABLE,
    BackupSettings,
    Settings,
    SettingsError,
    load_backup_settings,
    load_settings,
)
from taskmanager_api.core.logging import configure_logging, redact

logger = logging.getLogger("taskmanager_api.backup")

# Kubernetes keeps at most this much of a termination message.
TERMINATION_MESSAGE_LIMIT = 4096
MAX_MESSAGE = 2000


def add_parser(commands: Any) -> None:
    """The `backup` command and its four operations, on the CLI's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--termination-log",
        type=Path,
        default=os.environ.get(TERMINATION_LOG_VARIABLE) or None,
        help=f"also write the result line there (default: ${TERMINATION_LOG_VARIABLE})",
    )
    backup = commands.add_parser("backup", help="back up and restore the database")
    operations = backup.add_subparsers(dest="operation", required=True)
    create = operations.add_parser("create", parents=[common], help="take a backup")
    create.add_argument("--to", dest="location", required=True, metavar="LOCATION")
    restore = operations.add_parser(
        "restore", parents=[common], help="replace the database with a backup, then migrate"
    )
    restore.add_argument("--from", dest="location", required=True, metavar="LOCATION")
    restore.add_argument(
        "--sha256",
        dest="expected_sha256",
        metavar="SHA256",
        help="refuse the backup unless its manifest names this checksum (the one its record said)",
    )
    verify = operations.add_parser(
        "verify", parents=[common], help="restore into a scratch database and compare"
    )
    verify.add_argument("--from", dest="location", required=True, metavar="LOCATION")
    delete = operations.add_parser("delete", parents=[common], help="remove a backup")
    delete.add_argument("location", metavar="LOCATION")
    backup.epilog = "LOCATION: file:///backups/<name> or s3://<bucket>/<prefix>"


Operation = Callable[[str, Settings, BackupSettings], Any]
_WITH_DATABASE: dict[str, Operation] = {
    "create": engine.create,
    "restore": engine.restore,
    "verify": engine.verify,
}


def _outcome(args: argparse.Namespace) -> dict[str, Any]:
    backup = load_backup_settings()
    if args.operation == "delete":
        return engine.delete(args.location, backup)
    settings = load_settings()
    configure_logging(settings.log_level, json=settings.log_json, stream=sys.stderr)
    operation = _WITH_DATABASE[args.operation]
    if args.operation == "restore":
        operation = functools.partial(engine.restore, expected_sha256=args.expected_sha256)
    result: dict[str, Any] = asyncio.run(operation(args.location, settings, backup))
    return result


def run(args: argparse.Namespace) -> int:
    configure_logging(json=True, stream=sys.stderr)
    line: dict[str, Any] = {"operation": args.operation}
    try:
        line = {"ok": True, **line, **_outcome(args)}
        code = 0
    except SettingsError as error:
        failure = BackupError(Reason.INVALID_CONFIGURATION, str(error))
        line, code = _failure(line, failure), failure.exit_code
    except BackupError as error:
        line, code = _failure(line, error), error.exit_code
    except Exception as error:
        # Never a traceback instead of a result: the operator still gets a line to act on.
        logger.exception("backup %s failed unexpectedly", args.operation)
        failure = BackupError(Reason.INTERNAL_ERROR, f"{type(error).__name__}: {error}")
        line, code = _failure(line, failure), failure.exit_code
    else:
        logger.info("backup %s succeeded", args.operation)
    text = json.dumps(line, separators=(",", ":"))
    print(text, flush=True)
    if args.termination_log is not None:
        _write_termination_log(args.termination_log, line)
    return code


def _failure(line: dict[str, Any], error: BackupError) -> dict[str, Any]:
    message = redact(error.message)
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "..."
    logger.error("backup %s failed: %s: %s", line["operation"], error.reason, message)
    return {"ok": False, **line, "reason": str(error.reason), "message": message, **error.details}


def termination_message(line: dict[str, Any]) -> str:
    """The line as Kubernetes will keep it: without the row counts when they would not fit."""
    text = json.dumps(line, separators=(",", ":"))
    if len(text.encode()) >= TERMINATION_MESSAGE_LIMIT:
        text = json.dumps(
            {k: v for k, v in line.items() if k != "rowCounts"}, separators=(",", ":")
        )
    return text


def _write_termination_log(path: Path, line: dict[str, Any]) -> None:
    try:
        path.write_text(termination_message(line) + "\n")
    except OSError as error:
        logger.warning("cannot write the termination log %s: %s", path, error)
