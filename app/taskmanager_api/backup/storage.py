"""Where backups live: a directory on a mounted volume (`file://`) or in a bucket (`s3://`).

Both hold a backup as a few named files. Writes never leave a half-written file under its final
name (a file is renamed into place, an S3 object appears whole), so the manifest, written last,
is a commit marker. Files are streamed: a dump is never held in memory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol
from urllib.parse import unquote, urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from taskmanager_api.backup.errors import BackupError, Reason
from taskmanager_api.core.config import BackupSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Above this size uploads go in parts of this size, several at once: a dump of many GB streams
# from disk with bounded memory.
PART_BYTES = 16 * 1024 * 1024
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


class Storage(Protocol):
    location: str

    def exists(self, name: str) -> bool: ...

    def read_bytes(self, name: str) -> bytes | None:
        """A small file's content (the manifest); None when there is none."""

    def write_bytes(self, name: str, data: bytes) -> None: ...

    def upload(self, name: str, source: Path) -> None: ...

    def local_copy(self, name: str, workdir: Path) -> contextlib.AbstractContextManager[Path]:
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
        return S3Storage(location, parts.netloc, prefix, settings)
    raise BackupError(
        Reason.INVALID_LOCATION,
        f"{location}: unsupported location (file:///path/to/dir or s3://bucket/prefix)",
    )


def _fsync_directory(path: Path) -> None:
    # A rename is durable once its directory is: the manifest must not outlive a crash before
    # the dump it describes does.
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
    def _written(self, name: str) -> Iterator[BinaryIO]:
        """A file that appears under `name` whole, and durably, or not at all."""
        with self._errors("writing to"):
            self.directory.mkdir(parents=True, exist_ok=True)
            partial = self.directory / f".{name}.partial"
            try:
                with partial.open("wb") as sink:
                    yield sink
                    sink.flush()
                    os.fsync(sink.fileno())
                partial.replace(self.directory / name)
                _fsync_directory(self.directory)
            finally:
                partial.unlink(missing_ok=True)

    def write_bytes(self, name: str, data: bytes) -> None:
        with self._written(name) as sink:
            sink.write(data)

    def upload(self, name: str, source: Path) -> None:
        with self._written(name) as sink, source.open("rb") as reader:
            shutil.copyfileobj(reader, sink, PART_BYTES)

    @contextlib.contextmanager
    def local_copy(self, name: str, workdir: Path) -> Iterator[Path]:
        del workdir  # already local: no copy of a possibly large dump
        path = self.directory / name
        if not path.is_file():
            raise BackupError(Reason.STORAGE_FAILED, f"{self.location} has no {name}")
        yield path

    def delete(self, name: str) -> None:
        with self._errors("deleting from"):
            (self.directory / name).unlink(missing_ok=True)
            if self.directory.is_dir():
                _fsync_directory(self.directory)
                # The last file gone, the backup's directory goes too.
                with contextlib.suppress(OSError):
                    self.directory.rmdir()


class S3Storage:
    def __init__(self, location: str, bucket: str, prefix: str, settings: BackupSettings) -> None:
        self.location = location
        self.bucket = bucket
        self.prefix = prefix
        self.client = s3_client(settings)
        self.transfer = TransferConfig(
            multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES
        )

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except (BotoCoreError, ClientError) as error:
            raise BackupError(
                Reason.STORAGE_FAILED, f"{action} {self.location}: {error}"
            ) from error

    def exists(self, name: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(name))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _NOT_FOUND:
                return False
            raise BackupError(Reason.STORAGE_FAILED, f"reading {self.location}: {error}") from error
        except BotoCoreError as error:
            raise BackupError(Reason.STORAGE_FAILED, f"reading {self.location}: {error}") from error
        return True

    def read_bytes(self, name: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key(name))
            return response["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _NOT_FOUND:
                return None
            raise BackupError(Reason.STORAGE_FAILED, f"reading {self.location}: {error}") from error
        except BotoCoreError as error:
            raise BackupError(Reason.STORAGE_FAILED, f"reading {self.location}: {error}") from error

    def write_bytes(self, name: str, data: bytes) -> None:
        with self._errors("writing"):
            self.client.put_object(Bucket=self.bucket, Key=self.key(name), Body=data)

    def upload(self, name: str, source: Path) -> None:
        with self._errors("uploading to"):
            self.client.upload_file(str(source), self.bucket, self.key(name), Config=self.transfer)

    @contextlib.contextmanager
    def local_copy(self, name: str, workdir: Path) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(dir=workdir) as scratch:
            target = Path(scratch) / name
            with self._errors("downloading from"):
                self.client.download_file(
                    self.bucket, self.key(name), str(target), Config=self.transfer
                )
            yield target

    def delete(self, name: str) -> None:
        # S3 answers a delete of a missing key with success: idempotent as it is.
        with self._errors("deleting from"):
            self.client.delete_object(Bucket=self.bucket, Key=self.key(name))


def s3_client(settings: BackupSettings) -> S3Client:
    credentials = settings.s3_credentials()
    session = boto3.session.Session(
        aws_access_key_id=credentials[0] if credentials else None,
        aws_secret_access_key=credentials[1] if credentials else None,
        region_name=settings.s3_region,
    )
    config = Config(
        s3={"addressing_style": "path" if settings.s3_path_style else "auto"},
        retries={"mode": "standard", "max_attempts": 5},
        # The CRC checksums newer boto3 sends by default are refused by S3-compatible stores
        # that predate them; the manifest's sha256 covers the dump end to end anyway.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    verify: str | bool = str(settings.s3_ca_bundle) if settings.s3_ca_bundle else True
    return session.client("s3", endpoint_url=settings.s3_endpoint, config=config, verify=verify)
