"""Sample resource data for the engine tests: every portable type, Chinese text, some nulls."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa

SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄"]
DISTRICTS = ["和平区", "河东区", "河西区", "南开区", "河北区", "红桥区"]

PEOPLE_SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64()),
        pa.field("姓名", pa.string()),
        pa.field("district", pa.string()),
        pa.field("age", pa.int32()),
        pa.field("floor", pa.int8()),
        pa.field("household", pa.int16()),
        pa.field("score", pa.float64()),
        pa.field("ratio", pa.float32()),
        pa.field("active", pa.bool_()),
        pa.field("born", pa.date32()),
        pa.field("registered_at", pa.timestamp("us", tz="UTC")),
        pa.field("local_seen", pa.timestamp("us")),
        pa.field("pension", pa.decimal128(18, 2)),
        pa.field("photo", pa.binary()),
    ]
)


def make_people(n: int, *, start: int = 0, **overrides: Any) -> pa.Table:
    """Return ``n`` people with ids from ``start``; ``overrides`` replace whole columns."""
    ids = range(start, start + n)
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    columns: dict[str, list[Any]] = {
        "id": list(ids),
        "姓名": [f"{SURNAMES[i % 8]}海河{i}" if i % 17 else None for i in ids],
        "district": [DISTRICTS[i % 6] for i in ids],
        "age": [60 + i % 40 for i in ids],
        "floor": [i % 30 - 2 for i in ids],
        "household": [i % 5000 for i in ids],
        "score": [i / 7 if i % 11 else None for i in ids],
        "ratio": [(i % 100) / 4 for i in ids],
        "active": [i % 3 != 0 for i in ids],
        "born": [dt.date(1940, 1, 1) + dt.timedelta(days=i % 20000) for i in ids],
        "registered_at": [base + dt.timedelta(seconds=i, microseconds=i % 1000) for i in ids],
        "local_seen": [dt.datetime(2024, 6, 1, 8) + dt.timedelta(minutes=i) for i in ids],
        "pension": [Decimal(f"{3000 + i % 1000}.{i % 100:02d}") for i in ids],
        "photo": [bytes([i % 256, (i * 7) % 256]) for i in ids],
    }
    columns.update(overrides)
    return pa.table(columns, schema=PEOPLE_SCHEMA)
