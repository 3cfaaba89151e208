"""Finding entries — 目录检索: keyword search in Chinese and English, filters and facet counts.

When an entry is saved, ``search_document`` writes its tokens (``haihe.catalogue.tokens``) to
``search_text`` in three lines — names, summary, the rest — each token once, in the first line
that has it, with the tokens of the text in canonical form added (低保 → 最低生活保障, death →
死亡). ``search`` finds the entries holding every word of a query and ranks those whose names hold
them all first, then those whose names and summary do, then the rest, each group in code order.

The database looks tokens up in full-text indexes over ``search_text`` (migrations 0003 and
0005, ``search_ddl``): an FTS5 table on SQLite, a GIN index on PostgreSQL. Both are asked the same
question — does this set of tokens hold these tokens (or tokens starting so) — so both give the
same answers. Every combination of facet values is a numbered cell (``catalogue_facet_counts``)
and each entry's cell and code sit in a narrow table (``catalogue_fts_cells``), so the facet counts
group the matches by one integer and read no wide entry row; visibility and filters apply to the
cells, then each facet sums the cells that pass every filter but its own (with no words, the cells'
own counts). The page is asked tier by tier in code order with a limit — names, then names and
summary, then the rest — and a lower tier only while the page is not full, so a word found in a
quarter of the catalogue is not ranked in full.
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
from sqlalchemy.dialects.postgresql import TSQUERY, TSVECTOR
from sqlalchemy.orm import Session

from haihe.catalogue.models import Resource
from haihe.catalogue.repository import visible_to
from haihe.catalogue.schemas import FacetCount, ResourceBrief
from haihe.catalogue.search_ddl import HEAD_MARK, NAMES_MARK
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
_CELLS = table(
    "catalogue_facet_counts",
    column("cell", Integer),
    column("provider_id", Integer),
    *(column(name, String) for name in FACETS[1:]),
    column("n", Integer),
)
_CELL_KEYS = [_CELLS.c[name] for name in ("provider_id", *FACETS[1:])]
_ENTRIES = table(
    "catalogue_fts_cells",
    column("id", Integer),
    column("cell", Integer),
    column("code", String),
    column("words", TSVECTOR),
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
    visible = visible_to(actor, _CELLS.c)
    allowed = [*([visible] if visible is not None else []), *_filtered(_CELLS, filters).values()]
    wanted = offset + limit
    asked: list[tuple[int, str]] = []
    if words:
        dialect = session.get_bind().dialect.name
        every, asked = _asked(dialect, words)
        found = _found(dialect, every).add_columns(_ENTRIES.c.cell, func.count().label("n"))
        grouped = found.group_by(_ENTRIES.c.cell).cte("found")
        cube = select(*_CELL_KEYS, grouped.c.n).join(grouped, grouped.c.cell == _CELLS.c.cell)
        first = _tier_page(dialect, *asked.pop(0), allowed, wanted)
    else:
        cube = select(*_CELL_KEYS, _CELLS.c.n).where(_CELLS.c.n > 0)
        first = _front_page(actor, filters, limit, offset)
    if visible is not None:
        cube = cube.where(visible)
    counted = _counts(cube.cte("cube").prefix_with("MATERIALIZED"), filters)
    rows = session.execute(union_all(*counted, first)).all()
    hits = [r for r in rows if r[0] == _HIT]
    # the tiers are disjoint and ranked: ask a lower one only while the page is not yet full
    for tier, query in asked:
        if len(hits) >= wanted:
            break
        page = _tier_page(dialect, tier, query, allowed, wanted - len(hits))
        hits += session.execute(page).all()
    counts: list[list[tuple[str, int]]] = [[] for _ in FACETS]
    for kind, value, n, _, _ in rows:
        if kind < len(FACETS) and value:  # entries with no base library or topic are not listed
            counts[kind].append((value, int(n)))
    facets = {
        name: [FacetCount(value=v, count=c) for v, c in sorted(pairs, key=_by_count)]
        for name, pairs in zip(FACETS, counts, strict=True)
    }
    ranked = sorted(hits, key=lambda r: (-r[2], r[4]))[offset if words else 0 :][:limit]
    total = next((r[2] for r in rows if r[0] == _TOTAL), None) or 0
    return Hits(total=int(total), items=_briefs(session, [r[3] for r in ranked]), facets=facets)


def _counts(cube: Any, filters: Filters) -> list[Select[Any]]:
    """Rows (facet number, value, count) for each facet, and (_TOTAL, -, total).

    ``cube`` has the matches the actor may see grouped by all six facet values (their cells);
    each facet sums the groups that pass every filter but its own.
    """
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


def _asked(dialect: str, words: list[Word]) -> tuple[str, list[tuple[int, str]]]:
    """The dialect's text query for every match, and for each of the three disjoint tiers.

    Tier 3 is the entries whose names hold every word, 2 those whose names and summary do but
    not the names alone, 1 the rest.
    """
    if dialect == "sqlite":
        every = " AND ".join(_fts5(w) for w in words)
        names, head = (f"{{{columns}}} : ({every})" for columns in ("names", "names summary"))
        return every, [(3, names), (2, f"({head}) NOT ({names})"), (1, f"({every}) NOT ({head})")]
    every, names, head = (
        " & ".join(f"({_tsquery(w, mark)})" for w in words) for mark in ("", NAMES_MARK, HEAD_MARK)
    )
    return every, [(3, names), (2, f"({head}) & !({names})"), (1, f"({every}) & !({head})")]


def _found(dialect: str, query: str) -> Select[Any]:
    """Entries (``catalogue_fts_cells``) the text query matches, found through the text index."""
    if dialect == "sqlite":
        match = literal_column("catalogue_fts").op("MATCH")(literal(query))
        joined = _FTS.join(_ENTRIES, _ENTRIES.c.id == _FTS.c.rowid)
        return select().select_from(joined).where(match)
    asked = _ENTRIES.c.words.op("@@")(cast(literal(query), TSQUERY))
    return select().select_from(_ENTRIES).where(asked)


def _tier_page(
    dialect: str, tier: int, query: str, allowed: list[ColumnElement[bool]], n: int
) -> Any:
    """The first ``n`` entries, in code order, of one tier that the actor may see and want."""
    found = (
        _found(dialect, query)
        .add_columns(_ENTRIES.c.id, _ENTRIES.c.code)
        .join(_CELLS, _CELLS.c.cell == _ENTRIES.c.cell)
        .where(*allowed)
        .order_by(_ENTRIES.c.code)
        .limit(n)
        .subquery()
    )
    return select(literal(_HIT), _NO_VALUE, literal(tier), found.c.id, found.c.code)


def _front_page(actor: Principal, filters: Filters, limit: int, offset: int) -> Any:
    """With no words: the page of every entry the actor may see and wants, in code order."""
    visible = visible_to(actor, _R)
    source = (
        select(_R.id, _R.code, _R.provider_id, *_FACET_COLUMNS)
        .where(*([visible] if visible is not None else []))
        .subquery("entries")
    )
    page = (
        select(source.c.id, source.c.code)
        .where(*_filtered(source, filters).values())
        .order_by(source.c.code)
        .limit(limit)
        .offset(offset)
        .subquery()
    )
    return select(literal(_HIT), _NO_VALUE, literal(1), page.c.id, page.c.code)


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
