"""Manifest — 版本清单 — of one immutable resource version: schema, rows, files and checksums.

The manifest is written as ``_manifest.json`` inside the version's directory. The leading
underscore follows Hadoop's convention (``_SUCCESS``, ``_metadata``): Spark and DuckDB skip such
files when they read the directory as a Parquet dataset, so the directory stays readable as is.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from haihe.engine.schema import FieldSpec, fields_to_schema

FORMAT_VERSION = 1
MANIFEST_NAME = "_manifest.json"
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.parquet$")


class FileEntry(BaseModel):
    """One Parquet file of a version: its name inside the version directory, rows, size, hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    rows: int = Field(ge=0)
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_validator("path")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        # A manifest names files inside its own directory only; never ../ or absolute paths.
        if not _FILE_NAME.match(value):
            raise ValueError(f"file name {value!r} is not a plain *.parquet name")
        return value


def files_checksum(files: list[FileEntry]) -> str:
    """Return the version checksum: SHA-256 of a ``sha256sum``-style listing of its files.

    The listing is one ``<sha256>  <path>\\n`` line per file in manifest order, so
    ``sha256sum -c`` can check the files and the listing's own hash is the checksum.
    """
    listing = "".join(f"{f.sha256}  {f.path}\n" for f in files)
    return hashlib.sha256(listing.encode()).hexdigest()


class Manifest(BaseModel):
    """What one resource version holds; the JSON form is what other engines and tools read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int = FORMAT_VERSION
    resource_code: str
    version: int = Field(ge=1)
    created_at: datetime
    created_by: str | None = None
    source: dict[str, Any] = Field(default_factory=dict)
    row_count: int = Field(ge=0)
    columns: list[FieldSpec] = Field(min_length=1)
    files: list[FileEntry] = Field(min_length=1)
    compression: str = "zstd"
    checksum: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("created_at must carry a time zone")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if self.format_version != FORMAT_VERSION:
            raise ValueError(f"unsupported manifest format_version {self.format_version}")
        if sum(f.rows for f in self.files) != self.row_count:
            raise ValueError("row_count is not the sum of the files' rows")
        if files_checksum(self.files) != self.checksum:
            raise ValueError("checksum does not match the files' hashes")
        return self

    @property
    def arrow_schema(self) -> pa.Schema:
        """Return the version's Arrow schema."""
        return fields_to_schema(self.columns)

    @property
    def dir_name(self) -> str:
        """Return the name of the version's directory (``v000001``)."""
        return version_dir_name(self.version)

    @property
    def total_bytes(self) -> int:
        """Return the size of the version's Parquet files in bytes."""
        return sum(f.bytes for f in self.files)


def version_dir_name(version: int) -> str:
    """Return the directory name of a version number (``v000001``)."""
    return f"v{version:06d}"
