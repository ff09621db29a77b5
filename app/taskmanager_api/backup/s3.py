"""`s3://bucket/prefix` locations: a backup's files are objects under the prefix.

Imported by storage.open_storage for S3 locations only: boto3 costs half a second of start-up,
which a `file://` backup does not pay.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as EndpointUnreachableError

from taskmanager_api.backup.errors import BackupError, Reason
from taskmanager_api.core.config import BackupSettings, backup_env_name

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Above this size transfers go in parts of this size, several at once: a dump of many GB streams
# from disk with bounded memory.
PART_BYTES = 16 * 1024 * 1024
# Each request: at most MAX_ATTEMPTS attempts (standard mode: a jittered backoff between them, of
# about 50 ms after a refused connection, 1 s when throttled), each waiting at most
# CONNECT_TIMEOUT_SECONDS for a connection. An endpoint that refuses fails the command at once,
# and one that never answers within about half a minute, where boto3's 60 s connect timeout (and
# the 5 attempts configured before) took five minutes to give up. A backup Job is not retried:
# the failure is reported, and the operator decides what comes next.
MAX_ATTEMPTS = 3
CONNECT_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 60
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


class S3Storage:
    def __init__(self, location: str, bucket: str, prefix: str, settings: BackupSettings) -> None:
        self.location = location
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = settings.s3_endpoint or f"AWS S3 ({settings.s3_region or 'its default'})"
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
        except EndpointUnreachableError as error:
            raise BackupError(
                Reason.STORAGE_FAILED,
                f"{action} {self.location}: the object store at {self.endpoint} "
                f"({backup_env_name('s3_endpoint')}) cannot be reached ({MAX_ATTEMPTS} attempts): "
                f"{error}",
            ) from error
        except (BotoCoreError, ClientError) as error:
            raise BackupError(
                Reason.STORAGE_FAILED, f"{action} {self.location}: {error}"
            ) from error

    def exists(self, name: str) -> bool:
        with self._errors("reading"):
            try:
                self.client.head_object(Bucket=self.bucket, Key=self.key(name))
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in _NOT_FOUND:
                    return False
                raise
        return True

    def read_bytes(self, name: str) -> bytes | None:
        with self._errors("reading"):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=self.key(name))
                return response["Body"].read()
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in _NOT_FOUND:
                    return None
                raise

    def write_bytes(self, name: str, data: bytes) -> None:
        with self._errors("writing"):
            self.client.put_object(Bucket=self.bucket, Key=self.key(name), Body=data)

    @contextlib.contextmanager
    def staged(self, name: str, work_dir: Path | None) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(dir=work_dir, prefix="taskmanager-backup-") as scratch:
            path = Path(scratch) / name
            yield path
            with self._errors("uploading to"):
                self.client.upload_file(
                    str(path), self.bucket, self.key(name), Config=self.transfer
                )

    @contextlib.contextmanager
    def local_copy(self, name: str, work_dir: Path | None) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(dir=work_dir, prefix="taskmanager-backup-") as scratch:
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
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        # The CRC checksums newer boto3 sends by default are refused by S3-compatible stores
        # that predate them; the manifest's sha256 covers the dump end to end anyway.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    verify: str | bool = str(settings.s3_ca_bundle) if settings.s3_ca_bundle else True
    return session.client("s3", endpoint_url=settings.s3_endpoint, config=config, verify=verify)
