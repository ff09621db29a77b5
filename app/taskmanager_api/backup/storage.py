"""Where backups live: a directory on a mounted volume (`file://`) or in a bucket (`s3://`).

Both hold a backup as a few named files. Writes never leave a half-written file under its final
name (a file is renamed into place, an S3 object appears whole), so the manifest, written last,
is a commit marker. Files are streamed: a dump is never held in memory. The S3 side (s3.py) is
imported for `s3://` locations only: boto3 costs half a second of start-up.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from taskmanager_api.backup.errors import BackupError, Reason
from taskmanager_api.core.config import BackupSettings


class Storage(Protocol):
    location: str

    def exists(self, name: str) -> bool: ...

    def read_bytes(self, name: str) -> bytes | None:
        """A small file's content (the manifest); None when there is none."""

    def write_bytes(self, name: str, data: bytes) -> None: ...

    def staged(self, name: str, work_dir: Path | None) -> contextlib.AbstractContextManager[Path]:
        """A local path to write the file at: it becomes `name`, whole, when the context ends
        without an error, and nothing is left of it otherwise. A directory location hands out a
        hidden file in itself, so a dump is written once, where it stays; S3 one in `work_dir`
        (None: the temporary directory), uploaded at the end."""

    def local_copy(
        self, name: str, work_dir: Path | None
    ) -> contextlib.AbstractContextManager[Path]:
        """A local path holding the file while the context lasts."""

    def delete(self, name: str) -> None:
        """Remove the file; one that is not there is not an error."""


def open_storage(location: str, settings: BackupSettings) -> Storage:
    parts = urlsplit(location)
    if parts.query or parts.fragment:
        raise BackupError(Reason.INVALID_LOCATION, f"{location}: no query or fragment allowed")
    if parts.scheme == "file":
        path = Path(unquote(parts.path))
        if parts.netloc not in ("", "localhost") or not path.is_absolute() or path == Path("/"):
            raise BackupError(
                Reason.INVALID_LOCATION,
                f"{location}: a file location is a directory, file:///backups/<name>",
            )
        return FileStorage(location, path)
    if parts.scheme == "s3":
        prefix = unquote(parts.path).strip("/")
        if not parts.netloc or not prefix:
            raise BackupError(
                Reason.INVALID_LOCATION,
                f"{location}: an S3 location names a bucket and a prefix, s3://<bucket>/<prefix>",
            )
        from taskmanager_api.backup.s3 import S3Storage  # noqa: PLC0415 - boto3, for s3:// only

        return S3Storage(location, parts.netloc, prefix, settings)
    raise BackupError(
        Reason.INVALID_LOCATION,
        f"{location}: unsupported location (file:///path/to/dir or s3://bucket/prefix)",
    )


def _fsync(path: Path) -> None:
    # A rename is durable once its directory is, and a file once it is flushed: the manifest must
    # not outlive a crash before the dump it describes does.
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class FileStorage:
    def __init__(self, location: str, directory: Path) -> None:
        self.location = location
        self.directory = directory

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except OSError as error:
            raise BackupError(
                Reason.STORAGE_FAILED, f"{action} {self.location}: {error}"
            ) from error

    def exists(self, name: str) -> bool:
        with self._errors("reading"):
            return (self.directory / name).exists()

    def read_bytes(self, name: str) -> bytes | None:
        with self._errors("reading"):
            try:
                return (self.directory / name).read_bytes()
            except FileNotFoundError:
                return None

    @contextlib.contextmanager
    def staged(self, name: str, work_dir: Path | None) -> Iterator[Path]:
        del work_dir  # written in place: no second copy of a possibly large dump
        partial = self.directory / f".{name}.partial"
        with self._errors("writing to"):
            made = not self.directory.exists()
            self.directory.mkdir(parents=True, exist_ok=True)
        try:
            yield partial
            with self._errors("writing to"):
                _fsync(partial)
                partial.replace(self.directory / name)
                _fsync(self.directory)
        except BaseException:
            # Nothing of a failed write stays: no partial file, nor a directory made for it.
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
                if made:
                    self.directory.rmdir()
            raise

    def write_bytes(self, name: str, data: bytes) -> None:
        with self.staged(name, None) as path, self._errors("writing to"):
            path.write_bytes(data)

    @contextlib.contextmanager
    def local_copy(self, name: str, work_dir: Path | None) -> Iterator[Path]:
        del work_dir  # already local: no copy of a possibly large dump
        path = self.directory / name
        if not path.is_file():
            raise BackupError(Reason.STORAGE_FAILED, f"{self.location} has no {name}")
        yield path

    def delete(self, name: str) -> None:
        with self._errors("deleting from"):
            (self.directory / name).unlink(missing_ok=True)
            if self.directory.is_dir():
                _fsync(self.directory)
                # The last file gone, the backup's directory goes too.
                with contextlib.suppress(OSError):
                    self.directory.rmdir()
