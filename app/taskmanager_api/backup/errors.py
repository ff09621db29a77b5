"""Why a backup operation failed: a stable reason the operator can act on, and an exit code."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Reason(StrEnum):
    # The configuration is wrong: retrying the same Job cannot help (exit code 2).
    INVALID_CONFIGURATION = "InvalidConfiguration"
    INVALID_LOCATION = "InvalidLocation"
    UNSUPPORTED_DATABASE = "UnsupportedDatabase"
    # The operation failed (exit code 1).
    CLIENT_MISSING = "ClientMissing"
    CLIENT_TOO_OLD = "ClientTooOld"
    DATABASE_UNAVAILABLE = "DatabaseUnavailable"
    DATABASE_ERROR = "DatabaseError"
    DUMP_FAILED = "DumpFailed"
    STORAGE_FAILED = "StorageFailed"
    BACKUP_EXISTS = "BackupExists"
    MANIFEST_MISSING = "ManifestMissing"
    MANIFEST_INVALID = "ManifestInvalid"
    CHECKSUM_MISMATCH = "ChecksumMismatch"
    UNKNOWN_REVISION = "UnknownRevision"
    RESTORE_FAILED = "RestoreFailed"
    MIGRATION_FAILED = "MigrationFailed"
    VERIFY_MISMATCH = "VerifyMismatch"
    INTERNAL_ERROR = "InternalError"


CONFIGURATION_REASONS = frozenset(
    {Reason.INVALID_CONFIGURATION, Reason.INVALID_LOCATION, Reason.UNSUPPORTED_DATABASE}
)
EXIT_FAILED = 1
EXIT_CONFIG = 2  # the CLI's EXIT_CONFIG


class BackupError(Exception):
    """A failure to report as such; `details` adds fields to the result line (e.g. the tables)."""

    def __init__(self, reason: Reason, message: str, **details: Any) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.details = details

    @property
    def exit_code(self) -> int:
        return EXIT_CONFIG if self.reason in CONFIGURATION_REASONS else EXIT_FAILED
