"""Loading data into a resource — 数据归集: a file or a database table becomes its next version.

A load streams its source in batches (``readers``) and checks each batch against the data items
(``validate``). Accepted rows go, with their row numbers, to a staging Arrow file and their keys
to a staging Parquet file; rejected rows go, with a reason each, to another. The engine then
finds duplicate keys over the whole file within a fixed memory limit (it spills to disk beyond
it); the second and later rows of a key are rejected, the first kept. Finally the accepted rows
stream into a new immutable version, and every rejected row into one CSV sorted by row; the
version's indexed row store (``engine.rowstore``) is built before it becomes current. Memory
holds a batch at a time, the engine's limited share and 16 bytes per duplicate — not the file.

``accepted + rejected = read`` always. A load either publishes a whole version or changes
nothing: any failure aborts the version, and the control database is the publication point —
readers take the current version from ``Resource.current_version``, which the load sets in the
caller's transaction. If that transaction rolls back, a hook records the failed load and puts
the store's ``CURRENT`` pointer back on the previous version.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import logging
import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from sqlalchemy import or_, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session

from haihe.catalogue import service
from haihe.catalogue.models import ItemKind, Load, LoadStatus, Resource, ResourceStatus
from haihe.catalogue.readers import open_reader
from haihe.catalogue.sources import LoadSource, Progress
from haihe.catalogue.validate import (
    ROW,
    ItemSpec,
    check_chunk,
    item_specs,
    match_columns,
    rejects_schema,
    staging_schema,
    version_schema,
)
from haihe.core.auth import Principal
from haihe.core.db import on_rollback, utcnow
from haihe.core.errors import Conflict, Forbidden, HaiheError, InvalidInput, StorageError
from haihe.core.settings import Settings
from haihe.engine import Manifest, VersionStore, make_engine, make_rowstore, make_store

if TYPE_CHECKING:
    from haihe.engine import Engine

__all__ = ["LoadSource", "Progress", "load_resource", "rejects_dir"]

log = logging.getLogger(__name__)
REJECTS_NAME = "rejects.csv"
ROLLED_BACK = "the load's transaction was rolled back; its version was not published"
_STAGING = "candidates.arrows"
_KEYS = "keys.parquet"
_ENGINE_MEMORY = 256 << 20  # bytes the engine may hold for a load; beyond them it spills
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_CHECKED = "rejected.parquet"
_DUPLICATES = "duplicates.parquet"


def rejects_dir(settings: Settings, code: str) -> Path:
    """Return the directory holding the rejects files of a resource's loads."""
    return settings.data_dir / "loads" / code


def load_resource(
    session: Session,
    *,
    actor: Principal,
    settings: Settings,
    code: str,
    source: LoadSource,
    progress: Progress | None = None,
) -> Load:
    """Load ``source`` into entry ``code`` as its new current version; return the Load.

    Forbidden unless the actor may load the entry's data (``service.can_load``); Conflict for a
    retired entry; InvalidInput naming the problem for a source that cannot be read or does not
    match the data items, in which case nothing changes. ``progress(done, total)`` is called
    with bytes for files and with rows (total None) for databases. Flushes, never commits.
    """
    resource = service.get_resource(session, actor=actor, code=code)
    if not service.can_load(actor, resource):
        raise Forbidden(
            f"only the provider's admins, operators and API clients load data into {code}"
        )
    if resource.status is ResourceStatus.RETIRED:
        raise Conflict(f"catalogue entry {code} is retired; it takes no more data")
    _refuse_own_database(source, settings)
    attempt = _Attempt(
        store=make_store(settings),
        resource_id=resource.id,
        code=code,
        previous=resource.current_version,
        actor=service.actor_label(actor),
        started_at=utcnow(),
        source={"format": source.format, "name": source.label},
    )
    on_rollback(session, attempt.after_rollback)
    try:
        done = _load(resource, settings, source, progress, attempt)
    except BaseException as exc:
        attempt.error = (
            exc.message if isinstance(exc, HaiheError) else f"{type(exc).__name__}: {exc}"
        )
        raise
    load = Load(
        resource_id=resource.id,
        version=done.manifest.version,
        status=LoadStatus.SUCCEEDED,
        source=attempt.source,
        rows_read=done.read,
        rows_accepted=done.accepted,
        rows_rejected=done.rejected,
        rejects_path=done.rejects_path,
        checksum=done.manifest.checksum,
        actor=attempt.actor,
        started_at=attempt.started_at,
        finished_at=utcnow(),
    )
    session.add(load)
    _make_current(session, resource, done.manifest)
    service.record_change(
        session,
        resource=resource,
        actor=actor,
        action="load",
        before={"version": attempt.previous},
        after={"version": done.manifest.version, "rows": done.accepted},
    )
    session.flush()
    return load


def _make_current(session: Session, resource: Resource, manifest: Manifest) -> None:
    """Make ``manifest``'s version the entry's current one — unless a newer one already is.

    Two loads of one entry may overlap: each publishes its own version, and whichever commits
    last would otherwise win even with the older data. The condition is checked by the
    database under the row's lock, so the newest version stays current whatever the order.
    """
    session.flush()
    session.execute(
        update(Resource)
        .where(
            Resource.id == resource.id,
            or_(
                Resource.current_version.is_(None),
                Resource.current_version < manifest.version,
            ),
        )
        .values(current_version=manifest.version, row_count=manifest.row_count, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.refresh(resource, ["current_version", "row_count", "updated_at"])


def _refuse_own_database(source: LoadSource, settings: Settings) -> None:
    """Refuse a database source that is Haihe's own control database or lies in DATA_DIR:
    a load reads a department's database, never the platform's accounts and tokens."""
    if source.format != "sql":
        return
    try:
        url, own = make_url(source.url or ""), make_url(settings.resolved_database_url)
    except ArgumentError:
        return  # the reader names the problem
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            return
        path = Path(url.database).resolve()
        refused = path.is_relative_to(settings.data_dir.resolve()) or (
            own.get_backend_name() == "sqlite" and path == Path(own.database or "").resolve()
        )
    else:
        where = (url.get_backend_name(), url.host, url.port, url.database)
        refused = where == (own.get_backend_name(), own.host, own.port, own.database)
    if refused:
        raise Forbidden("a load reads a department's database, not Haihe's own")


@dataclass
class _Attempt:
    """What a rollback needs to know about a load: enough to record it and undo its pointer."""

    store: VersionStore
    resource_id: int
    code: str
    previous: int | None
    actor: str
    started_at: datetime
    source: dict[str, Any]
    published: int | None = None
    error: str | None = None
    counts: tuple[int, int, int] = (0, 0, 0)
    rejects_path: str | None = None

    def after_rollback(self, session: Session) -> None:
        """Record the failed load; point the store back at the previous version if it moved."""
        if self.published is not None and self.previous is not None:
            try:
                self.store.set_current(self.code, self.previous)
            except HaiheError as exc:  # the database still names the previous version
                log.error("cannot restore CURRENT of %s to v%s: %s", self.code, self.previous, exc)
        read, accepted, rejected = self.counts
        session.add(
            Load(
                resource_id=self.resource_id,
                version=None,
                status=LoadStatus.FAILED,
                source=self.source,
                rows_read=read,
                rows_accepted=accepted if self.published else 0,
                rows_rejected=rejected,
                rejects_path=self.rejects_path,
                error=self.error or ROLLED_BACK,
                actor=self.actor,
                started_at=self.started_at,
                finished_at=utcnow(),
            )
        )


@dataclass
class _Done:
    manifest: Manifest
    read: int
    accepted: int
    rejected: int
    rejects_path: str | None


@dataclass
class _Staged:
    """The outcome of reading: counts and the staging files."""

    work: Path
    read: int = 0
    candidates: int = 0
    rejected: int = 0
    duplicates: int = 0
    dup_rows: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    dup_first: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))

    @property
    def accepted(self) -> int:
        return self.candidates - self.duplicates

    @property
    def reject_files(self) -> list[Path]:
        return [p for p in (self.work / _CHECKED, self.work / _DUPLICATES) if p.exists()]


def _load(
    resource: Resource,
    settings: Settings,
    source: LoadSource,
    progress: Progress | None,
    attempt: _Attempt,
) -> _Done:
    specs = item_specs(resource.items)
    staged = _Staged(rejects_dir(settings, resource.code) / uuid.uuid4().hex)
    keep_rejects = False
    try:
        staged.work.mkdir(parents=True)
        _stage(staged, source, specs, progress, attempt)
        keys = [s.name for s in specs if s.is_key]
        if keys and staged.candidates:
            _find_duplicates(settings, staged, keys)
        attempt.counts = (staged.read, staged.accepted, staged.rejected + staged.duplicates)
        if staged.read == 0:
            raise InvalidInput(f"{source.label} holds no data rows; nothing was loaded")
        if staged.accepted == 0:
            rejects = _write_rejects(settings, staged)
            attempt.rejects_path, keep_rejects = str(rejects), True
            raise InvalidInput(
                f"none of the {staged.read:,} rows of {source.label} was accepted "
                f"({_first_reason(rejects)}); see the rejects file {rejects}; nothing was loaded",
                details={"rejects_path": str(rejects)},
            )
        manifest = _publish(settings, staged, specs, attempt)
        _build_rowstore(settings, attempt.store, manifest, resource)
        return _Done(manifest, *attempt.counts, attempt.rejects_path)
    except OSError as exc:
        raise StorageError(f"cannot load {resource.code}: {exc}") from exc
    finally:
        for name in (_STAGING, _KEYS, _CHECKED, _DUPLICATES):
            (staged.work / name).unlink(missing_ok=True)
        work = staged.work
        failed = attempt.published is None
        if work.is_dir() and ((failed and not keep_rejects) or not any(work.iterdir())):
            shutil.rmtree(work, ignore_errors=True)


def _stage(
    staged: _Staged,
    source: LoadSource,
    specs: Sequence[ItemSpec],
    progress: Progress | None,
    attempt: _Attempt,
) -> None:
    """Read and check the whole source into staging files: accepted rows (Arrow IPC, cheap to
    write and read back), their keys (Parquet, for the engine) and rejected rows (Parquet)."""
    today = date.today()
    keys = [s for s in specs if s.is_key]
    reader = open_reader(source, progress)
    with contextlib.ExitStack() as files:
        files.callback(reader.close)
        order = match_columns(reader.names, specs, label=source.label)
        good = files.enter_context(
            pa.ipc.new_stream(
                staged.work / _STAGING,
                staging_schema(specs),
                options=pa.ipc.IpcWriteOptions(compression="lz4"),
            )
        )
        key_schema = staging_schema(keys)
        key_file = (
            files.enter_context(pq.ParquetWriter(staged.work / _KEYS, key_schema)) if keys else None
        )
        rejected: pq.ParquetWriter | None = None
        for chunk in reader.chunks(order):
            checked = check_chunk(chunk, specs, today=today)
            staged.read += len(chunk.rows) + len(chunk.broken)
            staged.candidates += checked.good.num_rows
            staged.rejected += checked.rejects.num_rows
            if checked.good.num_rows:
                good.write_batch(checked.good)
                if key_file is not None:
                    key_file.write_batch(checked.good.select(key_schema.names))
            if checked.rejects.num_rows:
                if rejected is None:
                    path, schema = staged.work / _CHECKED, rejects_schema(specs)
                    rejected = files.enter_context(pq.ParquetWriter(path, schema))
                rejected.write_batch(checked.rejects)
    attempt.source = {**reader.facts, "name": source.label}
    attempt.source.update(rows_read=staged.read)


def _find_duplicates(settings: Settings, staged: _Staged, keys: Sequence[str]) -> None:
    """Find the second and later rows of every key, with the row that keeps the key (the
    first): one engine pass over the keys; then memory holds 16 bytes per duplicate.

    The engine is held to ``_ENGINE_MEMORY`` (spilling to disk beyond it) and closed at once,
    so its memory neither grows with the file nor adds to the writing of the version.
    """
    import ibis  # like the engine itself, only when needed: it takes a second to import

    with _engine(settings) as engine:
        rows = engine.read_parquet([staged.work / _KEYS])
        repeated = engine.execute(
            rows.group_by(list(keys))
            .aggregate(_first=rows[ROW].min(), _copies=rows.count())
            .filter(lambda t: t["_copies"] > 1)
        )
        if not repeated.num_rows:
            return
        first = ibis.memtable(repeated.drop_columns(["_copies"]))
        joined = rows.join(first, list(keys))  # the repeated keys only: a small table
        later = joined.filter(joined[ROW] != joined["_first"]).select(ROW, "_first")
        found = engine.execute(later).sort_by(ROW)
    staged.dup_rows = found.column(ROW).to_numpy().astype(np.int64)
    staged.dup_first = found.column("_first").to_numpy().astype(np.int64)
    staged.duplicates = len(staged.dup_rows)


def _engine(settings: Settings) -> Engine:
    """Return an engine held to ``_ENGINE_MEMORY``, or to the configured limit if lower."""
    match = _MEMORY.match(settings.duckdb_memory_limit)
    if match:
        number, unit = float(match[1]), (match[2] or "B").upper()
        configured = number * 1024 ** "BKMGT".index(unit[0]) if unit != "B" else number
        if configured <= _ENGINE_MEMORY:
            return make_engine(settings)
    limit = f"{_ENGINE_MEMORY >> 20}MiB"
    return make_engine(settings.model_copy(update={"duckdb_memory_limit": limit}))


def _publish(
    settings: Settings, staged: _Staged, specs: Sequence[ItemSpec], attempt: _Attempt
) -> Manifest:
    """Stream the accepted rows into a new version, write the rejects file, then publish the
    version (CURRENT moves to it) and return its manifest."""
    schema = version_schema(specs)
    keys = [s.name for s in specs if s.is_key]
    read, accepted, rejected = attempt.counts
    if accepted + rejected != read:
        raise RuntimeError(f"a load lost count: read {read}, accepted {accepted}, {rejected=}")
    attempt.source.update(rows_rejected=rejected)
    with contextlib.ExitStack() as files:
        writer = files.enter_context(
            attempt.store.begin(
                attempt.code, schema=schema, source=attempt.source, created_by=attempt.actor
            )
        )
        duplicates: pq.ParquetWriter | None = None
        # read, not memory-mapped: mapped pages would count towards the load's resident memory
        staging = files.enter_context(pa.OSFile(str(staged.work / _STAGING)))
        for batch in files.enter_context(pa.ipc.open_stream(staging)):
            if staged.duplicates:
                batch, dups = _split_duplicates(batch, staged, specs, keys)
                if dups.num_rows:
                    if duplicates is None:
                        path, rschema = staged.work / _DUPLICATES, rejects_schema(specs)
                        duplicates = files.enter_context(pq.ParquetWriter(path, rschema))
                    duplicates.write_batch(dups)
            writer.write(pa.RecordBatch.from_arrays(batch.columns[1:], names=schema.names))
        if duplicates is not None:
            duplicates.close()
        if rejected:
            attempt.rejects_path = str(_write_rejects(settings, staged))
        manifest = writer.commit()
    attempt.published = manifest.version
    return manifest


def _build_rowstore(
    settings: Settings, store: VersionStore, manifest: Manifest, resource: Resource
) -> None:
    """Build the new version's indexed row store (keys, ID numbers) for point lookups, before
    the version becomes current; a failure fails the load."""
    make_rowstore(settings).build(
        store,
        manifest,
        keys=[i.name for i in resource.items if i.is_key],
        indexed=[i.name for i in resource.items if i.kind is ItemKind.ID_NUMBER],
    )


def _split_duplicates(
    batch: pa.RecordBatch, staged: _Staged, specs: Sequence[ItemSpec], keys: Sequence[str]
) -> tuple[pa.RecordBatch, pa.RecordBatch]:
    """Return (the rows to keep, the duplicate rows as rejects with their reasons)."""
    rows = batch.column(0).to_numpy(zero_copy_only=False)
    at = np.searchsorted(staged.dup_rows, rows).clip(0, len(staged.dup_rows) - 1)
    hit = staged.dup_rows[at] == rows
    dups = batch.filter(pa.array(hit))
    first = staged.dup_first[at[hit]]
    key_texts = [dups.column(k).cast(pa.string()).to_pylist() for k in keys]
    reasons = [
        "duplicate key "
        + ", ".join(f"{k}={v[i]}" for k, v in zip(keys, key_texts, strict=True))
        + f" (first on row {first[i]})"
        for i in range(dups.num_rows)
    ]
    texts = [dups.column(s.name).cast(pa.string()) for s in specs]
    rejects = pa.RecordBatch.from_arrays(
        [dups.column(0), pa.array(reasons, pa.string()), *texts], schema=rejects_schema(specs)
    )
    return batch.filter(pa.array(~hit)), rejects


def _write_rejects(settings: Settings, staged: _Staged) -> Path:
    """Write every rejected row, sorted by row, as CSV in UTF-8 with a BOM (Excel reads it)."""
    path = (staged.work / REJECTS_NAME).resolve()
    with _engine(settings) as engine:
        stream = engine.to_batches(engine.read_parquet(staged.reject_files).order_by(ROW))
        header = ["row", "reason", *stream.schema.names[2:]]
        schema = pa.schema([f.with_name(n) for f, n in zip(stream.schema, header, strict=True)])
        with path.open("wb") as fh, contextlib.closing(stream):
            fh.write(codecs.BOM_UTF8)
            with pcsv.CSVWriter(fh, schema) as writer:
                for batch in stream:
                    writer.write_batch(batch.rename_columns(header))
    return path


def _first_reason(path: Path) -> str:
    """Return "row N: reason" of the first rejected row in a rejects file."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = csv.reader(fh)
        next(rows, None)
        first = next(rows, None)
    return f"row {first[0]}: {first[1]}" if first else "see the rejects file"
