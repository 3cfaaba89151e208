"""Benchmark: the portal's package_search (1,000 datasets, with facets) and datastore_search
(millions of rows, filtering on an indexed column, total estimated past a threshold).

package_search: a migrated database per backend (SQLite file; a fresh PostgreSQL database,
dropped afterwards) with the synthetic city's departments, a few catalogue entries and
``--datasets`` portal datasets bulk-inserted as publishing writes them (search text, tags, 21
topics, two open types). It times the real CKAN action (``actions.package_search``: parse q/fq,
count, page of 10, four facets, CKAN package dicts) for several kinds of query, beside the
baseline of a hand-written ``SELECT id … WHERE search_text LIKE … ORDER BY … LIMIT 10`` (no
facets, no count, no package dicts) in the same run.

datastore_search: ``--rows`` rows (default 3 million; the issue's figure is 13 million) written
as a portal dataset version (Parquet + its indexed SQLite row store, ``district`` and
``category`` indexed, as publishing builds it), then the real ``datastore.search`` with
``filters`` on indexed columns and ``limit`` 100: one filter with ``total_estimation_threshold``
10,000 (total estimated), two filters whose ~1/640 of the rows fall below it (counted exactly),
and one filter counted exactly (no threshold) — beside the baseline of the same filter as one
hand-written DuckDB query over the Parquet (first 100 rows plus an exact count).

The machine is shared: its load average is printed, and both sides of each ratio ran under it.

    .venv/bin/python benchmarks/portal_search.py [--datasets 1000] [--rows 3000000]
        [--rounds 300] [--backend sqlite --backend postgresql] [--skip-datastore]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from sqlalchemy import Engine, create_engine, text

from haihe.catalogue import service as catalogue
from haihe.catalogue.schemas import ResourceIn
from haihe.core.auth import system_principal
from haihe.core.db import make_engine, make_session_factory
from haihe.core.settings import Settings
from haihe.migrations import upgrade
from haihe.orgs.models import Organisation
from haihe.portal import datastore
from haihe.portal.actions import Context, package_search
from haihe.portal.datastore import SearchIn
from haihe.portal.materialise import build_row_store, ckan_type, data_store
from haihe.portal.models import Dataset, DatasetTag
from haihe.portal.topics import TOPICS
from haihe.synth import reference
from haihe.synth.catalogue import catalogue_entries

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
WORDS = "养老 公交 企业 学校 医院 补贴 统计 名录 许可 河西区 处罚 天气 bus school".split()
TAGS = (
    "养老 统计 企业 交通 公交 教育 医疗 住房 就业 环境 气象 文化 旅游 信用 安全 农业 人口 "
    "财政 税收 社保 救助 法律 市场 食品 药品 质量 能源 水务 公园 体育"
).split()
DISTRICTS = (
    "和平区 河东区 河西区 南开区 河北区 红桥区 东丽区 西青区 津南区 北辰区 武清区 宝坻区 "
    "滨海新区 宁河区 静海区 蓟州区"
).split()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--pg-url", default=PG_ADMIN)
    parser.add_argument("--skip-datastore", action="store_true")
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cpus")
    for backend in args.backend or ["sqlite", "postgresql"]:
        with database(backend, args.pg_url) as url, tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), database_url=url)
            engine = make_engine(settings)
            try:
                seed_datasets(engine, args.datasets)
                time_package_search(engine, settings, args.rounds)
            finally:
                engine.dispose()
    if not args.skip_datastore:
        with tempfile.TemporaryDirectory() as tmp:
            time_datastore_search(Settings(data_dir=Path(tmp)), args.rows, args.rounds)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


@contextmanager
def database(backend: str, pg_admin: str) -> Iterator[str]:
    """The URL of an empty database for ``backend``, removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/haihe.db"
        return
    name = f"haihe_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield pg_admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# ---------------------------------------------------------------- package_search


def seed_datasets(engine: Engine, n: int) -> None:
    """Departments, 40 catalogue entries, and ``n`` datasets over them with 1-4 tags each."""
    started = time.perf_counter()
    upgrade(engine)
    now = dt.datetime.now(dt.UTC)
    departments = [dict(row) for row in reference.rows("departments")]
    with engine.begin() as conn:
        conn.execute(
            Organisation.__table__.insert(),
            [{"id": i, "code": d["code"], "name_zh": d["name_zh"], "name_en": d["name_en"],
              "kind": "municipal_department", "created_at": now, "updated_at": now}
             for i, d in enumerate(departments, start=1)],
        )  # fmt: skip
    factory = make_session_factory(engine)
    actor = system_principal("bench")
    with factory() as session:
        resources = [
            catalogue.create_resource(session, actor=actor, data=ResourceIn(**entry))
            for entry in catalogue_entries(40, seed=3, departments=departments)
        ]
        session.commit()
        owners = [(r.id, r.provider_id) for r in resources]
    rng = random.Random(11)
    rows, tags = [], []
    for i in range(1, n + 1):
        resource_id, org_id = rng.choice(owners)
        topic = rng.choice(TOPICS)
        word = rng.choice(WORDS)
        title = f"{word}{topic.zh}数据集{i}"
        chosen = rng.sample(TAGS, rng.randint(1, 4))
        modified = now - dt.timedelta(minutes=rng.randint(0, 500_000))
        rows.append({
            "id": i, "uuid": str(uuid.uuid4()), "resource_uuid": str(uuid.uuid4()),
            "name": f"dataset-{i:05d}", "title_zh": title, "title_en": f"{topic.en} data {i}",
            "notes_zh": f"{title}的说明。", "notes_en": None, "resource_id": resource_id,
            "org_id": org_id, "topic": topic.name,
            "open_type": "conditional" if i % 7 == 0 else "unconditional",
            "licence_id": "cc-by-4.0", "update_frequency": "monthly", "view": {}, "terms": None,
            "state": "active", "source_version": 1, "data_version": 1,
            "row_count": rng.randint(10, 5_000_000), "data_bytes": None, "columns": [],
            "formats": "CSV,JSON,Parquet" + (",XLSX" if i % 3 else ""),
            "search_text": "\n".join([f"dataset-{i:05d}", title, f"{topic.en} data {i}",
                                      topic.zh, *chosen]).lower(),
            "views_total": 0, "downloads_total": 0, "api_calls_total": 0,
            "created_by": "bench", "created_at": modified, "modified_at": modified,
            "data_updated_at": modified,
        })  # fmt: skip
        tags.extend({"dataset_id": i, "tag": t} for t in chosen)
    with engine.begin() as conn:
        conn.execute(Dataset.__table__.insert(), rows)
        conn.execute(DatasetTag.__table__.insert(), tags)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE")
    print(f"{engine.dialect.name}: {n:,} datasets, {len(tags):,} tags seeded in "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip


def time_package_search(engine: Engine, settings: Settings, rounds: int) -> None:
    """p50/p95/p99 of package_search kinds, each beside the LIKE baseline."""
    factory = make_session_factory(engine)
    rng = random.Random(5)
    facets = ["organization", "groups", "tags", "res_format"]
    kinds: dict[str, Callable[[], dict[str, Any]]] = {
        "everything + 4 facets": lambda: {"q": "*:*"},
        "word + 4 facets": lambda: {"q": rng.choice(WORDS)},
        "fq group + tag + 4 facets": lambda: {
            "fq": f"groups:{rng.choice(TOPICS).name} tags:{rng.choice(TAGS)}"
        },
        "word, -fq, sort id asc": lambda: {
            "q": rng.choice(WORDS),
            "fq": "-res_format:XLSX",
            "sort": "id asc",
        },
        "fq metadata_modified range": lambda: {
            "fq": "metadata_modified:[NOW-30DAYS TO NOW] organization:mz"
        },
    }
    print(f"\npackage_search on {engine.dialect.name} ({rounds} calls each; ms)")
    print(f"{'kind':<28}{'p50':>8}{'p95':>8}{'p99':>8}{'base p95':>10}{'ratio':>8}")
    for label, make in kinds.items():
        times, base = [], []
        for _ in range(rounds):
            params = make() | {"facet.field": facets, "rows": 10}
            with factory() as session:
                ctx = Context(session=session, settings=settings, actor=None, base_url="http://x")
                t0 = time.perf_counter()
                result = package_search(ctx, params)
                times.append(time.perf_counter() - t0)
                assert "search_facets" in result
                word = str(params.get("q", "")).replace("*:*", "")
                t0 = time.perf_counter()
                session.execute(
                    text("SELECT id FROM portal_datasets WHERE state = 'active' "
                         "AND search_text LIKE :w ORDER BY modified_at DESC LIMIT 10"),
                    {"w": f"%{word.lower()}%"},
                ).all()  # fmt: skip
                base.append(time.perf_counter() - t0)
        _row(label, times, base)


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _row(label: str, times: list[float], base: list[float], extra: str = "") -> None:
    p95, b95 = _ms(times, 0.95), _ms(base, 0.95)
    print(
        f"{label:<28}{_ms(times, 0.5):>8.2f}{p95:>8.2f}{_ms(times, 0.99):>8.2f}"
        f"{b95:>10.2f}{p95 / b95 if b95 else float('nan'):>8.1f}{extra}"
    )


# ---------------------------------------------------------------- datastore_search


class _DatasetRow:
    """The few attributes of a dataset that datastore.search reads (no database needed)."""

    def __init__(self, uuid_: str, version: int, rows: int, columns: list[dict[str, Any]]):
        self.uuid, self.data_version, self.row_count, self.columns = uuid_, version, rows, columns
        self.resource_uuid, self.name = str(uuid.uuid4()), "bench"


def time_datastore_search(settings: Settings, n: int, rounds: int) -> None:
    """Write ``n`` rows as a dataset version with its row store, then time filtered searches."""
    started = time.perf_counter()
    store = data_store(settings)
    schema = pa.schema([("record_no", pa.string()), ("district", pa.string()),
                        ("category", pa.string()), ("amount", pa.float64()),
                        ("granted_on", pa.date32())])  # fmt: skip
    code = str(uuid.uuid4())
    rng = random.Random(3)
    draws = np.random.default_rng(3)
    cats = [f"类别{i}" for i in range(40)]
    districts, categories = np.array(DISTRICTS), np.array(cats)
    epoch = (dt.date(2020, 1, 1) - dt.date(1970, 1, 1)).days
    with store.begin(code, schema=schema, created_by="bench") as writer:
        batch = 500_000
        for start in range(0, n, batch):
            i = np.arange(start, min(n, start + batch))
            writer.write(pa.table({
                "record_no": pa.array(np.char.add("R", np.char.zfill(i.astype(str), 9))),
                "district": pa.array(districts[i * 7 % 16]),
                "category": pa.array(categories[draws.integers(0, 40, i.size)]),
                "amount": pa.array((i % 997).astype(np.float64)),
                "granted_on": pa.array((epoch + i % 1800).astype(np.int32), pa.date32()),
            }, schema=schema))  # fmt: skip
        manifest = writer.commit()
    written = time.perf_counter() - started
    build_row_store(settings, manifest, indexed=["district", "category"])
    built = time.perf_counter() - started - written
    print(f"\ndatastore_search over {n:,} rows (Parquet written in {written:.0f} s, row store "
          f"with its indexes built in {built:.0f} s; {rounds} calls each; ms)")  # fmt: skip
    columns = [{"id": f.name, "type": ckan_type(f.type), "info": {}} for f in schema]
    ds = _DatasetRow(code, manifest.version, n, columns)
    files = [str(p) for p in store.paths(manifest)]
    con = duckdb.connect()
    con.execute(f"CREATE VIEW data AS SELECT * FROM read_parquet({files!r})")
    print(f"{'kind':<28}{'p50':>8}{'p95':>8}{'p99':>8}{'base p95':>10}{'ratio':>8}{'total':>10}")
    kinds: dict[str, tuple[Callable[[], dict[str, Any]], int | None]] = {
        "district, estimated total": (lambda: {"district": rng.choice(DISTRICTS)}, 10_000),
        "district+category, exact": (
            lambda: {"district": rng.choice(DISTRICTS), "category": rng.choice(cats)},
            10_000,
        ),
        "district, exact total": (lambda: {"district": rng.choice(DISTRICTS)}, None),
    }
    for label, (make, threshold) in kinds.items():
        times, base, totals = [], [], []
        for _ in range(rounds):
            filters = make()
            req = SearchIn(
                filters=filters, q=None, fields=None, sort=None, limit=100, offset=0,
                include_total=True, records_format="objects",
                total_estimation_threshold=threshold,
            )  # fmt: skip
            t0 = time.perf_counter()
            out = datastore.search(settings, ds, req)  # type: ignore[arg-type]
            times.append(time.perf_counter() - t0)
            assert len(out["records"]) == 100
            totals.append(out["total"])
            where = " AND ".join(f"{k} = ?" for k in filters)
            t0 = time.perf_counter()
            con.execute(f"SELECT * FROM data WHERE {where} LIMIT 100", list(filters.values()))
            con.fetchall()
            con.execute(f"SELECT count(*) FROM data WHERE {where}", list(filters.values()))
            exact = con.fetchall()[0][0]
            base.append(time.perf_counter() - t0)
            if threshold is None or exact <= threshold:
                assert out["total"] == exact
                assert not out["total_was_estimated"]
        _row(label, times, base, f"{sum(totals) / len(totals):>10,.0f}")
    con.close()
    print("ratio = portal p95 / baseline p95 (below 1: the portal's path is faster); "
          "total = the mean total returned")  # fmt: skip


if __name__ == "__main__":
    main()
