"""The public portal — 开放门户 — at /portal: home, search with facets, dataset pages, and a
signed-in user's applications and API keys.

Nobody signs in to browse or download 无条件开放 data; a 有条件开放 dataset's page shows its
description and the application form, and its rows only to those approved. Each dataset page
is counted as one view in the usage figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from haihe.core.auth import Principal
from haihe.core.calendar import CHINA_TIME
from haihe.core.db import utcnow
from haihe.core.errors import HaiheError
from haihe.core.i18n import request_language, translate
from haihe.core.templating import RenderedError, render
from haihe.core.web import AppSettings, CurrentPrincipal, DbSession, OptionalPrincipal
from haihe.orgs.models import Organisation
from haihe.portal import ckan, preview, search, service
from haihe.portal import repository as repo
from haihe.portal.materialise import today_in_city
from haihe.portal.models import ApplicationStatus, Dataset
from haihe.portal.schemas import ApiKeyIn, ApplicationIn
from haihe.portal.topics import BY_NAME, LICENCE_BY_ID, TOPICS

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 10
HOME_LISTS = 6
PREVIEW_ROWS = 10
FACETS = ("groups", "organization", "open_type", "res_format", "tags")
CHART_SCRIPT = Path(__file__).resolve().parent / "static" / "chart.js"


# ---------------------------------------------------------------- naming things


def _names(lang: str) -> Callable[[Organisation], str]:
    def name(org: Organisation) -> str:
        return org.name_en if lang == "en" and org.name_en else org.name_zh

    return name


def title_of(ds: Dataset, lang: str) -> str:
    return ds.title_en if lang == "en" and ds.title_en else ds.title_zh


def topic_title(name: str, lang: str) -> str:
    topic = BY_NAME.get(name)
    if topic is None:
        return name
    return topic.en if lang == "en" else topic.zh


def _cards(session: Session, datasets: list[Dataset], lang: str) -> list[dict[str, Any]]:
    """What a list shows of each dataset."""
    orgs = repo.orgs_by_ids(session, {d.org_id for d in datasets})
    org_name = _names(lang)
    return [
        {
            "name": d.name,
            "title": title_of(d, lang),
            "other_title": d.title_zh if lang == "en" and d.title_en else None,
            "notes": (d.notes_en if lang == "en" and d.notes_en else d.notes_zh) or "",
            "provider": org_name(orgs[d.org_id]),
            "topic": topic_title(d.topic, lang),
            "open_type": d.open_type.value,
            "formats": [f for f in d.formats.split(",") if f],
            "rows": d.row_count,
            "uses": d.views_total + d.downloads_total + d.api_calls_total,
            "modified": d.modified_at.astimezone(CHINA_TIME).strftime("%Y-%m-%d"),
        }
        for d in datasets
    ]


# ---------------------------------------------------------------- home


@router.get("/portal", response_class=HTMLResponse)
def home(request: Request, session: DbSession, principal: OptionalPrincipal) -> Response:
    """The portal's front page: search, the 21 topics with counts, newest and most used."""
    lang = request_language(request)
    counts = repo.topic_counts(session)
    providers = repo.provider_counts(session)
    context = {
        "topics": [
            {
                "name": t.name,
                "title": t.en if lang == "en" else t.zh,
                "count": counts.get(t.name, 0),
            }
            for t in TOPICS
        ],
        "newest": _cards(session, list(repo.newest(session, HOME_LISTS)), lang),
        "most_used": _cards(session, list(repo.most_used(session, HOME_LISTS)), lang),
        "totals": {
            "datasets": sum(counts.values()),
            "providers": len(providers),
            "rows": repo.total_rows(session),
        },
    }
    return render(request, "portal/home.html", context)


# ---------------------------------------------------------------- search


@router.get("/portal/search", response_class=HTMLResponse)
def search_page(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """Datasets matching the words and the chosen facets, newest first."""
    lang = request_language(request)
    words = q.strip()
    chosen = {f: v for f in FACETS if (v := request.query_params.get(f, "").strip())}
    query = search.text_query(words)
    query.conditions.extend(search.condition(f, v) for f, v in chosen.items())
    found = search.search(
        session,
        query=query,
        sort=search.parse_sort(None),
        rows=PAGE_SIZE,
        start=(page - 1) * PAGE_SIZE,
        facet_fields=list(FACETS),
        facet_limit=30,
    )
    params = {"q": words, **chosen} if words else dict(chosen)
    label = _facet_labeller(session, lang)
    facets = [
        {
            "name": facet,
            "values": [
                {
                    "label": label(facet, key),
                    "count": n,
                    "selected": chosen.get(facet) == key,
                    "href": _search_href(_without(params, facet) | {facet: key}),
                }
                for key, n in found.facets.get(facet, [])
            ],
        }
        for facet in FACETS
    ]
    chips = [
        {"facet": f, "label": label(f, v), "href": _search_href(_without(params, f))}
        for f, v in chosen.items()
    ]
    context = {
        "q": words,
        "chosen": chosen,
        "facets": facets,
        "chips": chips,
        "rows": _cards(session, repo.datasets_by_ids(session, found.ids), lang),
        "total": found.count,
        "page": page,
        "pages": max(1, math.ceil(found.count / PAGE_SIZE)),
        "query": urlencode(params),
    }
    return render(request, "portal/search.html", context)


def _facet_labeller(session: Session, lang: str) -> Callable[[str, str], str]:
    orgs = {ckan.org_name(o): o for o, _n in repo.provider_counts(session)}
    org_name = _names(lang)

    def label(facet: str, key: str) -> str:
        if facet == "groups":
            return topic_title(key, lang)
        if facet == "organization" and key in orgs:
            return org_name(orgs[key])
        if facet == "open_type":
            return translate(lang, f"catalogue.open_type.{key}")
        return key

    return label


def _without(params: dict[str, str], facet: str) -> dict[str, str]:
    return {k: v for k, v in params.items() if k != facet}


def _search_href(params: dict[str, str]) -> str:
    return "/portal/search" + (f"?{urlencode(params)}" if params else "")


# ---------------------------------------------------------------- one dataset


@router.get("/portal/dataset/{name}", response_class=HTMLResponse)
def dataset_page(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    principal: OptionalPrincipal,
    name: str,
) -> Response:
    """A dataset: description, downloads, a preview, a chart, how to call the API, applying."""
    ds = service.get_dataset(session, ref=name)
    service.count_use(session, ds=ds, what="views")
    return _dataset(request, session, settings, principal, ds)


def _dataset(
    request: Request,
    session: Session,
    settings: Any,
    principal: Principal | None,
    ds: Dataset,
    *,
    form: dict[str, Any] | None = None,
    error: str | None = None,
) -> HTMLResponse:
    lang = request_language(request)
    org = service.provider_of(session, ds)
    resource = service.resource_of(session, ds)
    readable = service.may_read_data(session, principal, ds)
    chart = preview.chart(settings, ds) if readable else None
    base = str(request.base_url).rstrip("/")
    licence = LICENCE_BY_ID.get(ds.licence_id)
    columns = [
        {
            "id": c["id"],
            "label": (c.get("info") or {}).get("label_en") if lang == "en" else None,
            "label_zh": (c.get("info") or {}).get("label") or c["id"],
            "masked": bool((c.get("info") or {}).get("masked")),
            "type": c["type"],
        }
        for c in ds.columns
    ]
    context = {
        "ds": ds,
        "title": title_of(ds, lang),
        "other_title": ds.title_zh if lang == "en" and ds.title_en else None,
        "notes": (ds.notes_en if lang == "en" and ds.notes_en else ds.notes_zh) or "",
        "provider": _names(lang)(org),
        "org_key": ckan.org_name(org),
        "topic": topic_title(ds.topic, lang),
        "licence": licence.title if licence else ds.licence_id,
        "licence_url": licence.url if licence and licence.url else None,
        "catalogue_code": resource.code,
        "modified": ds.modified_at.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M"),
        "data_updated": (
            ds.data_updated_at.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M")
            if ds.data_updated_at
            else None
        ),
        "tags": [t.tag for t in ds.tags],
        "formats": [
            {"format": f, "href": f"/portal/dataset/{ds.name}/download.{f.lower()}"}
            for f in ds.formats.split(",")
            if f
        ],
        "readable": readable,
        "columns": columns,
        "rows": preview.first_rows(settings, ds, PREVIEW_ROWS) if readable else [],
        "chart": None
        if chart is None
        else {
            "labels": chart.labels,
            "values": chart.values,
            "category": _column_label(columns, chart.category, lang),
            "measure": _column_label(columns, chart.measure, lang) if chart.measure else None,
        },
        "api": {
            "search": f"{base}/api/3/action/datastore_search?resource_id={ds.resource_uuid}"
            "&limit=5",
            "show": f"{base}/api/3/action/package_show?id={ds.name}",
            "base": base,
            "resource_id": ds.resource_uuid,
        },
        "dcat": f"/dataset/{ds.name}.jsonld",
        "apply": _apply_state(session, principal, ds),
        "form": form or {"purpose": "", "accept": False},
        "error": error,
        "done": request.query_params.get("done"),
        "sign_in": "/login?next=" + quote(f"/portal/dataset/{ds.name}"),
    }
    return render(request, "portal/dataset.html", context, status=422 if error else 200)


def _column_label(columns: list[dict[str, Any]], name: str | None, lang: str) -> str:
    for c in columns:
        if c["id"] == name:
            return str(c["label"] or c["label_zh"]) if lang == "en" else str(c["label_zh"])
    return name or ""


def _apply_state(session: Session, principal: Principal | None, ds: Dataset) -> dict[str, Any]:
    """Where the caller stands with a 有条件开放 dataset: sign in, apply, pending or approved."""
    if ds.open_type.value != "conditional":
        return {"state": "open"}
    if principal is None:
        return {"state": "sign_in"}
    if principal.admin_of(ds.org_id):
        return {"state": "provider"}
    if not service.can_apply(principal):
        return {"state": "cannot"}
    current = repo.open_application(session, ds.id, principal.id)
    if current is None:
        return {"state": "apply"}
    if current.status is ApplicationStatus.APPROVED:
        return {"state": "approved"}
    return {"state": "pending", "due_on": current.due_on.isoformat()}


@router.post("/portal/dataset/{name}/apply", response_class=HTMLResponse)
def apply(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    principal: CurrentPrincipal,
    name: str,
    purpose: Annotated[str, Form()] = "",
    accept: Annotated[str, Form()] = "",
) -> Response:
    """Apply for a 有条件开放 dataset from its page; the page again with what to fix on error."""
    ds = service.get_dataset(session, ref=name)
    try:
        data = ApplicationIn(dataset=ds.name, purpose=purpose.strip(), accept_terms=accept == "yes")
        service.apply(session, actor=principal, data=data)
    except (ValidationError, HaiheError) as exc:
        message = (
            "; ".join(str(e["msg"]) for e in exc.errors())
            if isinstance(exc, ValidationError)
            else exc.message
        )
        form = {"purpose": purpose, "accept": accept == "yes"}
        page = _dataset(request, session, settings, principal, ds, form=form, error=message)
        raise RenderedError(page) from exc
    return RedirectResponse(f"/portal/dataset/{ds.name}?done=applied", status_code=303)


@router.get("/portal/chart.js")
def chart_script() -> Response:
    """The script drawing a dataset's chart (the console allows no inline scripts)."""
    return Response(
        CHART_SCRIPT.read_text(encoding="utf-8"),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )


# ---------------------------------------------------------------- my applications and keys


@router.get("/portal/me", response_class=HTMLResponse)
def my_portal(request: Request, session: DbSession, principal: CurrentPrincipal) -> Response:
    """The signed-in user's applications and API keys."""
    return _me(request, session, principal, secret=None)


def _me(
    request: Request, session: Session, principal: Principal, *, secret: str | None
) -> HTMLResponse:
    lang = request_language(request)
    rows, _total = (
        service.list_applications(
            session, actor=principal, inbox=False, status=None, limit=100, offset=0
        )
        if principal.kind == "user"
        else ([], 0)
    )
    today = today_in_city(utcnow())
    context = {
        "applications": [
            {
                "dataset": d.name,
                "title": title_of(d, lang),
                "status": a.status.value,
                "submitted": a.submitted_at.astimezone(CHINA_TIME).strftime("%Y-%m-%d"),
                "due_on": a.due_on.isoformat(),
                "overdue": a.status is ApplicationStatus.PENDING and today > a.due_on,
                "reason": a.reason,
            }
            for a, d, _u in rows
        ],
        "keys": list(service.list_api_keys(session, actor=principal))
        if principal.kind == "user"
        else [],
        "secret": secret,
    }
    return render(request, "portal/me.html", context)


@router.post("/portal/me/keys", response_class=HTMLResponse)
def create_key(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    key_name: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """A new API key, shown once on the page."""
    _key, secret = service.create_api_key(
        session, actor=principal, data=ApiKeyIn(name=key_name.strip() or "portal")
    )
    return _me(request, session, principal, secret=secret)


@router.post("/portal/me/keys/{key_id}/revoke")
def revoke_key(session: DbSession, principal: CurrentPrincipal, key_id: int) -> Response:
    service.revoke_api_key(session, actor=principal, key_id=key_id)
    return RedirectResponse("/portal/me", status_code=303)
