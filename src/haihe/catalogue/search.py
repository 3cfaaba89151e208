"""Finding entries — 目录检索: keyword search in Chinese and English, filters and facet counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from haihe.catalogue.models import Resource, ResourceStatus
from haihe.catalogue.topics import BASE_LIBRARIES, TOPICS
from haihe.core.auth import Principal, Role
from haihe.orgs.models import Organisation

FACETS = ("provider", "base_library", "topic", "sharing_type", "open_type", "status")


def search_document(resource: Resource, provider: Organisation) -> str:
    """The lower-cased text an entry is found by: names, summaries, items, provider, topic."""
    parts = [
        resource.code,
        resource.name_zh,
        resource.name_en or "",
        resource.summary_zh,
        resource.summary_en or "",
        provider.code,
        provider.name_zh,
        provider.name_en or "",
        " ".join(resource.tags or []),
    ]
    if resource.topic:
        parts.extend(TOPICS[resource.topic])
    if resource.base_library:
        parts.extend(BASE_LIBRARIES[resource.base_library][1:])
    for item in resource.items:
        parts.extend([item.name, item.name_zh, item.name_en or "", item.description or ""])
    return "\n".join(p for p in parts if p).lower()


@dataclass
class Filters:
    provider: str | None = None
    base_library: str | None = None
    topic: str | None = None
    sharing_type: str | None = None
    open_type: str | None = None
    status: str | None = None


@dataclass
class Hits:
    total: int
    rows: list[tuple[Resource, str, str]]
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


def search(
    session: Session,
    *,
    actor: Principal,
    q: str | None,
    filters: Filters,
    limit: int,
    offset: int,
) -> Hits:
    """Entries matching every word of ``q`` (in any field) and the filters, with facet counts."""
    terms = [t.lower() for t in (q or "").split() if t.strip()]
    stmt = select(
        Resource.id,
        Organisation.code,
        Resource.base_library,
        Resource.topic,
        Resource.sharing_type,
        Resource.open_type,
        Resource.status,
    ).join(Organisation, Organisation.id == Resource.provider_id)
    conditions = [Resource.search_text.contains(term, autoescape=True) for term in terms]
    visible = _visible(actor)
    if visible is not None:
        conditions.append(visible)
    if conditions:
        stmt = stmt.where(and_(*conditions))
    rows = session.execute(stmt).all()
    chosen = {
        "provider": filters.provider,
        "base_library": filters.base_library,
        "topic": filters.topic,
        "sharing_type": filters.sharing_type,
        "open_type": filters.open_type,
        "status": filters.status,
    }
    facets: dict[str, list[tuple[str, int]]] = {}
    for index, name in enumerate(FACETS, start=1):
        # each facet counts with every filter applied except its own
        counter: Counter[str] = Counter()
        for row in rows:
            if _passes(tuple(row), chosen, skip=name):
                counter[_text(row[index])] += 1
        facets[name] = counter.most_common()
    matched = [row[0] for row in rows if _passes(tuple(row), chosen, skip=None)]
    page_ids = matched[offset : offset + limit]
    by_id = {r.id: r for r in session.scalars(select(Resource).where(Resource.id.in_(page_ids)))}
    orgs = {
        o.id: o
        for o in session.scalars(
            select(Organisation).where(Organisation.id.in_({r.provider_id for r in by_id.values()}))
        )
    }
    page = [
        (by_id[i], orgs[by_id[i].provider_id].code, orgs[by_id[i].provider_id].name_zh)
        for i in page_ids
    ]
    return Hits(total=len(matched), rows=page, facets=facets)


def _text(value: object) -> str:
    return str(getattr(value, "value", value))


def _passes(row: tuple[object, ...], chosen: dict[str, str | None], *, skip: str | None) -> bool:
    for index, name in enumerate(FACETS, start=1):
        wanted = chosen[name]
        if wanted is not None and name != skip and _text(row[index]) != wanted:
            return False
    return True


def _visible(actor: Principal) -> ColumnElement[bool] | None:
    if actor.is_platform_admin or actor.has(Role.AUDITOR):
        return None
    published = Resource.status != ResourceStatus.DRAFT
    if actor.org_id is None:
        return published
    return or_(published, Resource.provider_id == actor.org_id)
