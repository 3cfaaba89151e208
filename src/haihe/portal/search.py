"""package_search — 数据集检索: CKAN's ``q`` and ``fq`` (a Solr subset) over the datasets.

Understood in ``fq`` (and as ``field:value`` terms inside ``q``): ``organization``, ``groups``,
``tags``, ``res_format``, ``license_id``, ``name``, ``id``, ``open_type``,
``metadata_modified`` and ``metadata_created`` (``[2024-01-01T00:00:00Z TO NOW]``, ``*`` for an
open end), each optionally negated with ``-`` (or ``NOT``), values quoted when they hold spaces.
Other words of ``q`` must all occur in a dataset's text (Chinese too: substring match). Anything
else is a ``SearchQueryError`` naming what was not understood, as Solr would refuse it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    cast,
    func,
    literal,
    not_,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session

from haihe.core.errors import BadRequest
from haihe.orgs.models import Organisation
from haihe.portal.models import Dataset, DatasetState, DatasetTag

MAX_ROWS = 1000
FACET_FIELDS = ("organization", "groups", "tags", "res_format", "license_id", "open_type")
SORTS = {
    "id": Dataset.uuid,
    "name": Dataset.name,
    "title_string": Dataset.title_zh,
    "metadata_modified": Dataset.modified_at,
    "metadata_created": Dataset.created_at,
    "score": None,
}
_TERM = re.compile(
    r"""\s*(?P<neg>-|\+|NOT\s+)?
        (?:(?P<field>[A-Za-z_]+):)?
        (?P<value>"[^"]*"|\[[^\]]*\]|\{[^}]*\}|[^\s"]+)""",
    re.VERBOSE,
)
_RANGE = re.compile(r"^[\[{]\s*(\S+)\s+TO\s+(\S+)\s*[\]}]$")


class SearchQueryError(BadRequest):
    """A ``q`` or ``fq`` the portal cannot read (CKAN: "Search Query Error", HTTP 400)."""

    code = "search_query_error"


@dataclass
class Query:
    """A parsed search: conditions on the datasets, and text words."""

    conditions: list[ColumnElement[bool]] = field(default_factory=list)
    words: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Found:
    count: int
    ids: list[int]
    facets: dict[str, list[tuple[str, int]]]


def parse(q: str, fq: str) -> Query:
    """Return the conditions of ``q`` and ``fq``; SearchQueryError on what is not understood."""
    out = Query()
    for text, in_q in ((q or "", True), (fq or "", False)):
        text = text.strip()
        if not text or text in ("*:*", "*"):
            continue
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TERM.match(text, pos)
            if m is None or m.end() == pos:
                raise SearchQueryError(f"cannot read {text[pos:]!r}")
            pos = m.end()
            neg = (m.group("neg") or "").strip() in ("-", "NOT")
            name, value = m.group("field"), m.group("value")
            if value in ("AND", "OR") and name is None:
                if value == "OR":
                    raise SearchQueryError("OR is not supported; run one search per alternative")
                continue
            if name is None:
                if not in_q:
                    raise SearchQueryError(f"fq term {value!r} names no field (field:value)")
                word = value.strip('"').lower()
                if word:
                    cond = Dataset.search_text.contains(word, autoescape=True)
                    out.conditions.append(not_(cond) if neg else cond)
                    if not neg:
                        out.words.append(word)
                continue
            cond = _field(name, value)
            out.conditions.append(not_(cond) if neg else cond)
    return out


def text_query(q: str) -> Query:
    """A search for datasets holding every word of ``q`` (no fields: a visitor's words)."""
    out = Query()
    for word in q.lower().split():
        out.conditions.append(Dataset.search_text.contains(word, autoescape=True))
        out.words.append(word)
    return out


def condition(name: str, value: str) -> ColumnElement[bool]:
    """The condition ``name:value`` for one plain value (no quoting needed; the public pages'
    facets build their searches with it)."""
    return _field(name, f'"{value}"' if '"' not in value else value)


def _field(name: str, raw: str) -> ColumnElement[bool]:
    if name in ("metadata_modified", "metadata_created"):
        column = Dataset.modified_at if name == "metadata_modified" else Dataset.created_at
        m = _RANGE.match(raw)
        if m is None:
            raise SearchQueryError(f"{name} takes a range: {name}:[2024-01-01T00:00:00Z TO NOW]")
        low, high = _instant(m.group(1)), _instant(m.group(2))
        parts: list[ColumnElement[bool]] = [true()]
        if low is not None:
            parts.append(column >= low)
        if high is not None:
            parts.append(column <= high)
        return and_(*parts)
    if raw.startswith(("[", "{")):
        raise SearchQueryError(f"{name} takes a value, not a range")
    value = raw.strip('"')
    if name == "organization":
        sub = select(Organisation.id).where(func.lower(Organisation.code) == value.lower())
        return Dataset.org_id.in_(sub)
    if name in ("groups", "group"):
        return Dataset.topic == value
    if name in ("tags", "tag"):
        return Dataset.id.in_(select(DatasetTag.dataset_id).where(DatasetTag.tag == value))
    if name == "res_format":
        return (func.lower("," + Dataset.formats + ",")).contains(
            f",{value.lower()},", autoescape=True
        )
    if name == "license_id":
        return Dataset.licence_id == value
    if name == "name":
        return Dataset.name == value
    if name == "id":
        return Dataset.uuid == value
    if name == "open_type":
        return Dataset.open_type == value
    raise SearchQueryError(
        f"field {name!r} cannot be searched; use organization, groups, tags, res_format, "
        "license_id, name, id, open_type, metadata_modified or metadata_created"
    )


def _instant(text: str) -> dt.datetime | None:
    if text == "*":
        return None
    if text.upper().startswith("NOW"):
        now = dt.datetime.now(dt.UTC)
        rest = text[3:]
        m = re.fullmatch(r"(?:([+-])(\d+)(DAYS?|HOURS?|MONTHS?|YEARS?))?(?:/DAY)?", rest.upper())
        if m is None:
            raise SearchQueryError(f"cannot read the date {text!r}")
        if m.group(1):
            n = int(m.group(2)) * (1 if m.group(1) == "+" else -1)
            unit = m.group(3).rstrip("S")
            days = {"DAY": 1, "HOUR": 1 / 24, "MONTH": 30, "YEAR": 365}[unit]
            now += dt.timedelta(days=n * days)
        return now
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SearchQueryError(
            f"cannot read the date {text!r}; write 2024-01-31T00:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def parse_sort(sort: str | None) -> list[Any]:
    """Return ORDER BY terms for CKAN's ``sort`` ("metadata_modified desc, name asc")."""
    if not sort:
        return [Dataset.modified_at.desc(), Dataset.id.desc()]
    out: list[Any] = []
    for part in sort.split(","):
        bits = part.split()
        if len(bits) == 1:
            bits.append("asc")
        if len(bits) != 2 or bits[0] not in SORTS or bits[1].lower() not in ("asc", "desc"):
            raise SearchQueryError(
                f"cannot sort by {part.strip()!r}; use one of {', '.join(SORTS)} with asc or desc"
            )
        col = SORTS[bits[0]]
        if col is None:  # score: a plain filter has no score, so the newest come first
            out.append(Dataset.modified_at.desc())
            continue
        out.append(col.asc() if bits[1].lower() == "asc" else col.desc())
    out.append(Dataset.id.asc())
    return out


def search(
    session: Session,
    *,
    query: Query,
    sort: list[Any],
    rows: int,
    start: int,
    facet_fields: list[str],
    facet_limit: int,
) -> Found:
    """Return the count, the ids of one page and the facet counts of a parsed search.

    The count and every facet come from one statement: the matches are selected once (a
    common table expression, narrow: the id and the facet columns) and each facet is one
    grouped branch of a UNION ALL over them, so a search costs two round trips (this and the
    page of ids) however many facets it asks for. Measured on PostgreSQL: one grouped query
    per facet plus a count cost 5 round trips and twice the time under load.
    """
    unknown = [f for f in facet_fields if f not in FACET_FIELDS]
    if unknown:
        raise SearchQueryError(
            f"facet.field {unknown[0]!r} is not offered; use {', '.join(FACET_FIELDS)}"
        )
    matched = (
        select(
            Dataset.id,
            Dataset.org_id,
            Dataset.topic,
            Dataset.formats,
            Dataset.licence_id,
            cast(Dataset.open_type, String).label("open_type"),
        )
        .where(Dataset.state == DatasetState.ACTIVE, *query.conditions)
        .cte("matched")
    )
    wanted = list(dict.fromkeys(facet_fields))
    branches = [_branch(name, matched) for name in wanted]
    n = func.count()
    counted = select(literal("", String).label("facet"), null().label("key"), n.label("n"))
    stmt = union_all(counted.select_from(matched), *branches)
    count = 0
    grouped: dict[str, list[tuple[str, int]]] = {name: [] for name in wanted}
    for facet, key, k in session.execute(stmt).all():
        if facet == "":
            count = int(k)
        elif key is not None:
            grouped[facet].append((str(key), int(k)))
    ids: list[int] = []
    if rows and count > start:
        page = select(Dataset.id).where(Dataset.state == DatasetState.ACTIVE, *query.conditions)
        ids = list(session.scalars(page.order_by(*sort).limit(rows).offset(start)).all())
    facets = {name: _top(name, grouped[name], facet_limit) for name in wanted}
    return Found(count=count, ids=ids, facets=facets)


def _branch(name: str, matched: Any) -> Any:
    """The grouped SELECT (facet name, key, count) of one facet over the matches."""
    n = func.count()
    label = literal(name, String).label("facet")
    if name == "organization":
        key = func.lower(Organisation.code)
        return (
            select(label, key.label("key"), n.label("n"))
            .select_from(matched.join(Organisation, Organisation.id == matched.c.org_id))
            .group_by(Organisation.code)
        )
    if name == "tags":
        return (
            select(label, DatasetTag.tag.label("key"), n.label("n"))
            .select_from(matched.join(DatasetTag, DatasetTag.dataset_id == matched.c.id))
            .group_by(DatasetTag.tag)
        )
    column = {
        "groups": matched.c.topic,
        "res_format": matched.c.formats,
        "license_id": matched.c.licence_id,
        "open_type": matched.c.open_type,
    }[name]
    return select(label, column.label("key"), n.label("n")).group_by(column)


def _top(name: str, counted: list[tuple[str, int]], limit: int) -> list[tuple[str, int]]:
    """The ``limit`` most frequent values of a facet, ties by value (formats: split first)."""
    if name == "res_format":
        counts: dict[str, int] = {}
        for formats, k in counted:
            for f in formats.split(","):
                if f:
                    counts[f] = counts.get(f, 0) + k
        counted = list(counts.items())
    return sorted(counted, key=lambda kv: (-kv[1], kv[0]))[:limit]
