"""Console pages of grid governance — 网格治理.

Phone-sized pages for grid workers (我的任务 my tasks, 上报事件 report with a photo, move an event
on) and pages for the command centres of streets and districts (事件队列 the queue with its
deadlines and overdue flags, the event with its whistle, 地图 the map, 统计 the figures).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from haihe.core import calendar, i18n
from haihe.core.auth import Principal, Role
from haihe.core.db import utcnow
from haihe.core.errors import Forbidden, HaiheError, NotFound
from haihe.core.i18n import request_language
from haihe.core.templating import RenderedError, render
from haihe.core.web import AppSettings, CurrentPrincipal, DbSession
from haihe.governance import categories, grids, intake, service, statistics, workflow
from haihe.governance import repository as repo
from haihe.governance import transitions as flow
from haihe.governance.models import AreaLevel, EventStatus, SummonsStatus
from haihe.governance.repository import EventFilter
from haihe.governance.schemas import ActionIn, EventIn, ReportBackIn, WhistleIn
from haihe.governance.transitions import Action
from haihe.orgs import service as orgs
from haihe.orgs.models import OrgKind

router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).resolve().parent / "static"
SCRIPTS = frozenset({"map.js", "charts.js", "report.js"})
PAGE = 50
PERIODS = (7, 30, 90, 365)
DONE = frozenset({"reported", "whistle", "report_back", *(a.value for a in Action)})
STAFF = (Role.ORG_ADMIN, Role.OPERATOR, Role.OFFICER)


def _json(data: Any) -> str:
    """``data`` as JSON safe to place inside a <script type="application/json"> element."""
    return json.dumps(data, ensure_ascii=False, default=str).replace("<", "\\u003c")


def _labels(lang: str, group: str, values: Any) -> dict[str, str]:
    return {v.value: i18n.translate(lang, f"governance.{group}.{v.value}") for v in values}


def _local(when: dt.datetime | None) -> str:
    """A moment as the city's clock shows it."""
    return when.astimezone(calendar.CHINA_TIME).strftime("%Y-%m-%d %H:%M") if when else "—"


def _name(thing: Any, lang: str) -> str:
    """An organisation's or area's name in the page's language."""
    return str(thing.name_en if lang == "en" and thing.name_en else thing.name_zh)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return exc.message if isinstance(exc, HaiheError) else str(exc)


def _tabs(principal: Principal) -> list[str]:
    """The governance tabs this caller has a use for."""
    tabs = ["tasks", "report"]
    if principal.is_platform_admin or principal.has(Role.AUDITOR, *STAFF):
        tabs += ["queue", "map", "statistics"]
    return tabs


def _page(
    request: Request, template: str, principal: Principal, status: int = 200, **context: Any
) -> HTMLResponse:
    context = {"tabs": _tabs(principal), "local": _local, **context}
    return render(request, f"governance/{template}", context, status=status)


def _views(
    session: Session, principal: Principal, request: Request, *, where: EventFilter, offset: int
) -> tuple[list[Any], int]:
    rows, total = repo.list_events(
        session,
        scope=service.scope_for(session, principal),
        where=where,
        order="due",
        limit=PAGE,
        offset=offset,
    )
    lang = request_language(request)
    return service.describe(session, rows, actor=principal, lang=lang), total


# ---------------------------------------------------------------- lists


@router.get("/governance")
def home(principal: CurrentPrincipal) -> Response:
    """Grid workers land on their tasks, command centres on their queue."""
    target = "queue" if "queue" in _tabs(principal) else "tasks"
    return RedirectResponse(f"/governance/{target}", status_code=303)


@router.get("/governance/tasks", response_class=HTMLResponse)
def tasks(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """我的任务: live events in the caller's cells, units and reports, earliest deadline first;
    those awaiting the caller's move are marked."""
    where = EventFilter(statuses=tuple(flow.LIVE | {EventStatus.RESOLVED}))
    views, total = _views(session, principal, request, where=where, offset=offset)
    return _page(
        request,
        "tasks.html",
        principal,
        tab="tasks",
        events=views,
        total=total,
        offset=offset,
        now=utcnow(),
    )


@router.get("/governance/queue", response_class=HTMLResponse)
def queue(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    show: Annotated[str, Query(pattern="^(open|overdue|all)$")] = "open",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """事件队列: the events the caller's organisation commands or handles, with deadlines."""
    statuses: tuple[EventStatus, ...] = () if show == "all" else tuple(flow.LIVE)
    where = EventFilter(statuses=statuses, overdue=True if show == "overdue" else None)
    views, total = _views(session, principal, request, where=where, offset=offset)
    summons = []
    if principal.org_code:
        summons = list(repo.open_summons(session, department_code=principal.org_code, limit=20))
    return _page(
        request,
        "queue.html",
        principal,
        tab="queue",
        events=views,
        total=total,
        offset=offset,
        show=show,
        summons=summons,
        now=utcnow(),
    )


# ---------------------------------------------------------------- one event


def _event_page(
    request: Request,
    session: Session,
    principal: Principal,
    event_id: int,
    *,
    done: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    event = service.get_event(session, actor=principal, event_id=event_id)
    lang = request_language(request)
    view = service.describe(session, [event], actor=principal, lang=lang, full=True)[0]
    mine = service.roles_on(session, principal, event)
    may_whistle = (
        event.status in flow.WHISTLE_STATES
        and event.level is AreaLevel.STREET
        and flow.Role.COMMAND in mine
    )
    departments = []
    if may_whistle:
        for kind in (OrgKind.MUNICIPAL_DEPARTMENT, OrgKind.INSTITUTION):
            found, _ = orgs.list_orgs(session, kind=kind, active=True, limit=500)
            departments += [(o.code, _name(o, lang)) for o in found]
    answer = [
        s
        for s in view.summons
        if s.status is SummonsStatus.SUMMONED
        and (principal.is_platform_admin or s.department_code == principal.org_code)
    ]
    return _page(
        request,
        "event.html",
        principal,
        status=status,
        tab=None,
        e=view,
        done=done if done in DONE else None,
        error=error,
        may_whistle=may_whistle,
        departments=departments,
        answer=answer,
        levels=[lvl.value for lvl in AreaLevel if lvl is not AreaLevel.CELL],
        now=utcnow(),
    )


@router.get("/governance/events/{event_id}", response_class=HTMLResponse)
def event_page(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    event_id: int,
    done: str | None = None,
) -> Response:
    """One event: where, what, its deadline, photos, history, summons, and the caller's moves."""
    return _event_page(request, session, principal, event_id, done=done)


def _failed(
    request: Request, session: Session, principal: Principal, event_id: int, exc: Exception
) -> RenderedError:
    """The event's page again, saying why the move was not made (nothing was changed)."""
    session.rollback()
    status = exc.status if isinstance(exc, HaiheError) else 422
    page = _event_page(request, session, principal, event_id, error=_reason(exc), status=status)
    return RenderedError(page)


@router.post("/governance/events/{event_id}/actions/{action}", response_class=HTMLResponse)
def act(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    event_id: int,
    action: Action,
    note: Annotated[str, Form()] = "",
    level: Annotated[str, Form()] = "",
    unit_code: Annotated[str, Form()] = "",
    rating: Annotated[str, Form()] = "",
) -> Response:
    """Take one move on the event (the same rules as the API: a forbidden one changes nothing)."""
    try:
        data = ActionIn.model_validate(
            {
                "note": note.strip() or None,
                "level": level or None,
                "unit_code": unit_code.strip() or None,
                "rating": int(rating) if rating else None,
            }
        )
        workflow.act(session, actor=principal, event_id=event_id, action=action, data=data)
    except (ValidationError, HaiheError, ValueError) as exc:
        raise _failed(request, session, principal, event_id, exc) from exc
    return RedirectResponse(f"/governance/events/{event_id}?done={action.value}", status_code=303)


@router.post("/governance/events/{event_id}/whistle", response_class=HTMLResponse)
def whistle(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    event_id: int,
    reason: Annotated[str, Form()] = "",
    hours: Annotated[int, Form()] = 24,
    departments: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies defaults
) -> Response:
    """Blow the whistle (吹哨): summon the chosen departments, each with the deadline given."""
    try:
        data = WhistleIn.model_validate(
            {
                "reason": reason.strip(),
                "departments": [{"department_code": d, "hours": hours} for d in departments],
            }
        )
        workflow.blow_whistle(session, actor=principal, event_id=event_id, data=data)
    except (ValidationError, HaiheError) as exc:
        raise _failed(request, session, principal, event_id, exc) from exc
    return RedirectResponse(f"/governance/events/{event_id}?done=whistle", status_code=303)


@router.post("/governance/summons/{summons_id}/report", response_class=HTMLResponse)
def report_back(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    summons_id: int,
    report: Annotated[str, Form()] = "",
) -> Response:
    """A summoned department reports back (报到)."""
    found = repo.summons_by_id(session, summons_id)
    if found is None:
        raise NotFound(f"summons {summons_id} does not exist")
    event_id = found.event_id
    try:
        data = ReportBackIn.model_validate({"report": report.strip()})
        workflow.report_back(session, actor=principal, summons_id=summons_id, data=data)
    except (ValidationError, HaiheError) as exc:
        raise _failed(request, session, principal, event_id, exc) from exc
    return RedirectResponse(f"/governance/events/{event_id}?done=report_back", status_code=303)


# ---------------------------------------------------------------- reporting


def _report_form(
    request: Request,
    session: Session,
    principal: Principal,
    values: dict[str, Any],
    *,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    lang = request_language(request)
    options = [
        (c.code, categories.name_of(c, lang), categories.deadline_label(c, lang))
        for c in categories.list_categories(session)
    ]
    return _page(
        request,
        "report.html",
        principal,
        status=status,
        tab="report",
        categories=options,
        values=values,
        error=error,
    )


@router.get("/governance/report", response_class=HTMLResponse)
def report_form(request: Request, session: DbSession, principal: CurrentPrincipal) -> Response:
    """上报事件: category, what, where (the phone's position or an address) and photos."""
    values = {"category_code": "", "description": "", "lng": "", "lat": "", "address": ""}
    return _report_form(request, session, principal, values)


@router.post("/governance/report", response_class=HTMLResponse)
def report(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    principal: CurrentPrincipal,
    category_code: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    lng: Annotated[str, Form()] = "",
    lat: Annotated[str, Form()] = "",
    address: Annotated[str, Form()] = "",
    photos: Annotated[list[UploadFile], File()] = [],  # noqa: B006 - FastAPI copies defaults
) -> Response:
    """Report the event; on an error show the form again saying what to fix (nothing kept)."""
    values = {
        "category_code": category_code,
        "description": description,
        "lng": lng,
        "lat": lat,
        "address": address,
    }
    limit = settings.governance_photo_max_bytes
    files = [(f.filename or "photo", f.file.read(limit + 1)) for f in photos if f.filename]
    try:
        data = EventIn.model_validate(
            {
                "category_code": category_code,
                "description": description.strip(),
                "lng": float(lng) if lng.strip() else None,
                "lat": float(lat) if lat.strip() else None,
                "address": address.strip() or None,
            }
        )
        event = intake.report_event(
            session, actor=principal, settings=settings, data=data, files=files
        )
    except (ValidationError, HaiheError, ValueError) as exc:
        session.rollback()
        status = exc.status if isinstance(exc, HaiheError) else 422
        page = _report_form(request, session, principal, values, error=_reason(exc), status=status)
        raise RenderedError(page) from exc
    return RedirectResponse(f"/governance/events/{event.id}?done=reported", status_code=303)


# ---------------------------------------------------------------- map and statistics


def _period(days: int) -> tuple[dt.date, dt.date]:
    last = service.china_day(utcnow())
    return last - dt.timedelta(days=days - 1), last


def _staff_only(principal: Principal) -> None:
    if "statistics" not in _tabs(principal):
        raise Forbidden("the map and the figures are for command centres and auditors")


@router.get("/governance/map", response_class=HTMLResponse)
def map_page(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    principal: CurrentPrincipal,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
    level: Annotated[AreaLevel, Query()] = AreaLevel.STREET,
    area: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """地图: the areas of the grid map (drawn from their GeoJSON) and the events on them."""
    _staff_only(principal)
    first, last = _period(days)
    if level is AreaLevel.CITY:
        level = AreaLevel.DISTRICT
    shapes = grids.area_geojson(session, level=level, within=area)
    lang = request_language(request)
    if lang == "en":
        for f in shapes["features"]:
            f["properties"]["name"] = f["properties"].get("name_en") or f["properties"]["name"]
    heat = statistics.heatmap(
        session, actor=principal, settings=settings, first=first, last=last, area_code=area
    )
    data = {"areas": shapes, "points": heat}
    districts, _ = grids.list_areas(session, level=AreaLevel.DISTRICT, limit=100)
    return _page(
        request,
        "map.html",
        principal,
        tab="map",
        data=_json(data),
        days=days,
        level=level.value,
        area=area or "",
        districts=[(d.code, _name(d, lang)) for d in districts],
        periods=PERIODS,
        total=sum(int(p["count"]) for p in heat),
        cells=len(heat),
    )


@router.get("/governance/statistics", response_class=HTMLResponse)
def statistics_page(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    principal: CurrentPrincipal,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
    area: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """统计: totals, on-time rate, handling hours, satisfaction, trend and breakdowns."""
    _staff_only(principal)
    first, last = _period(days)
    lang = request_language(request)
    out = statistics.summary(
        session,
        actor=principal,
        settings=settings,
        first=first,
        last=last,
        area_code=area or None,
        lang=lang,
    )
    districts, _ = grids.list_areas(session, level=AreaLevel.DISTRICT, limit=100)
    return _page(
        request,
        "statistics.html",
        principal,
        tab="statistics",
        s=out,
        data=_json(out | {"labels": {"status": _labels(lang, "status", EventStatus)}}),
        days=days,
        area=area or "",
        districts=[(d.code, _name(d, lang)) for d in districts],
        periods=PERIODS,
    )


@router.get("/governance/static/{name}")
def script(name: str) -> Response:
    """The pages' scripts (the console allows no inline scripts)."""
    if name not in SCRIPTS:
        raise NotFound(f"no script {name}")
    return Response(
        (STATIC / name).read_text(encoding="utf-8"),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )
