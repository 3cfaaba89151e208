"""DuckDBEngine behind the Engine interface: expressions, streaming, writing versions."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from engine_samples import PEOPLE_SCHEMA, make_people
from ibis import _

from haihe.core.errors import ConfigError, Conflict, InvalidInput, StorageError
from haihe.core.settings import Settings
from haihe.engine import (
    DuckDBEngine,
    Engine,
    EngineError,
    Manifest,
    VersionStore,
    VersionWriter,
    make_engine,
    make_store,
)


def commit(store: VersionStore, table: pa.Table, code: str = "people") -> Manifest:
    with store.begin(code, schema=table.schema) as writer:
        for batch in table.to_batches(max_chunksize=1_000):
            writer.write(batch)
        return writer.commit()


def test_filter_and_aggregate_over_a_version(
    store: VersionStore, data_engine: DuckDBEngine
) -> None:
    people = make_people(6_000)
    t = data_engine.table(store, commit(store, people))

    expr = (
        t.filter(t.active & (t.age >= 80))
        .group_by("district")
        .agg(n=_.count(), pension=_.pension.sum(), first=_.registered_at.min())
        .order_by("district")
    )
    got = data_engine.execute(expr)

    mask = pc.and_(people["active"], pc.greater_equal(people["age"], 80))
    chosen = people.filter(mask)
    expected = (
        chosen.group_by("district")
        .aggregate([("id", "count"), ("pension", "sum"), ("registered_at", "min")])
        .sort_by("district")
    )
    assert got["district"].to_pylist() == expected["district"].to_pylist()
    assert got["n"].to_pylist() == expected["id_count"].to_pylist()
    assert [Decimal(v) for v in got["pension"].to_pylist()] == expected["pension_sum"].to_pylist()
    assert got["first"].to_pylist() == expected["registered_at_min"].to_pylist()
    assert got.schema.field("first").type == pa.timestamp("us", tz="UTC")


def test_scalar_returns_a_python_value(store: VersionStore, data_engine: DuckDBEngine) -> None:
    t = data_engine.table(store, commit(store, make_people(1_234)))

    assert data_engine.scalar(t.count()) == 1_234
    assert data_engine.scalar(t.姓名.isnull().sum()) == len(range(0, 1_234, 17))


def test_version_joins_an_in_memory_subject_list(
    store: VersionStore, data_engine: DuckDBEngine
) -> None:
    t = data_engine.table(store, commit(store, make_people(2_000)))
    subjects = ibis.memtable(pa.table({"id": [5, 17, 1_999, 5_000]}))

    found = subjects.left_join(t, "id").select("id", t.district, t.姓名).order_by("id")
    got = data_engine.execute(found)

    assert got.to_pydict() == {
        "id": [5, 17, 1_999, 5_000],
        "district": ["红桥区", "红桥区", "河东区", None],
        "姓名": ["杨海河5", None, "黄海河1999", None],
    }


def test_read_parquet_reads_any_parquet_file(tmp_path: Path, data_engine: DuckDBEngine) -> None:
    path = tmp_path / "subjects.parquet"
    pq.write_table(pa.table({"身份证号": ["120101194001011234"], "n": [1]}), path)

    got = data_engine.execute(data_engine.read_parquet([path]))

    assert got.to_pydict() == {"身份证号": ["120101194001011234"], "n": [1]}


def test_read_parquet_reports_a_missing_file(tmp_path: Path, data_engine: DuckDBEngine) -> None:
    with pytest.raises(StorageError):
        data_engine.execute(data_engine.read_parquet([tmp_path / "absent.parquet"]))
    with pytest.raises(InvalidInput):
        data_engine.read_parquet([])


def test_to_batches_streams_in_bounded_batches(
    store: VersionStore, data_engine: DuckDBEngine
) -> None:
    t = data_engine.table(store, commit(store, make_people(10_000)))
    expr = t.select("id", "姓名", "registered_at").order_by("id")

    reader = data_engine.to_batches(expr, batch_size=1_500)
    sizes = [batch.num_rows for batch in reader]

    assert sum(sizes) == 10_000
    assert max(sizes) <= 1_500
    assert len(sizes) >= 7
    assert reader.schema == expr.schema().to_pyarrow()


def test_an_open_stream_must_be_finished_before_the_next_query(
    store: VersionStore, data_engine: DuckDBEngine
) -> None:
    t = data_engine.table(store, commit(store, make_people(5_000)))
    reader = data_engine.to_batches(t, batch_size=100)
    reader.read_next_batch()

    with pytest.raises(Conflict, match="stream is still open"):
        data_engine.execute(t.count())
    reader.close()
    assert data_engine.scalar(t.count()) == 5_000


def test_write_version_streams_the_result_into_the_store(
    store: VersionStore, data_engine: DuckDBEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store receives engine-sized batches and writes files before the stream ends."""
    source = commit(store, make_people(9_000), code="people")
    t = data_engine.table(store, source)
    received: list[int] = []
    files_on_disk: list[int] = []
    real_write = VersionWriter.write

    def spy(self: VersionWriter, data: pa.RecordBatch | pa.Table) -> None:
        received.append(data.num_rows)
        files_on_disk.append(len(list(self._staging.glob("part-*.parquet"))))
        real_write(self, data)

    monkeypatch.setattr(VersionWriter, "write", spy)
    expr = t.filter(t.age < 90).mutate(senior=t.age >= 80).order_by("id")

    manifest = data_engine.write_version(
        store, "seniors", expr, source={"from": "people v1"}, created_by="test", batch_size=500
    )

    assert max(received) <= 500
    assert sum(received) == manifest.row_count == 6_750
    assert files_on_disk[-1] >= 1  # part files were complete while batches were still arriving
    assert manifest.created_by == "test"
    assert manifest.source == {"from": "people v1"}
    assert [c.name for c in manifest.columns][-1] == "senior"
    written = data_engine.execute(data_engine.table(store, manifest).order_by("id"))
    assert written.equals(data_engine.execute(expr))
    assert store.verify("seniors") == []


def test_write_version_failure_publishes_nothing(
    store: VersionStore, data_engine: DuckDBEngine
) -> None:
    t = data_engine.table(store, commit(store, make_people(3_000)))
    late = ibis.ifelse(t.id >= 2_900, 1_000, 0)
    bad = t.mutate(n=(t.id % 200 + late).cast("uint8"))  # the last 100 rows overflow

    with pytest.raises(EngineError, match="out of range"):
        data_engine.write_version(store, "broken", bad, batch_size=100)

    assert store.versions("broken") == []
    assert list((store.root / "broken").glob(".staging-*")) == []
    assert data_engine.scalar(t.count()) == 3_000


def test_write_version_refuses_a_result_other_engines_cannot_read(
    store: VersionStore, data_engine: DuckDBEngine
) -> None:
    t = data_engine.table(store, commit(store, make_people(100)))

    with pytest.raises(InvalidInput, match="nested"):
        data_engine.write_version(store, "tags", t.mutate(tags=ibis.array([t.age, t.floor])))

    assert store.versions("tags") == []
    assert data_engine.scalar(t.count()) == 100


def test_types_survive_the_engine_unchanged(store: VersionStore, data_engine: DuckDBEngine) -> None:
    t = data_engine.table(store, commit(store, make_people(50)))

    assert t.schema().to_pyarrow() == PEOPLE_SCHEMA
    copy = data_engine.write_version(store, "copy", t)
    assert copy.columns == store.manifest("people").columns
    assert pq.read_table(store.paths(copy)).sort_by("id").equals(make_people(50))


def test_a_closed_engine_refuses_work(tmp_path: Path) -> None:
    engine = DuckDBEngine(memory_limit="256MB")
    engine.close()
    engine.close()

    with pytest.raises(Conflict, match="closed"):
        engine.read_parquet([tmp_path / "x.parquet"])


def test_bad_duckdb_settings_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="DuckDB refused"):
        DuckDBEngine(memory_limit="lots")


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", **overrides)


def test_make_engine_builds_duckdb_from_settings(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, duckdb_memory_limit="512MB", duckdb_threads=1)

    with make_engine(settings) as engine:
        assert isinstance(engine, Engine)
        assert engine.name == "duckdb"
        store = make_store(settings)
        manifest = commit(store, make_people(10))
        assert engine.scalar(engine.table(store, manifest).count()) == 10
    assert store.root == tmp_path / "data" / "resources"
    assert (tmp_path / "data" / "tmp" / "duckdb").is_dir()
