"""Alembic driven from code: the CLI and the tests migrate without an alembic.ini on disk."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection

from taskmanager_api.core.config import Settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Handed over as an object, not an ini option: a URL with a password containing "%" would
    # break configparser interpolation, and the URL stays out of any file.
    config.attributes["settings"] = settings
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings), revision)


def head_revision(settings: Settings) -> str | None:
    return ScriptDirectory.from_config(alembic_config(settings)).get_current_head()


def is_known_revision(settings: Settings, revision: str | None) -> bool:
    """Whether this code has the revision (None: an empty database, base): a database at a
    revision from newer code cannot be migrated, or even understood, by this one."""
    if revision is None:
        return True
    try:
        script = ScriptDirectory.from_config(alembic_config(settings)).get_revision(revision)
    except CommandError:
        return False
    # Alembic also resolves a unique prefix; a stored revision is always a whole one.
    return script is not None and script.revision == revision


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
