"""Benchmark: write a 10-million-row, 8-column version through VersionStore vs bare pyarrow.

Both paths write the same Arrow batches to zstd Parquet with the same row-group size. The store
also checks each batch against the schema, rolls part files, fsyncs and SHA-256-hashes every
file, writes the manifest and publishes atomically; the baseline does none of that.

    .venv/bin/python benchmarks/bench_engine_write.py [--rows 10000000] [--rounds 3] [--dir D]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from haihe.engine import VersionStore, WriteOptions

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("resident_id", pa.string()),
        ("name", pa.string()),
        ("district", pa.string()),
        ("born", pa.date32()),
        ("registered_at", pa.timestamp("us", tz="UTC")),
        ("pension", pa.decimal128(18, 2)),
        ("active", pa.bool_()),
    ]
)
DISTRICTS = ["和平区", "河东区", "河西区", "南开区", "河北区", "红桥区", "滨海新区", "东丽区"]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "海河津沽明华建国秀英志强丽娟伟芳军平"


def make_batch(start: int, n: int, rng: np.random.Generator) -> pa.RecordBatch:
    """Return ``n`` synthetic pensioners with ids from ``start``."""
    ids = np.arange(start, start + n, dtype=np.int64)
    body = pc.utf8_lpad(pc.cast(pa.array(ids % 10**12), pa.string()), 12, "0")
    resident_id = pc.binary_join_element_wise("120101", body, "")
    names = pa.array([s + g1 + g2 for s in SURNAMES for g1 in GIVEN for g2 in GIVEN])
    name = names.take(pa.array(rng.integers(0, len(names), n)))
    district = pa.array(DISTRICTS).take(pa.array(rng.integers(0, len(DISTRICTS), n)))
    born = pa.array(rng.integers(-12_000, 0, n).astype(np.int32), pa.date32())
    registered = pa.array(
        1_700_000_000_000_000 + rng.integers(0, 10**13, n), pa.timestamp("us", tz="UTC")
    )
    cents = np.zeros(2 * n, dtype=np.int64)  # decimal128 = 16-byte little-endian integers
    cents[0::2] = rng.integers(150_000, 900_000, n)
    pension = pa.Array.from_buffers(pa.decimal128(18, 2), n, [None, pa.py_buffer(cents)])
    active = pa.array(rng.random(n) < 0.9)
    return pa.record_batch(
        [pa.array(ids), resident_id, name, district, born, registered, pension, active],
        schema=SCHEMA,
    )


def through_store(batches: list[pa.RecordBatch], root: Path, row_group_rows: int) -> int:
    """Write the batches as one version; return the bytes written."""
    store = VersionStore(root, options=WriteOptions(row_group_rows=row_group_rows))
    with store.begin("bench", schema=SCHEMA, source={"generator": "bench_engine_write"}) as w:
        for batch in batches:
            w.write(batch)
        manifest = w.commit()
    return manifest.total_bytes


def bare_pyarrow(batches: list[pa.RecordBatch], path: Path, row_group_rows: int) -> int:
    """Write the batches with pyarrow.parquet.write_table; return the bytes written."""
    table = pa.Table.from_batches(batches, schema=SCHEMA)
    pq.write_table(table, path, compression="zstd", row_group_size=row_group_rows)
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--batch-rows", type=int, default=1_000_000)
    parser.add_argument("--row-group-rows", type=int, default=1 << 20)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, alternating")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: tmp)")
    args = parser.parse_args()

    rng = np.random.default_rng(20240601)
    started = time.perf_counter()
    batches = [
        make_batch(start, min(args.batch_rows, args.rows - start), rng)
        for start in range(0, args.rows, args.batch_rows)
    ]
    arrow_bytes = sum(b.nbytes for b in batches)
    print(
        f"generated {args.rows:,} rows x {len(SCHEMA)} columns, {arrow_bytes / 1e6:,.0f} MB "
        f"in Arrow, in {time.perf_counter() - started:.1f} s"
    )

    work = Path(tempfile.mkdtemp(prefix="haihe-bench-", dir=args.dir))
    runs = {
        "VersionStore": lambda: through_store(batches, work / "store", args.row_group_rows),
        "pq.write_table": lambda: bare_pyarrow(batches, work / "bare.parquet", args.row_group_rows),
    }
    times: dict[str, list[float]] = {label: [] for label in runs}
    cpu: dict[str, list[float]] = {label: [] for label in runs}
    written: dict[str, int] = {}
    try:
        # Alternate the two so that a busy neighbour slows both alike; report the median.
        for _ in range(args.rounds):
            for label, run in runs.items():
                started, cpu_started = time.perf_counter(), time.process_time()
                written[label] = run()
                times[label].append(time.perf_counter() - started)
                cpu[label].append(time.process_time() - cpu_started)
                shutil.rmtree(work / "store", ignore_errors=True)
                (work / "bare.parquet").unlink(missing_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for label, seconds_list in times.items():
        seconds = statistics.median(seconds_list)
        print(
            f"{label:15} {seconds:6.2f} s  {args.rows / seconds / 1e6:5.2f} M rows/s  "
            f"{arrow_bytes / seconds / 1e6:6.1f} MB/s Arrow in  "
            f"{written[label] / seconds / 1e6:5.1f} MB/s Parquet out "
            f"({written[label] / 1e6:,.1f} MB)  CPU {statistics.median(cpu[label]):.2f} s  "
            "runs: " + ", ".join(f"{t:.2f}" for t in seconds_list)
        )
    ratio = statistics.median(times["VersionStore"]) / statistics.median(times["pq.write_table"])
    cpu_ratio = statistics.median(cpu["VersionStore"]) / statistics.median(cpu["pq.write_table"])
    print(f"VersionStore / pq.write_table (medians): wall {ratio:.2f}x, CPU {cpu_ratio:.2f}x")


if __name__ == "__main__":
    main()
