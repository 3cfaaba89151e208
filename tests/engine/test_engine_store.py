"""VersionStore: writing, reading back, manifests, checksums, verification, rollback."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from engine_samples import PEOPLE_SCHEMA, make_people

from haihe.core.errors import Conflict, InvalidInput, NotFound, StorageError
from haihe.engine import DuckDBEngine, Manifest, VersionStore
from haihe.engine.manifest import MANIFEST_NAME, files_checksum


def write_people(
    store: VersionStore, n: int, *, code: str = "people", batch: int = 700
) -> Manifest:
    """Commit ``n`` sample people to ``code`` in batches of ``batch`` rows."""
    table = make_people(n)
    with store.begin(code, schema=PEOPLE_SCHEMA, source={"file": "people.csv"}) as writer:
        for batch_ in table.to_batches(max_chunksize=batch):
            writer.write(batch_)
        return writer.commit()


def version_dir(store: VersionStore, manifest: Manifest) -> Path:
    return store.root / manifest.resource_code / manifest.dir_name


def test_version_reads_back_identically_through_the_engine(
    store: VersionStore, data_engine: DuckDBEngine
) -> None:
    manifest = write_people(store, 9_500)

    table = data_engine.table(store, manifest)
    got = data_engine.execute(table.order_by("id"))

    expected = make_people(9_500)
    assert got.schema == expected.schema
    assert got.num_rows == manifest.row_count == 9_500
    assert got.equals(expected)
    assert got.column("姓名")[1].as_py() == "李海河1"
    assert got.column("district").unique().to_pylist() == ["和平区", "河东区", "河西区"] + [
        "南开区",
        "河北区",
        "红桥区",
    ]


def test_version_is_split_into_row_groups_and_part_files(store: VersionStore) -> None:
    manifest = write_people(store, 9_500)

    assert [f.rows for f in manifest.files] == [4000, 4000, 1500]
    assert [f.path for f in manifest.files] == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    first = pq.ParquetFile(version_dir(store, manifest) / "part-00000.parquet")
    assert first.metadata.num_row_groups == 4
    assert first.metadata.row_group(0).column(0).compression == "ZSTD"


def test_version_directory_is_a_plain_parquet_dataset(store: VersionStore) -> None:
    """Spark and other tools point at the directory; the manifest's name keeps it out."""
    manifest = write_people(store, 5_000)

    dataset = pq.read_table(version_dir(store, manifest))

    assert dataset.sort_by("id").equals(make_people(5_000))


def test_manifest_describes_the_files_on_disk(store: VersionStore) -> None:
    manifest = write_people(store, 9_500)
    vdir = version_dir(store, manifest)

    for entry in manifest.files:
        data = (vdir / entry.path).read_bytes()
        assert entry.bytes == len(data)
        assert entry.sha256 == hashlib.sha256(data).hexdigest()
        assert entry.rows == pq.read_metadata(vdir / entry.path).num_rows
    listing = "".join(f"{f.sha256}  {f.path}\n" for f in manifest.files)
    assert manifest.checksum == hashlib.sha256(listing.encode()).hexdigest()
    assert manifest.row_count == sum(f.rows for f in manifest.files) == 9_500
    assert manifest.source == {"file": "people.csv"}
    assert manifest.created_at.utcoffset() is not None
    on_disk = Manifest.model_validate_json((vdir / MANIFEST_NAME).read_bytes())
    assert on_disk == manifest
    assert on_disk.arrow_schema == PEOPLE_SCHEMA


def test_checksum_listing_checks_with_sha256sum(store: VersionStore) -> None:
    sha256sum = shutil.which("sha256sum")
    if sha256sum is None:
        pytest.skip("coreutils sha256sum is not installed")
    manifest = write_people(store, 5_000)
    listing = "".join(f"{f.sha256}  {f.path}\n" for f in manifest.files)

    checked = subprocess.run(
        [sha256sum, "--check", "--strict", "-"],
        input=listing.encode(),
        cwd=version_dir(store, manifest),
        capture_output=True,
        check=False,
    )

    assert checked.returncode == 0, checked.stdout


def test_manifest_with_a_wrong_checksum_is_refused(store: VersionStore) -> None:
    manifest = write_people(store, 100)
    data = json.loads(manifest.model_dump_json())
    data["files"][0]["sha256"] = "0" * 64

    with pytest.raises(ValueError, match="checksum"):
        Manifest.model_validate(data)
    assert files_checksum(manifest.files) == manifest.checksum


def test_verify_finds_nothing_wrong_with_a_fresh_version(store: VersionStore) -> None:
    manifest = write_people(store, 9_500)

    assert store.verify("people", manifest.version) == []
    assert store.verify("people") == []


def test_verify_detects_a_flipped_byte(store: VersionStore) -> None:
    manifest = write_people(store, 9_500)
    path = version_dir(store, manifest) / "part-00001.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    problems = store.verify("people")

    assert problems == ["part-00001.parquet: SHA-256 differs from the manifest"]


def test_verify_detects_a_truncated_file(store: VersionStore) -> None:
    manifest = write_people(store, 9_500)
    path = version_dir(store, manifest) / "part-00000.parquet"
    path.write_bytes(path.read_bytes()[:-100])

    problems = store.verify("people")

    assert any("bytes, manifest says" in p for p in problems)
    assert any("SHA-256 differs" in p for p in problems)
    assert any("not readable as Parquet" in p for p in problems)


def test_verify_detects_a_missing_and_an_unlisted_file(store: VersionStore) -> None:
    manifest = write_people(store, 9_500)
    vdir = version_dir(store, manifest)
    (vdir / "part-00002.parquet").rename(vdir / "extra.parquet")

    problems = store.verify("people")

    assert problems == [
        "part-00002.parquet: missing",
        "extra.parquet: not listed in the manifest",
    ]


def test_verify_reports_a_damaged_manifest(store: VersionStore) -> None:
    manifest = write_people(store, 100)
    path = version_dir(store, manifest) / MANIFEST_NAME
    data = json.loads(path.read_text())
    data["row_count"] = 99
    path.write_text(json.dumps(data))

    problems = store.verify("people")

    assert len(problems) == 1
    assert "cannot be read" in problems[0]


def test_versions_increase_and_current_advances(store: VersionStore) -> None:
    assert store.current("people") is None
    assert store.versions("people") == []

    first = write_people(store, 100)
    second = write_people(store, 200)
    third = write_people(store, 300)

    assert [first.version, second.version, third.version] == [1, 2, 3]
    assert [m.row_count for m in store.versions("people")] == [100, 200, 300]
    current = store.current("people")
    assert current is not None
    assert current == third
    assert store.manifest("people") == third
    assert store.manifest("people", 1) == first
    assert (store.root / "people" / "CURRENT").read_text() == "v000003\n"


def test_set_current_rolls_back_and_numbers_keep_growing(store: VersionStore) -> None:
    write_people(store, 100)
    write_people(store, 200)

    rolled = store.set_current("people", 1)
    assert rolled.row_count == 100
    current = store.current("people")
    assert current is not None
    assert current.version == 1

    assert write_people(store, 300).version == 3
    with pytest.raises(NotFound):
        store.set_current("people", 7)


def test_current_pointing_at_a_missing_version_is_a_storage_error(store: VersionStore) -> None:
    manifest = write_people(store, 10)
    shutil.rmtree(version_dir(store, manifest))

    with pytest.raises(StorageError, match="missing"):
        store.current("people")


def test_resources_are_kept_apart(store: VersionStore) -> None:
    write_people(store, 10, code="people")
    write_people(store, 20, code="pensioners")

    assert store.resource_codes() == ["pensioners", "people"]
    assert store.manifest("pensioners").version == 1
    assert store.manifest("pensioners").row_count == 20


def test_unknown_resource_or_version_is_not_found(
    store: VersionStore, data_engine: DuckDBEngine
) -> None:
    with pytest.raises(NotFound, match="no current version"):
        store.manifest("nobody")
    with pytest.raises(NotFound):
        store.manifest("nobody", 1)
    with pytest.raises(NotFound):
        store.verify("nobody")
    with pytest.raises(NotFound):
        store.set_current("nobody", 1)
    manifest = write_people(store, 10)
    with pytest.raises(NotFound, match="no version 2"):
        store.manifest("people", 2)
    elsewhere = VersionStore(store.root.parent / "elsewhere")
    with pytest.raises(NotFound):
        data_engine.table(elsewhere, manifest)


@pytest.mark.parametrize("code", ["", "../escape", ".hidden", "a/b", "人口", "x" * 129])
def test_resource_code_must_be_a_safe_name(store: VersionStore, code: str) -> None:
    with pytest.raises(InvalidInput, match="resource code"):
        store.begin(code, schema=PEOPLE_SCHEMA)


def test_empty_version_keeps_its_schema(store: VersionStore, data_engine: DuckDBEngine) -> None:
    with store.begin("people", schema=PEOPLE_SCHEMA) as writer:
        manifest = writer.commit()

    assert manifest.row_count == 0
    assert len(manifest.files) == 1
    got = data_engine.execute(data_engine.table(store, manifest))
    assert got.num_rows == 0
    assert got.schema == PEOPLE_SCHEMA
    assert store.verify("people") == []


def test_batches_are_cast_to_the_declared_schema(store: VersionStore) -> None:
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    narrow = pa.table({"id": pa.array([1, 2], pa.int16()), "name": pa.array(["甲", "乙"])})
    with store.begin("cast", schema=schema) as writer:
        writer.write(narrow)
        manifest = writer.commit()

    table = pq.read_table(store.paths(manifest))
    assert table.schema == schema
    assert table.to_pydict() == {"id": [1, 2], "name": ["甲", "乙"]}


def test_batch_with_other_columns_is_refused(store: VersionStore) -> None:
    with store.begin("people", schema=PEOPLE_SCHEMA) as writer:
        with pytest.raises(InvalidInput, match="do not match"):
            writer.write(make_people(10).drop_columns(["photo"]))
        with pytest.raises(InvalidInput, match="does not fit"):
            writer.write(pa.table({**make_people(10).to_pydict(), "age": ["old"] * 10}))
        writer.write(make_people(10))
        manifest = writer.commit()
    assert manifest.row_count == 10


def test_nulls_in_a_non_nullable_column_are_refused(store: VersionStore) -> None:
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False)])
    with store.begin("strict", schema=schema) as writer:
        with pytest.raises(InvalidInput, match="not nullable"):
            writer.write(pa.table({"id": [1, None]}))
        writer.write(pa.table({"id": [1, 2]}))
        manifest = writer.commit()

    assert manifest.columns[0].nullable is False
    assert pq.read_schema(store.paths(manifest)[0]).field("id").nullable is False


def load_then_fail(store: VersionStore) -> None:
    with store.begin("people", schema=PEOPLE_SCHEMA) as writer:
        writer.write(make_people(5_000))
        raise RuntimeError("load failed")


def test_leaving_the_block_without_commit_publishes_nothing(store: VersionStore) -> None:
    write_people(store, 10)
    with pytest.raises(RuntimeError, match="load failed"):
        load_then_fail(store)
    with store.begin("people", schema=PEOPLE_SCHEMA) as writer:
        writer.write(make_people(5))

    assert [m.version for m in store.versions("people")] == [1]
    assert sorted(p.name for p in (store.root / "people").iterdir()) == [
        ".lock",
        "CURRENT",
        "v000001",
    ]
    with pytest.raises(Conflict, match="aborted"):
        writer.write(make_people(1))


def test_a_writer_commits_once(store: VersionStore) -> None:
    with store.begin("people", schema=PEOPLE_SCHEMA) as writer:
        writer.write(make_people(3))
        writer.commit()
        with pytest.raises(Conflict, match="committed"):
            writer.commit()
    assert writer.rows_written == 3
