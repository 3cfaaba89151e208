"""VersionStore — 资源版本库 — immutable resource versions as Parquet plus a manifest, on disk.

Layout under ``root``, one directory per resource::

    <resource_code>/
        CURRENT                  "v000002": the version readers get by default
        .lock                    held while a version number is given out or CURRENT changes
        v000001/                 a committed version, never changed afterwards
            part-00000.parquet
            _manifest.json
        v000002/ ...
        .staging-<uuid>/         a version being written (invisible to readers)
        .staging-<uuid>.lock     held by its writer for as long as the writer lives

A writer fills its staging directory, flushes every file, then under ``.lock`` takes the next
number, writes the manifest and renames the directory to ``vNNNNNN`` (the commit point: one
atomic rename), then replaces ``CURRENT`` atomically. A crash before the rename leaves only a
staging directory, which ``clean_staging`` removes; a crash between the rename and ``CURRENT``
leaves a complete version that is listed but not current. Either way the previous version stays
current and whole. Version numbers come from the directories, under the lock, so they only grow.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from haihe.core.errors import InvalidInput, NotFound, StorageError
from haihe.engine import _fs
from haihe.engine.manifest import (
    MANIFEST_NAME,
    FileEntry,
    Manifest,
    files_checksum,
    version_dir_name,
)
from haihe.engine.schema import portable_schema, schema_to_fields
from haihe.engine.writer import VersionWriter

CURRENT = "CURRENT"
LOCK = ".lock"
STAGING_PREFIX = ".staging-"
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_VERSION_DIR = re.compile(r"^v(\d{6,})$")
COMPRESSIONS = frozenset({"zstd", "snappy", "gzip", "none"})


@dataclass(frozen=True)
class WriteOptions:
    """How versions are laid out in Parquet: row-group and file sizes, compression."""

    row_group_rows: int = 1 << 20
    row_group_bytes: int = 256 << 20
    file_rows: int = 8 << 20
    compression: str = "zstd"
    compression_level: int | None = None

    def __post_init__(self) -> None:
        if min(self.row_group_rows, self.row_group_bytes, self.file_rows) < 1:
            raise InvalidInput("row-group and file sizes must be positive")
        if self.compression not in COMPRESSIONS:
            raise InvalidInput(
                f"compression {self.compression!r} is not one every engine reads "
                f"({', '.join(sorted(COMPRESSIONS))})"
            )


class VersionStore:
    """The resource versions under one root directory; safe to share between threads and
    processes on one machine."""

    def __init__(self, root: Path, *, options: WriteOptions | None = None) -> None:
        self.root = Path(root)
        self.options = options or WriteOptions()

    def begin(
        self,
        resource_code: str,
        *,
        schema: pa.Schema,
        source: dict[str, Any] | None = None,
        created_by: str | None = None,
    ) -> VersionWriter:
        """Return a writer for a new version of ``resource_code`` with the given columns.

        The schema is moved onto portable types first (see ``haihe.engine.schema``).
        ``source`` is free JSON describing where the data came from (file name, format…).
        """
        target = portable_schema(schema)
        rdir = self._resource_dir(resource_code, create=True)
        try:
            while True:
                staging = rdir / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
                lock_path = staging.with_name(staging.name + ".lock")
                fd = _fs.lock_new(lock_path)
                if fd is not None:
                    break
        except OSError as exc:
            raise StorageError(f"cannot start a version of {resource_code}: {exc}") from exc
        try:
            staging.mkdir()
        except OSError as exc:
            lock_path.unlink(missing_ok=True)
            os.close(fd)
            raise StorageError(f"cannot start a version of {resource_code}: {exc}") from exc
        return VersionWriter(
            self,
            resource_code,
            staging=staging,
            lock_fd=fd,
            schema=target,
            source=dict(source or {}),
            created_by=created_by,
        )

    def current(self, resource_code: str) -> Manifest | None:
        """Return the manifest of the current version, or None if none was committed."""
        rdir = self._resource_dir(resource_code)
        number = _read_current(rdir)
        if number is None:
            return None
        try:
            return self._load(rdir, resource_code, number)
        except NotFound:
            raise StorageError(
                f"{rdir / CURRENT} names version {number}, which is missing"
            ) from None

    def manifest(self, resource_code: str, version: int | None = None) -> Manifest:
        """Return the manifest of a version (the current one when ``version`` is None).

        Raises NotFound when the resource has no such version.
        """
        rdir = self._resource_dir(resource_code)
        number = self._resolve(rdir, resource_code, version)
        if not (rdir / version_dir_name(number)).is_dir():
            raise NotFound(f"resource {resource_code} has no version {number}")
        return self._load(rdir, resource_code, number)

    def versions(self, resource_code: str) -> list[Manifest]:
        """Return the manifests of every committed version, oldest first (empty if none)."""
        rdir = self._resource_dir(resource_code)
        return [self._load(rdir, resource_code, n) for n in sorted(_version_numbers(rdir))]

    def resource_codes(self) -> list[str]:
        """Return the codes of the resources that have a directory under the root, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _CODE.match(p.name))

    def paths(self, manifest: Manifest) -> list[Path]:
        """Return the absolute paths of a version's Parquet files, in manifest order."""
        vdir = self._resource_dir(manifest.resource_code) / manifest.dir_name
        if not vdir.is_dir():
            raise NotFound(
                f"resource {manifest.resource_code} has no version {manifest.version} "
                f"under {self.root}"
            )
        return [(vdir / f.path).absolute() for f in manifest.files]

    def set_current(self, resource_code: str, version: int) -> Manifest:
        """Make an existing version current (a rollback or roll-forward) and return it."""
        rdir = self._resource_dir(resource_code)
        if not rdir.is_dir():
            raise NotFound(f"resource {resource_code} has no version {version}")
        with _fs.locked(rdir / LOCK):
            if version not in _version_numbers(rdir):
                raise NotFound(f"resource {resource_code} has no version {version}")
            manifest = self._load(rdir, resource_code, version)
            _fs.replace_synced(rdir / CURRENT, version_dir_name(version) + "\n")
        return manifest

    def verify(self, resource_code: str, version: int | None = None) -> list[str]:
        """Return the problems found by re-reading a version's files (empty when it is whole).

        Checks each file's presence, size, SHA-256, Parquet footer, row count and schema
        against the manifest, and reports files the manifest does not list.
        """
        rdir = self._resource_dir(resource_code)
        number = self._resolve(rdir, resource_code, version)
        vdir = rdir / version_dir_name(number)
        if not vdir.is_dir():
            raise NotFound(f"resource {resource_code} has no version {number}")
        try:
            manifest = self._load(rdir, resource_code, number)
        except StorageError as exc:
            return [exc.message]
        problems: list[str] = []
        for entry in manifest.files:
            problems.extend(_check_file(vdir / entry.path, entry, manifest.arrow_schema))
        listed = {f.path for f in manifest.files} | {MANIFEST_NAME}
        problems.extend(
            f"{p.name}: not listed in the manifest"
            for p in sorted(vdir.iterdir())
            if p.name not in listed
        )
        return problems

    def clean_staging(self, resource_code: str | None = None) -> list[Path]:
        """Remove what crashed writers left behind and return the staging directories removed.

        A staging directory is removed only if no live writer holds its lock, so this is safe
        while other writers (threads or processes) are running.
        """
        codes = [resource_code] if resource_code is not None else self.resource_codes()
        removed: list[Path] = []
        for code in codes:
            rdir = self._resource_dir(code)
            if not rdir.is_dir():
                continue
            for entry in sorted(rdir.iterdir()):
                name = entry.name
                if not name.startswith(STAGING_PREFIX) or name.endswith(".lock"):
                    continue
                lock_path = entry.with_name(name + ".lock")
                # A writer locks its lock file before creating its directory and removes the
                # file only after the directory is gone, so a directory without one is dead.
                fd = _fs.try_lock_existing(lock_path) if lock_path.exists() else -1
                if fd is None:
                    continue  # its writer is alive
                try:
                    if _remove_tree(entry):
                        removed.append(entry)
                    lock_path.unlink(missing_ok=True)
                finally:
                    if fd >= 0:
                        os.close(fd)
            self._remove_orphan_locks(rdir)
        return removed

    def _remove_orphan_locks(self, rdir: Path) -> None:
        for lock_path in rdir.glob(f"{STAGING_PREFIX}*.lock"):
            if lock_path.with_name(lock_path.name.removesuffix(".lock")).exists():
                continue
            fd = _fs.try_lock_existing(lock_path)
            if fd is not None:
                lock_path.unlink(missing_ok=True)
                os.close(fd)

    def _publish(
        self,
        resource_code: str,
        staging: Path,
        *,
        schema: pa.Schema,
        files: list[FileEntry],
        source: dict[str, Any],
        created_by: str | None,
    ) -> Manifest:
        """Number, describe and publish a fully written staging directory; return its manifest."""
        rdir = self._resource_dir(resource_code)
        try:
            with _fs.locked(rdir / LOCK):
                number = max(_version_numbers(rdir), default=0) + 1
                manifest = Manifest(
                    resource_code=resource_code,
                    version=number,
                    created_at=datetime.now(UTC),
                    created_by=created_by,
                    source=source,
                    row_count=sum(f.rows for f in files),
                    columns=schema_to_fields(schema),
                    files=files,
                    compression=self.options.compression,
                    checksum=files_checksum(files),
                )
                _fs.write_synced(staging / MANIFEST_NAME, manifest.model_dump_json(indent=2))
                _fs.fsync_dir(staging)
                # The commit point. rename() refuses a non-empty target, so a number can never
                # be given out twice even if the lock were bypassed.
                os.rename(staging, rdir / manifest.dir_name)
                _fs.fsync_dir(rdir)
                _fs.replace_synced(rdir / CURRENT, manifest.dir_name + "\n")
        except OSError as exc:
            raise StorageError(f"cannot publish a version of {resource_code}: {exc}") from exc
        return manifest

    def _resource_dir(self, resource_code: str, *, create: bool = False) -> Path:
        if not _CODE.match(resource_code):
            raise InvalidInput(
                f"resource code {resource_code!r} must be 1-128 letters, digits, '_', '-' or '.' "
                "and start with a letter or digit"
            )
        rdir = self.root / resource_code
        if create:
            try:
                rdir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create {rdir}: {exc}") from exc
        return rdir

    def _resolve(self, rdir: Path, resource_code: str, version: int | None) -> int:
        if version is not None:
            return version
        number = _read_current(rdir)
        if number is None:
            raise NotFound(f"resource {resource_code} has no current version")
        return number

    def _load(self, rdir: Path, resource_code: str, version: int) -> Manifest:
        path = rdir / version_dir_name(version) / MANIFEST_NAME
        try:
            manifest = Manifest.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise NotFound(f"resource {resource_code} has no version {version}") from None
        except (OSError, ValidationError) as exc:
            raise StorageError(f"manifest {path} cannot be read: {exc}") from exc
        if (manifest.resource_code, manifest.version) != (resource_code, version):
            raise StorageError(
                f"manifest {path} describes {manifest.resource_code} v{manifest.version}"
            )
        return manifest


def _version_numbers(rdir: Path) -> list[int]:
    if not rdir.is_dir():
        return []
    return [int(m[1]) for p in rdir.iterdir() if (m := _VERSION_DIR.match(p.name)) and p.is_dir()]


def _remove_tree(path: Path) -> bool:
    """Remove a directory tree; return False if it had already gone (committed meanwhile)."""
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return False
    return True


def _read_current(rdir: Path) -> int | None:
    try:
        text = (rdir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    match = _VERSION_DIR.match(text)
    if not match:
        raise StorageError(f"{rdir / CURRENT} holds {text[:40]!r}, not a version")
    return int(match[1])


def _check_file(path: Path, entry: FileEntry, schema: pa.Schema) -> list[str]:
    if not path.is_file():
        return [f"{entry.path}: missing"]
    problems = []
    size = path.stat().st_size
    if size != entry.bytes:
        problems.append(f"{entry.path}: {size} bytes, manifest says {entry.bytes}")
    if _fs.sha256_file(path) != entry.sha256:
        problems.append(f"{entry.path}: SHA-256 differs from the manifest")
    try:
        metadata = pq.read_metadata(path)
        found = metadata.schema.to_arrow_schema()
    except (OSError, pa.ArrowException) as exc:
        return [*problems, f"{entry.path}: not readable as Parquet ({exc})"]
    if metadata.num_rows != entry.rows:
        problems.append(f"{entry.path}: {metadata.num_rows} rows, manifest says {entry.rows}")
    if not found.equals(schema, check_metadata=False):
        problems.append(f"{entry.path}: schema differs from the manifest")
    return problems
