"""The PostgreSQL client tools: pg_dump to take a dump, pg_restore piped into psql to restore one.

The tools get the connection from PG* variables in their own environment, built from the app's
SQLAlchemy URL: the password never appears on a command line (where `ps` shows it) or in a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from taskmanager_api.backup.errors import BackupError, Reason

logger = logging.getLogger("taskmanager_api.backup")

INSTALL_HINT = "install the PostgreSQL client (Debian: apt-get install postgresql-client)"
# Error output quoted in a result line: enough for the cause, short of the termination message cap.
MAX_TOOL_OUTPUT = 1200
_CHUNK = 1 << 16

# Run first, in the restore's transaction: objects the dump does not hold (a table of a newer
# migration) must not survive it, and pg_restore --clean would drop only the dump's own objects.
# Schemas of the app's user go whole (the dump creates them again); in public, which PostgreSQL
# owns, its tables, views, sequences, types and routines go. Objects of extensions stay, and
# sequences belonging to a column go with their table.
DROP_EVERYTHING = r"""
BEGIN;
DO $drop$
DECLARE
    statement text;
BEGIN
    FOR statement IN
        SELECT format('DROP SCHEMA %I CASCADE', nspname) FROM pg_namespace
        WHERE nspowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
          AND nspname <> 'public'
          AND nspname <> 'information_schema' AND nspname NOT LIKE 'pg\_%'
    LOOP
        EXECUTE statement;
    END LOOP;
    FOR statement IN
        SELECT format(
            'DROP %s IF EXISTS public.%I CASCADE',
            CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
            c.relname)
        FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND NOT c.relispartition
          AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
          AND NOT EXISTS (
              SELECT FROM pg_depend d
              WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                AND d.deptype IN ('e', 'i', 'a'))
    LOOP
        EXECUTE statement;
    END LOOP;
    FOR statement IN
        SELECT format('DROP TYPE IF EXISTS public.%I CASCADE', t.typname)
        FROM pg_type t LEFT JOIN pg_class c ON c.oid = t.typrelid
        WHERE t.typnamespace = 'public'::regnamespace
          AND (t.typtype IN ('e', 'd', 'r') OR c.relkind = 'c')
          AND NOT EXISTS (
              SELECT FROM pg_depend d
              WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
    LOOP
        EXECUTE statement;
    END LOOP;
    FOR statement IN
        SELECT format(
            'DROP %s IF EXISTS public.%I(%s) CASCADE',
            CASE p.prokind WHEN 'a' THEN 'AGGREGATE' WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
            p.proname, pg_get_function_identity_arguments(p.oid))
        FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace
          AND NOT EXISTS (
              SELECT FROM pg_depend d
              WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE statement;
    END LOOP;
END
$drop$;
"""


def libpq_environment(sqlalchemy_url: str) -> dict[str, str]:
    """This process's environment with the database's PG* variables in place of any others."""
    url: URL = make_url(sqlalchemy_url)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    values = {
        "PGHOST": url.host,
        "PGPORT": str(url.port) if url.port else None,
        "PGUSER": url.username,
        "PGPASSWORD": url.password,
        "PGDATABASE": url.database,
        "PGAPPNAME": "taskmanager-backup",
        "PGCONNECT_TIMEOUT": "15",
    }
    # asyncpg spells libpq's sslmode `ssl`; either may be in the app's URL.
    ssl = url.query.get("sslmode") or url.query.get("ssl")
    if isinstance(ssl, str):
        values["PGSSLMODE"] = ssl
    if isinstance(host := url.query.get("host"), str):  # a Unix socket directory
        values["PGHOST"] = host
    environment.update({name: value for name, value in values.items() if value})
    return environment


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(Reason.CLIENT_MISSING, f"{name} is not on PATH: {INSTALL_HINT}")
    return path


@dataclass(frozen=True)
class ClientVersion:
    text: str  # "15.18"
    major: int


_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


def parse_client_version(output: str) -> ClientVersion:
    """The version `pg_dump --version` prints: `pg_dump (PostgreSQL) 15.18 (Debian 15.18-...)`."""
    match = _VERSION.search(output)
    if match is None:
        raise BackupError(Reason.CLIENT_MISSING, f"unrecognised client version {output.strip()!r}")
    text = match[1] if match[2] is None else f"{match[1]}.{match[2]}"
    return ClientVersion(text=text, major=int(match[1]))


def server_major(server_version_num: int) -> int:
    """`SHOW server_version_num` (150018 for 15.18): the major version, since PostgreSQL 10."""
    return server_version_num // 10000


def check_client_supports(client: ClientVersion, server_version_num: int) -> None:
    """pg_dump refuses servers of a newer major version; say so before starting, and what to do."""
    server = server_major(server_version_num)
    if client.major < server:
        raise BackupError(
            Reason.CLIENT_TOO_OLD,
            f"pg_dump {client.major} cannot dump a PostgreSQL {server} server: the client's "
            f"major version must be at least the server's; use an image with "
            f"postgresql-client-{server} or newer",
            clientVersion=client.text,
            serverVersionNum=server_version_num,
        )


async def _run(argv: list[str], environment: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=environment,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return await process.wait(), output.decode(errors="replace")


def _tail(output: str) -> str:
    output = output.strip()
    return output if len(output) <= MAX_TOOL_OUTPUT else "..." + output[-MAX_TOOL_OUTPUT:]


async def client_version(environment: dict[str, str]) -> ClientVersion:
    code, output = await _run([tool("pg_dump"), "--version"], environment)
    if code != 0:
        raise BackupError(Reason.CLIENT_MISSING, f"pg_dump --version failed: {_tail(output)}")
    return parse_client_version(output)


async def dump(target: Path, snapshot: str, environment: dict[str, str]) -> None:
    argv = [
        tool("pg_dump"),
        "--format=custom",
        "--no-password",
        f"--snapshot={snapshot}",
        f"--file={target}",
    ]
    code, output = await _run(argv, environment)
    if code != 0:
        raise BackupError(Reason.DUMP_FAILED, f"pg_dump failed ({code}): {_tail(output)}")


async def restore(archive: Path, environment: dict[str, str]) -> None:
    """Replace the database's content with the archive's, all in one transaction.

    pg_restore turns the archive into SQL, which psql runs after DROP_EVERYTHING. COMMIT is sent
    only once pg_restore has exited successfully: a truncated stream (a corrupt archive, a killed
    pg_restore) ends psql's input inside the open transaction, which the server rolls back.
    """
    consumer = await asyncio.create_subprocess_exec(
        tool("psql"),
        "--no-psqlrc",
        "--quiet",
        "--no-password",
        "--set=ON_ERROR_STOP=1",
        "--file=-",
        env=environment,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    producer = await asyncio.create_subprocess_exec(
        tool("pg_restore"),
        "--no-owner",  # the objects belong to whoever restores: the app's user
        "--no-acl",
        "--file=-",
        str(archive),
        env=environment,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    if not (consumer.stdin and consumer.stderr and producer.stdout and producer.stderr):
        raise RuntimeError("the restore's pipes were not opened")  # PIPE was asked for each
    consumer_errors = asyncio.create_task(consumer.stderr.read())
    producer_errors = asyncio.create_task(producer.stderr.read())
    committed = False
    try:
        consumer.stdin.write(DROP_EVERYTHING.encode())
        while chunk := await producer.stdout.read(_CHUNK):
            consumer.stdin.write(chunk)
            await consumer.stdin.drain()
        if await producer.wait() == 0:
            consumer.stdin.write(b"\nCOMMIT;\n")
            await consumer.stdin.drain()
            committed = True
        consumer.stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        # psql stopped at an error (ON_ERROR_STOP): its own output says which.
        logger.debug("psql stopped reading the restore script")
    finally:
        if producer.returncode is None:
            producer.kill()
            await producer.wait()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            consumer.stdin.close()
    consumer_code = await consumer.wait()
    psql_output = (await consumer_errors).decode(errors="replace")
    pg_restore_output = (await producer_errors).decode(errors="replace")
    if consumer_code != 0:
        raise BackupError(
            Reason.RESTORE_FAILED,
            f"the restore was rolled back, the database is unchanged: {_tail(psql_output)}",
        )
    if not committed:
        raise BackupError(
            Reason.RESTORE_FAILED,
            f"pg_restore failed ({producer.returncode}); the restore was rolled back, the "
            f"database is unchanged: {_tail(pg_restore_output)}",
        )
