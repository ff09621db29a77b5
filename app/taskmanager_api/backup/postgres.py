"""The PostgreSQL client tools: pg_dump to take a dump, pg_restore piped into psql to restore one.

The tools get the connection from PG* variables in their own environment, built from the app's
SQLAlchemy URL: the password never appears on a command line (where `ps` shows it) or in a log.
The backup's own queries (database.py) connect with the same parameters.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from taskmanager_api.backup.errors import BackupError, Reason
from taskmanager_api.core.config import env_name

logger = logging.getLogger("taskmanager_api.backup")

INSTALL_HINT = "install the PostgreSQL client (Debian: apt-get install postgresql-client)"
# Error output quoted in a result line: enough for the cause, short of the termination message cap.
MAX_TOOL_OUTPUT = 1200
# How the tools say ENOSPC: the C library's message, untranslated in the image (C locale).
_NO_SPACE = os.strerror(errno.ENOSPC)
# How long the tools and the backup's own connections wait for the server to answer, and the
# name they show in pg_stat_activity.
CONNECT_TIMEOUT_SECONDS = 15
APPLICATION_NAME = "taskmanager-backup"
DATABASE_URL_VARIABLE = env_name("database_url")

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


@dataclass(frozen=True)
class ConnectionParameters:
    """Where the database is and who connects: what libpq and asyncpg both take."""

    host: str | None = None  # a host name or address, or a Unix socket directory
    port: int | None = None
    user: str | None = None
    password: str | None = None
    database: str | None = None
    sslmode: str | None = None

    @classmethod
    def from_url(cls, sqlalchemy_url: str) -> ConnectionParameters:
        """The app's database URL, read by SQLAlchemy as the app reads it (its URL module is
        all of SQLAlchemy a backup imports)."""
        try:
            url = make_url(sqlalchemy_url)
        except (ArgumentError, ValueError) as error:
            # ValueError: a port that is no number. Neither message is shown: the URL holds the
            # password.
            raise BackupError(
                Reason.INVALID_CONFIGURATION,
                f"{DATABASE_URL_VARIABLE} is not a database URL ({type(error).__name__})",
            ) from None

        def single(*names: str) -> str | None:
            # A parameter given twice (several hosts) is a tuple: not one the tools can be given.
            values = [url.query[name] for name in names if name in url.query]
            return values[0] if values and isinstance(values[0], str) else None

        return cls(
            # asyncpg's `host` parameter: a Unix socket directory, in place of the URL's host.
            host=single("host") or url.host,
            port=url.port,
            user=url.username or None,
            password=url.password or None,
            database=url.database or None,
            # asyncpg spells libpq's sslmode `ssl`; either may be in the app's URL.
            sslmode=single("sslmode", "ssl"),
        )

    def with_database(self, name: str) -> ConnectionParameters:
        return replace(self, database=name)

    def libpq_environment(self) -> dict[str, str]:
        """This process's environment with these PG* variables in place of any others."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        values = {
            "PGHOST": self.host,
            "PGPORT": str(self.port) if self.port else None,
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
            "PGDATABASE": self.database,
            "PGSSLMODE": self.sslmode,
            "PGAPPNAME": APPLICATION_NAME,
            "PGCONNECT_TIMEOUT": str(CONNECT_TIMEOUT_SECONDS),
        }
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
    try:
        output, _ = await process.communicate()
    finally:
        if process.returncode is None:  # cancelled: the tool must not outlive its caller
            process.kill()
            await process.wait()
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
    if code != 0 and _NO_SPACE in output:
        # A full volume is the storage's failure, not the database's: said as such.
        raise BackupError(
            Reason.STORAGE_FAILED,
            f"no space left on the device of {target.parent} for the dump: {_tail(output)}",
        )
    if code != 0:
        raise BackupError(Reason.DUMP_FAILED, f"pg_dump failed ({code}): {_tail(output)}")


async def restore(archive: Path, environment: dict[str, str]) -> None:
    """Replace the database's content with the archive's, all in one transaction.

    psql runs DROP_EVERYTHING, which opens the transaction, then the SQL pg_restore makes of the
    archive, read from pg_restore through a pipe between the two, then its last input, a pipe
    from this process: COMMIT, written only once pg_restore has exited successfully. A truncated
    stream (a corrupt archive, a killed pg_restore) ends psql's input inside the open transaction,
    which the server rolls back. The SQL does not pass through this process: copied through it,
    the 460 MB of a million-task restore cost 1.5 to 2 s of CPU, on 2 cores that the tools and
    the server share.
    """
    sql_read, sql_write = os.pipe()  # pg_restore -> psql
    commit_read, commit_write = os.pipe()  # this process -> psql, after the SQL
    descriptors = {sql_read, sql_write, commit_read, commit_write}

    def close(*chosen: int) -> None:
        for descriptor in chosen:
            if descriptor in descriptors:
                descriptors.remove(descriptor)
                os.close(descriptor)

    processes: list[asyncio.subprocess.Process] = []
    committed = False
    try:
        processes.append(
            await asyncio.create_subprocess_exec(
                tool("psql"),
                "--no-psqlrc",
                "--quiet",
                "--no-password",
                "--set=ON_ERROR_STOP=1",
                f"--command={DROP_EVERYTHING}",
                "--file=-",
                f"--file=/dev/fd/{commit_read}",
                env=environment,
                stdin=sql_read,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(commit_read,),
            )
        )
        processes.append(
            await asyncio.create_subprocess_exec(
                tool("pg_restore"),
                "--no-owner",  # the objects belong to whoever restores: the app's user
                "--no-acl",
                "--file=-",
                str(archive),
                env=environment,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=sql_write,
                stderr=asyncio.subprocess.PIPE,
            )
        )
        # The children's ends, theirs alone: psql sees the end of the SQL when pg_restore exits.
        close(sql_read, sql_write, commit_read)
        consumer, producer = processes
        if not (consumer.stderr and producer.stderr):
            raise RuntimeError("the restore's pipes were not opened")  # PIPE was asked for each
        consumer_errors = asyncio.create_task(consumer.stderr.read())
        producer_errors = asyncio.create_task(producer.stderr.read())
        if await producer.wait() == 0:
            try:
                os.write(commit_write, b"COMMIT;\n")
                committed = True
            except BrokenPipeError:
                # psql stopped at an error (ON_ERROR_STOP): its own output says which.
                logger.debug("psql stopped before the end of the restore")
        close(commit_write)  # psql's last input ends: it commits, or ends and the server rolls back
        consumer_code = await consumer.wait()
    except BaseException:
        for process in processes:  # cancelled: no tool outlives the restore, and nothing commits
            if process.returncode is None:
                process.kill()
                await process.wait()
        raise
    finally:
        close(*list(descriptors))
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
