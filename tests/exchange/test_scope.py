"""The condition language of row scopes and filters: checking, typing, SQL on SQLite and DuckDB."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from haihe.core.errors import InvalidInput
from haihe.engine import RowStore, VersionStore
from haihe.engine.schema import type_name
from haihe.exchange.scope import (
    Condition,
    Op,
    check_conditions,
    conditions_from_params,
    where_sql,
)

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("姓名", pa.string()),
        ("district", pa.string()),
        ("age", pa.int32()),
        ("floor", pa.int8()),
        ("score", pa.float64()),
        ("active", pa.bool_()),
        ("born", pa.date32()),
        ("registered_at", pa.timestamp("us", tz="UTC")),
        ("local_seen", pa.timestamp("us")),
        ("pension", pa.decimal128(18, 2)),
        ("photo", pa.binary()),
    ]
)
TYPES = {f.name: type_name(f.type) for f in SCHEMA}
DISTRICTS = ["和平区", "河东区", "河西区", "南开区", "河北区", "红桥区"]
UTC0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
PEOPLE = [
    {
        "id": i,
        "姓名": f"{'王李张刘'[i % 4]}海河{i}" if i % 17 else None,
        "district": DISTRICTS[i % 6],
        "age": 60 + i % 40,
        "floor": i % 30 - 2,
        "score": i / 7 if i % 11 else None,
        "active": i % 3 != 0,
        "born": dt.date(1940, 1, 1) + dt.timedelta(days=i * 3),
        "registered_at": UTC0 + dt.timedelta(seconds=i * 7, microseconds=i % 1000),
        "local_seen": dt.datetime(2024, 6, 1, 8) + dt.timedelta(minutes=i),
        "pension": Decimal(f"{3000 + i * 7 % 1000}.{i % 100:02d}"),
        "photo": bytes([i % 256]),
    }
    for i in range(400)
]


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"item": "salary", "op": "eq", "value": 1}, "'salary': the resource has no such item"),
        ({"item": "age", "op": "prefix", "value": "6"}, "'age': op prefix does not apply"),
        ({"item": "active", "op": "lt", "value": True}, "'active': op lt does not apply"),
        ({"item": "photo", "op": "eq", "value": "x"}, "'photo': op eq does not apply"),
        ({"item": "age", "op": "eq", "value": "sixty"}, "'age' \\(eq\\)"),
        ({"item": "age", "op": "eq", "value": 60.5}, "not a whole number"),
        ({"item": "born", "op": "ge", "value": "2024-13-01"}, "'born' \\(ge\\)"),
        ({"item": "local_seen", "op": "ge", "value": "2024-01-01T00:00+08:00"}, "time zone"),
        ({"item": "age", "op": "in"}, "takes a non-empty `values`"),
        ({"item": "age", "op": "between", "values": [1]}, "takes `values` \\[low, high\\]"),
        ({"item": "age", "op": "is_null", "value": 1}, "takes no value"),
        ({"item": "age", "op": "near", "value": 1}, "condition 1"),
    ],
)
def test_a_bad_condition_is_refused_naming_item_and_op(
    condition: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_conditions([condition], TYPES)


def test_values_are_brought_onto_the_items_type() -> None:
    checked = check_conditions(
        [
            {"item": "age", "op": "in", "values": ["60", 61.0]},
            {"item": "active", "op": "eq", "value": "true"},
            {"item": "score", "op": "gt", "value": "1.5"},
            {"item": "born", "op": "le", "value": "1950-01-02"},
            {"item": "registered_at", "op": "lt", "value": "2024-01-01T08:00:00+08:00"},
            {"item": "district", "op": "eq", "value": 120101},
        ],
        TYPES,
    )
    assert [(c.value, c.values) for c in checked] == [
        (None, [60, 61]),
        (True, None),
        (1.5, None),
        ("1950-01-02", None),
        ("2024-01-01T00:00:00.000000+00:00", None),
        ("120101", None),
    ]


def test_no_conditions_make_a_predicate_that_is_always_true() -> None:
    assert where_sql([]) == ("1 = 1", [])


def test_identifiers_are_quoted_and_values_are_parameters() -> None:
    sql, params = where_sql([Condition(item='a"b', op=Op.EQ, value="x' OR 1=1 --")])
    assert (sql, params) == ('("a""b" = ?)', ["x' OR 1=1 --"])


def test_query_string_filters_read_as_conditions() -> None:
    found = conditions_from_params(
        [
            ("district", "河西区"),
            ("age__between", "60,70"),
            ("id_number__prefix", "1201"),
            ("phone__is_null", "true"),
            ("score__not_null", "false"),
            ("two__part__in", "a,b"),
            ("age__about", "60"),
        ]
    )
    assert [(c.item, c.op.value, c.value, c.values) for c in found] == [
        ("district", "eq", "河西区", None),
        ("age", "between", None, ["60", "70"]),
        ("id_number", "prefix", "1201", None),
        ("phone", "is_null", None, None),
        ("two__part", "in", None, ["a", "b"]),
        ("age__about", "eq", "60", None),
    ]


CASES: list[list[dict[str, Any]]] = [
    [{"item": "district", "op": "eq", "value": "河西区"}, {"item": "age", "op": "ge", "value": 90}],
    [{"item": "district", "op": "not_in", "values": ["和平区", "河东区"]}],
    [{"item": "姓名", "op": "prefix", "value": "王海河1"}],
    [{"item": "姓名", "op": "is_null"}],
    [{"item": "score", "op": "ne", "value": 1.0}, {"item": "score", "op": "lt", "value": 3}],
    [{"item": "active", "op": "eq", "value": False}],
    [{"item": "born", "op": "between", "values": ["1940-02-01", "1940-03-01"]}],
    [{"item": "registered_at", "op": "gt", "value": "2024-01-01T08:05:00+08:00"}],
    [{"item": "local_seen", "op": "le", "value": "2024-06-01 09:00"}],
    [{"item": "pension", "op": "gt", "value": "3990.5"}],
    [{"item": "floor", "op": "in", "values": [-2, 0, 27]}],
]


def meets(person: dict[str, Any], c: Condition) -> bool:
    """Plain Python semantics of a checked condition, for the cross-check below."""
    v = person[c.item]
    if c.op is Op.IS_NULL or c.op is Op.NOT_NULL:
        return (v is None) == (c.op is Op.IS_NULL)
    if v is None:
        return False
    if isinstance(v, dt.datetime):
        v = (
            v.astimezone(dt.UTC).isoformat(timespec="microseconds")
            if v.tzinfo
            else (v.isoformat(timespec="microseconds"))
        )
    elif isinstance(v, dt.date):
        v = v.isoformat()
    elif hasattr(v, "as_tuple"):
        v = float(v)
    vals = c.values or [c.value]
    return {
        Op.EQ: lambda: v == vals[0],
        Op.NE: lambda: v != vals[0],
        Op.IN: lambda: v in vals,
        Op.NOT_IN: lambda: v not in vals,
        Op.LT: lambda: v < vals[0],
        Op.LE: lambda: v <= vals[0],
        Op.GT: lambda: v > vals[0],
        Op.GE: lambda: v >= vals[0],
        Op.BETWEEN: lambda: vals[0] <= v <= vals[1],
        Op.PREFIX: lambda: str(v).startswith(str(vals[0])),
    }[c.op]()


@pytest.mark.parametrize("case", CASES, ids=[c[0]["op"] + "-" + c[0]["item"] for c in CASES])
def test_sqlite_and_duckdb_select_the_same_rows_as_python(
    case: list[dict[str, Any]], tmp_path: Path
) -> None:
    store = VersionStore(tmp_path / "resources")
    people = pa.Table.from_pylist(PEOPLE, schema=SCHEMA)
    with store.begin("101-000001", schema=people.schema) as writer:
        writer.write(people)
        manifest = writer.commit()
    rowstore = RowStore(tmp_path / "rowstore")
    rowstore.build(store, manifest, keys=["id"])
    checked = check_conditions(case, TYPES)
    sql, params = where_sql(checked)
    table = rowstore.open("101-000001", manifest.version)
    in_sqlite = [
        r[0] for r in table.query(columns=["id"], where=sql, params=params, limit=999).rows
    ]
    files = [str(p) for p in store.paths(manifest)]
    with duckdb.connect() as conn:
        rows = conn.execute(
            f"SELECT id FROM read_parquet(?) WHERE {sql} ORDER BY id", [files, *params]
        ).fetchall()
    expected = [p["id"] for p in PEOPLE if all(meets(p, c) for c in checked)]
    assert 0 < len(expected) < len(PEOPLE)  # the case selects something, not everything
    assert in_sqlite == expected
    assert [r[0] for r in rows] == expected
