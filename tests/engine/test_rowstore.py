"""The row store: an indexed SQLite copy of a version, built atomically, queried by keyset."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from engine_samples import make_people

from haihe.core.errors import NotFound, StorageError
from haihe.engine import Manifest, RowStore, VersionStore
from haihe.engine.rowstore import timestamp_text

CODE = "101-000001"


def commit(store: VersionStore, table: pa.Table, code: str = CODE) -> Manifest:
    with store.begin(code, schema=table.schema) as writer:
        writer.write(table)
        return writer.commit()


@pytest.fixture
def rowstore(tmp_path: Path) -> RowStore:
    return RowStore(tmp_path / "rowstore")


def stored(value: Any) -> Any:
    """A source value as the row store gives it back."""
    if isinstance(value, dt.datetime):
        return timestamp_text(value, utc=value.tzinfo is not None)
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "as_tuple"):  # Decimal
        return float(value)
    return value


def test_every_row_comes_back_in_key_order_with_values_as_stored(
    store: VersionStore, rowstore: RowStore
) -> None:
    people = make_people(5000)
    manifest = commit(store, people.take(list(range(4999, -1, -1))))  # written in reverse
    rowstore.build(store, manifest, keys=["id"], indexed=["district"])
    table = rowstore.open(CODE, manifest.version)
    page = table.query(columns=people.column_names, limit=10_000)
    expected = [tuple(stored(v) for v in row.values()) for row in people.to_pylist()]
    assert page.rows == expected
    assert page.last == [4999]


def test_pages_follow_the_key_with_a_composite_key(store: VersionStore, rowstore: RowStore) -> None:
    manifest = commit(store, make_people(3000))
    rowstore.build(store, manifest, keys=["district", "id"])
    table = rowstore.open(CODE, manifest.version)
    seen: list[tuple[Any, ...]] = []
    after = None
    while True:
        page = table.query(
            columns=["district", "id"], where='"age" >= ?', params=[90], after=after, limit=97
        )
        seen += page.rows
        if len(page.rows) < 97:
            break
        after = page.last
    people = make_people(3000).to_pylist()
    expected = sorted((p["district"], p["id"]) for p in people if p["age"] >= 90)
    assert seen == expected


def test_a_version_without_keys_is_read_in_file_order(
    store: VersionStore, rowstore: RowStore
) -> None:
    manifest = commit(store, make_people(50).take(list(range(49, -1, -1))))
    rowstore.build(store, manifest)
    table = rowstore.open(CODE, manifest.version)
    first = table.query(columns=["id"], limit=3)
    second = table.query(columns=["id"], after=first.last, limit=3)
    assert first.rows + second.rows == [(49,), (48,), (47,), (46,), (45,), (44,)]


def test_lookups_by_key_and_by_an_indexed_item_use_their_indexes(
    store: VersionStore, rowstore: RowStore
) -> None:
    manifest = commit(store, make_people(2000))
    built = rowstore.build(store, manifest, keys=["id"], indexed=["姓名"])
    with sqlite3.connect(built.path) as conn:
        plan = " ".join(
            str(r[-1])
            for r in conn.execute(
                'EXPLAIN QUERY PLAN SELECT * FROM rows WHERE "姓名" = ? ORDER BY "id" LIMIT 5',
                ["王海河8"],
            )
        )
    assert "ix_0" in plan
    assert built.rows == 2000


def test_repeated_keys_fail_the_build_and_leave_no_file(
    store: VersionStore, rowstore: RowStore
) -> None:
    people = make_people(10)
    manifest = commit(store, pa.concat_tables([people, people]))
    with pytest.raises(StorageError, match="row store"):
        rowstore.build(store, manifest, keys=["id"])
    assert list((rowstore.root / CODE).iterdir()) == []


def test_a_key_the_version_lacks_fails_the_build(store: VersionStore, rowstore: RowStore) -> None:
    manifest = commit(store, make_people(10))
    with pytest.raises(StorageError, match="no column 'person_no'"):
        rowstore.build(store, manifest, keys=["person_no"])


def test_ensure_builds_once(store: VersionStore, rowstore: RowStore) -> None:
    manifest = commit(store, make_people(10))
    path = rowstore.ensure(store, manifest, keys=["id"])
    made = path.stat().st_mtime_ns
    again = rowstore.ensure(store, manifest, keys=["id"])
    assert (again, again.stat().st_mtime_ns) == (path, made)


def test_a_version_never_built_is_not_found(rowstore: RowStore) -> None:
    with pytest.raises(NotFound, match="no row store"):
        rowstore.open(CODE, 7)


def test_the_store_is_opened_read_only(store: VersionStore, rowstore: RowStore) -> None:
    manifest = commit(store, make_people(10))
    rowstore.build(store, manifest, keys=["id"])
    table = rowstore.open(CODE, manifest.version)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        table._conn.execute("DELETE FROM rows")


def test_asking_for_a_column_the_version_lacks_is_not_found(
    store: VersionStore, rowstore: RowStore
) -> None:
    manifest = commit(store, make_people(10))
    rowstore.build(store, manifest, keys=["id"])
    with pytest.raises(NotFound, match="salary"):
        rowstore.open(CODE, manifest.version).query(columns=["salary"], limit=1)
