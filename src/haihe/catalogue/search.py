"""Finding entries — 目录检索: keyword search in Chinese and English, filters and facet counts.

When an entry is saved, ``search_document`` writes its tokens (``haihe.catalogue.tokens``) to
``search_text`` in three lines — names, summary, the rest — each token once, in the first line
that has it, with the tokens of the text in canonical form added (低保 → 最低生活保障, death →
死亡). ``search`` finds the entries holding every word of a query and ranks those whose names hold
them all first, then those whose names and summary do, then the rest, each group in code order.

The database looks tokens up in full-text indexes over ``search_text`` that migration 0003 builds
(``search_ddl.INDEX_DDL``): an FTS5 table on SQLite, GIN indexes on PostgreSQL. Both are asked
the same question — does this set of tokens hold these tokens (or tokens starting so) — so both
give the same answers. One statement returns the page and every facet count: the matches are
grouped once by their six facet values (with no words, the groups are kept ready in
``catalogue_facet_counts``), then each facet sums the groups that pass every filter but its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    case,
    cast,
    column,
    func,
    literal,
    literal_column,
    null,
    select,
    table,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.orm import Session

from haihe.catalogue.models import Resource
from haihe.catalogue.repository import visible_to
from haihe.catalogue.schemas import FacetCount, ResourceBrief
from haihe.catalogue.search_ddl import HEAD_MARK, NAMES_MARK, pg_vector
from haihe.catalogue.tokens import Word, fold, parse, synonyms, tokens
from haihe.catalogue.topics import BASE_LIBRARIES, TOPICS
from haihe.core.auth import Principal
from haihe.core.errors import InvalidInput
from haihe.orgs.models import Organisation

FACETS = ("provider", "base_library", "topic", "sharing_type", "open_type", "status")


def _section(parts: Iterable[str | None], seen: set[str]) -> str:
    folded = fold(" ".join(p for p in parts if p))
    found = tokens(folded)
    rewritten = synonyms().rewrite(folded)
    if rewritten != folded:
        found += tokens(rewritten)
    fresh = [t for t in dict.fromkeys(found) if t not in seen]
    seen.update(fresh)
    return " ".join(fresh)


def search_document(resource: Resource, provider: Organisation) -> str:
    """The tokens an entry is found by, one line per section: names, summary, the rest.

    A token is written once, in the first section that has it: search asks whether the names,
    the names and summary, or all of the text hold a word.
    """
    names = (resource.name_zh, resource.name_en)
    summary = (resource.summary_zh, resource.summary_en, *(resource.tags or []))
    rest = [resource.code, provider.code, provider.name_zh, provider.name_en]
    if resource.topic:
        rest.extend(TOPICS[resource.topic])
    if resource.base_library:
        rest.extend(BASE_LIBRARIES[resource.base_library][1:])
    for item in resource.items:
        rest.extend([item.name, item.name_zh, item.name_en, item.description])
    rest.extend([resource.sharing_conditions, resource.legal_basis, resource.open_conditions])
    seen: set[str] = set()
    return "\n".join(_section(part, seen) for part in (names, summary, rest))


def reindex(session: Session) -> int:
    """Rewrite every entry's search text (after the synonym table changes); how many changed."""
    providers = {org.id: org for org in session.scalars(select(Organisation))}
    changed = 0
    entries = session.scalars(select(Resource).execution_options(yield_per=500))
    for batch in entries.partitions():
        for resource in batch:
            text = search_document(resource, providers[resource.provider_id])
            if text != resource.search_text:
                resource.search_text = text
                changed += 1
        session.flush()
        for resource in batch:  # written: keep memory flat over 40,000 entries
            session.expunge(resource)
    return changed


# ---------------------------------------------------------------- searching

_R = Resource.__table__.c
_FTS = table("catalogue_fts", column("rowid", Integer))
_FACET_COLUMNS = [type_coerce(_R[name], String).label(name) for name in FACETS[1:]]
_COUNTS = table(
    "catalogue_facet_counts",
    *(column(name, String) for name in FACETS[1:]),
    column("provider_id", Integer),
    column("n", Integer),
)


@dataclass
class Filters:
    """Values the hits must have; ``provider`` is an organisation code."""

    provider: str | None = None
    base_library: str | None = None
    topic: str | None = None
    sharing_type: str | None = None
    open_type: str | None = None
    status: str | None = None


@dataclass
class Hits:
    """One page of hits, how many there are in all, and the facet counts.

    Each facet counts the entries that match the query and every filter but its own, so it shows
    what choosing another value would give.
    """

    total: int
    items: list[ResourceBrief]
    facets: dict[str, list[FacetCount]] = field(default_factory=dict)


def search(
    session: Session,
    *,
    actor: Principal,
    q: str | None,
    filters: Filters,
    limit: int,
    offset: int,
) -> Hits:
    """Entries the actor may see matching every word of ``q`` and the filters, best first.

    Entries whose names hold every word come first, then those whose names and summary do, then
    the rest; each group in code order.
    """
    if limit < 0 or offset < 0:
        raise InvalidInput("limit and offset cannot be negative")
    words = parse(q)
    source = _matching(session.get_bind().dialect.name, words, visible_to(actor, _R))
    page = (
        select(source.c.id, source.c.code, source.c.tier)
        .where(*_filtered(source, filters).values())
        .order_by(*([source.c.tier.desc()] if words else []), source.c.code)
        .limit(limit)
        .offset(offset)
        .subquery()
    )
    hits = select(literal(_HIT), _NO_VALUE, page.c.tier, page.c.id, page.c.code)
    counted = _counts(source, filters, actor, bool(words))
    rows = session.execute(union_all(*counted, hits)).all()
    counts: list[list[tuple[str, int]]] = [[] for _ in FACETS]
    for kind, value, n, _, _ in rows:
        if kind < len(FACETS) and value:  # entries with no base library or topic are not listed
            counts[kind].append((value, int(n)))
    facets = {
        name: [FacetCount(value=v, count=c) for v, c in sorted(pairs, key=_by_count)]
        for name, pairs in zip(FACETS, counts, strict=True)
    }
    ranked = sorted((r for r in rows if r[0] == _HIT), key=lambda r: (-r[2], r[4]))
    total = next((r[2] for r in rows if r[0] == _TOTAL), None) or 0
    return Hits(total=int(total), items=_briefs(session, [r[3] for r in ranked]), facets=facets)


def _counts(source: Any, filters: Filters, actor: Principal, words: bool) -> list[Select[Any]]:
    """Rows (facet number, value, count) for each facet, and (_TOTAL, -, total).

    The matches are grouped once by all six facet values — or, with no words, read so grouped
    from ``catalogue_facet_counts`` — and each facet sums the groups that pass every filter but
    its own.
    """
    if words:
        keys = [source.c.provider_id, *(source.c[name] for name in FACETS[1:])]
        grouped = select(*keys, func.count().label("n")).group_by(*keys)
    else:
        visible = visible_to(actor, _COUNTS.c)
        grouped = select(_COUNTS).where(
            _COUNTS.c.n > 0, *([visible] if visible is not None else [])
        )
    cube = grouped.cte("cube").prefix_with("MATERIALIZED")
    conditions = _filtered(cube, filters)
    parts = []
    for i, name in enumerate(FACETS):
        others = [c for n, c in conditions.items() if n != name]
        value: Any = cube.c[name] if i else Organisation.code
        part = select(literal(i), value, func.sum(cube.c.n), _NO_ID, _NO_CODE).where(*others)
        if not i:
            part = part.join(Organisation, Organisation.id == cube.c.provider_id)
        parts.append(part.group_by(value))
    total = select(literal(_TOTAL), _NO_VALUE, func.sum(cube.c.n), _NO_ID, _NO_CODE)
    return [*parts, total.where(*conditions.values())]


_TOTAL, _HIT = len(FACETS), len(FACETS) + 1
# typed, so PostgreSQL can match the columns of the union
_NO_VALUE = cast(null(), String)
_NO_ID = cast(null(), Integer)
_NO_CODE = cast(null(), String)


def _matching(dialect: str, words: list[Word], visible: ColumnElement[bool] | None) -> Any:
    """Id, code, provider, facet values and tier (3 names, 2 summary, 1 rest) of each match."""
    conditions = [visible] if visible is not None else []
    cols = [_R.id, _R.code, _R.provider_id, *_FACET_COLUMNS]
    if not words:
        return select(*cols, literal(1).label("tier")).where(*conditions).subquery("matching")
    if dialect == "sqlite":
        query = " AND ".join(_fts5(w) for w in words)
        names, head = (f"{{{columns}}} : ({query})" for columns in ("names", "names summary"))
        tier = case((_R.id.in_(_fts_ids(names)), 3), (_R.id.in_(_fts_ids(head)), 2), else_=1)
        stmt: Any = select(*cols, tier.label("tier")).where(*conditions, _R.id.in_(_fts_ids(query)))
    else:
        # three disjoint sets, each found in the index alone: names, then head, then the rest
        every, names, head = (
            " & ".join(f"({_tsquery(w, mark)})" for w in words)
            for mark in ("", NAMES_MARK, HEAD_MARK)
        )
        asked = [(3, names), (2, f"({head}) & !({names})"), (1, f"({every}) & !({head})")]
        vector: ColumnElement[Any] = literal_column(pg_vector())
        stmt = union_all(
            *(
                select(*cols, literal(tier).label("tier")).where(
                    *conditions, vector.op("@@")(cast(literal(query), TSQUERY))
                )
                for tier, query in asked
            )
        )
    return stmt.cte("matching").prefix_with("MATERIALIZED")


def _briefs(session: Session, ids: list[int]) -> list[ResourceBrief]:
    if not ids:
        return []
    stmt = (
        select(
            _R.id, _R.code, _R.name_zh, _R.name_en, _R.summary_zh, Organisation.code,
            Organisation.name_zh, _R.base_library, _R.topic, _R.sharing_type, _R.open_type,
            _R.status, _R.row_count, _R.updated_at,
        )
        .join(Organisation, Organisation.id == _R.provider_id)
        .where(_R.id.in_(ids))
    )  # fmt: skip
    found = {
        row[0]: ResourceBrief(**dict(zip(_BRIEF, row[1:], strict=True)))
        for row in session.execute(stmt)
    }
    return [found[i] for i in ids]


_BRIEF = (
    "code", "name_zh", "name_en", "summary_zh", "provider_code", "provider_name", "base_library",
    "topic", "sharing_type", "open_type", "status", "row_count", "updated_at",
)  # fmt: skip


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def _filtered(source: Any, filters: Filters) -> dict[str, ColumnElement[bool]]:
    """The condition of each filter that has a value, on ``source``'s columns, by facet."""
    out: dict[str, ColumnElement[bool]] = {}
    if filters.provider is not None:
        org = select(Organisation.id).where(Organisation.code == filters.provider)
        out["provider"] = source.c.provider_id == org.scalar_subquery()
    for name in FACETS[1:]:
        value = getattr(filters, name)
        if value is not None:
            out[name] = source.c[name] == value
    return out


# ---------------------------------------------------------------- per dialect


def _fts_ids(query: str) -> Select[tuple[int]]:
    """The ids of the entries the SQLite full-text query matches."""
    match = literal_column("catalogue_fts").op("MATCH")(literal(query))
    return select(_FTS.c.rowid).where(match)


def _fts5(word: Word) -> str:
    """The word as an FTS5 query: ``(("低保") OR ("最低" AND "低生" …))``; ``"x"*`` is a prefix."""
    alternatives = [
        " AND ".join(f'"{t}"' + ("*" if prefix else "") for t, prefix in alt)
        for alt in word.alternatives
    ]
    return "(" + " OR ".join(f"({a})" for a in alternatives) + ")"


def _tsquery(word: Word, mark: str = "") -> str:
    """The word as a tsquery: ``('低保') | ('最低' & '低生' …)``; ``'x':*`` is a prefix.

    With a mark, it asks for the marked tokens (those of the names, or of names and summary).
    """
    return " | ".join(
        "(" + " & ".join(f"'{mark}{t}'" + (":*" if prefix else "") for t, prefix in alt) + ")"
        for alt in word.alternatives
    )
