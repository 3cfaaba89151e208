"""Benchmark: load a 10-million-row CSV into a catalogue entry vs a bare DuckDB conversion.

The CSV has 10 columns: a key (certificate_no), valid resident ID numbers, Chinese names, a
district, a date, an int, a decimal, a timestamp, a yes/no flag and a sex. Haihe's load runs in
its own process through ``load_resource`` into a migrated SQLite installation: it detects the
encoding, hashes the file, checks every value, validates and normalises every ID number, finds
duplicate keys over the whole file, writes rejects, and publishes a checksummed version. The
baseline, also in its own process, is one hand-written DuckDB statement that does none of that::

    COPY (SELECT … FROM read_csv(FILE, columns = {…})) TO 'x.parquet' (FORMAT parquet)

Peak RSS is each process's own ``ru_maxrss``; bounded memory means it stays far below the file.

    .venv/bin/python benchmarks/bench_catalogue_load.py [--rows 10000000] [--bad 0] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from haihe.core.identity import compose_ids_arrow

DISTRICTS = ["和平区", "河东区", "河西区", "南开区", "河北区", "红桥区", "滨海新区", "东丽区"]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "海河津沽明华建国秀英志强丽娟伟芳军平"
ITEMS: list[dict[str, Any]] = [
    {"name": "certificate_no", "name_zh": "证明编号", "is_key": True, "nullable": False},
    {"name": "id_number", "name_zh": "身份证号", "kind": "id_number", "sensitivity": "L3",
     "personal": True, "nullable": False},
    {"name": "name", "name_zh": "姓名", "kind": "name", "sensitivity": "L2", "personal": True},
    {"name": "sex", "name_zh": "性别"},
    {"name": "district", "name_zh": "区"},
    {"name": "death_date", "name_zh": "死亡日期", "type": "date32"},
    {"name": "age", "name_zh": "年龄", "type": "int32"},
    {"name": "pension", "name_zh": "养老金", "type": "decimal(12,2)"},
    {"name": "registered_at", "name_zh": "登记时间", "type": "timestamp[us]"},
    {"name": "alive_spouse", "name_zh": "配偶在世", "type": "bool"},
]  # fmt: skip
DUCKDB_COLUMNS = {
    "certificate_no": "VARCHAR", "id_number": "VARCHAR", "name": "VARCHAR", "sex": "VARCHAR",
    "district": "VARCHAR", "death_date": "DATE", "age": "INTEGER", "pension": "DECIMAL(12,2)",
    "registered_at": "TIMESTAMP", "alive_spouse": "VARCHAR",
}  # fmt: skip


def make_batch(start: int, n: int, rng: np.random.Generator, bad: float) -> pa.RecordBatch:
    """Return ``n`` rows of text, as a CSV exported by a department would hold them."""
    text = pa.string()
    key = pc.binary_join_element_wise(
        "C", pc.utf8_lpad(pc.cast(pa.array(np.arange(start, start + n)), text), 9, "0"), ""
    )
    born = np.datetime64("1930-01-01") + rng.integers(0, 25_000, n).astype("timedelta64[D]")
    years = born.astype("datetime64[Y]").astype(np.int64) + 1970
    months = born.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (born - born.astype("datetime64[M]")).astype(np.int64) + 1
    region = 120101 + rng.integers(0, 19, n)
    bodies = (region * 10**8 + years * 10**4 + months * 100 + days) * 1000 + rng.integers(
        0, 1000, n
    )
    ids = compose_ids_arrow(bodies)
    names = pa.array([s + g1 + g2 for s in SURNAMES for g1 in GIVEN for g2 in GIVEN])
    died = np.datetime64("2020-01-01") + rng.integers(0, 1800, n).astype("timedelta64[D]")
    died_text = pc.strftime(pa.array(died.astype("datetime64[s]")), format="%Y-%m-%d")
    cents = rng.integers(150_000, 900_000, n)
    pension = pc.binary_join_element_wise(
        pc.cast(pa.array(cents // 100), text),
        pc.utf8_lpad(pc.cast(pa.array(cents % 100), text), 2, "0"),
        ".",
    )
    stamp = pa.array(died.astype("datetime64[s]") + rng.integers(0, 86_400, n))
    age = pc.cast(pa.array(rng.integers(40, 105, n)), text)
    if bad:  # a few ages that are not numbers, to exercise the rejects file
        age = pc.if_else(pa.array(rng.random(n) < bad), "不详", age)
    columns = [
        key,
        ids,
        names.take(pa.array(rng.integers(0, len(names), n))),
        pa.array(["男", "女"]).take(pa.array(rng.integers(0, 2, n))),
        pa.array(DISTRICTS).take(pa.array(rng.integers(0, len(DISTRICTS), n))),
        died_text,
        age,
        pension,
        pc.strftime(stamp, format="%Y-%m-%d %H:%M:%S"),
        pa.array(["是", "否"]).take(pa.array(rng.integers(0, 2, n))),
    ]
    return pa.record_batch(columns, names=[i["name"] for i in ITEMS])


def write_csv(path: Path, rows: int, bad: float) -> None:
    rng = np.random.default_rng(20261121)
    step = 500_000
    first = make_batch(0, min(step, rows), rng, bad)
    with pcsv.CSVWriter(path, first.schema) as writer:
        writer.write_batch(first)
        for start in range(step, rows, step):
            writer.write_batch(make_batch(start, min(step, rows - start), rng, bad))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_haihe(csv_path: Path, data_dir: Path) -> dict[str, Any]:
    """Load the CSV through load_resource into a fresh SQLite installation (child process)."""
    from haihe.catalogue import service
    from haihe.catalogue.loading import LoadSource, load_resource
    from haihe.catalogue.schemas import ResourceIn
    from haihe.core.auth import system_principal
    from haihe.core.db import make_engine, make_session_factory, transaction
    from haihe.core.settings import Settings
    from haihe.migrations import upgrade
    from haihe.orgs import service as orgs
    from haihe.orgs.models import OrgKind
    from haihe.orgs.schemas import OrgCreate

    settings = Settings(data_dir=data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings)
    upgrade(engine)
    factory = make_session_factory(engine)
    actor = system_principal("bench")
    with transaction(factory) as session:
        orgs.create_org(
            session,
            actor=actor,
            data=OrgCreate(code="WJW", name_zh="市卫生健康委", kind=OrgKind.MUNICIPAL_DEPARTMENT),
        )
        entry = service.create_resource(
            session,
            actor=actor,
            data=ResourceIn(
                name_zh="死亡医学证明",
                summary_zh="死亡医学证明（推断）书信息",
                provider_code="WJW",
                base_library="population",
                sharing_type="unconditional",
                items=ITEMS,
            ),
        )
        code = entry.code
    calls = 0

    def progress(done: int, total: int | None) -> None:
        nonlocal calls
        calls += 1

    started, cpu = time.perf_counter(), time.process_time()
    with transaction(factory) as session:
        load = load_resource(
            session,
            actor=actor,
            settings=settings,
            code=code,
            source=LoadSource.for_file(csv_path),
            progress=progress,
        )
        counts = (load.rows_read, load.rows_accepted, load.rows_rejected)
    seconds = time.perf_counter() - started
    engine.dispose()
    return {
        "seconds": seconds,
        "cpu": time.process_time() - cpu,
        "rows": counts,
        "progress_calls": calls,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_duckdb(csv_path: Path, out: Path) -> dict[str, Any]:
    """Convert the CSV to Parquet with one DuckDB statement (child process)."""
    import duckdb

    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in DUCKDB_COLUMNS.items()) + "}"
    started, cpu = time.perf_counter(), time.process_time()
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * REPLACE (alive_spouse = '是' AS alive_spouse) FROM read_csv('{csv_path}', "
        f"header = true, auto_detect = false, delim = ',', quote = '\"', columns = {columns}, "
        f"ignore_errors = true)) TO '{out}' (FORMAT parquet, COMPRESSION zstd)"
    )
    rows = con.execute(f"SELECT count(*) FROM '{out}'").fetchone()
    con.close()
    return {
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "rows": rows[0] if rows else 0,
        "peak_rss_mb": peak_rss_mb(),
    }


def child(kind: str, work: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--dir", str(work)],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"the {kind} run failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--bad", type=float, default=0.0, help="share of rows with a bad age")
    parser.add_argument("--dir", type=Path, default=None, help="where to work (default: tmp)")
    parser.add_argument("--csv", type=Path, default=None, help="load this CSV, not a new one")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, alternating")
    parser.add_argument("--child", choices=["haihe", "duckdb"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        csv_path = args.dir / "deaths.csv"
        if args.child == "haihe":
            result = run_haihe(csv_path, args.dir / "haihe-data")
        else:
            result = run_duckdb(csv_path, args.dir / "duckdb.parquet")
        print(json.dumps(result))
        return

    work = Path(tempfile.mkdtemp(prefix="haihe-bench-load-", dir=args.dir))
    try:
        csv_path = work / "deaths.csv"
        if args.csv:
            csv_path.symlink_to(args.csv.resolve())
        else:
            started = time.perf_counter()
            write_csv(csv_path, args.rows, args.bad)
            print(f"generated the CSV in {time.perf_counter() - started:.1f} s")
        size = csv_path.stat().st_size
        print(f"{args.rows:,} rows x {len(ITEMS)} columns, {size / 1e6:,.0f} MB of CSV")
        runs: dict[str, list[dict[str, Any]]] = {"haihe": [], "duckdb": []}
        # Alternate the two so that a busy neighbour slows both alike; report the medians.
        for _ in range(args.rounds):
            for kind, results in runs.items():
                results.append(child(kind, work))
                shutil.rmtree(work / "haihe-data", ignore_errors=True)
                (work / "duckdb.parquet").unlink(missing_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    medians: dict[str, dict[str, float]] = {}
    for kind, results in runs.items():
        medians[kind] = {
            k: statistics.median(float(r[k]) for r in results)
            for k in ("seconds", "cpu", "peak_rss_mb")
        }
        seconds, cpu, rss = (medians[kind][k] for k in ("seconds", "cpu", "peak_rss_mb"))
        print(
            f"{kind:7} {seconds:7.1f} s  {args.rows / seconds / 1e6:5.2f} M rows/s  "
            f"{size / seconds / 1e6:6.1f} MB/s  CPU {cpu:6.1f} s  peak RSS {rss:,.0f} MB  "
            f"rows {results[0]['rows']}  runs: "
            + ", ".join(f"{float(r['seconds']):.1f}" for r in results)
        )
    ratio = medians["haihe"]["seconds"] / medians["duckdb"]["seconds"]
    share = medians["haihe"]["peak_rss_mb"] * 2**20 / size
    print(f"progress callbacks per load: {runs['haihe'][0]['progress_calls']}")
    print(
        f"haihe / duckdb (medians): wall {ratio:.2f}x; haihe's peak RSS is {share:.0%} of the CSV"
    )


if __name__ == "__main__":
    main()
