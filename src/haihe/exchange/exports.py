"""Bulk exports — 批量导出: a grantee's file of a resource's current version, within its grant.

``create_export`` checks the request against the grant (mode bulk, items within the grant's,
filters only on granted items) and queues an ``ExportJob``; ``run_export`` — in the background
of the request that created it, or picked up by the periodic ``run_queued_exports`` after a
restart — reads the current version's Parquet with DuckDB, keeps the rows that meet the grant's
row scope AND the filters, projects the items, masks personal items the grant leaves masked
(vectorised: each distinct value is masked once), and writes ``DATA_DIR/exports/<id>.parquet``
or ``.csv`` (UTF-8 with BOM, so Excel reads the Chinese) with its SHA-256 and row count. The
file may be downloaded by the grantee's callers while the grant is in force, until it expires
(setting ``export_ttl_days``); ``remove_expired_exports`` deletes expired files.

Each finished export is audited (action ``exchange.export``, mode bulk, rows). Its subjects are
the keyed pseudonyms of the ID numbers in the exported rows when there are at most
``SUBJECT_LIMIT`` (10,000) rows; a larger export records only its row count, with the reason in
the entry's detail: listing millions of subjects per entry would make the ledger the bottleneck.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from haihe.audit import service as audit
from haihe.catalogue import service as catalogue
from haihe.catalogue.models import Resource, ResourceStatus, SharingMode
from haihe.core.auth import Principal
from haihe.core.db import on_rollback, transaction, utcnow
from haihe.core.errors import Conflict, Forbidden, HaiheError, InvalidInput, NotFound
from haihe.core.settings import Settings
from haihe.engine import make_store
from haihe.exchange import repository, service
from haihe.exchange.delivery import (
    Projection,
    Subjects,
    audit_actor,
    checked_request,
    deliverable,
    grant_in_force,
    projection,
    provider_code,
    read_rows,
)
from haihe.exchange.models import ExportJob, ExportStatus, Grant
from haihe.exchange.scope import Condition, check_conditions

log = logging.getLogger("haihe.exchange.exports")

FORMATS = ("parquet", "csv")
UTF8_BOM = b"\xef\xbb\xbf"


class Gone(HaiheError):
    """The thing existed but is no longer available (an expired export's file)."""

    status = 410
    code = "gone"


# ---------------------------------------------------------------- the requests of an export


def create_export(
    session: Session,
    *,
    actor: Principal,
    code: str,
    items: Sequence[str] | None,
    filters: Sequence[Condition | dict[str, Any]],
    format: str,
) -> ExportJob:
    """Queue an export of entry ``code`` for ``actor``'s organisation; return the job.

    Forbidden without a grant in force with mode bulk, or for items or filters outside it (the
    refusal is audited); Conflict when the entry is not published or holds no data.
    """
    if format not in FORMATS:
        raise InvalidInput(f"format {format!r}: use one of {', '.join(FORMATS)}")
    resource = catalogue.get_resource(session, actor=actor, code=code)
    if resource.status is not ResourceStatus.PUBLISHED:
        raise Conflict(f"catalogue entry {code} is not published")
    if resource.current_version is None:
        raise Conflict(f"catalogue entry {code} has no data loaded yet")
    try:
        grant = service.grant_for(session, actor=actor, resource=resource, mode=SharingMode.BULK)
        wanted, checked = checked_request(resource, grant, items=items, filters=filters)
    except Forbidden as exc:
        _audit_refusal(session, actor=actor, resource=resource, items=items, reason=exc.message)
        raise
    job = ExportJob(
        grant_id=grant.id,
        resource_code=resource.code,
        version=resource.current_version,
        requested_by=catalogue.actor_label(actor),
        format=format,
        items=wanted,
        filters=[c.model_dump(mode="json", exclude_none=True) for c in checked],
        status=ExportStatus.QUEUED,
    )
    session.add(job)
    session.flush()
    return job


def _audit_refusal(
    session: Session,
    *,
    actor: Principal,
    resource: Resource,
    items: Sequence[str] | None,
    reason: str,
) -> None:
    provider = provider_code(session, resource)

    def record(after: Session) -> None:
        audit.record(
            after,
            actor=actor,
            action="exchange.export",
            outcome="refused",
            resource_code=resource.code,
            provider_code=provider,
            items=list(items or ()),
            mode=SharingMode.BULK.value,
            detail={"reason": reason},
        )

    on_rollback(session, record)


def list_exports(session: Session, *, actor: Principal, limit: int = 200) -> Sequence[ExportJob]:
    """The exports of the actor's organisation, newest first."""
    if actor.org_id is None:
        return []
    return session.scalars(
        select(ExportJob)
        .join(Grant, Grant.id == ExportJob.grant_id)
        .where(Grant.consumer_org_id == actor.org_id)
        .order_by(ExportJob.id.desc())
        .limit(limit)
    ).all()


def get_export(session: Session, *, actor: Principal, export_id: int) -> ExportJob:
    """Export ``export_id`` if it belongs to the actor's organisation; else NotFound/Forbidden."""
    job = session.get(ExportJob, export_id)
    if job is None:
        raise NotFound(f"export {export_id} does not exist")
    grant = session.get(Grant, job.grant_id)
    if grant is None or actor.org_id is None or grant.consumer_org_id != actor.org_id:
        raise Forbidden(f"export {export_id} belongs to another organisation")
    return job


def cancel_export(session: Session, *, actor: Principal, export_id: int) -> ExportJob:
    """Cancel a queued or running export (a running one stops at its next batch)."""
    job = get_export(session, actor=actor, export_id=export_id)
    if job.status not in (ExportStatus.QUEUED, ExportStatus.RUNNING):
        raise Conflict(f"export {export_id} is {job.status.value}; only a queued or running one")
    job.status = ExportStatus.CANCELLED
    job.finished_at = utcnow()
    session.flush()
    return job


def open_download(
    session: Session, *, actor: Principal, export_id: int, now: dt.datetime | None = None
) -> tuple[ExportJob, Path]:
    """Return a finished export and its file for the grantee, auditing the download.

    Forbidden unless the actor's organisation (and system, for a grant naming one) still holds
    the grant in force; Gone after the export expired; Conflict while it is not finished.
    """
    at = now or utcnow()
    job = get_export(session, actor=actor, export_id=export_id)
    grant = session.get(Grant, job.grant_id)
    assert grant is not None  # get_export found it
    in_force = repository.grants_in_force(
        session,
        resource_id=grant.resource_id,
        org_id=grant.consumer_org_id,
        system_id=actor.system_id,
        now=at,
    )
    if grant.id not in {g.id for g in in_force}:
        raise Forbidden(f"the grant of export {export_id} is no longer in force for this caller")
    if job.status is ExportStatus.EXPIRED or (job.expires_at is not None and job.expires_at <= at):
        raise Gone(f"export {export_id} expired; run a new export")
    if job.status is not ExportStatus.SUCCEEDED or job.path is None:
        raise Conflict(f"export {export_id} is {job.status.value}, not ready to download")
    path = Path(job.path)
    if not path.is_file():
        raise Gone(f"the file of export {export_id} is gone; run a new export")
    resource = session.get(Resource, grant.resource_id)
    assert resource is not None
    audit.record(
        session,
        actor=actor,
        action="exchange.export.download",
        resource_code=job.resource_code,
        provider_code=provider_code(session, resource),
        items=job.items,
        purpose=grant.purpose,
        mode=SharingMode.BULK.value,
        rows=job.rows or 0,
        detail={"export_id": job.id, "checksum": job.checksum},
    )
    return job, path


# ---------------------------------------------------------------- running an export


@dataclass(frozen=True)
class _Plan:
    export_id: int
    code: str
    paths: list[Path]
    view: Projection
    conditions: list[Condition]
    format: str


class _Cancelled(Exception):
    pass


def run_export(
    session_factory: sessionmaker[Session],
    *,
    settings: Settings,
    export_id: int,
    actor: Principal | None = None,
) -> ExportStatus | None:
    """Run a queued export to its end; return its final status (None if it was not queued).

    An edge of its own (like a CLI command): it commits the claim, then the outcome, and audits
    the result as ``actor`` (the requester; rebuilt from the job when run after a restart).
    """
    with transaction(session_factory) as session:
        claimed = session.execute(
            update(ExportJob)
            .where(ExportJob.id == export_id, ExportJob.status == ExportStatus.QUEUED)
            .values(status=ExportStatus.RUNNING, started_at=utcnow())
        )
        if not getattr(claimed, "rowcount", 0):
            return None
        plan = _plan(session, settings, export_id)
    if isinstance(plan, str):
        _finish(session_factory, settings, export_id, actor, error=plan)
        return ExportStatus.FAILED
    target = settings.data_dir / "exports" / f"{export_id}.{plan.format}"
    try:
        rows, subjects = _write(settings, plan, target, _stopper(session_factory, export_id))
    except _Cancelled:
        target.unlink(missing_ok=True)
        return ExportStatus.CANCELLED
    except Exception as exc:  # the job records any failure; the server log has the trace
        target.unlink(missing_ok=True)
        error = exc.message if isinstance(exc, HaiheError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, HaiheError):
            log.exception("export %s failed", export_id)
        _finish(session_factory, settings, export_id, actor, error=error)
        return ExportStatus.FAILED
    return _finish(
        session_factory, settings, export_id, actor, target=target, rows=rows, subjects=subjects
    )


def _plan(session: Session, settings: Settings, export_id: int) -> _Plan | str:
    """What to read for the export, or why it cannot run."""
    job = session.get(ExportJob, export_id)
    assert job is not None
    grant = session.get(Grant, job.grant_id)
    resource = session.get(Resource, grant.resource_id) if grant else None
    if grant is None or resource is None or not grant_in_force(grant, utcnow()):
        return "the grant is no longer in force"
    if resource.current_version is None:
        return f"catalogue entry {resource.code} has no data loaded"
    job.version = resource.current_version
    store = make_store(settings)
    manifest = store.manifest(resource.code, resource.current_version)
    conditions = check_conditions([*grant.scope, *job.filters], resource.items)
    return _Plan(
        export_id=export_id,
        code=resource.code,
        paths=[Path(p) for p in store.paths(manifest)],
        view=projection(resource, grant, job.items),
        conditions=conditions,
        format=job.format,
    )


def _stopper(session_factory: sessionmaker[Session], export_id: int) -> Callable[[], bool]:
    def cancelled() -> bool:
        with session_factory() as session:
            status = session.scalar(select(ExportJob.status).where(ExportJob.id == export_id))
        return status is ExportStatus.CANCELLED

    return cancelled


def _write(
    settings: Settings, plan: _Plan, target: Path, cancelled: Callable[[], bool]
) -> tuple[int, Subjects]:
    """Write the export's file under a temporary name, then rename it; return rows, subjects."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    subjects = Subjects()
    writer: _FileWriter | None = None
    try:
        for batch in read_rows(settings, plan.paths, plan.view, plan.conditions):
            if cancelled():
                raise _Cancelled
            subjects.add(batch, plan.view)
            out = deliverable(batch, plan.view)
            if writer is None:
                writer = _FileWriter(partial, plan.format, out.schema)
            writer.write(out)
        if writer is None:  # no rows: still a file with the columns
            schema = pa.schema([pa.field(n, pa.string()) for n in plan.view.items])
            writer = _FileWriter(partial, plan.format, schema)
        writer.close()
        os.replace(partial, target)
    finally:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
    return subjects.rows, subjects


class _FileWriter:
    def __init__(self, path: Path, format: str, schema: pa.Schema) -> None:
        self._closed = False
        self._sink = path.open("wb")
        if format == "csv":
            self._sink.write(UTF8_BOM)
            self._csv: pacsv.CSVWriter | None = pacsv.CSVWriter(self._sink, schema)
            self._parquet: pq.ParquetWriter | None = None
        else:
            self._csv = None
            self._parquet = pq.ParquetWriter(self._sink, schema, compression="zstd")

    def write(self, batch: pa.RecordBatch) -> None:
        if self._csv is not None:
            self._csv.write_batch(batch)
        elif self._parquet is not None:
            self._parquet.write_batch(batch)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._csv is not None:
            self._csv.close()
        if self._parquet is not None:
            self._parquet.close()
        self._sink.close()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _finish(
    session_factory: sessionmaker[Session],
    settings: Settings,
    export_id: int,
    actor: Principal | None,
    *,
    error: str | None = None,
    target: Path | None = None,
    rows: int = 0,
    subjects: Subjects | None = None,
) -> ExportStatus:
    """Record the outcome of a run and audit it; a job cancelled meanwhile stays cancelled."""
    with transaction(session_factory) as session:
        job = session.get(ExportJob, export_id, with_for_update=True)
        assert job is not None
        if job.status is ExportStatus.CANCELLED:
            if target is not None:
                target.unlink(missing_ok=True)
            return ExportStatus.CANCELLED
        grant = session.get(Grant, job.grant_id)
        resource = session.get(Resource, grant.resource_id) if grant else None
        assert grant is not None
        assert resource is not None
        job.finished_at = utcnow()
        view = projection(resource, grant, job.items)
        detail: dict[str, Any] = {"export_id": job.id, "version": job.version}
        if error is not None or target is None:
            job.status, job.error = ExportStatus.FAILED, error
            detail["error"] = error
        else:
            job.status = ExportStatus.SUCCEEDED
            job.rows, job.path = rows, str(target)
            job.size_bytes, job.checksum = target.stat().st_size, sha256_of(target)
            job.expires_at = job.finished_at + dt.timedelta(days=settings.export_ttl_days)
            detail.update(format=job.format, checksum=job.checksum)
        if subjects is not None:
            detail["subjects"] = subjects.note()
        audit.record(
            session,
            actor=actor or audit_actor(session, grant, job.requested_by),
            action="exchange.export",
            outcome="ok" if job.status is ExportStatus.SUCCEEDED else "error",
            resource_code=resource.code,
            provider_code=provider_code(session, resource),
            items=job.items,
            purpose=grant.purpose,
            mode=SharingMode.BULK.value,
            rows=rows,
            subjects=subjects.pseudonyms(settings) if subjects else (),
            personal=view.personal,
            detail=detail,
        )
        return job.status


# A running export is taken to have died with its process after this long (the largest export
# measured here, 750,000 rows, took about a second; tens of millions take minutes).
STALE_AFTER = dt.timedelta(hours=1)


def run_queued_exports(
    session_factory: sessionmaker[Session],
    *,
    settings: Settings,
    limit: int = 10,
    now: dt.datetime | None = None,
) -> int:
    """Run exports still queued, and again those left running by a process that stopped more
    than ``STALE_AFTER`` ago (their partial file is overwritten); return how many ran."""
    with transaction(session_factory) as session:
        session.execute(
            update(ExportJob)
            .where(
                ExportJob.status == ExportStatus.RUNNING,
                ExportJob.started_at < (now or utcnow()) - STALE_AFTER,
            )
            .values(status=ExportStatus.QUEUED, started_at=None)
        )
    with session_factory() as session:
        ids = session.scalars(
            select(ExportJob.id)
            .where(ExportJob.status == ExportStatus.QUEUED)
            .order_by(ExportJob.id)
            .limit(limit)
        ).all()
    done = 0
    for export_id in ids:
        if run_export(session_factory, settings=settings, export_id=export_id) is not None:
            done += 1
    return done


def remove_expired_exports(session: Session, *, now: dt.datetime) -> int:
    """Delete the files of exports past their expiry and mark them expired; return how many."""
    jobs = session.scalars(
        select(ExportJob).where(
            ExportJob.status == ExportStatus.SUCCEEDED, ExportJob.expires_at <= now
        )
    ).all()
    for job in jobs:
        if job.path:
            Path(job.path).unlink(missing_ok=True)
        job.status, job.path = ExportStatus.EXPIRED, None
    session.flush()
    return len(jobs)
