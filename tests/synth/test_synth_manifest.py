"""manifest.json describes every file exactly: paths, rows, columns, types, checksums."""

from __future__ import annotations

import hashlib
import json

import duckdb
import pyarrow.parquet as pq
import pytest

from haihe.core.errors import NotFound, StorageError
from haihe.synth import CityManifest, load_manifest
from haihe.synth.writer import logical_type

BASE_LIBRARIES = {"人口", "法人单位", "自然资源和空间地理", "社会信用", "电子证照"}


def test_manifest_json_round_trips(city_dir, manifest):
    on_disk = json.loads((city_dir / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk["format"] == "haihe-synth/1"
    assert CityManifest.model_validate(on_disk) == manifest == load_manifest(city_dir)


def test_manifest_lists_every_file_and_nothing_else(city_dir, manifest):
    listed = {d.path for d in manifest.datasets} | {t.path for t in manifest.truth}
    listed |= {g.path for g in manifest.geo} | {"manifest.json"}
    on_disk = {str(p.relative_to(city_dir)) for p in city_dir.rglob("*") if p.is_file()}
    assert on_disk == listed


@pytest.mark.parametrize("section", ["datasets", "truth", "geo"])
def test_checksums_and_sizes_match_the_files(city_dir, manifest, section):
    for info in getattr(manifest, section):
        data = (city_dir / info.path).read_bytes()
        assert len(data) == info.bytes
        assert hashlib.sha256(data).hexdigest() == info.sha256


def test_rows_and_columns_match_the_parquet_schemas(city_dir, manifest):
    for info in [*manifest.datasets, *manifest.truth]:
        meta = pq.ParquetFile(city_dir / info.path)
        assert meta.metadata.num_rows == info.rows, info.id
        schema = meta.schema_arrow
        assert [c.name for c in info.columns] == schema.names, info.id
        assert [c.type for c in info.columns] == [logical_type(f.type) for f in schema], info.id
    assert manifest.total_rows == sum(d.rows for d in manifest.datasets)


def test_dataset_descriptions_are_complete(manifest):
    ids = [d.id for d in manifest.datasets]
    assert len(ids) == len(set(ids))
    for info in manifest.datasets:
        assert info.provider == info.id.split(".")[0]
        assert info.name_zh
        assert info.name_en
        assert info.summary_zh
        assert info.summary_en
        assert info.base_library is None or info.base_library in BASE_LIBRARIES
        assert sum(c.is_key for c in info.columns) == 1, info.id
        for column in info.columns:
            assert column.name_zh
            if column.kind == "id_number":
                assert column.sensitivity == "L4"
                assert column.personal
    libraries = {d.base_library for d in manifest.datasets}
    assert BASE_LIBRARIES <= libraries
    kinds = {c.kind for d in manifest.datasets for c in d.columns}
    assert kinds == {"id_number", "name", "phone", "address", "uscc", "plate", "generic"}


def test_declared_nullability_and_keys_hold(city_dir, manifest):
    con = duckdb.connect()
    for info in manifest.datasets:
        path = city_dir / info.path
        key = next(c.name for c in info.columns if c.is_key)
        rows, distinct = con.execute(
            f"SELECT count(*), count(DISTINCT {key}) FROM '{path}'"
        ).fetchone()
        duplicates = con.execute(
            f"SELECT count(*) FROM '{city_dir / 'truth' / 'dirty_rows.parquet'}' "
            "WHERE dataset = ? AND kind = 'duplicate'",
            [info.id],
        ).fetchone()[0]
        assert rows - distinct <= duplicates, info.id
        for column in info.columns:
            if not column.nullable:
                nulls = con.execute(
                    f"SELECT count(*) FROM '{path}' WHERE \"{column.name}\" IS NULL"
                ).fetchone()[0]
                assert nulls == 0, (info.id, column.name)


def test_lookups_by_id_and_missing_manifest(manifest, tmp_path):
    assert manifest.dataset("GA.household_registration").provider == "GA"
    assert manifest.truth_file("persons").rows == manifest.counts.persons
    with pytest.raises(NotFound):
        manifest.dataset("XX.nothing")
    with pytest.raises(StorageError):
        load_manifest(tmp_path)
