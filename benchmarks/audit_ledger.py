"""Benchmark: append to and verify the audit ledger, against bare baselines in the same run.

Appends: ``record`` one entry at a time and ``record_many`` in batches of 10,000, against a bare
``executemany`` of the same rows into a table of the same shape (no hashing, no chain head).
Verification: ``verify_ledger`` over every entry (the guard, hashes, links, head, checkpoints;
one process per core) entry by entry, as before a checkpoint; then the checkpoint that seals
the entries in signed blocks (timed: it verifies each entry once first), and ``verify_ledger``
by those blocks, one process per core, then one process, then ``deep`` — every entry's columns
compared with its stored text too — one process per core; against bare SHA-256 over the same
canonical bytes already in memory. On PostgreSQL, entry by entry first as the load left the
table, then after VACUUM ANALYZE (as autovacuum soon runs). The machine's load is printed
before each backend and after the last: other work on it slows every figure.

    .venv/bin/python benchmarks/audit_ledger.py [--entries 1000000] [--single 5000]
        [--no-pg | --no-sqlite]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from haihe.audit import service, signing, verify
from haihe.core.auth import Principal
from haihe.core.db import make_engine, make_session_factory
from haihe.core.settings import Settings
from haihe.migrations import upgrade

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
GATEWAY = Principal(kind="client", id=7, name="gw-民政-01", org_id=3, org_code="MZ", system_id=4)
BATCH = 10_000


def entry(n: int) -> service.NewEntry:
    """A gateway query of the kind the ledger holds most: one person's record, masked fields."""
    return service.NewEntry(
        actor=GATEWAY,
        action="exchange.query",
        resource_code="101-000123",
        provider_code="GA",
        items=["id_number", "name", "death_date"],
        purpose="最低生活保障资格复核",
        mode="query",
        rows=1,
        request_id=f"{n:032x}",
    )


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>12,.0f}/s"


def bench(factory: sessionmaker[Session], settings: Settings, entries: int, single: int) -> None:
    batch = [entry(i) for i in range(BATCH)]
    # record, one at a time (100 per transaction, like a busy gateway's commits)
    started = time.perf_counter()
    for start in range(0, single, 100):
        with factory() as s:
            for i in range(start, min(single, start + 100)):
                e = batch[i % BATCH]
                service.record(
                    s,
                    actor=e.actor,
                    action=e.action,
                    resource_code=e.resource_code,
                    provider_code=e.provider_code,
                    items=e.items,
                    purpose=e.purpose,
                    mode=e.mode,
                    rows=e.rows,
                    request_id=e.request_id,
                )
            s.commit()
    one = time.perf_counter() - started
    # record_many in batches
    started = time.perf_counter()
    done = single
    while done < entries:
        with factory() as s:
            service.record_many(s, batch[: min(BATCH, entries - done)])
            s.commit()
        done += min(BATCH, entries - done)
    many = time.perf_counter() - started
    # baseline: the same rows, bare executemany, no hashing and no chain head
    with factory() as s:
        rows = s.execute(text("SELECT * FROM audit_entries ORDER BY id LIMIT :n"), {"n": BATCH})
        cols = list(rows.keys())
        values = [dict(zip(cols, r, strict=True)) for r in rows]
        s.execute(text("CREATE TABLE bench_copy AS SELECT * FROM audit_entries WHERE 1 = 0"))
        s.commit()
    insert = text(
        f"INSERT INTO bench_copy ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})"
    )
    started = time.perf_counter()
    copied = 0
    while copied < entries - single:
        with factory() as s:
            s.execute(insert, values)
            s.commit()
        copied += len(values)
    bare = time.perf_counter() - started
    with factory() as s:
        s.execute(text("DROP TABLE bench_copy"))
        s.commit()
    print(f"  append  record (one at a time) {rate(single, one)}")
    print(f"  append  record_many            {rate(entries - single, many)}")
    print(
        f"  append  bare executemany       {rate(copied, bare)}   (record_many at "
        f"{((entries - single) / many) / (copied / bare):.2f}x of it)"
    )
    # verification: entry by entry (no checkpoint yet), then sealed and by blocks; against bare
    # sha256 over the same bytes
    key = signing.signing_key(settings).public_key()
    with factory() as s:
        engine = s.get_bind()
    if engine.dialect.name == "postgresql":
        # Right after the load, PostgreSQL's first read of each row also marks it committed
        # (hint bits, which dirties every page). Then, as autovacuum soon does on a ledger,
        # VACUUM ANALYZE: the steady state, and with statistics the planner would sort a whole
        # table scan per chunk if verify did not keep it to the index.
        with factory() as s:
            first = verify.verify_ledger(s, public_keys=[key], workers=None)
        print(f"  verify  entry by entry, first read {rate(first.entries, first.seconds)}")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE) audit_entries"))
    with factory() as s:
        unsealed = verify.verify_ledger(s, public_keys=[key], workers=None)
    assert unsealed.intact, list(verify.lines(unsealed))[:5]
    assert unsealed.chains[0].sealed == 0
    print(f"  verify  entry by entry          {rate(unsealed.entries, unsealed.seconds)}")
    started = time.perf_counter()
    with factory() as s:
        made = service.checkpoint(s, settings=settings)
        s.commit()
    sealing = time.perf_counter() - started
    print(
        f"  seal    checkpoint               {rate(entries, sealing)}   "
        f"({len(made)} blocks signed, each entry verified once first)"
    )
    with factory() as s:
        report = verify.verify_ledger(s, public_keys=[key], workers=None)
    assert report.intact, list(verify.lines(report))[:5]
    assert report.chains[0].sealed == entries
    with factory() as s:
        unit_separator = "char(31)" if s.get_bind().dialect.name == "sqlite" else "chr(31)"
        cursor = s.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(f"SELECT prev_hash || {unit_separator} || body FROM audit_entries")
        texts = [t.encode() for (t,) in cursor.fetchall()]
    started = time.perf_counter()
    for t in texts:
        hashlib.sha256(t).hexdigest()
    sha = time.perf_counter() - started
    print(
        f"  verify  verify_ledger (blocks)  {rate(report.entries, report.seconds)}   "
        f"({report.entries:,} entries, {sum(map(len, texts)) / len(texts):.0f} bytes hashed "
        f"each; {report.entries / report.seconds / (unsealed.entries / unsealed.seconds):.2f}x "
        f"entry by entry)"
    )
    with factory() as s:
        started = time.perf_counter()
        serial = verify.verify_ledger(s, public_keys=[key], workers=1)
        serial_seconds = time.perf_counter() - started
    print(f"  verify  verify_ledger, 1 process {rate(serial.entries, serial_seconds)}")
    print(
        f"  verify  bare sha256 (1 core)   {rate(len(texts), sha)}   (verify at "
        f"{(report.entries / report.seconds) / (len(texts) / sha):.2f}x of it)"
    )
    with factory() as s:
        deep = verify.verify_ledger(s, public_keys=[key], workers=None, deep=True)
    assert deep.intact, list(verify.lines(deep))[:5]
    print(f"  verify  verify_ledger --deep   {rate(deep.entries, deep.seconds)}")


@contextmanager
def sqlite_ledger() -> Iterator[tuple[sessionmaker[Session], Settings]]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), secret_key="benchmark-secret-key-0123456789")
        engine = make_engine(settings)
        upgrade(engine)
        yield make_session_factory(engine, settings), settings
        engine.dispose()


@contextmanager
def pg_ledger() -> Iterator[tuple[sessionmaker[Session], Settings]]:
    name = f"haihe_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
            settings = Settings(
                data_dir=Path(tmp), database_url=url, secret_key="benchmark-secret-key-0123456789"
            )
            engine = make_engine(settings)
            upgrade(engine)
            yield make_session_factory(engine, settings), settings
            engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def pg_reachable() -> bool:
    try:
        engine = create_engine(PG_ADMIN, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:  # unreachable for whatever reason: skip PostgreSQL
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--single", type=int, default=5_000)
    parser.add_argument("--no-pg", action="store_true", help="Skip PostgreSQL.")
    parser.add_argument("--no-sqlite", action="store_true", help="Skip SQLite.")
    args = parser.parse_args()
    print(f"audit ledger, {args.entries:,} entries, {os.cpu_count()} cores")
    if not args.no_sqlite:
        print(f"SQLite (load {load()})")
        with sqlite_ledger() as (factory, settings):
            bench(factory, settings, args.entries, args.single)
    if not args.no_pg and pg_reachable():
        print(f"PostgreSQL (load {load()})")
        with pg_ledger() as (factory, settings):
            bench(factory, settings, args.entries, args.single)
    print(f"(load {load()} at the end)")


def load() -> str:
    """The machine's load averages over 1, 5 and 15 minutes."""
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
