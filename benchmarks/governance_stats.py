"""Benchmark: the governance statistics page over ``--events`` events (default 10,000,000).

Generates a year of events with numpy (report time, district, street, community, cell, category,
source, status, deadline, resolution, rating) and answers the statistics page — totals, by status,
category, source, area and day, and the heat map — as Haihe does: DuckDB over the statistics
snapshot (a base Parquet part, as ``haihe governance snapshot`` writes it) plus the events written
since, read from a migrated SQLite database at query time (``--delta`` of them, default 20,000).

Baseline, in the same run: the same figures by SQL ``GROUP BY`` over ``governance_events`` in
SQLite, on ``--sql-events`` rows (default 1,000,000, loading ten million rows into SQLite would
take longer than the rest together), scaled to ``--events`` for the ratio.

    .venv/bin/python benchmarks/governance_stats.py [--events 10000000] [--delta 20000]
        [--sql-events 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import insert

from haihe.core.auth import system_principal
from haihe.core.db import make_engine, make_session_factory, utcnow
from haihe.core.settings import Settings
from haihe.governance import categories, snapshot, statistics
from haihe.governance.models import Area, AreaLevel
from haihe.migrations import upgrade

DISTRICTS, STREETS, COMMUNITIES, CELLS = 16, 250, 5_000, 22_000
FIRST = dt.date(2025, 1, 1)
YEAR_START = np.datetime64("2024-12-31T16:00:00", "us")  # 2025-01-01 00:00 China time, in UTC
SOURCES = np.array(["resident", "grid_worker", "hotline_12345", "sensor", "platform"])
STATUSES = np.array(["closed", "evaluated", "resolved", "in_progress", "dispatched", "reported"])
CELL_BASE = 1_000  # area ids of the cells start here


def generate(n: int, cats: list[str], seed: int = 20261121) -> dict[str, np.ndarray]:
    """The columns of ``n`` synthetic events reported over 2025 (China time)."""
    rng = np.random.default_rng(seed)
    cell = rng.integers(0, CELLS, n)
    street = cell * STREETS // CELLS
    created = YEAR_START + (rng.integers(0, 365 * 86_400, n) * 1_000_000).astype("timedelta64[us]")
    status = rng.choice(len(STATUSES), n, p=[0.7, 0.1, 0.08, 0.05, 0.04, 0.03])
    resolved = status <= 2
    handling = (rng.gamma(2.0, 12 * 3600, n) * 1e6).astype("timedelta64[us]")
    return {
        "id": np.arange(1, n + 1, dtype=np.int64),
        "created_at": np.sort(created),
        "district_id": (street % DISTRICTS + 1).astype(np.int64),
        "street_id": (street + 100).astype(np.int64),
        "community_id": (cell * COMMUNITIES // CELLS + 500).astype(np.int64),
        "cell_id": (cell + CELL_BASE).astype(np.int64),
        "category": np.array(cats)[rng.integers(0, len(cats), n)],
        "source": SOURCES[rng.integers(0, len(SOURCES), n)],
        "status": STATUSES[status],
        "overdue": rng.random(n) < 0.08,
        "due_offset": (rng.integers(4, 120, n) * 3600 * 1_000_000).astype("timedelta64[us]"),
        "resolved": resolved,
        "handling": handling,
        "rating": np.where(status <= 1, rng.integers(1, 6, n), 0),
    }


def base_part(ev: dict[str, np.ndarray], upto: int, path: Path) -> None:
    """The first ``upto`` events as a snapshot base part (the columns snapshot.py derives)."""
    s = slice(0, upto)
    created = ev["created_at"][s]
    resolved = ev["resolved"][s]
    handling = ev["handling"][s]
    seconds = handling.astype(np.int64) / 1e6
    table = pa.table(
        {
            "id": ev["id"][s],
            "created_at": pa.array(created, pa.timestamp("us")),
            "day": pa.array((created + np.timedelta64(8, "h")).astype("datetime64[D]")),
            "district_id": ev["district_id"][s],
            "street_id": ev["street_id"][s],
            "community_id": ev["community_id"][s],
            "cell_id": ev["cell_id"][s],
            "category_code": ev["category"][s],
            "source": ev["source"][s],
            "status": ev["status"][s],
            "overdue": ev["overdue"][s],
            "handling_seconds": pa.array(seconds, mask=~resolved),
            "on_time": pa.array(handling <= ev["due_offset"][s], mask=~resolved),
            "rating": pa.array(ev["rating"][s], mask=ev["rating"][s] == 0),
        }
    )
    pq.write_table(table, path, row_group_size=500_000)


def _ts(values: np.ndarray) -> list[str]:
    return [v.replace("T", " ") for v in np.datetime_as_string(values, unit="us")]


def insert_rows(db: Path, ev: dict[str, np.ndarray], rows: slice, changed: str) -> None:
    """Write events ``rows`` into governance_events (raw sqlite3: the fastest way in)."""
    idx = np.arange(rows.start, rows.stop)
    created = ev["created_at"][idx]
    due = _ts(created + ev["due_offset"][idx])
    done = _ts(created + ev["handling"][idx])
    made = _ts(created)
    tuples = [
        (
            int(ev["id"][i]),
            f"t{ev['id'][i]}",
            str(ev["source"][i]),
            str(ev["category"][i]),
            str(ev["status"][i]),
            "事件",
            117.0,
            39.0,
            int(ev["cell_id"][i]),
            int(ev["community_id"][i]),
            int(ev["street_id"][i]),
            int(ev["district_id"][i]),
            "street",
            due[k],
            bool(ev["overdue"][i]),
            int(ev["rating"][i]) or None,
            made[k],
            made[k],
            done[k] if ev["resolved"][i] else None,
            changed,
        )
        for k, i in enumerate(idx)
    ]
    con = sqlite3.connect(db)
    con.executemany(
        "INSERT INTO governance_events (id, token, source, category_code, status, description, "
        "lng, lat, cell_id, community_id, street_id, district_id, level, due_at, overdue, "
        "rating, created_at, updated_at, resolved_at, changed_at, supervised, reopened) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0,0)",
        tuples,
    )
    con.commit()
    con.close()


def sql_baseline(db: Path) -> float:
    """The same figures by SQL GROUP BY over governance_events (seconds)."""
    con = sqlite3.connect(db)
    agg = (
        "count(*), count(resolved_at), sum(resolved_at <= due_at), sum(overdue), "
        "sum((julianday(resolved_at) - julianday(created_at)) * 86400), sum(rating), "
        "count(rating)"
    )
    where = "created_at >= '2024-12-31 16:00:00' AND created_at < '2025-12-31 16:00:00'"
    t = time.perf_counter()
    for group in ("", "status", "category_code", "source", "district_id", "date(created_at)"):
        by = f"GROUP BY {group}" if group else ""
        con.execute(f"SELECT {group + ',' if group else ''} {agg} FROM governance_events "
                    f"WHERE {where} {by}").fetchall()  # fmt: skip
    con.execute(f"SELECT cell_id, count(*) FROM governance_events WHERE {where} GROUP BY 1")
    elapsed = time.perf_counter() - t
    con.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--delta", type=int, default=20_000)
    parser.add_argument("--sql-events", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="haihe-gov-stats-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        settings = Settings(data_dir=work / "data")
        engine = make_engine(settings)
        upgrade(engine)
        factory = make_session_factory(engine, settings)
        actor = system_principal("bench")
        with factory() as s:
            categories.import_categories(s, actor=actor)
            cats = [c.code for c in categories.list_categories(s)]
            cells = [
                {
                    "id": CELL_BASE + i,
                    "level": AreaLevel.CELL,
                    "code": f"C{i:05d}",
                    "name_zh": f"网格{i}",
                    "geometry": "{}",
                    "min_lng": 117.0,
                    "min_lat": 39.0,
                    "max_lng": 117.01,
                    "max_lat": 39.01,
                    "centre_lng": 117.0 + (i % 150) * 0.005,
                    "centre_lat": 39.0 + (i // 150) * 0.005,
                }
                for i in range(CELLS)
            ]
            s.execute(insert(Area), cells)
            s.commit()
        n, delta = args.events, args.delta
        t = time.perf_counter()
        ev = generate(n, cats)
        folder = snapshot.folder(settings)
        folder.mkdir(parents=True, exist_ok=True)
        base_part(ev, n - delta, folder / "base.parquet")
        con = snapshot.connect(settings)
        snapshot.write_rollup(con, folder / "base.parquet")  # as refresh() writes a base part
        con.close()
        now = utcnow()
        manifest = {"parts": [{"file": "base.parquet", "rows": n - delta}], "watermark": None}
        manifest["watermark"] = (now - dt.timedelta(minutes=1)).isoformat()
        (folder / snapshot.MANIFEST).write_text(json.dumps(manifest))
        print(f"{n:,} events generated, {n - delta:,} written as the snapshot's base part "
              f"in {time.perf_counter() - t:.1f} s")  # fmt: skip
        db = work / "data" / "haihe.db"
        t = time.perf_counter()
        old = (now - dt.timedelta(days=1)).replace(tzinfo=None).isoformat(" ")
        sql_rows = min(args.sql_events, n - delta)
        insert_rows(db, ev, slice(0, sql_rows), old)  # in the base already: not read again
        fresh = now.replace(tzinfo=None).isoformat(" ")
        insert_rows(db, ev, slice(n - delta, n), fresh)  # written since the snapshot
        print(f"{sql_rows + delta:,} events written to SQLite in {time.perf_counter() - t:.1f} s")

        last = FIRST + dt.timedelta(days=364)
        timings, heat_timings = [], []
        for _ in range(3):
            with factory() as s:
                t = time.perf_counter()
                out = statistics.summary(s, actor=actor, settings=settings, first=FIRST, last=last)
                timings.append(time.perf_counter() - t)
                t = time.perf_counter()
                heat = statistics.heatmap(s, actor=actor, settings=settings, first=FIRST, last=last)
                heat_timings.append(time.perf_counter() - t)
        assert out["totals"]["reported"] == n, out["totals"]
        assert sum(h["count"] for h in heat) == n
        assert sum(out["by_status"].values()) == n
        with factory() as s:
            t = time.perf_counter()
            snapshot.refresh(s, settings=settings, now=utcnow())
            refresh_s = time.perf_counter() - t
        sql = min(sql_baseline(db) for _ in range(2))
        scaled = sql * n / (sql_rows + delta)
        ours = min(timings) + min(heat_timings)
        print(f"statistics page, a whole year city-wide ({n:,} events, {delta:,} of them read "
              f"from the database at query time):")  # fmt: skip
        print(f"  summary (totals, status, category, source, area, day): {min(timings):.2f} s "
              f"(best of 3: {', '.join(f'{x:.2f}' for x in timings)})")  # fmt: skip
        print(f"  heat map ({len(heat):,} cells): {min(heat_timings):.2f} s")
        print(f"  both: {ours:.2f} s; target under 2 s: {'met' if ours < 2 else 'NOT met'}")
        print(f"  snapshot refresh taking in the {delta:,} new events: {refresh_s:.2f} s")
        print(f"  baseline SQL GROUP BY over governance_events (SQLite), {sql_rows + delta:,} "
              f"rows: {sql:.2f} s, i.e. ~{scaled:.1f} s at {n:,}")  # fmt: skip
        print(f"  ratio: {scaled / ours:.1f}x")
        engine.dispose()
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
