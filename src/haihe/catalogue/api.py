"""REST routes of the catalogue: /api/v1/catalogue/…"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from haihe.catalogue import loading, service, spreadsheet, versions
from haihe.catalogue import repository as repo
from haihe.catalogue.sample import sample_rows
from haihe.catalogue.schemas import (
    ChangeOut,
    CompareOut,
    LoadOut,
    ResourceIn,
    ResourceOut,
    ResourceUpdate,
    SearchResult,
    VersionOut,
    change_out,
    load_out,
)
from haihe.catalogue.search import Filters, search
from haihe.catalogue.topics import BASE_LIBRARIES, TOPICS
from haihe.core.errors import Forbidden, InvalidInput, NotFound
from haihe.core.settings import Settings
from haihe.core.web import AppSettings, CurrentPrincipal, DbSession

router = APIRouter(prefix="/api/v1/catalogue", tags=["catalogue"])
Code = Annotated[str, "catalogue entry code, e.g. 101-000001"]


class Classification(BaseModel):
    base_libraries: list[dict[str, str]]
    topics: list[dict[str, str]]


class SqlSource(BaseModel):
    url: str = Field(description="SQLAlchemy URL of the department's database.")
    table: str | None = Field(None, description="A table to read whole …")
    query: str | None = Field(None, description="… or one SELECT query.")


@router.get("/classification")
def classification(principal: CurrentPrincipal) -> Classification:
    """The base libraries and topics entries are classified by, with their codes."""
    return Classification(
        base_libraries=[
            {"value": lib.value, "code": "1" + c, "name_zh": zh, "name_en": en}
            for lib, (c, zh, en) in BASE_LIBRARIES.items()
        ],
        topics=[
            {"value": code, "code": "2" + code, "name_zh": zh, "name_en": en}
            for code, (zh, en) in TOPICS.items()
        ],
    )


@router.get("/resources")
def find(
    session: DbSession,
    principal: CurrentPrincipal,
    q: str | None = Query(None, description="Words in Chinese or English; all must match."),
    provider: str | None = Query(None, description="Provider org code."),
    base_library: str | None = None,
    topic: str | None = None,
    sharing_type: str | None = None,
    open_type: str | None = None,
    status: str | None = None,
    limit: int = Query(20, ge=1, le=200),
    offset: int = Query(0, ge=0),
) -> SearchResult:
    """Entries matching the words and filters, best first, with facet counts."""
    filters = Filters(
        provider=provider,
        base_library=base_library,
        topic=topic,
        sharing_type=sharing_type,
        open_type=open_type,
        status=status,
    )
    hits = search(session, actor=principal, q=q, filters=filters, limit=limit, offset=offset)
    return SearchResult(
        total=hits.total, limit=limit, offset=offset, items=hits.items, facets=hits.facets
    )


@router.post("/resources", status_code=201)
def create(session: DbSession, principal: CurrentPrincipal, body: ResourceIn) -> ResourceOut:
    """Describe a new entry (a draft until the platform admin publishes it)."""
    resource = service.create_resource(session, actor=principal, data=body)
    return service.describe(session, resource)


@router.get("/resources/{code}")
def show(session: DbSession, principal: CurrentPrincipal, code: Code) -> ResourceOut:
    return service.describe(session, service.get_resource(session, actor=principal, code=code))


@router.patch("/resources/{code}")
def update(
    session: DbSession, principal: CurrentPrincipal, code: Code, body: ResourceUpdate
) -> ResourceOut:
    resource = service.update_resource(session, actor=principal, code=code, data=body)
    return service.describe(session, resource)


@router.post("/resources/{code}/publish")
def publish(session: DbSession, principal: CurrentPrincipal, code: Code) -> ResourceOut:
    return service.describe(session, service.publish(session, actor=principal, code=code))


@router.post("/resources/{code}/retire")
def retire(session: DbSession, principal: CurrentPrincipal, code: Code) -> ResourceOut:
    return service.describe(session, service.retire(session, actor=principal, code=code))


@router.get("/resources/{code}/history")
def history(
    session: DbSession,
    principal: CurrentPrincipal,
    code: Code,
    limit: int = Query(100, ge=1, le=1000),
) -> list[ChangeOut]:
    """Who changed the entry, when, and what it was before and after."""
    return [
        change_out(c) for c in service.history(session, actor=principal, code=code, limit=limit)
    ]


@router.get("/resources/{code}/sample")
def sample(
    session: DbSession,
    settings: AppSettings,
    principal: CurrentPrincipal,
    code: Code,
    limit: int = Query(5, ge=1, le=20),
) -> list[dict[str, Any]]:
    """A few rows of the current version, masked by each item's sensitivity."""
    return sample_rows(session, actor=principal, settings=settings, code=code, limit=limit)


@router.post("/resources/{code}/loads", status_code=201)
def load_file(
    session: DbSession,
    settings: AppSettings,
    principal: CurrentPrincipal,
    code: Code,
    file: Annotated[UploadFile, File(description="CSV, Parquet or JSON Lines.")],
    format: Annotated[str | None, Form(description="csv, parquet or jsonl")] = None,
    encoding: Annotated[str | None, Form(description="utf-8, gbk or gb18030")] = None,
) -> LoadOut:
    """Load a file into the entry as its new current version; bad rows go to a rejects file."""
    path = _save_upload(settings, file)
    try:
        source = loading.LoadSource.for_file(
            path, format=format, encoding=encoding, original_name=file.filename
        )
        load = loading.load_resource(
            session, actor=principal, settings=settings, code=code, source=source
        )
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)
    return load_out(load, code)


@router.post("/resources/{code}/loads/sql", status_code=201)
def load_sql(
    session: DbSession,
    settings: AppSettings,
    principal: CurrentPrincipal,
    code: Code,
    body: SqlSource,
) -> LoadOut:
    """Load a table or query from the department's own database as the new current version.

    Only hosts listed in HAIHE_SOURCE_DATABASE_HOSTS are reached: a URL from a request must not
    let a caller probe the server's own network or files.
    """
    _check_source_host(settings, body.url)
    source = loading.LoadSource(format="sql", url=body.url, table=body.table, query=body.query)
    load = loading.load_resource(
        session, actor=principal, settings=settings, code=code, source=source
    )
    return load_out(load, code)


@router.get("/resources/{code}/loads")
def loads(session: DbSession, principal: CurrentPrincipal, code: Code) -> list[LoadOut]:
    resource = service.get_resource(session, actor=principal, code=code)
    return [load_out(x, code) for x in repo.loads_of(session, resource.id, limit=100)]


@router.get("/resources/{code}/loads/{load_id}/rejects")
def rejects(
    session: DbSession, principal: CurrentPrincipal, code: Code, load_id: int
) -> FileResponse:
    """The rejected rows of a load (CSV: row, reason, original values) — for the provider."""
    resource = service.get_resource(session, actor=principal, code=code)
    if not service.can_load(principal, resource):
        raise Forbidden("only the provider may read the rows it loaded")
    load = repo.load_by_id(session, resource.id, load_id)
    if load is None or not load.rejects_path or not Path(load.rejects_path).exists():
        raise NotFound(f"load {load_id} of {code} has no rejects file")
    return FileResponse(
        load.rejects_path,
        media_type="text/csv; charset=utf-8",
        filename=f"{code}-load{load_id}-rejects.csv",
    )


@router.get("/resources/{code}/versions")
def list_versions(
    session: DbSession, settings: AppSettings, principal: CurrentPrincipal, code: Code
) -> list[VersionOut]:
    return versions.list_versions(session, actor=principal, settings=settings, code=code)


@router.get("/resources/{code}/versions/compare")
def compare(
    session: DbSession,
    settings: AppSettings,
    principal: CurrentPrincipal,
    code: Code,
    from_version: int = Query(..., alias="from", ge=1),
    to_version: int = Query(..., alias="to", ge=1),
) -> CompareOut:
    """Rows added, removed and changed between two versions (matched on the key items)."""
    return versions.compare(
        session,
        actor=principal,
        settings=settings,
        code=code,
        from_version=from_version,
        to_version=to_version,
    )


@router.get("/export.json")
def export_json(session: DbSession, principal: CurrentPrincipal) -> dict[str, Any]:
    """Every entry the caller may see, in Haihe's catalogue JSON."""
    return spreadsheet.export_json(session, actor=principal)


@router.get("/export.xlsx")
def export_xlsx(session: DbSession, principal: CurrentPrincipal) -> Response:
    """Every entry the caller may see, as the catalogue workbook (资源目录, 信息项, 说明)."""
    body = spreadsheet.export_xlsx(session, actor=principal)
    return Response(
        body,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": 'attachment; filename="haihe-catalogue.xlsx"'},
    )


@router.post("/import")
def import_catalogue(
    session: DbSession,
    principal: CurrentPrincipal,
    file: Annotated[UploadFile, File(description="A catalogue workbook (.xlsx) or JSON.")],
    dry_run: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    """Create and update entries from a workbook or JSON; all or nothing, with a per-cell report."""
    data = file.file.read()
    name = (file.filename or "").lower()
    if name.endswith(".json"):
        report = spreadsheet.import_json(session, actor=principal, data=data, dry_run=dry_run)
    elif name.endswith(".xlsx"):
        report = spreadsheet.import_xlsx(session, actor=principal, data=data, dry_run=dry_run)
    else:
        raise InvalidInput("upload a .xlsx workbook or a .json file")
    return report.model_dump(mode="json")


def _check_source_host(settings: Settings, url: str) -> None:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise InvalidInput("url is not a database URL (dialect+driver://user@host/db)") from None
    host = parsed.host or ""
    if parsed.get_backend_name() == "sqlite" or host not in settings.source_database_hosts:
        allowed = ", ".join(settings.source_database_hosts) or "none"
        raise Forbidden(
            f"loading from {host or 'a local file'} is not allowed through the API "
            f"(HAIHE_SOURCE_DATABASE_HOSTS: {allowed}); ask the operator"
        )


def _save_upload(settings: Settings, upload: UploadFile) -> Path:
    folder = settings.data_dir / "uploads" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    name = Path(upload.filename or "upload").name or "upload"
    path = folder / name
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out, length=1 << 20)
    return path
