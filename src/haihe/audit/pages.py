"""Console pages of the audit ledger: the ledger, sharing statistics, and "my data uses"."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from haihe.audit import citizen, service, statistics
from haihe.audit import repository as repo
from haihe.audit.api import as_utc
from haihe.audit.schemas import CHINA_TIME
from haihe.core.errors import InvalidInput
from haihe.core.i18n import request_language
from haihe.core.templating import render
from haihe.core.web import AppSettings, CurrentPrincipal, DbSession

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
CHART_SCRIPT = Path(__file__).resolve().parent / "static" / "statistics.js"
FILTERS = ("org", "provider", "resource", "action", "mode", "outcome", "from", "to")
MODES = ("query", "verify", "bulk", "subscribe")
OUTCOMES = ("ok", "refused", "error")


def org_namer(request: Request, session: Session, lang: str) -> Callable[[str | None], str]:
    """Organisations' names by code, through the callable the app edge sets (audit does not
    import orgs); each code looked up once, the code itself when unknown."""
    lookup = getattr(request.app.state, "org_name", None)
    names: dict[str, str] = {}

    def name(code: str | None) -> str:
        if not code:
            return "—"
        if code not in names:
            names[code] = lookup(session, code=code, lang=lang) if lookup else code
        return names[code]

    return name


def local_time(when: dt.datetime) -> str:
    return when.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M:%S")


def _when(text: str, field: str) -> dt.datetime | None:
    if not text:
        return None
    try:
        return as_utc(dt.datetime.fromisoformat(text))
    except ValueError:
        raise InvalidInput(f"{field}: not a date or time, e.g. 2026-01-31 08:00") from None


def _day(text: str, field: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{field}: not a date, e.g. 2026-01-31") from None


@router.get("/audit", response_class=HTMLResponse)
def ledger_page(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """The ledger with filters, newest first (same people as GET /api/v1/audit/entries)."""
    visible = service.ledger_scope(principal)
    chosen = {f: v for f in FILTERS if (v := request.query_params.get(f, "").strip())}
    filters = repo.Filters(
        org=chosen.get("org"),
        provider=chosen.get("provider"),
        resource=chosen.get("resource"),
        action=chosen.get("action"),
        mode=chosen.get("mode"),
        outcome=chosen.get("outcome"),
        since=_when(chosen.get("from", ""), "from"),
        until=_when(chosen.get("to", ""), "to"),
    )
    rows = repo.find_entries(
        session, filters=filters, visible=visible, before_id=before, limit=PAGE_SIZE
    )
    lang = request_language(request)
    query = urlencode(chosen)
    more = rows[-1].id if len(rows) == PAGE_SIZE else None
    context = {
        "chosen": chosen,
        "modes": MODES,
        "outcomes": OUTCOMES,
        "rows": rows,
        "org_name": org_namer(request, session, lang),
        "when": local_time,
        "items": lambda e: ", ".join(json.loads(e.items_json)),
        "next_href": f"/audit?{query}&before={more}" if more else None,
        "first_href": f"/audit?{query}" if before else None,
        "csv_href": "/api/v1/audit/entries.csv" + (f"?{query}" if query else ""),
    }
    return render(request, "audit/ledger.html", context)


@router.get("/audit/statistics", response_class=HTMLResponse)
def statistics_page(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    group_by: statistics.GroupBy = "day",
    since: Annotated[str, Query(alias="from", max_length=10)] = "",
    until: Annotated[str, Query(alias="to", max_length=10)] = "",
) -> Response:
    """Sharing uses as a chart and a table, by day, organisation, resource or provider."""
    first, last = _day(since, "from"), _day(until, "to")
    rows = statistics.sharing_uses(
        session, actor=principal, group_by=group_by, since=first, until=last
    )
    lang = request_language(request)
    names = org_namer(request, session, lang)
    label: Callable[[str], str] = names if group_by in ("org", "provider") else (lambda k: k)
    shown = [(label(r.key) if r.key else "—", r) for r in rows]
    chart = {
        "kind": "line" if group_by == "day" else "bar",
        "labels": [name for name, _ in shown][:50],
        "values": [r.uses for _, r in shown][:50],
        "series": "uses",
    }
    context = {
        "group_by": group_by,
        "groups": statistics.GROUPS,
        "since": since,
        "until": until,
        "rows": shown,
        "total": sum(r.uses for r in rows),
        "chart": chart,
    }
    return render(request, "audit/statistics.html", context)


@router.get("/audit/statistics.js")
def statistics_script() -> Response:
    """The script drawing the statistics chart (the console allows no inline scripts)."""
    return Response(
        CHART_SCRIPT.read_text(encoding="utf-8"),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/audit/me", response_class=HTMLResponse)
def my_data_page(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    principal: CurrentPrincipal,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """我的数据使用记录: which departments used records about me, when, for what purpose."""
    rows = citizen.uses_of_my_data(
        session, actor=principal, settings=settings, before_id=before, limit=PAGE_SIZE
    )
    lang = request_language(request)
    more = rows[-1].id if len(rows) == PAGE_SIZE else None
    context: dict[str, Any] = {
        "linked": principal.subject is not None,
        "rows": rows,
        "org_name": org_namer(request, session, lang),
        "when": local_time,
        "items": lambda e: ", ".join(json.loads(e.items_json)),
        "next_href": f"/audit/me?before={more}" if more else None,
    }
    return render(request, "audit/me.html", context)
