"""A backup volume that fills up: the backup fails saying so, and leaves nothing behind but the
backups that were there, intact.

The volume is a tmpfs of TINY_BYTES mounted under the test's directory (the tests run as root,
as make test does; one that cannot mount fails, nothing skips), unmounted after the test.
"""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.backup.conftest import (
    Database,
    contents,
    failed,
    job_environment,
    run_backup,
    seed,
    succeeded,
)

pytestmark = pytest.mark.postgres

TINY_BYTES = 1024 * 1024
# Users with a task each: random uuids make a dump of ~2.5 MB that no compression brings under
# TINY_BYTES, while a backup of a few rows takes a few kB of it.
BIG_USERS = 30_000


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "volume"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TINY_BYTES},mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs at {mount} (these tests run as root): {mounted.stderr}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under the directory, hidden ones included, by its sha256."""
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def free_bytes(directory: Path) -> int:
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


@pytest.fixture
def big(make_database: Callable[..., Database]) -> Database:
    database = make_database()
    seed(database.url, "big", users=BIG_USERS)
    return database


def check_restorable(location: str, source: Database, target: Database, workdir: Path) -> None:
    """The backup verifies, and a restore of it holds what its source held."""
    verified = succeeded(run_backup(job_environment(workdir, source), "verify", "--from", location))
    assert verified["rowCounts"]["public.tasks"] > 0
    succeeded(run_backup(job_environment(workdir, target), "restore", "--from", location))
    assert contents(target.url) == contents(source.url)


def test_a_dump_that_does_not_fit_fails_saying_so_and_leaves_nothing(
    make_database: Callable[..., Database], big: Database, volume: Path, tmp_path: Path
) -> None:
    small = make_database()
    seed(small.url, "small")
    older = (volume / "older").as_uri()
    succeeded(run_backup(job_environment(tmp_path, small), "create", "--to", older))
    kept = snapshot(volume)
    free = free_bytes(volume)

    newer = volume / "newer"
    outcome = run_backup(job_environment(tmp_path, big), "create", "--to", newer.as_uri())
    line = failed(outcome, "StorageFailed")
    assert "no space left" in line["message"].lower(), line
    assert str(newer) in line["message"]
    # Nothing of it: no partial dump (hidden or not), no directory, the space back.
    assert not newer.exists()
    assert free_bytes(volume) == free

    assert snapshot(volume) == kept
    check_restorable(older, small, make_database(), tmp_path)


def test_a_manifest_that_does_not_fit_takes_its_dump_away(
    make_database: Callable[..., Database], volume: Path, tmp_path: Path
) -> None:
    """The dump fits to the last page, the manifest does not: no dump stays without its manifest."""
    small = make_database()
    seed(small.url, "small")
    older = (volume / "older").as_uri()
    succeeded(run_backup(job_environment(tmp_path, small), "create", "--to", older))
    # The dump's size, from a backup of the same rows elsewhere: pg_dump writes the same bytes.
    dump_size = succeeded(
        run_backup(job_environment(tmp_path, small), "create", "--to", (tmp_path / "x").as_uri())
    )["size"]
    page = os.statvfs(volume).f_frsize
    filler = volume / "filler"
    with filler.open("wb") as sink:
        os.posix_fallocate(
            sink.fileno(), 0, free_bytes(volume) - math.ceil(dump_size / page) * page
        )
    kept = snapshot(volume)
    free = free_bytes(volume)

    newer = volume / "newer"
    outcome = run_backup(job_environment(tmp_path, small), "create", "--to", newer.as_uri())
    line = failed(outcome, "StorageFailed")
    assert line["message"].startswith(f"writing to {newer.as_uri()}: "), line
    assert "No space left on device" in line["message"], line
    assert not newer.exists(), sorted(newer.iterdir())
    assert free_bytes(volume) == free
    assert snapshot(volume) == kept
    check_restorable(older, small, make_database(), tmp_path)
