"""CKAN's read actions — 动作接口 — over the portal: each takes the call's context and its
parameters (strings from a GET, JSON values from a POST) and returns the ``result``.

Errors are Haihe's (NotFound, Forbidden, FieldErrors, SearchQueryError); ``ckan_api`` turns
them into CKAN's envelope and HTTP status.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from haihe import __version__
from haihe.core.auth import Principal
from haihe.core.errors import Forbidden, NotFound
from haihe.core.settings import Settings
from haihe.portal import ckan, datastore, search, service, sql
from haihe.portal import repository as repo
from haihe.portal.datastore import FieldErrors, SearchIn
from haihe.portal.materialise import data_store
from haihe.portal.models import Dataset
from haihe.portal.topics import BY_NAME, TOPICS


@dataclass
class Context:
    """One action call: the request's session, settings, caller and the site's base URL."""

    session: Session
    settings: Settings
    actor: Principal | None
    base_url: str


Action = Callable[[Context, dict[str, Any]], Any]
ACTIONS: dict[str, Action] = {}


def action(fn: Action) -> Action:
    ACTIONS[fn.__name__] = fn
    return fn


# ---------------------------------------------------------------- parameters


def _missing(name: str) -> FieldErrors:
    return FieldErrors({name: ["Missing value"]})


def _required(params: dict[str, Any], *names: str) -> str:
    for name in names:
        value = params.get(name)
        if value not in (None, ""):
            return str(value)
    raise _missing(names[0])


def _int(
    params: dict[str, Any], name: str, default: int | None, *, maximum: int | None = None
) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw) if not isinstance(raw, bool) else None
    except (TypeError, ValueError):
        value = None
    if value is None:
        raise FieldErrors({name: ["Invalid integer"]})
    if value < 0:
        raise FieldErrors({name: ["Must be a natural number"]})
    if maximum is not None and value > maximum:
        raise FieldErrors({name: [f"Must be less than or equal to {maximum}"]})
    return value


def _bool(params: dict[str, Any], name: str, default: bool) -> bool:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "1", "yes", "on", "t", "y"):
        return True
    if text in ("false", "0", "no", "off", "f", "n"):
        return False
    raise FieldErrors({name: [f"Value must be one of ['true', 'false']: {raw!r}"]})


def _json(params: dict[str, Any], name: str, default: Any) -> Any:
    """A parameter that is JSON in a GET and a JSON value in a POST."""
    raw = params.get(name)
    if raw in (None, ""):
        return default
    if isinstance(raw, str) and raw.strip()[:1] in ("[", "{", '"'):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise FieldErrors({name: ["Cannot parse JSON"]}) from None
    return raw


def _list(params: dict[str, Any], name: str) -> list[str] | None:
    value = _json(params, name, None)
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise FieldErrors({name: ["Must be a list of strings"]})


# ---------------------------------------------------------------- shapes


def _package(ctx: Context, ds: Dataset) -> dict[str, Any]:
    return _packages(ctx, [ds])[0]


def _packages(ctx: Context, datasets: list[Dataset]) -> list[dict[str, Any]]:
    orgs = repo.orgs_by_ids(ctx.session, {d.org_id for d in datasets})
    resources = repo.resources_by_ids(ctx.session, {d.resource_id for d in datasets})
    return [
        ckan.package_dict(
            d, org=orgs[d.org_id], resource=resources[d.resource_id], base_url=ctx.base_url
        )
        for d in datasets
    ]


def _count_call(ctx: Context, ds: Dataset) -> None:
    service.count_use(ctx.session, ds=ds, what="api_calls")


# ---------------------------------------------------------------- site


@action
def site_read(ctx: Context, params: dict[str, Any]) -> bool:
    """True: the site may be read."""
    return True


@action
def status_show(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """The site's description, versions and extensions."""
    return {
        "site_title": "海河 · 公共数据开放平台",
        "site_description": "Haihe open-data portal (CKAN-compatible API)",
        "site_url": ctx.base_url,
        "ckan_version": ckan.CKAN_VERSION,
        "haihe_version": __version__,
        "error_emails_to": None,
        "locale_default": "zh_Hans_CN",
        "extensions": ["datastore", "dcat"],
    }


@action
def help_show(ctx: Context, params: dict[str, Any]) -> str:
    """The help text of an action."""
    name = _required(params, "name")
    fn = ACTIONS.get(name)
    if fn is None:
        raise NotFound(f"Action function not found: {name}")
    return (fn.__doc__ or "").strip()


# ---------------------------------------------------------------- datasets


@action
def package_list(ctx: Context, params: dict[str, Any]) -> list[str]:
    """Names of the portal's active datasets, by name."""
    limit = _int(params, "limit", None)
    offset = _int(params, "offset", 0) or 0
    return repo.active_names(ctx.session, limit=limit, offset=offset)


@action
def package_show(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """One dataset by id or name."""
    ds = service.get_dataset(ctx.session, ref=_required(params, "id", "name_or_id"))
    _count_call(ctx, ds)
    return _package(ctx, ds)


@action
def package_search(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Datasets matching q and fq, with facets."""
    rows = _int(params, "rows", 10, maximum=search.MAX_ROWS)
    start = _int(params, "start", 0) or 0
    facet_fields = _list(params, "facet.field") or []
    facet_limit = _int(params, "facet.limit", 50) or 50
    query = search.parse(str(params.get("q") or ""), str(params.get("fq") or ""))
    extra_fq = _json(params, "fq_list", None)
    if isinstance(extra_fq, list):
        for fq in extra_fq:
            query.conditions.extend(search.parse("", str(fq)).conditions)
    sort_text = str(params.get("sort") or "") or None
    order = search.parse_sort(sort_text)
    found = search.search(
        ctx.session,
        query=query,
        sort=order,
        rows=rows or 0,
        start=start,
        facet_fields=facet_fields,
        facet_limit=facet_limit,
    )
    results = _packages(ctx, repo.datasets_by_ids(ctx.session, found.ids))
    display = _displayer(ctx, [key for key, _n in found.facets.get("organization", [])])
    return {
        "count": found.count,
        "sort": sort_text or "score desc, metadata_modified desc",
        "facets": {name: dict(items) for name, items in found.facets.items()},
        "search_facets": {
            name: {
                "title": name,
                "items": [
                    {"name": key, "display_name": display(name, key), "count": n}
                    for key, n in items
                ],
            }
            for name, items in found.facets.items()
        },
        "results": results,
    }


def _displayer(ctx: Context, org_keys: list[str]) -> Callable[[str, str], str]:
    """The display name of a facet value: a topic's or a provider's Chinese name (the
    providers looked up in one query)."""
    org_names = repo.org_names_by_codes_ci(ctx.session, org_keys)

    def display(facet: str, key: str) -> str:
        if facet == "groups" and key in BY_NAME:
            return BY_NAME[key].zh
        if facet == "organization":
            return org_names.get(key, key)
        return key

    return display


@action
def resource_show(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """One resource (a dataset's data in one format) by id."""
    ref = _required(params, "id")
    found = _resource(ctx, ref)
    if found is None:
        raise NotFound("Resource was not found.")
    ds, fmt, position = found
    _count_call(ctx, ds)
    return ckan.resource_dict(ds, fmt, position, base_url=ctx.base_url)


def _resource(ctx: Context, ref: str) -> tuple[Dataset, str, int] | None:
    ds = repo.dataset_by_resource_uuid(ctx.session, ref)
    if ds is not None and ds.state.value == "active":
        return ds, "CSV", 0
    # Other formats' ids are derived from the CSV one: look among the datasets' resources.
    for candidate in _all_active(ctx):
        for position, fmt in enumerate(f for f in candidate.formats.split(",") if f):
            if ckan.resource_id(candidate, fmt) == ref:
                return candidate, fmt, position
    return None


def _all_active(ctx: Context) -> list[Dataset]:
    return list(repo.active_datasets(ctx.session))


# ---------------------------------------------------------------- organisations, groups, tags


def _sorted(items: list[tuple[dict[str, Any], int]], sort: str) -> list[tuple[dict[str, Any], int]]:
    bits = sort.split()
    key, direction = bits[0], (bits[1].lower() if len(bits) > 1 else "asc")
    if key not in ("name", "title", "package_count") or direction not in ("asc", "desc"):
        raise FieldErrors({"sort": [f"Cannot sort by {sort!r}: name, title or package_count"]})
    return sorted(
        items,
        key=lambda pair: pair[1] if key == "package_count" else pair[0][key],
        reverse=direction == "desc",
    )


@action
def organization_list(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Organisations that provide datasets: names, or dicts with all_fields."""
    counted = [
        (ckan.organization_dict(org, base_url=ctx.base_url, package_count=n), n)
        for org, n in repo.provider_counts(ctx.session)
    ]
    wanted = _list(params, "organizations")
    if wanted:
        counted = [c for c in counted if c[0]["name"] in wanted]
    items = _sorted(counted, str(params.get("sort") or "name asc"))
    offset = _int(params, "offset", 0) or 0
    limit = _int(params, "limit", None)
    page = items[offset:] if limit is None else items[offset : offset + limit]
    if _bool(params, "all_fields", False):
        return [d for d, _n in page]
    return [d["name"] for d, _n in page]


@action
def organization_show(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """One organisation by name (or id), optionally with its datasets."""
    ref = _required(params, "id")
    counts = {org.code.lower(): (org, n) for org, n in repo.provider_counts(ctx.session)}
    found = counts.get(ref.lower()) or next(
        (v for v in counts.values() if ckan.organization_dict(v[0], base_url="")["id"] == ref),
        None,
    )
    if found is None:
        raise NotFound("Organization was not found.")
    org, n = found
    out = ckan.organization_dict(org, base_url=ctx.base_url, package_count=n)
    out["users"] = []
    out["groups"] = []
    out["tags"] = []
    if _bool(params, "include_datasets", False):
        query = search.parse("", f"organization:{org.code.lower()}")
        hits = search.search(
            ctx.session, query=query, sort=search.parse_sort("name asc"), rows=search.MAX_ROWS,
            start=0, facet_fields=[], facet_limit=0,
        )  # fmt: skip
        out["packages"] = _packages(ctx, repo.datasets_by_ids(ctx.session, hits.ids))
    return out


@action
def group_list(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """The 21 topics: names, or dicts with all_fields."""
    counts = repo.topic_counts(ctx.session)
    items = [(ckan.group_dict(t, package_count=counts.get(t.name, 0)), counts.get(t.name, 0))
             for t in TOPICS]  # fmt: skip
    wanted = _list(params, "groups")
    if wanted:
        items = [i for i in items if i[0]["name"] in wanted]
    sort = params.get("sort")
    if sort:
        items = _sorted(items, str(sort))
    offset = _int(params, "offset", 0) or 0
    limit = _int(params, "limit", None)
    page = items[offset:] if limit is None else items[offset : offset + limit]
    if _bool(params, "all_fields", False):
        return [d for d, _n in page]
    return [d["name"] for d, _n in page]


@action
def group_show(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """One topic by name (or id), optionally with its datasets."""
    ref = _required(params, "id")
    topic = BY_NAME.get(ref) or next((t for t in TOPICS if ckan.group_dict(t)["id"] == ref), None)
    if topic is None:
        raise NotFound("Group was not found.")
    counts = repo.topic_counts(ctx.session)
    out = ckan.group_dict(topic, package_count=counts.get(topic.name, 0))
    out["users"] = []
    out["groups"] = []
    out["tags"] = []
    if _bool(params, "include_datasets", False):
        query = search.parse("", f"groups:{topic.name}")
        hits = search.search(
            ctx.session, query=query, sort=search.parse_sort("name asc"), rows=search.MAX_ROWS,
            start=0, facet_fields=[], facet_limit=0,
        )  # fmt: skip
        out["packages"] = _packages(ctx, repo.datasets_by_ids(ctx.session, hits.ids))
    return out


@action
def tag_list(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Tags of active datasets (``query`` narrows them); dicts with all_fields."""
    query = params.get("query") or params.get("q")
    tags = repo.tag_counts(
        ctx.session,
        q=str(query) if query else None,
        limit=_int(params, "limit", None),
        offset=_int(params, "offset", 0) or 0,
    )
    if _bool(params, "all_fields", False):
        return [ckan.tag_dict(t) for t in tags]
    return tags


# ---------------------------------------------------------------- datastore


@action
def datastore_search(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Rows of one dataset's datastore resource."""
    ref = _required(params, "resource_id", "id")
    ds = repo.dataset_by_resource_uuid(ctx.session, ref)
    if ds is None or ds.state.value != "active":
        raise NotFound(f'Resource "{ref}" was not found.')
    service.require_data_access(ctx.session, ctx.actor, ds)
    filters = _json(params, "filters", {})
    if not isinstance(filters, dict):
        raise FieldErrors({"filters": ["Not a json object"]})
    q = _json(params, "q", None)
    if q is not None and not isinstance(q, str | dict):
        raise FieldErrors({"q": ["Must be text or an object of field: text"]})
    sort = _json(params, "sort", None)
    if isinstance(sort, list):
        sort = ", ".join(str(s) for s in sort)
    records_format = str(params.get("records_format") or "objects")
    if records_format not in datastore.RECORDS_FORMATS:
        raise FieldErrors(
            {"records_format": [f"Value must be one of {list(datastore.RECORDS_FORMATS)}"]}
        )
    req = SearchIn(
        filters=filters,
        q=q,
        fields=_list(params, "fields"),
        sort=str(sort) if sort else None,
        limit=_int(params, "limit", datastore.DEFAULT_LIMIT, maximum=datastore.MAX_LIMIT) or 0,
        offset=_int(params, "offset", 0) or 0,
        include_total=_bool(params, "include_total", True),
        records_format=records_format,
        total_estimation_threshold=_int(params, "total_estimation_threshold", None),
    )
    result = datastore.search(ctx.settings, ds, req)
    base = f"/api/3/action/datastore_search?resource_id={ds.resource_uuid}"
    result["_links"] = {
        "start": base,
        "next": f"{base}&offset={req.offset + req.limit}",
    }
    _count_call(ctx, ds)
    return result


@action
def datastore_search_sql(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """One read-only SELECT over open datasets' datastore resources."""
    text = _required(params, "sql")
    checked = sql.check(text)
    readable = service.readable_resource_uuids(ctx.session, ctx.actor, checked.tables)
    known = {d.resource_uuid for d in repo.datasets_by_resource_uuids(ctx.session, checked.tables)}
    for name in checked.tables:
        if name not in known:
            raise FieldErrors({"query": [f'relation "{name}" does not exist']})
        if name not in readable:
            raise Forbidden(f"Not authorized to read resource {name}")
    store = data_store(ctx.settings)
    paths = {}
    for name, ds in readable.items():
        manifest = store.manifest(ds.uuid, ds.data_version)
        paths[name] = [str(p) for p in store.paths(manifest)]
    table, truncated = sql.run(
        checked,
        paths,
        seconds=ctx.settings.portal_sql_seconds,
        memory_limit=ctx.settings.portal_sql_memory_limit,
    )
    records, fields = sql.records(table)
    for ds in readable.values():
        _count_call(ctx, ds)
    out: dict[str, Any] = {"sql": text, "records": records, "fields": fields}
    if truncated:
        out["records_truncated"] = True
    return out
