"""Bulk exports under /api/v1/exchange: export jobs and their downloads."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Path, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from haihe.core.web import AppSettings, CurrentPrincipal, DbSession
from haihe.exchange import exports
from haihe.exchange.models import ExportJob
from haihe.exchange.scope import Condition

router = APIRouter(prefix="/api/v1/exchange", tags=["exchange exports"])
ExportId = Annotated[int, Path(description="Export job id.")]


class ExportIn(BaseModel):
    """What to export: items (all granted ones when empty), filters and the file format."""

    items: list[str] = Field(
        default_factory=list, description="Data items to export; empty means every granted item."
    )
    filters: list[Condition] = Field(
        default_factory=list,
        description="Conditions on granted items, applied with the grant's row scope.",
    )
    format: Literal["parquet", "csv"] = Field("parquet", description="File format.")


class ExportOut(BaseModel):
    """An export job — 批量导出任务 — and, once finished, its file."""

    id: int
    resource_code: str
    version: int | None
    format: str
    items: list[str]
    filters: list[dict[str, object]]
    status: str
    rows: int | None
    size_bytes: int | None
    checksum: str | None
    error: str | None
    requested_by: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    expires_at: dt.datetime | None
    download_url: str | None


def export_out(job: ExportJob) -> ExportOut:
    ready = job.status.value == "succeeded"
    return ExportOut(
        id=job.id,
        resource_code=job.resource_code,
        version=job.version,
        format=job.format,
        items=job.items,
        filters=job.filters,
        status=job.status.value,
        rows=job.rows,
        size_bytes=job.size_bytes,
        checksum=job.checksum,
        error=job.error,
        requested_by=job.requested_by,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        expires_at=job.expires_at,
        download_url=f"/api/v1/exchange/exports/{job.id}/download" if ready else None,
    )


@router.post("/{code}/exports", status_code=202, response_model=ExportOut)
def create_export(
    code: str,
    data: ExportIn,
    request: Request,
    background: BackgroundTasks,
    session: DbSession,
    settings: AppSettings,
    actor: CurrentPrincipal,
) -> ExportOut:
    """Queue a bulk export of a resource's current version under the caller's bulk grant.

    The job runs in the background; poll GET /api/v1/exchange/exports/{id} until it succeeds,
    then download its file.
    """
    job = exports.create_export(
        session,
        actor=actor,
        code=code,
        items=data.items,
        filters=data.filters,
        format=data.format,
    )
    session.commit()  # the background run starts after the response; it must see the job
    background.add_task(
        exports.run_export,
        request.app.state.session_factory,
        settings=settings,
        export_id=job.id,
        actor=actor,
    )
    return export_out(job)


@router.get("/exports", response_model=list[ExportOut])
def list_exports(session: DbSession, actor: CurrentPrincipal) -> list[ExportOut]:
    """The exports of the caller's organisation, newest first."""
    return [export_out(job) for job in exports.list_exports(session, actor=actor)]


@router.get("/exports/{export_id}", response_model=ExportOut)
def get_export(export_id: ExportId, session: DbSession, actor: CurrentPrincipal) -> ExportOut:
    """One export of the caller's organisation."""
    return export_out(exports.get_export(session, actor=actor, export_id=export_id))


@router.post("/exports/{export_id}/cancel", response_model=ExportOut)
def cancel_export(export_id: ExportId, session: DbSession, actor: CurrentPrincipal) -> ExportOut:
    """Cancel a queued or running export."""
    return export_out(exports.cancel_export(session, actor=actor, export_id=export_id))


@router.get(
    "/exports/{export_id}/download",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_export(
    export_id: ExportId, session: DbSession, actor: CurrentPrincipal
) -> FileResponse:
    """The export's file, streamed, with its SHA-256 in ``X-Checksum-SHA256``.

    Only for the grantee organisation's callers while the grant is in force; 410 once the
    export has expired.
    """
    job, path = exports.open_download(session, actor=actor, export_id=export_id)
    session.commit()  # the download is audited before a byte leaves
    media = "text/csv; charset=utf-8" if job.format == "csv" else "application/vnd.apache.parquet"
    return FileResponse(
        path,
        media_type=media,
        filename=f"{job.resource_code}-export-{job.id}.{job.format}",
        headers={"X-Checksum-SHA256": job.checksum or ""},
    )
