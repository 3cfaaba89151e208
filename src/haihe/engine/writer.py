"""VersionWriter — streams Arrow batches into the Parquet files of a version being staged.

Batches are gathered into row groups of ``row_group_rows`` rows (or ``row_group_bytes`` of Arrow
memory, whichever comes first) because Parquet writers start a new row group on every call and
small row groups make scans slow on every engine. A part file is closed after ``file_rows`` rows,
flushed to disk and hashed; ``commit()`` hands the staged files to the store, which publishes them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from haihe.core.errors import Conflict, InvalidInput, StorageError
from haihe.engine import _fs
from haihe.engine.manifest import FileEntry, Manifest

if TYPE_CHECKING:
    from haihe.engine.store import VersionStore

_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)


def write_table_atomic(table: pa.Table, path: Path, *, what: str, **options: Any) -> None:
    """Write ``table`` as one Parquet file at ``path`` (``options``: ``pq.write_table``'s),
    atomically and durably: under a temporary name beside it, flushed, then renamed into place,
    so a reader finds the whole file or none. StorageError naming ``what`` if it cannot."""
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, temp, **options)
        with temp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except (OSError, pa.ArrowException) as exc:
        temp.unlink(missing_ok=True)
        raise StorageError(f"cannot write {what}: {exc}") from None


class VersionWriter:
    """Writer of one new version of a resource; nothing is visible until ``commit()``.

    Use it as a context manager: leaving the block without committing, normally or by an
    exception, aborts and removes the staged files.
    """

    def __init__(
        self,
        store: VersionStore,
        resource_code: str,
        *,
        staging: Path,
        lock_fd: int,
        schema: pa.Schema,
        source: dict[str, Any],
        created_by: str | None,
    ) -> None:
        self.resource_code = resource_code
        self.schema = schema
        self._store = store
        self._staging = staging
        self._lock_fd: int | None = lock_fd
        self._source = source
        self._created_by = created_by
        self._options = store.options
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self._part: pq.ParquetWriter | None = None
        self._part_path: Path | None = None
        self._part_rows = 0
        self._files: list[FileEntry] = []
        self._rows = 0
        self._state = "open"

    @property
    def rows_written(self) -> int:
        """Return the number of rows accepted so far."""
        return self._rows + self._pending_rows

    def write(self, data: pa.RecordBatch | pa.Table) -> None:
        """Append a batch or table; its columns must match the schema by name and order.

        Values are cast to the version's portable types when that loses nothing; otherwise, or
        when a non-nullable column holds nulls, InvalidInput is raised and nothing is appended.
        """
        self._require_open()
        batches = data.to_batches() if isinstance(data, pa.Table) else [data]
        conformed = [self._conform(batch) for batch in batches if batch.num_rows]
        try:
            for batch in conformed:
                self._pending.append(batch)
                self._pending_rows += batch.num_rows
                self._pending_bytes += batch.nbytes
                if (
                    self._pending_rows >= self._options.row_group_rows
                    or self._pending_bytes >= self._options.row_group_bytes
                ):
                    self._flush(final=False)
        except OSError as exc:
            raise StorageError(f"cannot write {self.resource_code}: {exc}") from exc

    def commit(self) -> Manifest:
        """Finish the files, then publish the version atomically and return its manifest."""
        self._require_open()
        try:
            self._flush(final=True)
            if not self._files and self._part is None:
                # An empty version still has one file, so every reader learns its schema.
                self._open_part()
            self._close_part()
            manifest = self._store._publish(
                self.resource_code,
                self._staging,
                schema=self.schema,
                files=self._files,
                source=self._source,
                created_by=self._created_by,
            )
        except BaseException:
            self.abort()
            raise
        self._state = "committed"
        self._release()
        return manifest

    def abort(self) -> None:
        """Drop the staged files; calling it again, or after commit, does nothing."""
        if self._state != "open":
            return
        self._state = "aborted"
        if self._part is not None:
            try:
                self._part.close()
            except (OSError, *_ARROW_ERRORS):
                pass  # the files are being thrown away
            self._part = None
        shutil.rmtree(self._staging, ignore_errors=True)
        self._release()

    def __enter__(self) -> VersionWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()

    def _require_open(self) -> None:
        if self._state != "open":
            raise Conflict(f"the writer of {self.resource_code} is already {self._state}")

    def _release(self) -> None:
        if self._lock_fd is None:
            return
        # Remove the lock file while still holding the lock, so no cleaner can mistake a live
        # writer's staging directory for a dead one.
        self._staging.with_name(self._staging.name + ".lock").unlink(missing_ok=True)
        os.close(self._lock_fd)
        self._lock_fd = None

    def _conform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if batch.schema.names != self.schema.names:
            raise InvalidInput(
                f"columns {batch.schema.names} do not match the version's columns "
                f"{self.schema.names}",
            )
        for index, field in enumerate(self.schema):
            if not field.nullable and batch.column(index).null_count:
                raise InvalidInput(f"column {field.name!r} is not nullable but holds nulls")
        if not batch.schema.equals(self.schema, check_metadata=False):
            try:
                batch = batch.cast(self.schema, safe=True)
            except _ARROW_ERRORS as exc:
                raise InvalidInput(f"a batch does not fit the version's schema: {exc}") from exc
        return batch

    def _flush(self, *, final: bool) -> None:
        """Write whole row groups from the pending batches (all of them when ``final``)."""
        options = self._options
        if not self._pending:
            return
        table = pa.Table.from_batches(self._pending, schema=self.schema)
        by_bytes = self._pending_bytes >= options.row_group_bytes
        while table.num_rows and (final or by_bytes or table.num_rows >= options.row_group_rows):
            part = self._part or self._open_part()
            take = min(options.row_group_rows, options.file_rows - self._part_rows)
            chunk = table.slice(0, take)
            part.write_table(chunk, row_group_size=take)
            self._part_rows += chunk.num_rows
            self._rows += chunk.num_rows
            table = table.slice(chunk.num_rows)
            if self._part_rows >= options.file_rows:
                self._close_part()
        self._pending = table.to_batches()
        self._pending_rows = table.num_rows
        self._pending_bytes = table.nbytes if table.num_rows else 0

    def _open_part(self) -> pq.ParquetWriter:
        self._part_path = self._staging / f"part-{len(self._files):05d}.parquet"
        self._part = pq.ParquetWriter(
            self._part_path,
            self.schema,
            compression=self._options.compression,
            compression_level=self._options.compression_level,
            version="2.6",
            write_statistics=True,
        )
        self._part_rows = 0
        return self._part

    def _close_part(self) -> None:
        if self._part is None or self._part_path is None:
            return
        self._part.close()
        self._part = None
        sha256, size = _fs.sync_and_hash(self._part_path)
        self._files.append(
            FileEntry(path=self._part_path.name, rows=self._part_rows, bytes=size, sha256=sha256)
        )
        self._part_path = None
