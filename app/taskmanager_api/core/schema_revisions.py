"""The schema revisions this code knows, read from the migration scripts without Alembic.

Alembic reads a script by importing it, and importing Alembic (with SQLAlchemy under it) costs
over a second: a backup restore would pay it before it restores anything, only to learn the
revision ids and the head. Every script declares those as literals (script.py.mako writes them
with repr), so they are read here from the scripts' syntax trees instead. Alembic stays the
authority: core/migrate.py migrates with it, and tests/backup/test_startup.py holds this reading
to Alembic's.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# Alembic's default name, given to Alembic explicitly (migrations/env.py): a backup reads the
# database's revision from this table with plain SQL.
VERSION_TABLE = "alembic_version"

Revisions = dict[str, tuple[str, ...]]  # revision -> the revisions it follows


def _literal(module: ast.Module, name: str, path: Path) -> object:
    for statement in module.body:
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        else:
            continue
        if any(isinstance(target, ast.Name) and target.id == name for target in targets):
            try:
                return ast.literal_eval(value)
            except ValueError:
                break
    raise RuntimeError(f"{path.name}: `{name}` is not assigned a literal at module level")


@functools.cache
def revisions(directory: Path = MIGRATIONS / "versions") -> Revisions:
    """Every script's revision and the ones it follows, as Alembic finds them: each .py file of
    the versions directory but __init__.py."""
    found: Revisions = {}
    for path in sorted(directory.glob("*.py")):
        if path.name == "__init__.py":
            continue
        module = ast.parse(path.read_bytes(), filename=str(path))
        revision = _literal(module, "revision", path)
        down = _literal(module, "down_revision", path)
        parents = (down,) if isinstance(down, str) else down or ()
        if not isinstance(revision, str) or not isinstance(parents, tuple):
            raise RuntimeError(f"{path.name}: revision or down_revision of an unexpected type")
        found[revision] = tuple(str(parent) for parent in parents)
    return found


def head() -> str | None:
    """The one head (None: no scripts); several would need a merge, which Alembic refuses too."""
    known = revisions()
    followed = {parent for parents in known.values() for parent in parents}
    heads = sorted(set(known) - followed)
    if len(heads) > 1:
        raise RuntimeError(f"the migrations have several heads: {', '.join(heads)}")
    return heads[0] if heads else None


def is_known(revision: str | None) -> bool:
    """Whether this code has the revision (None: an empty database, base): a database at a
    revision from newer code cannot be migrated, or even understood, by this one."""
    return revision is None or revision in revisions()
