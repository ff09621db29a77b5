"""The manifest: what a backup holds, written after the dump as the backup's commit marker."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from taskmanager_api.backup.errors import BackupError, Reason

MANIFEST_NAME = "manifest.json"
DUMP_NAME = "database.pgdump"
# Raised when a field changes meaning; a reader refuses manifests newer than it understands.
FORMAT_VERSION = 1


class Manifest(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore"
    )

    format_version: int = Field(ge=1)
    created_at: datetime
    dump_file: str = Field(pattern=r"^[\w.-]+$")  # a name in the location, never a path
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    app_version: str
    schema_revision: str | None  # None: the database had no Alembic revision (base)
    server_version: str
    client_version: str
    # "schema.table" -> rows, counted in the snapshot the dump was taken from.
    row_counts: dict[str, int]

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, indent=2).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            manifest = cls.model_validate_json(raw)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, item['loc']))}: {item['msg']}"
                for item in error.errors(include_input=False, include_url=False)
            )
            raise BackupError(Reason.MANIFEST_INVALID, f"unreadable manifest: {problems}") from None
        if manifest.format_version > FORMAT_VERSION:
            raise BackupError(
                Reason.MANIFEST_INVALID,
                f"manifest format {manifest.format_version} is newer than this version reads "
                f"({FORMAT_VERSION}): use a newer image",
            )
        return manifest
