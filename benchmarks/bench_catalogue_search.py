"""Benchmark: catalogue search over 40,000 entries (~9.5 data items each), SQLite and PostgreSQL.

Builds a migrated database per backend (a SQLite file; a fresh PostgreSQL database, dropped
afterwards), registers the synthetic city's departments and bulk-inserts the generator's entries
with ``search_text`` from the same ``search_document`` the service uses. Then it times several
hundred searches of each kind — as a department user, who sees published entries and their own
drafts; each search returns the first page of 20, the total and all six facets — and, in the same
run, the bare baseline ``SELECT id FROM catalogue_resources WHERE search_text LIKE …`` (one LIKE
per word: no synonyms, visibility, facets, ranking or paging). The machine's load average is
printed too: other work on it slows both.

    .venv/bin/python benchmarks/bench_catalogue_search.py [--entries 40000] [--rounds 300]
        [--backend sqlite --backend postgresql] [--pg-url postgresql+psycopg://postgres@...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from haihe.catalogue.models import DataItem, Resource
from haihe.catalogue.search import Filters, search, search_document
from haihe.catalogue.tokens import parse
from haihe.catalogue.topics import classification_code, resource_code
from haihe.core.auth import Principal, Role
from haihe.core.db import make_engine, make_session_factory
from haihe.core.settings import Settings
from haihe.migrations import upgrade
from haihe.orgs.models import Organisation
from haihe.synth import reference
from haihe.synth.catalogue import catalogue_entries

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
# Words people look for: mostly specific, a few that most entries hold (许可, 统计, 企业, housing).
CHINESE = (
    "低保 公积金 死亡 婚姻登记 车辆 营业执照 不动产 出生医学证明 户口 行政处罚 残疾人证 养老 "
    "疫苗 学籍 驾驶证 身份证 网约车 企业 医保 火化 许可 河西区 统计 失信"
).split()
PAIRS = [
    "公积金 提取", "死亡 证明", "企业 处罚", "河西区 低保", "机动车 登记", "医保 结算",
    "养老 机构", "食品 许可", "户籍 迁移", "death certificate", "学校 名录", "残疾 补贴",
]  # fmt: skip
ENGLISH = (
    "death pension vehicle enterprise licence household birth marriage school housing penalty "
    "vaccination Disability tax"
).split()
FILTERS = [
    Filters(status="published"), Filters(provider="MZ"), Filters(topic="01"),
    Filters(sharing_type="conditional"), Filters(base_library="population"),
    Filters(open_type="unconditional", status="published"),
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=40_000)
    parser.add_argument("--rounds", type=int, default=300, help="searches timed per kind")
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--pg-url", default=PG_ADMIN, help="a PostgreSQL admin URL")
    args = parser.parse_args()
    departments = [dict(row) for row in reference.rows("departments")]
    started = time.perf_counter()
    entries = catalogue_entries(args.entries, seed=2024, departments=departments)
    print(f"generated {len(entries):,} entries in {time.perf_counter() - started:.1f} s")
    for backend in args.backend or ["sqlite", "postgresql"]:
        with database(backend, args.pg_url) as url:
            engine = make_engine(Settings(data_dir=Path(tempfile.mkdtemp()), database_url=url))
            try:
                load(engine, entries, departments)
                report(backend, engine, args.rounds)
            finally:
                engine.dispose()


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


def load(engine: Engine, entries: list[dict[str, Any]], departments: list[dict[str, Any]]) -> None:
    """Migrate, register the departments and bulk-insert the entries (triggers index them)."""
    started = time.perf_counter()
    upgrade(engine)
    now = dt.datetime.now(dt.UTC)
    orgs = [
        {"id": i, "code": d["code"], "name_zh": d["name_zh"], "name_en": d["name_en"]}
        for i, d in enumerate(departments, start=1)
    ]
    with engine.begin() as conn:
        conn.execute(
            Organisation.__table__.insert(),
            [{**o, "kind": "municipal_department", "created_at": now, "updated_at": now}
             for o in orgs],
        )  # fmt: skip
    by_code = {o["code"]: SimpleNamespace(**o) for o in orgs}
    resources, items = rows(entries, by_code, now)
    built = time.perf_counter() - started
    with engine.begin() as conn:
        for start in range(0, len(resources), 2000):
            conn.execute(Resource.__table__.insert(), resources[start : start + 2000])
        for start in range(0, len(items), 20000):
            conn.execute(DataItem.__table__.insert(), items[start : start + 20000])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE")
    stored = time.perf_counter() - started - built
    print(
        f"{engine.dialect.name}: {len(resources):,} entries, {len(items):,} items; search text "
        f"built in {built:.1f} s, inserted and indexed in {stored:.1f} s"
    )


def rows(
    entries: list[dict[str, Any]], orgs: dict[str, SimpleNamespace], now: dt.datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of catalogue_resources and catalogue_items, as the service would write them."""
    rng = random.Random(7)
    sequences: dict[str, int] = {}
    resources, items = [], []
    for rid, entry in enumerate(entries, start=1):
        provider = orgs[entry["provider_code"]]
        cls = classification_code(
            base_library=entry["base_library"], topic=entry["topic"], provider_code=provider.code
        )
        sequences[cls] = sequences.get(cls, 0) + 1
        fields = {k: v for k, v in entry.items() if k not in ("provider_code", "items")}
        fields.setdefault("sharing_conditions", None)
        fields.setdefault("legal_basis", None)
        fields.setdefault("open_conditions", None)
        roll = rng.random()
        status = "published" if roll < 0.85 else "draft" if roll < 0.95 else "retired"
        row = {
            **fields,
            "id": rid,
            "code": resource_code(cls, sequences[cls]),
            "classification_code": cls,
            "sequence": sequences[cls],
            "provider_id": provider.id,
            "status": status,
            "published_on": None if status == "draft" else now.date(),
            "current_version": None,
            "row_count": None,
            "created_at": now,
            "updated_at": now,
        }
        entry_items = [
            {"description": None, **item, "resource_id": rid, "position": n}
            for n, item in enumerate(entry["items"])
        ]
        doc = SimpleNamespace(**row, items=[SimpleNamespace(**i) for i in entry_items])
        row["search_text"] = search_document(doc, provider)  # type: ignore[arg-type]
        resources.append(row)
        items.extend(entry_items)
    return resources, items


def report(backend: str, engine: Engine, rounds: int) -> None:
    """Time each kind of search and its LIKE baseline; print p50/p95/p99 in milliseconds."""
    factory = make_session_factory(engine)
    with factory() as session:
        org_id = session.execute(text("SELECT id FROM organisations WHERE code = 'MZ'")).scalar()
    actor = Principal(
        kind="user", id=1, name="bench", org_id=org_id, org_code="MZ",
        roles=frozenset({Role.OPERATOR}),
    )  # fmt: skip
    rng = random.Random(1)
    kinds: dict[str, Callable[[], tuple[str, Filters]]] = {
        "chinese word": lambda: (rng.choice(CHINESE), Filters()),
        "two words": lambda: (rng.choice(PAIRS), Filters()),
        "english word": lambda: (rng.choice(ENGLISH), Filters()),
        "word + filter": lambda: (rng.choice(CHINESE + ENGLISH), rng.choice(FILTERS)),
        "empty query": lambda: ("", Filters()),
        "empty + filter": lambda: ("", rng.choice(FILTERS)),
    }
    print(f"\n{backend}: {rounds} searches per kind, ms; load average {_load()}")
    print(f"{'kind':15} {'p50':>6} {'p95':>6} {'p99':>6} {'hits':>6} | {'LIKE p50':>8} "
          f"{'p95':>6} | p95/LIKE | slowest")  # fmt: skip
    with factory() as session:
        for kind, draw in kinds.items():
            cases = [draw() for _ in range(rounds)]
            for q, f in cases[:20]:  # warm the caches
                search(session, actor=actor, q=q, filters=f, limit=20, offset=0)
            times, hits = [], []
            for q, f in cases:
                started = time.perf_counter()
                found = search(session, actor=actor, q=q, filters=f, limit=20, offset=0)
                times.append(time.perf_counter() - started)
                hits.append(found.total)
            base = [baseline(session, q) for q, _ in cases]
            p, b = percentiles(times), percentiles(base)
            slowest = max(range(rounds), key=times.__getitem__)
            print(
                f"{kind:15} {p[0]:6.1f} {p[1]:6.1f} {p[2]:6.1f} {statistics.mean(hits):6.0f} | "
                f"{b[0]:8.1f} {b[1]:6.1f} | {p[1] / b[1]:8.2f} | {cases[slowest][0]!r} "
                f"{times[slowest] * 1000:.0f} ms, {hits[slowest]} hits"
            )
    print(f"load average after: {_load()}")


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def baseline(session: Session, q: str) -> float:
    """Seconds for the bare LIKE over search_text (one LIKE per folded word)."""
    words = [w.text for w in parse(q)]
    where = " AND ".join(f"search_text LIKE :w{i}" for i in range(len(words))) or "1 = 1"
    params = {f"w{i}": f"%{w}%" for i, w in enumerate(words)}
    started = time.perf_counter()
    session.execute(text(f"SELECT id FROM catalogue_resources WHERE {where}"), params).all()
    return time.perf_counter() - started


def percentiles(seconds: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles([s * 1000 for s in seconds], n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


if __name__ == "__main__":
    main()
