"""Console pages of the catalogue — 资源目录: the list, an entry's page, editing, loading."""

from __future__ import annotations

import datetime as dt
import math
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from haihe.catalogue import repository as repo
from haihe.catalogue import service, versions
from haihe.catalogue.loading import LoadSource, load_resource
from haihe.catalogue.models import BaseLibrary, Resource, ResourceStatus
from haihe.catalogue.sample import sample_rows
from haihe.catalogue.schemas import CompareOut, LoadOut, ResourceOut, ResourceUpdate, load_out
from haihe.catalogue.search import FACETS, Filters, search
from haihe.catalogue.topics import BASE_LIBRARIES, TOPICS
from haihe.core.auth import Principal
from haihe.core.errors import Conflict, Forbidden, HaiheError, NotFound
from haihe.core.i18n import request_language, translate
from haihe.core.templating import RenderedError, render
from haihe.core.web import AppSettings, CurrentPrincipal, DbSession
from haihe.orgs import service as orgs_service

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
SAMPLE_ROWS = 5
HISTORY_ROWS = 50
LOAD_ROWS = 20
# The console shows times as the city's clocks read them: China Standard Time, no daylight saving.
CHINA_TIME = dt.timezone(dt.timedelta(hours=8))
# What the entry's page says after an action redirects to it with ``?done=…``.
DONE = {
    "updated": "catalogue.resource.done_updated",
    "unchanged": "catalogue.resource.done_unchanged",
    "published": "catalogue.resource.done_published",
    "retired": "catalogue.resource.done_retired",
}
ACTIONS = ("create", "update", "published", "retired", "load", "import")
TAG_SEPARATORS = re.compile(r"[,，、;；\n]+")


class EditForm(BaseModel):
    """The edit form as posted, every field as typed: what the console may change of an entry
    (the rest is changed through REST, the CLI or a workbook)."""

    name_zh: str = ""
    name_en: str = ""
    summary_zh: str = ""
    summary_en: str = ""
    sharing_conditions: str = ""
    legal_basis: str = ""
    open_conditions: str = ""
    steward_name: str = ""
    steward_contact: str = ""
    tags: str = ""


# Every field of the form but tags, which are a list, is one text column of the entry.
EDITABLE = tuple(name for name in EditForm.model_fields if name != "tags")


# ---------------------------------------------------------------- the list


@router.get("/catalogue", response_class=HTMLResponse)
def catalogue(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    """The catalogue: search, facets with counts, results; HTMX gets only the results region."""
    lang = request_language(request)
    query = q.strip()
    chosen = {f: v for f in FACETS if (v := request.query_params.get(f, "").strip())}
    hits = search(
        session,
        actor=principal,
        q=query or None,
        filters=Filters(**chosen),
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    names = org_names(session, lang)
    params = {"q": query, **chosen} if query else dict(chosen)
    facets = [
        {
            "name": facet,
            "values": [
                {
                    "label": facet_label(facet, fc.value, lang, names),
                    "count": fc.count,
                    "selected": chosen.get(facet) == fc.value,
                    "href": _list_href(_without(params, facet) | {facet: fc.value}),
                }
                for fc in hits.facets.get(facet, [])
            ],
        }
        for facet in FACETS
    ]
    chips = [
        {
            "label": facet_label(f, v, lang, names),
            "facet": f,
            "href": _list_href(_without(params, f)),
        }
        for f, v in chosen.items()
    ]
    context = {
        "q": query,
        "chosen": chosen,
        "facets": facets,
        "chips": chips,
        "clear_href": _list_href({"q": query} if query else {}),
        "rows": [(brief, names(brief.provider_code)) for brief in hits.items],
        "query": urlencode(params),
        "page": page,
        "pages": max(1, math.ceil(hits.total / PAGE_SIZE)),
        "total": hits.total,
        "topic_name": lambda code: topic_name(code, lang),
        "when": local_time,
    }
    partial = request.headers.get("hx-request") == "true" and not request.headers.get(
        "hx-history-restore-request"
    )
    return render(request, "catalogue/_results.html" if partial else "catalogue/list.html", context)


def org_names(session: Session, lang: str) -> Callable[[str], str]:
    """Organisations' names by code in the page's language, each looked up once."""
    names: dict[str, str] = {}

    def name(code: str) -> str:
        if code not in names:
            try:
                org = orgs_service.get_org(session, code=code)
            except NotFound:
                names[code] = code
            else:
                names[code] = (org.name_en if lang == "en" else None) or org.name_zh
        return names[code]

    return name


def facet_label(facet: str, value: str, lang: str, names: Callable[[str], str]) -> str:
    """How a facet's value reads on the page: a name in the page's language, not a code."""
    if facet == "provider":
        return names(value)
    if facet == "base_library":
        return library_name(value, lang)
    if facet == "topic":
        return topic_name(value, lang)
    return translate(lang, f"catalogue.{facet}.{value}")


def topic_name(code: str | None, lang: str) -> str:
    if code is None or code not in TOPICS:
        return code or translate(lang, "catalogue.resource.none")
    return TOPICS[code][1 if lang == "en" else 0]


def library_name(value: str | None, lang: str) -> str:
    if value is None or value not in set(BaseLibrary):
        return value or translate(lang, "catalogue.resource.none")
    _, zh, en = BASE_LIBRARIES[BaseLibrary(value)]
    return en if lang == "en" else zh


def local_time(when: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``when`` on the city's clock, as text."""
    return when.astimezone(CHINA_TIME).strftime(fmt) if when else ""


def _without(params: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in params.items() if k != name}


def _list_href(params: dict[str, str]) -> str:
    return "/catalogue" + ("?" + urlencode(params) if params else "")


# ---------------------------------------------------------------- one entry


@router.get("/catalogue/{code}", response_class=HTMLResponse)
def resource_page(
    code: str,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    principal: CurrentPrincipal,
    done: str = "",
    from_version: Annotated[int | None, Query(alias="from", ge=1)] = None,
    to_version: Annotated[int | None, Query(alias="to", ge=1)] = None,
) -> Response:
    """An entry: its description, items, masked sample rows, versions (compared when asked),
    loads and history, with the actions the caller may take."""
    resource = service.get_resource(session, actor=principal, code=code)
    lang = request_language(request)
    entry = service.describe(session, resource)
    which: dict[str, Any] = {"actor": principal, "settings": settings, "code": code}
    found = versions.list_versions(session, **which)
    compared: CompareOut | str | None = None
    if from_version and to_version:
        try:
            compared = versions.compare(
                session, **which, from_version=from_version, to_version=to_version
            )
        except HaiheError as exc:  # a version the entry does not have: say so beside the form
            compared = exc.message
    context = {
        "entry": entry,
        "provider": org_names(session, lang)(entry.provider_code),
        "related": _related(session, principal, entry),
        "sample": sample_rows(session, **which, limit=SAMPLE_ROWS),
        "versions": found,
        "compared": compared,
        "pair": (
            from_version or (found[1].version if len(found) > 1 else None),
            to_version or (found[0].version if found else None),
        ),
        "loads": [load_out(x, code) for x in repo.loads_of(session, resource.id, limit=LOAD_ROWS)],
        "history": _history(session, principal, code),
        "may": _permissions(principal, resource),
        "done": DONE.get(done),
        "topic_name": lambda value: topic_name(value, lang),
        "library_name": lambda value: library_name(value, lang),
        "when": local_time,
        "sample_size": SAMPLE_ROWS,
    }
    return render(request, "catalogue/resource.html", context)


def _permissions(principal: Principal, resource: Resource) -> dict[str, bool]:
    """Which actions the page offers ``principal`` (the services check again on every POST)."""
    live = resource.status is not ResourceStatus.RETIRED
    return {
        "edit": live and service.can_edit(principal, resource),
        "load": live and service.can_load(principal, resource),
        "rejects": service.can_load(principal, resource),
        "publish": principal.is_platform_admin and resource.status is ResourceStatus.DRAFT,
        "retire": principal.is_platform_admin and resource.status is ResourceStatus.PUBLISHED,
    }


def _related(session: Session, principal: Principal, entry: ResourceOut) -> list[dict[str, Any]]:
    """Related entries with their names; those the caller may not see keep only their code."""
    found = {r.code: r for r in repo.resources_by_codes(session, entry.related)}
    out = []
    for code in entry.related:
        other = found.get(code)
        visible = other is not None and service.can_view(principal, other)
        out.append({"code": code, "resource": other if visible else None})
    return out


def _history(session: Session, principal: Principal, code: str) -> list[dict[str, Any]]:
    """The entry's changes, newest first, each with the fields it changed."""
    order = list(ResourceOut.model_fields)
    out = []
    for change in service.history(session, actor=principal, code=code, limit=HISTORY_ROWS):
        before, after = change.before, change.after or {}
        fields: list[str] = []
        if before is not None and change.action != "load":
            names = (set(before) | set(after)) - {"created_at", "updated_at"}
            fields = [n for n in names if before.get(n) != after.get(n)]
            fields.sort(key=lambda n: order.index(n) if n in order else len(order))
        out.append(
            {
                "change": change,
                "action": change.action if change.action in ACTIONS else None,
                "fields": [(f, f in order) for f in fields],
            }
        )
    return out


# ---------------------------------------------------------------- publishing


@router.post("/catalogue/{code}/publish")
def publish(code: str, session: DbSession, principal: CurrentPrincipal) -> RedirectResponse:
    """Publish a draft (the platform admin), then back to its page."""
    service.publish(session, actor=principal, code=code)
    return _back(code, "published")


@router.post("/catalogue/{code}/retire")
def retire(code: str, session: DbSession, principal: CurrentPrincipal) -> RedirectResponse:
    """Retire a published entry (the platform admin), then back to its page."""
    service.retire(session, actor=principal, code=code)
    return _back(code, "retired")


def _back(code: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"/catalogue/{code}?done={done}", status_code=303)


# ---------------------------------------------------------------- editing


@router.get("/catalogue/{code}/edit", response_class=HTMLResponse)
def edit_form(
    code: str, request: Request, session: DbSession, principal: CurrentPrincipal
) -> Response:
    """The form for an entry's names, summaries, conditions, steward and tags."""
    resource = _editable(session, principal, code)
    values = {name: getattr(resource, name) or "" for name in EDITABLE}
    values["tags"] = "，".join(resource.tags or [])
    return _edit_page(request, resource, values)


@router.post("/catalogue/{code}/edit", response_class=HTMLResponse)
def edit(
    code: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    form: Annotated[EditForm, Form()],
) -> Response:
    """Save the fields that differ; on an error show the form again and change nothing."""
    resource = _editable(session, principal, code)
    typed = form.model_dump()
    changed: dict[str, Any] = {}
    for name in EDITABLE:
        value = typed[name].strip() or None
        if value != getattr(resource, name):
            changed[name] = value
    tag_list = list(dict.fromkeys(t.strip() for t in TAG_SEPARATORS.split(form.tags) if t.strip()))
    if tag_list != list(resource.tags or []):
        changed["tags"] = tag_list
    if not changed:
        return _back(code, "unchanged")
    try:
        data = ResourceUpdate(**changed)
        service.update_resource(session, actor=principal, code=code, data=data)
    except (ValidationError, HaiheError) as exc:
        page = _edit_page(request, resource, typed, error=_reason(exc), status=422)
        raise RenderedError(page) from exc
    return _back(code, "updated")


def _editable(session: Session, principal: Principal, code: str) -> Resource:
    """The entry ``code`` if ``principal`` may edit it; a refusal otherwise."""
    resource = service.get_resource(session, actor=principal, code=code)
    if not service.can_edit(principal, resource):
        raise Forbidden("only the provider's admin or the platform admin may edit this entry")
    return _live(resource)


def _loadable(session: Session, principal: Principal, code: str) -> Resource:
    """The entry ``code`` if ``principal`` may load data into it; a refusal otherwise."""
    resource = service.get_resource(session, actor=principal, code=code)
    if not service.can_load(principal, resource):
        raise Forbidden(f"only the provider's admins and operators load data into {code}")
    return _live(resource)


def _live(resource: Resource) -> Resource:
    if resource.status is ResourceStatus.RETIRED:
        raise Conflict(f"catalogue entry {resource.code} is retired; it can no longer change")
    return resource


def _edit_page(
    request: Request,
    resource: Resource,
    values: dict[str, str],
    *,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    context = {"resource": resource, "values": values, "error": error}
    return render(request, "catalogue/edit.html", context, status=status)


def _reason(exc: Exception) -> str:
    """What went wrong, in one line, from a service error or a validation error."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return exc.message if isinstance(exc, HaiheError) else str(exc)


# ---------------------------------------------------------------- loading data


@router.get("/catalogue/{code}/load", response_class=HTMLResponse)
def load_form(
    code: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    result: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """The upload form; after a load, the summary of what it read, accepted and rejected."""
    resource = _loadable(session, principal, code)
    done = repo.load_by_id(session, resource.id, result) if result else None
    return _load_page(request, resource, done=load_out(done, code) if done else None)


@router.post("/catalogue/{code}/load", response_class=HTMLResponse)
def load(
    code: str,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    principal: CurrentPrincipal,
    file: Annotated[UploadFile | None, File()] = None,
    format: Annotated[str, Form()] = "",
    encoding: Annotated[str, Form()] = "",
) -> Response:
    """Load an uploaded file as the entry's new version; a failure changes nothing."""
    resource = _loadable(session, principal, code)
    chosen = {"format": format, "encoding": encoding}
    if file is None or not file.filename:
        page = _load_page(
            request, resource, chosen=chosen, error="catalogue.load.no_file", status=422
        )
        raise RenderedError(page)
    folder = settings.data_dir / "uploads" / uuid.uuid4().hex
    try:
        folder.mkdir(parents=True)
        path = folder / (Path(file.filename).name or "upload")
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out, length=1 << 20)
        source = LoadSource.for_file(
            path, format=format or None, encoding=encoding or None, original_name=file.filename
        )
        done = load_resource(session, actor=principal, settings=settings, code=code, source=source)
    except HaiheError as exc:
        # Raised, not returned: the request rolls back and the failed load is recorded.
        page = _load_page(request, resource, chosen=chosen, failure=exc.message, status=exc.status)
        raise RenderedError(page) from exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return RedirectResponse(f"/catalogue/{code}/load?result={done.id}", status_code=303)


def _load_page(
    request: Request,
    resource: Resource,
    *,
    done: LoadOut | None = None,
    chosen: dict[str, str] | None = None,
    error: str | None = None,
    failure: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    context = {
        "resource": resource,
        "done": done,
        "chosen": chosen or {"format": "", "encoding": ""},
        "error": error,
        "failure": failure,
        "when": local_time,
    }
    return render(request, "catalogue/load.html", context, status=status)
