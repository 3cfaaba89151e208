"""REST routes of grid governance under /api/v1/governance: grids, categories, events and their
workflow, whistles, photos, notifications, statistics, Open311 keys."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from haihe.core.db import transaction, utcnow
from haihe.core.errors import Forbidden, InvalidInput, NotFound
from haihe.core.i18n import request_language
from haihe.core.web import (
    AppSettings,
    CurrentPrincipal,
    DbSession,
    get_optional_principal,
    get_principal,
)
from haihe.governance import (
    categories,
    deadlines,
    grids,
    intake,
    keys,
    photos,
    service,
    statistics,
    workflow,
)
from haihe.governance import repository as repo
from haihe.governance.models import Area, AreaLevel, EventStatus
from haihe.governance.repository import EventFilter
from haihe.governance.schemas import (
    ActionIn,
    AreaOut,
    CategoryIn,
    CategoryOut,
    EventIn,
    EventOut,
    EventPage,
    GridImportOut,
    NotificationOut,
    Open311KeyIn,
    Open311KeyOut,
    Open311KeyWithSecret,
    ReportBackIn,
    SummonsOut,
    WhistleIn,
)
from haihe.governance.transitions import Action

router = APIRouter(prefix="/api/v1/governance", tags=["governance"])
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size (at most 1000).")]
Offset = Annotated[int, Query(ge=0, description="Items to skip.")]
MAX_GEOJSON_BYTES = 200 * 1024 * 1024


def area_out(area: Area, codes: dict[int, str] | None = None) -> AreaOut:
    return AreaOut(
        code=area.code,
        level=area.level,
        name_zh=area.name_zh,
        name_en=area.name_en,
        parent_code=(codes or {}).get(area.parent_id or 0),
        bbox=(area.min_lng, area.min_lat, area.max_lng, area.max_lat),
        centre=(area.centre_lng, area.centre_lat),
    )


# ---------------------------------------------------------------- grids


@router.post("/grids/import")
def import_grids(
    session: DbSession,
    principal: CurrentPrincipal,
    level: Annotated[AreaLevel, Query(description="district, street, community or cell")],
    file: Annotated[UploadFile, File(description="A GeoJSON FeatureCollection of one level.")],
) -> GridImportOut:
    """Import one level of the grid map from a GeoJSON FeatureCollection; import districts,
    streets, communities and cells in that order (the platform admin)."""
    if not principal.is_platform_admin:
        raise Forbidden("only the platform admin may import grids")
    body = file.file.read(MAX_GEOJSON_BYTES + 1)
    if len(body) > MAX_GEOJSON_BYTES:
        raise InvalidInput("the GeoJSON is larger than 200 MB; split it")
    return grids.import_geojson(session, actor=principal, data=body, level=level)


@router.get("/areas")
def list_areas(
    session: DbSession,
    principal: CurrentPrincipal,
    level: AreaLevel | None = None,
    parent: str | None = Query(None, description="Only the children of this area code."),
    q: str | None = Query(None, max_length=100),
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[AreaOut]:
    """Areas of the grid map (any signed-in caller)."""
    rows, _total = grids.list_areas(
        session, level=level, parent_code=parent, q=q, limit=limit, offset=offset
    )
    parents = repo.areas_by_ids(session, [r.parent_id for r in rows if r.parent_id])
    codes = {a.id: a.code for a in parents.values()}
    return [area_out(a, codes) for a in rows]


@router.get("/areas.geojson")
def areas_geojson(
    session: DbSession,
    principal: CurrentPrincipal,
    level: AreaLevel = AreaLevel.DISTRICT,
    within: str | None = Query(None, description="Only inside this district or street."),
) -> dict[str, Any]:
    """The areas of one level as GeoJSON (for maps)."""
    return grids.area_geojson(session, level=level, within=within)


@router.put("/cells/{cell_code}/workers/{username}", status_code=204)
def assign_worker(
    session: DbSession, principal: CurrentPrincipal, cell_code: str, username: str
) -> None:
    """Assign a grid worker to a cell (the platform admin or the area's org admin)."""
    grids.assign_worker(session, actor=principal, cell_code=cell_code, username=username)


@router.delete("/cells/{cell_code}/workers/{username}", status_code=204)
def unassign_worker(
    session: DbSession, principal: CurrentPrincipal, cell_code: str, username: str
) -> None:
    grids.unassign_worker(session, actor=principal, cell_code=cell_code, username=username)


# ---------------------------------------------------------------- categories


@router.get("/categories")
def list_categories(session: DbSession, principal: CurrentPrincipal) -> list[CategoryOut]:
    """The event categories in use, with their command level, department and deadline."""
    return [CategoryOut.model_validate(c) for c in categories.list_categories(session)]


@router.put("/categories/{code}")
def put_category(
    session: DbSession, principal: CurrentPrincipal, code: str, body: CategoryIn
) -> CategoryOut:
    """Create or replace a category (the platform admin)."""
    row = categories.put_category(session, actor=principal, code=code, data=body)
    return CategoryOut.model_validate(row)


# ---------------------------------------------------------------- events


def _full(request: Request, session: DbSession, principal: Any, event_id: int) -> EventOut:
    event = service.get_event(session, actor=principal, event_id=event_id)
    lang = request_language(request)
    return service.describe(session, [event], actor=principal, lang=lang, full=True)[0]


def _report(request: Request, body: EventIn) -> EventOut:
    """Authenticate and take one event in its own transaction, committed before the answer.

    The hot path of intake (the 12345 hotline, sensors, patrols), so like the query gateway it
    skips the generic dependencies: one hop to a worker thread, where a dependency per step
    took several; the write lock is taken and left by that same thread, and left before the
    answer is built.
    """
    with transaction(request.app.state.session_factory) as session:
        principal = get_principal(get_optional_principal(request, session))
        settings = request.app.state.settings
        new = intake.take(session, actor=principal, settings=settings, data=body)
        # commit before describing: the write lock is left as soon as the writes are in
        session.commit()
        return service.describe_new(
            session,
            new.event,
            actor=principal,
            category=new.category,
            step=new.step,
            photos=new.photos,
            lang=request_language(request),
        )


@router.post("/events", status_code=201, response_model=EventOut)
async def report(request: Request, body: EventIn) -> Response:
    """Report an event — 事件上报. It is placed in its cell, community, street and district and
    sent to its category's command centre with a deadline; 422 outside every cell."""
    if request.app.state.engine.dialect.name == "sqlite":
        # in-process and CPU-bound, one writer at a time: a worker thread would only add
        # contention for the interpreter and queue writers behind each other (as the gateway)
        view = _report(request, body)
    else:
        view = await run_in_threadpool(_report, request, body)
    # the view is already checked: serialise it once, not validate it again as the response
    return Response(view.model_dump_json(), status_code=201, media_type="application/json")


@router.post("/events/{event_id}/photos", status_code=201)
def add_photos(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    principal: CurrentPrincipal,
    event_id: int,
    files: Annotated[list[UploadFile], File(description="JPEG, PNG or WebP photos.")],
) -> EventOut:
    """Add photos (decoded before anything is kept; not an image or too big: 422)."""
    limit = settings.governance_photo_max_bytes
    data = [(f.filename or "photo", f.file.read(limit + 1)) for f in files]
    intake.add_photos(session, actor=principal, settings=settings, event_id=event_id, files=data)
    return _full(request, session, principal, event_id)


@router.get("/events")
def list_events(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    status: Annotated[list[EventStatus] | None, Query()] = None,
    category: Annotated[list[str] | None, Query()] = None,
    area: str | None = Query(None, description="Only in this area (any level)."),
    unit: str | None = Query(None, description="Only dispatched to this organisation."),
    overdue: bool | None = None,
    order: str = Query("newest", pattern="^(newest|oldest|due)$"),
    limit: Limit = 100,
    offset: Offset = 0,
) -> EventPage:
    """The events the caller sees, newest first (or ``order=due``: earliest deadline first)."""
    area_id = grids.get_area(session, code=area).id if area else None
    rows, total = repo.list_events(
        session,
        scope=service.scope_for(session, principal),
        where=EventFilter(
            statuses=tuple(status or ()),
            category_codes=tuple(category or ()),
            area_id=area_id,
            unit_code=unit,
            overdue=overdue,
        ),
        order=order,
        limit=limit,
        offset=offset,
    )
    items = service.describe(session, rows, actor=principal, lang=request_language(request))
    return EventPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/events/{event_id}")
def show_event(
    request: Request, session: DbSession, principal: CurrentPrincipal, event_id: int
) -> EventOut:
    """One event with its photos, history and summons."""
    return _full(request, session, principal, event_id)


@router.post("/events/{event_id}/actions/{action}")
def act(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    event_id: int,
    action: Action,
    body: ActionIn,
) -> EventOut:
    """Move an event on: accept, dispatch, start, return, escalate, reassign, resolve,
    evaluate, reopen, close. 409 names the allowed actions when its state forbids this one."""
    workflow.act(session, actor=principal, event_id=event_id, action=action, data=body)
    return _full(request, session, principal, event_id)


@router.post("/events/{event_id}/whistle", status_code=201)
def whistle(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    event_id: int,
    body: WhistleIn,
) -> EventOut:
    """Blow the whistle (吹哨): the street summons departments, each with its own deadline."""
    workflow.blow_whistle(session, actor=principal, event_id=event_id, data=body)
    return _full(request, session, principal, event_id)


@router.post("/summons/{summons_id}/report")
def report_back(
    session: DbSession, principal: CurrentPrincipal, summons_id: int, body: ReportBackIn
) -> SummonsOut:
    """A summoned department reports back (报到)."""
    done = workflow.report_back(session, actor=principal, summons_id=summons_id, data=body)
    return SummonsOut.model_validate(done)


@router.get("/summons")
def my_summons(
    session: DbSession, principal: CurrentPrincipal, limit: Limit = 100
) -> list[SummonsOut]:
    """Summons awaiting the caller's department's report-back, earliest deadline first."""
    if principal.org_code is None and not principal.is_platform_admin:
        raise Forbidden("summons are answered by departments")
    department = None if principal.is_platform_admin else principal.org_code
    rows = repo.open_summons(session, department_code=department, limit=limit)
    return [SummonsOut.model_validate(s) for s in rows]


@router.get("/photos/{photo_id}")
def photo(
    session: DbSession, settings: AppSettings, principal: CurrentPrincipal, photo_id: int
) -> FileResponse:
    """A photo's file (whoever sees its event)."""
    row = repo.photo_by_id(session, photo_id)
    if row is None:
        raise NotFound(f"photo {photo_id} does not exist")
    service.get_event(session, actor=principal, event_id=row.event_id)
    return FileResponse(photos.photo_file(settings, row), media_type=row.media_type)


@router.get("/notifications")
def notifications(
    session: DbSession, principal: CurrentPrincipal, limit: Limit = 100
) -> list[NotificationOut]:
    """Reminders, overdue notices, supervision orders and summons for the caller's
    organisation, newest first (all of them for the platform admin)."""
    if principal.is_platform_admin:
        rows = repo.notifications_for(session, org_codes=None, limit=limit)
    elif principal.org_code is None:
        raise Forbidden("notifications go to organisations")
    else:
        rows = repo.notifications_for(session, org_codes=[principal.org_code], limit=limit)
    return [NotificationOut.model_validate(n) for n in rows]


@router.post("/deadlines/scan")
def scan(session: DbSession, settings: AppSettings, principal: CurrentPrincipal) -> dict[str, str]:
    """Run the deadline scan now (the platform admin; it also runs every few minutes)."""
    if not principal.is_platform_admin:
        raise Forbidden("only the platform admin runs the deadline scan by hand")
    return {"result": deadlines.scan_deadlines(session, settings=settings, now=utcnow())}


# ---------------------------------------------------------------- statistics


def _period(first: dt.date | None, last: dt.date | None) -> tuple[dt.date, dt.date]:
    end = last or service.china_day(utcnow())
    return first or end - dt.timedelta(days=29), end


@router.get("/statistics")
def stats(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    principal: CurrentPrincipal,
    first: dt.date | None = Query(None, alias="from", description="First report day."),
    last: dt.date | None = Query(None, alias="to", description="Last report day."),
    area: str | None = Query(None, description="A district or street code."),
) -> dict[str, Any]:
    """Figures for the events reported in a period (default: the last 30 days), as they stand
    now: by status, category, source, area and day; on-time rate, average handling hours,
    satisfaction. A district's or street's staff see their own area."""
    start, end = _period(first, last)
    return statistics.summary(
        session,
        actor=principal,
        settings=settings,
        first=start,
        last=end,
        area_code=area,
        lang=request_language(request),
    )


@router.get("/statistics/heatmap")
def heat(
    session: DbSession,
    settings: AppSettings,
    principal: CurrentPrincipal,
    first: dt.date | None = Query(None, alias="from"),
    last: dt.date | None = Query(None, alias="to"),
    area: str | None = Query(None, description="A district or street code."),
) -> list[dict[str, Any]]:
    """Events per grid cell (centre and count) for a heat map."""
    start, end = _period(first, last)
    return statistics.heatmap(
        session, actor=principal, settings=settings, first=start, last=end, area_code=area
    )


# ---------------------------------------------------------------- Open311 keys


@router.post("/open311-keys", status_code=201)
def create_key(
    session: DbSession, principal: CurrentPrincipal, body: Open311KeyIn
) -> Open311KeyWithSecret:
    """Issue an Open311 api_key for an orgs API client (the platform admin); shown once."""
    row, secret = keys.create_key(session, actor=principal, data=body)
    return Open311KeyWithSecret(**keys.describe(session, row).model_dump(), api_key=secret)


@router.get("/open311-keys")
def list_keys(session: DbSession, principal: CurrentPrincipal) -> list[Open311KeyOut]:
    return [keys.describe(session, k) for k in keys.list_keys(session, actor=principal)]
