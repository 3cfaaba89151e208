"""A version becomes visible all at once: crashes, kills and concurrent writers."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from haihe.engine import DuckDBEngine, Manifest, VersionStore, WriteOptions

SCHEMA = pa.schema([("id", pa.int64()), ("text", pa.string())])
OPTIONS = WriteOptions(row_group_rows=10_000, file_rows=40_000)

# Run by a separate Python: writes 10,000-row batches of the same resource, then does what its
# mode says. Part files of 40,000 rows reach the disk while it writes.
WRITER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import pyarrow as pa
    from haihe.engine import VersionStore, WriteOptions, _fs

    root, mode = Path(sys.argv[1]), sys.argv[2]
    store = VersionStore(root, options=WriteOptions(row_group_rows=10_000, file_rows=40_000))
    schema = pa.schema([("id", pa.int64()), ("text", pa.string())])

    def batch(i):
        ids = list(range(i * 10_000, (i + 1) * 10_000))
        return pa.record_batch([pa.array(ids), pa.array([f"第{n}行" for n in ids])], schema=schema)

    if mode == "die-before-rename":
        os.rename = lambda *args: os._exit(3)
    if mode == "die-before-current":
        _fs.replace_synced = lambda *args: os._exit(4)
    writer = store.begin("people", schema=schema, created_by=mode)
    batches = {"kill-mid-write": 100_000, "exit-mid-write": 21}.get(mode, 5)
    for i in range(batches):
        writer.write(batch(i))
        if mode == "kill-mid-write" and i == 20:
            print("writing", flush=True)
    if mode == "exit-mid-write":
        os._exit(1)
    if mode == "wait-then-commit":
        print("staged", flush=True)
        sys.stdin.readline()
    print(writer.commit().version, flush=True)
    """
)


def spawn(root: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_writer(root: Path, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WRITER, str(root), mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def commit_rows(store: VersionStore, n: int, *, start: int = 0) -> Manifest:
    ids = list(range(start, start + n))
    with store.begin("people", schema=SCHEMA) as writer:
        writer.write(pa.table({"id": ids, "text": [f"行{i}" for i in ids]}, schema=SCHEMA))
        return writer.commit()


def staging_entries(store: VersionStore) -> list[Path]:
    return sorted((store.root / "people").glob(".staging-*"))


@pytest.fixture
def crash_store(tmp_path: Path) -> VersionStore:
    """A store with one committed version of 1,000 rows."""
    store = VersionStore(tmp_path / "resources", options=OPTIONS)
    commit_rows(store, 1_000)
    return store


def assert_only_first_version(store: VersionStore, engine: DuckDBEngine) -> None:
    current = store.current("people")
    assert current is not None
    assert current.version == 1
    assert [m.version for m in store.versions("people")] == [1]
    assert store.verify("people") == []
    assert engine.scalar(engine.table(store, current).count()) == 1_000


def test_crash_mid_write_leaves_the_previous_version(
    crash_store: VersionStore, data_engine: DuckDBEngine
) -> None:
    result = run_writer(crash_store.root, "exit-mid-write")

    assert result.returncode == 1, result.stderr
    (staging,) = [p for p in staging_entries(crash_store) if p.is_dir()]
    assert len(list(staging.glob("part-*.parquet"))) == 6  # 210,000 rows were on their way
    assert_only_first_version(crash_store, data_engine)

    assert crash_store.clean_staging() == [staging]
    assert staging_entries(crash_store) == []
    assert commit_rows(crash_store, 10).version == 2


def test_sigkill_mid_write_leaves_the_previous_version(
    crash_store: VersionStore, data_engine: DuckDBEngine
) -> None:
    proc = spawn(crash_store.root, "kill-mid-write")
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)

    assert proc.returncode == -signal.SIGKILL
    assert_only_first_version(crash_store, data_engine)
    assert len(crash_store.clean_staging("people")) == 1
    assert staging_entries(crash_store) == []
    assert commit_rows(crash_store, 10).version == 2


def test_crash_just_before_the_rename_publishes_nothing(
    crash_store: VersionStore, data_engine: DuckDBEngine
) -> None:
    result = run_writer(crash_store.root, "die-before-rename")

    assert result.returncode == 3, result.stderr
    (staging,) = [p for p in staging_entries(crash_store) if p.is_dir()]
    assert (staging / "_manifest.json").is_file()
    assert_only_first_version(crash_store, data_engine)
    assert crash_store.clean_staging() == [staging]
    assert commit_rows(crash_store, 10).version == 2


def test_crash_after_the_rename_leaves_a_whole_version_that_is_not_current(
    crash_store: VersionStore,
) -> None:
    result = run_writer(crash_store.root, "die-before-current")

    assert result.returncode == 4, result.stderr
    current = crash_store.current("people")
    assert current is not None
    assert current.version == 1
    assert [m.version for m in crash_store.versions("people")] == [1, 2]
    assert crash_store.verify("people", 2) == []
    assert crash_store.clean_staging() == []
    later = commit_rows(crash_store, 10)
    assert later.version == 3
    assert crash_store.current("people") == later


def test_clean_staging_spares_live_writers(crash_store: VersionStore) -> None:
    other = spawn(crash_store.root, "wait-then-commit")
    assert other.stdout is not None
    assert other.stdout.readline().strip() == "staged"
    with crash_store.begin("people", schema=SCHEMA) as mine:
        mine.write(pa.table({"id": [1], "text": ["一"]}, schema=SCHEMA))

        assert crash_store.clean_staging() == []
        assert len([p for p in staging_entries(crash_store) if p.is_dir()]) == 2

        out, err = other.communicate("go\n", timeout=60)
        assert other.returncode == 0, err
        assert out.strip().splitlines()[-1] == "2"
        assert mine.commit().version == 3
    assert staging_entries(crash_store) == []


def test_concurrent_threads_get_distinct_versions(tmp_path: Path) -> None:
    store = VersionStore(tmp_path / "resources", options=OPTIONS)
    with ThreadPoolExecutor(max_workers=8) as pool:
        manifests = list(pool.map(lambda i: commit_rows(store, 100 + i, start=i), range(16)))

    assert sorted(m.version for m in manifests) == list(range(1, 17))
    assert [m.version for m in store.versions("people")] == list(range(1, 17))
    by_rows = {m.row_count: m.version for m in manifests}
    assert {m.row_count: m.version for m in store.versions("people")} == by_rows
    current = store.current("people")
    assert current is not None
    assert current.version == 16


def test_concurrent_processes_get_distinct_versions(crash_store: VersionStore) -> None:
    procs = [spawn(crash_store.root, "commit") for _ in range(3)]
    outputs = [proc.communicate(timeout=120) for proc in procs]

    assert [proc.returncode for proc in procs] == [0, 0, 0], [err for _, err in outputs]
    assert sorted(int(out.strip()) for out, _ in outputs) == [2, 3, 4]
    assert [m.version for m in crash_store.versions("people")] == [1, 2, 3, 4]
    current = crash_store.current("people")
    assert current is not None
    assert current.version == 4
    assert all(crash_store.verify("people", n) == [] for n in range(1, 5))


def test_readers_never_see_a_half_written_version(crash_store: VersionStore) -> None:
    done = threading.Event()
    seen: list[int] = []
    failures: list[str] = []

    def read_current() -> None:
        while not done.is_set():
            manifest = crash_store.current("people")
            assert manifest is not None
            rows = pq.read_table(crash_store.paths(manifest)).num_rows
            if rows != manifest.row_count:
                failures.append(f"v{manifest.version}: {rows} rows of {manifest.row_count}")
            seen.append(manifest.version)

    reader = threading.Thread(target=read_current)
    reader.start()
    try:
        for n in range(2, 12):
            commit_rows(crash_store, 25_000 + n)
    finally:
        done.set()
        reader.join()

    assert failures == []
    assert seen == sorted(seen)
    assert len(set(seen)) > 1
