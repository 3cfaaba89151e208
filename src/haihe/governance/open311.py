"""Open311 GeoReport v2 at /open311/v2/ — the 12345 hotline's and other systems' door in.

``services``, ``services/{code}``, POST and GET ``requests``, ``requests/{id}`` and
``tokens/{token}``, each as ``.json`` or ``.xml``. Errors keep the standard's own shape
(``[{"code": 400, "description": "…"}]``, ``<errors><error>…``) with the HTTP status as code.
POST needs ``api_key``: a key issued for an orgs API client (see ``keys``). GET is public, as the
standard has it, and shows no reporter's details; it adds ``page``/``page_size``.

Open311 knows two statuses: ``closed`` is resolved, evaluated or closed here (the detailed state
is in ``status_notes``); an event reopened by its reporter is ``open`` again.
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from haihe.core.db import transaction, utcnow
from haihe.core.errors import HaiheError, NotFound
from haihe.core.i18n import request_language
from haihe.core.settings import Settings
from haihe.core.web import AppSettings, DbSession
from haihe.governance import categories, intake, keys, service
from haihe.governance import repository as repo
from haihe.governance import transitions as flow
from haihe.governance.models import Category, Event, EventStatus
from haihe.governance.repository import EventFilter, Scope
from haihe.governance.schemas import EventIn

router = APIRouter(prefix="/open311/v2", tags=["open311"])

DEFAULT_DAYS = 90
MAX_PAGE = 1000
STATUS_ZH = {
    EventStatus.REPORTED: "已上报",
    EventStatus.ACCEPTED: "已受理",
    EventStatus.DISPATCHED: "已派遣",
    EventStatus.IN_PROGRESS: "处置中",
    EventStatus.RETURNED: "已退回",
    EventStatus.ESCALATED: "已上报上级",
    EventStatus.RESOLVED: "已办结",
    EventStatus.EVALUATED: "已评价",
    EventStatus.CLOSED: "已结案",
}
OPEN311_CLOSED = [s for s in EventStatus if s in flow.CLOSED_FOR_OPEN311]
OPEN311_OPEN = [s for s in EventStatus if s not in flow.CLOSED_FOR_OPEN311]


class Open311Error(Exception):
    """An error answered in the standard's shape."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


# ---------------------------------------------------------------- rendering


def _fmt(fmt: str) -> str:
    if fmt not in ("json", "xml"):
        raise Open311Error(404, f"format {fmt!r} is not served; use .json or .xml")
    return fmt


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _element(tag: str, data: Any) -> ET.Element:
    node = ET.Element(tag)
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, list):
                holder = ET.SubElement(node, key)
                singular = {"attributes": "attribute", "values": "value"}.get(key, key[:-1])
                for item in value:
                    holder.append(_element(singular, item))
            else:
                node.append(_element(key, value))
    else:
        node.text = _text(data)
    return node


def render(
    fmt: str, root: str, item: str, rows: Sequence[dict[str, Any]], status: int = 200
) -> Response:
    """The rows as a JSON array or as ``<root><item>…</item></root>`` XML (UTF-8)."""
    if fmt == "json":
        body = json.dumps(list(rows), ensure_ascii=False)
        return Response(body, status_code=status, media_type="application/json; charset=utf-8")
    top = ET.Element(root)
    for row in rows:
        top.append(_element(item, row))
    xml = ET.tostring(top, encoding="unicode")
    return Response(
        '<?xml version="1.0" encoding="utf-8"?>\n' + xml,
        status_code=status,
        media_type="text/xml; charset=utf-8",
    )


def render_one(fmt: str, root: str, data: dict[str, Any]) -> Response:
    if fmt == "json":
        body = json.dumps(data, ensure_ascii=False)
        return Response(body, media_type="application/json; charset=utf-8")
    xml = ET.tostring(_element(root, data), encoding="unicode")
    return Response(
        '<?xml version="1.0" encoding="utf-8"?>\n' + xml, media_type="text/xml; charset=utf-8"
    )


def error_response(fmt: str, status: int, description: str) -> Response:
    shown = fmt if fmt in ("json", "xml") else "json"
    return render(shown, "errors", "error", [{"code": status, "description": description}], status)


def _guarded(session: Session, fmt: str, work: Any) -> Response:
    """Run ``work``; turn every deliberate error into the standard's shape, undoing its writes."""
    try:
        result: Response = work()
        return result
    except Open311Error as exc:
        session.rollback()
        return error_response(fmt, exc.status, exc.description)
    except HaiheError as exc:
        session.rollback()
        status = 400 if exc.status == 422 else exc.status
        return error_response(fmt, status, exc.message)


def _when(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(service.CHINA).isoformat(timespec="seconds")


# ---------------------------------------------------------------- services


def service_row(category: Category, lang: str) -> dict[str, Any]:
    return {
        "service_code": category.code,
        "service_name": categories.name_of(category, lang),
        "description": category.description
        or (category.name_zh if lang != "en" else category.name_en),
        "metadata": False,
        "type": "realtime",
        "keywords": category.keywords,
        "group": category.group_en if lang == "en" else category.group_zh,
    }


def _lang(request: Request) -> str:
    return request_language(request)


@router.get("/services.{fmt}")
def services(request: Request, session: DbSession, fmt: str) -> Response:
    """The service types (event categories) a resident or system may report."""

    def work() -> Response:
        lang = _lang(request)
        rows = [service_row(c, lang) for c in categories.list_categories(session)]
        return render(_fmt(fmt), "services", "service", rows)

    return _guarded(session, fmt, work)


@router.get("/services/{code}.{fmt}")
def service_definition(session: DbSession, code: str, fmt: str) -> Response:
    """A service's definition; Haihe's services ask for no extra attributes."""

    def work() -> Response:
        _fmt(fmt)
        found = categories.list_categories(session)
        if code not in {c.code for c in found}:
            raise Open311Error(404, f"service_code {code!r} does not exist")
        return render_one(fmt, "service_definition", {"service_code": code, "attributes": []})

    return _guarded(session, fmt, work)


# ---------------------------------------------------------------- requests


def request_row(event: Event, names: dict[str, str], cells: dict[int, str]) -> dict[str, Any]:
    detail = STATUS_ZH[event.status]
    return {
        "service_request_id": str(event.id),
        "status": "closed" if event.status in flow.CLOSED_FOR_OPEN311 else "open",
        "status_notes": f"{detail}：{event.status_note}" if event.status_note else detail,
        "service_name": names.get(event.category_code, event.category_code),
        "service_code": event.category_code,
        "description": event.description[:4000],
        "agency_responsible": event.unit_code or event.command_code,
        "service_notice": None,
        "requested_datetime": _when(event.created_at),
        "updated_datetime": _when(event.updated_at),
        "expected_datetime": _when(event.due_at),
        "address": event.address,
        "address_id": cells.get(event.cell_id),
        "zipcode": None,
        "lat": event.lat,
        "long": event.lng,
        "media_url": None,
    }


def request_rows(session: Session, events: Sequence[Event], lang: str) -> list[dict[str, Any]]:
    names = {
        c.code: categories.name_of(c, lang)
        for c in categories.list_categories(session, active_only=False)
    }
    cells = {a.id: a.code for a in repo.areas_by_ids(session, [e.cell_id for e in events]).values()}
    return [request_row(e, names, cells) for e in events]


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is None or isinstance(value, UploadFile):
        return None
    text = str(value).strip()
    return text or None


def _number(form: Any, name: str) -> float | None:
    text = _field(form, name)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise Open311Error(400, f"{name} must be a number, not {text!r}") from None


@router.post("/requests.{fmt}")
async def create_request(request: Request, settings: AppSettings, fmt: str) -> Response:
    """Report an event (form-encoded, or multipart with ``media`` photos), with ``api_key``.
    Answers the new ``service_request_id`` and a ``token`` for tracking it."""
    form = await request.form()
    photos = [
        (f.filename or "media", await f.read(settings.governance_photo_max_bytes + 1))
        for f in form.getlist("media")
        if isinstance(f, UploadFile)
    ]
    # The form is read here, on the event loop; the database work runs start to end in one
    # worker thread (the write queue is held per thread), in this route's own transaction.
    return await run_in_threadpool(_create, request, settings, fmt, form, photos)


def _create(
    request: Request,
    settings: Settings,
    fmt: str,
    form: Any,
    photos: list[tuple[str, bytes]],
) -> Response:
    with transaction(request.app.state.session_factory) as session:
        return _guarded(session, fmt, lambda: _post(session, request, settings, fmt, form, photos))


def _post(
    session: Session,
    request: Request,
    settings: Settings,
    fmt: str,
    form: Any,
    photos: list[tuple[str, bytes]],
) -> Response:
    _fmt(fmt)
    api_key = _field(form, "api_key") or request.query_params.get("api_key")
    if not api_key:
        raise Open311Error(400, "api_key is required to post a service request")
    found = keys.principal_for_key(session, api_key)
    if found is None:
        raise Open311Error(403, "api_key is not valid (unknown, revoked or its client is off)")
    principal, source = found
    code = _field(form, "service_code")
    if not code:
        raise Open311Error(400, "service_code is required")
    lat, lng = _number(form, "lat"), _number(form, "long")
    address = _field(form, "address_string")
    if (lat is None or lng is None) and not address:
        raise Open311Error(400, "give the location: lat and long, or address_string")
    category = categories.get_category(session, code=code)
    name = " ".join(filter(None, [_field(form, "last_name"), _field(form, "first_name")]))
    contact = _field(form, "phone") or _field(form, "email")
    try:
        data = EventIn(
            category_code=code,
            description=_field(form, "description") or category.name_zh,
            lng=lng,
            lat=lat,
            address=address,
            reporter_name=name or None,
            reporter_contact=contact,
            external_id=_field(form, "account_id") or _field(form, "device_id"),
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise Open311Error(400, f"{where}: {err['msg']}") from None
    event = intake.report_event(
        session,
        actor=principal,
        settings=settings,
        data=data,
        files=photos,
        source=source,
    )
    notice = f"已受理上报，请在 {_when(event.due_at)} 前关注办理结果。"
    row = {
        "service_request_id": str(event.id),
        "token": event.token,
        "service_notice": notice,
        "account_id": None,
    }
    return render(fmt, "service_requests", "request", [row])


def _date(text: str | None, name: str) -> dt.datetime | None:
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} must be an ISO 8601 date-time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=service.CHINA)
    return value.astimezone(dt.UTC)


def _int(text: str | None, name: str, default: int, high: int) -> int:
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise Open311Error(400, f"{name} must be a whole number") from None
    if not 1 <= value <= high:
        raise Open311Error(400, f"{name} must be between 1 and {high}")
    return value


@router.get("/requests.{fmt}")
def list_requests(request: Request, session: DbSession, fmt: str) -> Response:
    """Service requests, newest first: by ``service_request_id`` (comma-separated; the other
    filters are then ignored, as the standard says) or by ``service_code``, ``start_date``,
    ``end_date`` (default: the last 90 days) and ``status``; ``page``/``page_size`` (≤ 1000)."""
    q = request.query_params

    def work() -> Response:
        _fmt(fmt)
        page = _int(q.get("page"), "page", 1, 1_000_000)
        size = _int(q.get("page_size"), "page_size", MAX_PAGE, MAX_PAGE)
        where = _filters(session, q)
        rows, _total = repo.list_events(
            session,
            scope=Scope(everything=True),
            where=where,
            limit=size,
            offset=(page - 1) * size,
            count=False,
        )
        return render(
            fmt, "service_requests", "request", request_rows(session, rows, _lang(request))
        )

    return _guarded(session, fmt, work)


def _filters(session: Session, q: Any) -> EventFilter:
    ids_text = q.get("service_request_id")
    if ids_text:
        try:
            ids = tuple(int(i) for i in ids_text.split(",") if i.strip())
        except ValueError:
            raise Open311Error(400, "service_request_id must be numbers, comma-separated") from None
        return EventFilter(ids=ids)
    statuses: tuple[EventStatus, ...] = ()
    status = q.get("status")
    if status:
        wanted = {s.strip() for s in status.split(",")}
        if not wanted <= {"open", "closed"}:
            raise Open311Error(400, "status is open or closed")
        statuses = tuple(
            (OPEN311_OPEN if "open" in wanted else [])
            + (OPEN311_CLOSED if "closed" in wanted else [])
        )
    codes = tuple(c.strip() for c in (q.get("service_code") or "").split(",") if c.strip())
    start, end = _date(q.get("start_date"), "start_date"), _date(q.get("end_date"), "end_date")
    if start is None:
        start = (end or utcnow()) - dt.timedelta(days=DEFAULT_DAYS)
    if end is not None and end < start:
        raise Open311Error(400, "end_date is before start_date")
    return EventFilter(statuses=statuses, category_codes=codes, created_from=start, created_to=end)


@router.get("/requests/{request_id}.{fmt}")
def get_request(request: Request, session: DbSession, request_id: str, fmt: str) -> Response:
    """One service request (as a one-item list, as the standard has it)."""

    def work() -> Response:
        _fmt(fmt)
        event = repo.event_by_id(session, int(request_id)) if request_id.isdigit() else None
        if event is None:
            raise Open311Error(404, f"service_request_id {request_id} does not exist")
        return render(
            fmt, "service_requests", "request", request_rows(session, [event], _lang(request))
        )

    return _guarded(session, fmt, work)


@router.get("/tokens/{token}.{fmt}")
def get_token(session: DbSession, token: str, fmt: str) -> Response:
    """The service_request_id behind a token from POST requests."""

    def work() -> Response:
        _fmt(fmt)
        event = repo.event_by_token(session, token)
        if event is None:
            raise NotFound(f"token {token!r} is unknown")
        row = {"service_request_id": str(event.id), "token": event.token}
        return render(fmt, "service_requests", "request", [row])

    return _guarded(session, fmt, work)
