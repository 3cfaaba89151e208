"""Benchmark: single checks (单笔核验) against a bare endpoint doing the same row-store lookups.

Loads ``--rows`` death certificates and as many cremation records (default 1,000,000 each)
through the real catalogue load (which builds the row stores), binds them to the ``alive``
rule's source roles, grants a consumer's API client ``verify`` on both, then serves the real app
with uvicorn (``--workers`` processes) and drives ``POST /api/v1/verify/alive`` about one person
— token, verify grant on both sources, two indexed lookups, one audit entry per source with the
person's pseudonym — from ``--clients`` load-generator processes, each one keep-alive
connection sending raw HTTP/1.1. Half the subjects asked about are in the sources, half are
not. In the same run the same two lookups go through a bare ASGI app (no framework, no checks;
the same ``RowStore`` queries) on the same uvicorn with the same workers. Prints requests/s,
p50, p99 and the ratio; checks every answer is 200 with one verdict.

    .venv/bin/python benchmarks/verify_single.py [--rows 1000000] [--seconds 10] [--clients 4]
        [--workers 2] [--pg] [--keep DIR]

The HTTP servers and load generators are those of ``benchmarks/gateway.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gateway import SECRET, compare, lifespan, request_body, scratch_postgres  # noqa: E402

ON = "2024-06-01"
ROLES = {"deaths": ("WJW", "居民死亡医学证明"), "cremations": ("MZ", "火化信息")}


# ---------------------------------------------------------------- data, bindings and grants


def sources(rows: int, work: Path) -> list[str]:
    """Write ``rows`` deaths and cremations as Parquet; return ID numbers to ask about.

    Person ``i`` of the city has ID body ``f(i)``; the even ones died (in both sources), so
    half the subjects asked about are found and half are not.
    """
    from haihe.core.identity import compose_ids_arrow

    i = np.arange(rows * 2, dtype=np.int64)
    born = np.datetime64("1930-01-01") + (i % 27_000).astype("timedelta64[D]")
    ymd = np.char.replace(born.astype("datetime64[D]").astype(str), "-", "").astype(np.int64)
    region = np.array([120101, 120102, 120103, 120104], dtype=np.int64)[i % 4]
    ids = compose_ids_arrow((region * 10**8 + ymd) * 1000 + i // 27_000)
    dead = np.arange(0, rows * 2, 2)
    died = np.datetime64("2015-01-01") + (dead % 3_000).astype("timedelta64[D]")
    for role in ROLES:
        table = pa.table(
            {
                "no": pa.array([f"{role[0].upper()}{n:08d}" for n in range(rows)]),
                "id_number": ids.take(pa.array(dead)),
                "death_date": pa.array(died.astype("datetime64[D]")),
            }
        )
        pq.write_table(table, work / f"{role}.parquet", row_group_size=100_000)
    sample = random.Random(7).sample(range(rows * 2), min(rows * 2, 20_000))
    return [ids[n].as_py() for n in sample]


def set_up(settings: Any, rows: int, work: Path) -> dict[str, Any]:
    """Migrate; create the orgs, both entries, their loads, the bindings, grants and a token."""
    from haihe.catalogue import service as catalogue
    from haihe.catalogue.loading import LoadSource, load_resource
    from haihe.catalogue.schemas import ResourceIn
    from haihe.core.auth import system_principal
    from haihe.core.db import make_engine, make_session_factory, transaction, utcnow
    from haihe.engine import make_rowstore
    from haihe.exchange.models import Grant, GrantBasis, GrantStatus
    from haihe.migrations import upgrade
    from haihe.orgs import auth, service
    from haihe.orgs.models import OrgKind
    from haihe.orgs.schemas import ClientCreate, OrgCreate
    from haihe.verification import service as verification

    root = system_principal("benchmark")
    engine = make_engine(settings)
    upgrade(engine)
    factory = make_session_factory(engine, settings)
    started = time.perf_counter()
    ids = sources(rows, work)
    generated = time.perf_counter() - started
    items = [
        {"name": "no", "name_zh": "编号", "type": "string", "is_key": True, "nullable": False},
        {"name": "id_number", "name_zh": "身份证号", "type": "string", "sensitivity": "L4",
         "personal": True, "kind": "id_number", "nullable": False},
        {"name": "death_date", "name_zh": "死亡日期", "type": "date32"},
    ]  # fmt: skip
    codes: dict[str, tuple[str, int]] = {}
    with transaction(factory) as s:
        orgs = {}
        for code in ("WJW", "MZ", "RS"):
            data = OrgCreate(code=code, name_zh=code, kind=OrgKind.MUNICIPAL_DEPARTMENT)
            orgs[code] = service.create_org(s, actor=root, data=data)
        for role, (provider, name_zh) in ROLES.items():
            entry = catalogue.create_resource(
                s,
                actor=root,
                data=ResourceIn(
                    name_zh=name_zh,
                    summary_zh="基准测试用",
                    provider_code=provider,
                    base_library="population",
                    topic="02",
                    sharing_type="conditional",
                    sharing_conditions="用于资格核验",
                    legal_basis="《社会保险法》",
                    sharing_modes=["verify"],
                    update_cycle="daily",
                    items=items,
                ),
            )
            catalogue.publish(s, actor=root, code=entry.code)
            codes[role] = (entry.code, entry.id)
    started = time.perf_counter()
    for role, (code, _) in codes.items():
        with transaction(factory) as s:
            source = LoadSource.for_file(work / f"{role}.parquet")
            load_resource(s, actor=root, settings=settings, code=code, source=source)
    loaded = time.perf_counter() - started
    with transaction(factory) as s:
        now = utcnow()
        for role, (code, resource_id) in codes.items():
            verification.bind(s, actor=root, role=role, code=code)
            s.add(
                Grant(
                    resource_id=resource_id,
                    consumer_org_id=orgs["RS"].id,
                    items=["id_number", "death_date"],
                    unmasked_items=[],
                    scope=[],
                    modes=["verify"],
                    purpose="养老金领取资格认证",
                    calls_per_day=None,
                    rows_per_day=None,
                    basis=GrantBasis.APPROVED,
                    status=GrantStatus.ACTIVE,
                    starts_at=now - dt.timedelta(hours=1),
                    expires_at=now + dt.timedelta(days=30),
                    created_by="benchmark",
                )
            )
        client, secret = auth.create_client(
            s, actor=root, data=ClientCreate(name="人社待遇核验系统", org_code="RS")
        )
        token, _ = auth.issue_client_token(
            s, settings=settings, client_id=client.client_id, client_secret=secret
        )
    engine.dispose()
    rowstore = make_rowstore(settings)
    return {
        "token": token,
        "ids": ids,
        "rowstores": [str(rowstore.path(code, 1)) for code, _ in codes.values()],
        "generated": generated,
        "loaded": loaded,
    }


# ---------------------------------------------------------------- the bare endpoint


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A minimal ASGI app: the same two row-store lookups by ID number, a verdict out."""
    if await lifespan(scope, receive, send):
        return
    raw = await request_body(receive)
    number = json.loads(raw)["subjects"][0]["id_number"]
    found = [
        bool(
            table.query(
                columns=["id_number"],
                where='"id_number" = ? AND "death_date" <= ?',
                params=[number, ON],
                limit=1,
            ).rows
        )
        for table in _bare_tables()
    ]
    verdict = "no" if any(found) else "yes"
    body = json.dumps(
        {"answers": [{"id_number": number[:6] + "********" + number[-4:], "verdict": verdict}]}
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_BARE: list[Any] = []


def _bare_tables() -> list[Any]:
    if not _BARE:
        from haihe.engine import RowTable

        _BARE.extend(RowTable(Path(p)) for p in os.environ["BENCH_ROWSTORES"].split(os.pathsep))
    return _BARE


def requests_for(path: str, ids: list[str], headers: dict[str, str]) -> list[bytes]:
    """One raw HTTP/1.1 POST per subject: a JSON single check about that person."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    out = []
    for number in ids:
        body = json.dumps({"subjects": [{"id_number": number}], "params": {"on": ON}}).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pg", action="store_true", help="control database on PostgreSQL")
    parser.add_argument("--keep", type=Path, help="work in DIR and keep it (default: temporary)")
    parser.add_argument(
        "--setup-only", action="store_true", help="set up in --keep DIR, print the token, stop"
    )
    args = parser.parse_args()

    from haihe.core.settings import Settings

    work = args.keep or Path(tempfile.mkdtemp(prefix="haihe-verify-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        with scratch_postgres(args.pg) as database_url:
            settings = Settings(
                data_dir=work / "data", secret_key=SECRET, database_url=database_url
            )
            print(f"setting up {args.rows:,} deaths and cremations in {work} …", flush=True)
            facts = set_up(settings, args.rows, work)
            print(
                f"sources generated in {facts['generated']:.1f} s; both loaded (with row stores) "
                f"in {facts['loaded']:.1f} s",
                flush=True,
            )
            if args.setup_only:
                (work / "facts.json").write_text(json.dumps(facts), encoding="utf-8")
                return
            env = {
                "HAIHE_DATA_DIR": str(settings.data_dir),
                "HAIHE_SECRET_KEY": SECRET,
                "HAIHE_LOG_LEVEL": "WARNING",
                "BENCH_ROWSTORES": os.pathsep.join(facts["rowstores"]),
                "PYTHONPATH": str(HERE),
            }
            if database_url:
                env["HAIHE_DATABASE_URL"] = database_url
            auth = {"Authorization": f"Bearer {facts['token']}"}
            compare(
                args,
                env,
                (
                    "Haihe single check (granted, audited)",
                    requests_for("/api/v1/verify/alive", facts["ids"], auth),
                ),
                (
                    "bare ASGI lookups",
                    "verify_single:bare_app",
                    requests_for("/verify", facts["ids"], {}),
                ),
                what=f"; rule alive, 2 sources of {args.rows:,} rows",
            )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
