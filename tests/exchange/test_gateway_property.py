"""Property: whatever the grant and the query, the gateway returns exactly the granted items of
exactly the rows within scope and filters, masked as the grant says — checked against the source
rows by an evaluator written here, independently of ``scope.where_sql`` and SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker
from test_gateway_world import ITEMS, NAMES, PERSONAL, City, build_city, grant, person

from haihe.core.auth import Principal
from haihe.core.db import transaction
from haihe.core.masking import mask_value
from haihe.core.settings import Settings
from haihe.exchange.gateway import query_records
from haihe.orgs import auth
from haihe.orgs.models import TokenKind

PEOPLE = 80
SOURCE = [person(i) for i in range(PEOPLE)]
TYPES = {i["name"]: i["type"] for i in ITEMS}
KINDS = {i["name"]: i.get("kind", "generic") for i in ITEMS}
SORTABLE = [n for n in NAMES if TYPES[n] != "bool"]


def values_of(item: str) -> st.SearchStrategy[Any]:
    """Values of an item: mostly ones the register holds, sometimes others of the same type."""
    held = sorted({p[item] for p in SOURCE if p[item] is not None}, key=str)
    other: st.SearchStrategy[Any] = {
        "string": st.text("0123456789P张三", max_size=6),
        "int32": st.integers(0, 120),
        "float64": st.floats(900, 4100, allow_nan=False),
        "date32": st.dates().map(lambda d: d.isoformat()),
        "bool": st.booleans(),
    }[TYPES[item]]
    return st.one_of(st.sampled_from(held), other) if held else other


@st.composite
def conditions(draw: st.DrawFn, items: list[str]) -> dict[str, Any]:
    item = draw(st.sampled_from(items))
    ops = ["eq", "ne", "in", "not_in", "is_null", "not_null"]
    if item in SORTABLE:
        ops += ["lt", "le", "gt", "ge", "between"]
    if TYPES[item] == "string":
        ops.append("prefix")
    op = draw(st.sampled_from(ops))
    value = values_of(item)
    if op in ("is_null", "not_null"):
        return {"item": item, "op": op}
    if op in ("in", "not_in"):
        return {"item": item, "op": op, "values": draw(st.lists(value, min_size=1, max_size=4))}
    if op == "between":
        return {"item": item, "op": op, "values": sorted(draw(st.lists(value, min_size=2,
                                                                       max_size=2)))}  # fmt: skip
    if op == "prefix":
        held = draw(value)
        return {"item": item, "op": op, "value": str(held)[: draw(st.integers(0, 8))]}
    return {"item": item, "op": op, "value": draw(value)}


def meets(row: dict[str, Any], c: dict[str, Any]) -> bool:
    """Whether a source row meets a condition, in plain Python (nulls meet only is_null)."""
    v = row[c["item"]]
    if c["op"] == "is_null":
        return v is None
    if v is None:
        return False
    if c["op"] == "not_null":
        return True
    vals = c.get("values") or [c.get("value")]
    if c["op"] == "prefix":
        return str(v).startswith(vals[0])
    return {
        "eq": lambda: v == vals[0],
        "ne": lambda: v != vals[0],
        "in": lambda: v in vals,
        "not_in": lambda: v not in vals,
        "lt": lambda: v < vals[0],
        "le": lambda: v <= vals[0],
        "gt": lambda: v > vals[0],
        "ge": lambda: v >= vals[0],
        "between": lambda: vals[0] <= v <= vals[1],
    }[c["op"]]()


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    granted = draw(st.lists(st.sampled_from(NAMES), min_size=1, unique=True))
    asked = draw(st.none() | st.lists(st.sampled_from(granted), min_size=1, unique=True))
    return {
        "granted": granted,
        "unmasked": draw(st.lists(st.sampled_from(granted), unique=True)),
        "scope": draw(st.lists(conditions(NAMES), max_size=2)),
        "asked": asked,
        "filters": draw(st.lists(conditions(granted), max_size=2)),
        "limit": draw(st.integers(5, 40)),
    }


@pytest.fixture
def city(session: Session, settings: Settings, tmp_path: Path) -> City:
    return build_city(session, settings, tmp_path / "in", people=PEOPLE)


@examples(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases())
def test_only_granted_items_of_rows_in_scope_come_back_masked_as_granted(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    city: City,
    case: dict[str, Any],
) -> None:
    # a fresh grant per example: the newest grant in force is the one that holds
    grant(
        session,
        city,
        items=case["granted"],
        unmasked_items=case["unmasked"],
        scope=case["scope"],
    )
    items = case["asked"] or [n for n in NAMES if n in case["granted"]]
    expected = [
        {n: _shown(p[n], n, case["unmasked"]) for n in items}
        for p in SOURCE
        if all(meets(p, c) for c in [*case["scope"], *case["filters"]])
    ]
    got: list[dict[str, Any]] = []
    after = None
    for _ in range(PEOPLE + 1):
        with transaction(session_factory) as s:
            page = query_records(
                s,
                actor=_client(s, city),
                settings=settings,
                code=city.code,
                items=case["asked"],
                filters=case["filters"],
                after=after,
                limit=case["limit"],
                request_id="prop",
            )
        got += page.records
        after = page.next
        if after is None:
            break
    assert got == expected


def _shown(value: Any, item: str, unmasked: list[str]) -> Any:
    if item in PERSONAL and item not in unmasked and value is not None:
        return mask_value(str(value), KINDS[item])
    return value


def _client(session: Session, city: City) -> Principal:
    found = auth.principal_for_token(session, city.tokens["rsj_client"], kind=TokenKind.API)
    assert found is not None
    return found
