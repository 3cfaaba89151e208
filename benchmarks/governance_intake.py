"""Benchmark: event intake through the API against a bare endpoint doing the essential work.

Imports the synthetic city's grid map (``--persons`` sizes it; 1,000,000 gives ~1,600 cells),
registers the city, its districts and streets as member organisations, the built-in categories
and a 12345 hotline API client, then serves the real app with uvicorn (``--workers`` processes,
as ``haihe serve`` runs them) and drives ``POST /api/v1/governance/events`` — bearer token,
category, point → cell lookup (STRtree), routing to the command centre, deadline on the city's
working-day calendar, the event row, its first history step, one audit entry — from
``--clients`` load-generator processes, each one keep-alive connection sending raw HTTP/1.1.

In the same run the same requests go to a bare ASGI app (no framework, no auth, no workflow, no
audit): parse the JSON, the same STRtree lookup, one INSERT committed into SQLite. Prints
events/s, p50, p99 and the ratio; checks every answer is 201 and counts the events stored.

    .venv/bin/python benchmarks/governance_intake.py [--seconds 10] [--clients 4]
        [--workers 2] [--persons 1000000] [--pg] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from gateway import SECRET, lifespan, load, request_body, scratch_postgres, server

TARGET = 500


# ---------------------------------------------------------------- the city


def grid_layers(persons: int) -> dict[str, dict[str, Any]]:
    """The synthetic city's four GeoJSON layers (as ``haihe synth`` writes them)."""
    import shapely

    from haihe.synth.geo import build_map

    city = build_map(20261121, persons)
    levels = [
        ("district", city.districts, None, None),
        ("street", city.streets, city.districts, "district_code"),
        ("community", city.communities, city.streets, "street_code"),
        ("cell", city.cells, city.communities, "community_code"),
    ]
    out = {}
    for name, level, parent, key in levels:
        boxes = shapely.box(*level.bbox.T)
        feats = []
        for i, code in enumerate(level.codes):
            props = {"code": code, "name_zh": level.name_zh[i], "name_en": level.name_en[i]}
            if parent is not None and key is not None:
                props[key] = parent.codes[int(level.parent[i])]
            geometry = json.loads(shapely.to_geojson(boxes[i]))
            feats.append({"type": "Feature", "properties": props, "geometry": geometry})
        out[name] = {"type": "FeatureCollection", "features": feats}
    return out


def set_up(settings: Any, persons: int) -> dict[str, Any]:
    """Migrate; register the city, districts, streets, grids, categories and the hotline."""
    from haihe.core.auth import system_principal
    from haihe.core.db import make_engine, make_session_factory, transaction
    from haihe.governance import categories, grids
    from haihe.governance.models import AreaLevel
    from haihe.migrations import upgrade
    from haihe.orgs import auth, service
    from haihe.orgs.models import OrgKind
    from haihe.orgs.schemas import ClientCreate, OrgCreate

    root = system_principal("benchmark")
    engine = make_engine(settings)
    upgrade(engine)
    factory = make_session_factory(engine, settings)
    layers = grid_layers(persons)
    with transaction(factory) as s:
        city = OrgCreate(code="120000", name_zh="天津市", kind=OrgKind.CITY)
        service.create_org(s, actor=root, data=city)
        for level, kind, parent_key in (
            ("district", OrgKind.DISTRICT, None),
            ("street", OrgKind.STREET, "district_code"),
        ):
            for f in layers[level]["features"]:
                p = f["properties"]
                data = OrgCreate(
                    code=p["code"],
                    name_zh=p["name_zh"],
                    kind=kind,
                    parent_code=p[parent_key] if parent_key else "120000",
                )
                service.create_org(s, actor=root, data=data)
        hotline = OrgCreate(code="RX12345", name_zh="12345热线", kind=OrgKind.MUNICIPAL_DEPARTMENT)
        service.create_org(s, actor=root, data=hotline)
        categories.import_categories(s, actor=root)
        for level in ("district", "street", "community", "cell"):
            body = json.dumps(layers[level], ensure_ascii=False)
            grids.import_geojson(s, actor=root, data=body, level=AreaLevel(level))
        client, secret = auth.create_client(
            s, actor=root, data=ClientCreate(name="12345 热线系统", org_code="RX12345")
        )
        token, _ = auth.issue_client_token(
            s, settings=settings, client_id=client.client_id, client_secret=secret
        )
    engine.dispose()
    cells = layers["cell"]["features"]
    return {"token": token, "cells": [f["geometry"]["coordinates"][0] for f in cells]}


def bodies(cells: list[Any], n: int) -> list[bytes]:
    """``n`` event bodies at random points inside random cells."""
    rng = random.Random(7)
    codes = ["HJWS", "ZDJY", "DLPS", "LDSH", "ZYRM", "JGQS"]
    out = []
    for i in range(n):
        ring = rng.choice(cells)
        (x0, y0), (x1, y1) = ring[0], ring[2]
        body = {
            "category_code": codes[i % len(codes)],
            "description": f"12345 来电：第{i}号，{['垃圾堆积', '占道经营', '路面坑洼'][i % 3]}",
            "lng": x0 + (x1 - x0) * rng.uniform(0.1, 0.9),
            "lat": y0 + (y1 - y0) * rng.uniform(0.1, 0.9),
            "source": "hotline_12345",
            "external_id": f"RX{i:08d}",
        }
        out.append(json.dumps(body, ensure_ascii=False).encode())
    return out


def requests_for(path: str, payloads: list[bytes], headers: dict[str, str]) -> list[bytes]:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return [
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(p)}\r\n{extra}\r\n"
        ).encode()
        + p
        for p in payloads
    ]


# ---------------------------------------------------------------- the bare endpoint

_BARE: dict[str, Any] = {}


def _bare_state() -> dict[str, Any]:
    """The same STRtree over the same cells, and a SQLite table to write events into."""
    if not _BARE:
        from haihe.core.db import make_engine, make_session_factory
        from haihe.core.settings import Settings
        from haihe.governance import lookup

        settings = Settings(data_dir=Path(os.environ["HAIHE_DATA_DIR"]))
        factory = make_session_factory(make_engine(settings), settings)
        with factory() as s:
            _BARE["index"] = lookup.index_for(s)
        con = sqlite3.connect(os.environ["BENCH_BARE_DB"], isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA busy_timeout=10000")
        _BARE["db"] = con
    return _BARE


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A minimal ASGI app: read the JSON, place the point, insert one row, answer 201."""
    if await lifespan(scope, receive, send):
        return
    raw = await request_body(receive)
    body = json.loads(raw)
    state = _bare_state()
    placed = state["index"].place(body["lng"], body["lat"])
    cur = state["db"].execute(
        "INSERT INTO events (category, description, lng, lat, cell_id) VALUES (?,?,?,?,?)",
        (body["category_code"], body["description"], body["lng"], body["lat"], placed.cell_id),
    )
    out = json.dumps({"id": cur.lastrowid, "cell_code": placed.cell_code}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(out))]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": out})


# ---------------------------------------------------------------- load


def accepted(status: int, body: bytes) -> bool:
    """An intake's answer: 201 and the event placed in a cell."""
    return status == 201 and b'"cell_code"' in body


def server_cpu(port: int) -> float:
    """CPU seconds used so far by the processes serving ``port`` (the supervisor and its forked
    workers share its command line), read from /proc: a figure the machine's other load does
    not inflate the way it inflates wall-clock throughput."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            if b"--serve" not in cmdline or str(port).encode() not in cmdline:
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def measured(port: int, requests: list[bytes], clients: int, seconds: float) -> dict[str, Any]:
    """``gateway.load`` of intakes, with the server's CPU milliseconds per request (the
    supervisor's too: with one worker it serves in its own process)."""
    before = server_cpu(port)
    result = load(port, requests, clients, seconds, ok=accepted)
    result["cpu_ms"] = (server_cpu(port) - before) * 1000 / max(result["sent"], 1)
    return result


def stored_events(settings: Any) -> int:
    from sqlalchemy import func, select

    from haihe.core.db import make_engine, make_session_factory
    from haihe.governance.models import Event

    engine = make_engine(settings)
    with make_session_factory(engine, settings)() as s:
        n = s.scalar(select(func.count()).select_from(Event)) or 0
    engine.dispose()
    return n


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--pg", action="store_true", help="control database on PostgreSQL")
    parser.add_argument("--keep", type=Path, help="work in DIR and keep it (default: temporary)")
    args = parser.parse_args()

    from haihe.core.settings import Settings

    work = args.keep or Path(tempfile.mkdtemp(prefix="haihe-gov-intake-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        with scratch_postgres(args.pg) as database_url:
            settings = Settings(
                data_dir=work / "data", secret_key=SECRET, database_url=database_url
            )
            started = time.perf_counter()
            facts = set_up(settings, args.persons)
            print(f"{len(facts['cells']):,} cells imported, members and hotline registered in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
            bare_db = work / "bare.db"
            with sqlite3.connect(bare_db) as con:
                con.execute(
                    "CREATE TABLE events (id INTEGER PRIMARY KEY, category TEXT, "
                    "description TEXT, lng REAL, lat REAL, cell_id INTEGER)"
                )
            env = {
                "HAIHE_DATA_DIR": str(settings.data_dir),
                "HAIHE_SECRET_KEY": SECRET,
                "HAIHE_LOG_LEVEL": "WARNING",
                "HAIHE_JOBS_ENABLED": "false",
                "BENCH_BARE_DB": str(bare_db),
            }
            if database_url:
                env["HAIHE_DATABASE_URL"] = database_url
            payloads = bodies(facts["cells"], 20_000)
            auth = {"Authorization": f"Bearer {facts['token']}"}
            haihe_requests = requests_for("/api/v1/governance/events", payloads, auth)
            results = {}
            with server("haihe.app:app_from_environment", env, args.workers, factory=True) as p:
                results["haihe"] = measured(p, haihe_requests, args.clients, args.seconds)
            with server("governance_intake:bare_app", env, args.workers) as p:
                bare = requests_for("/", payloads, {})
                results["bare"] = measured(p, bare, args.clients, args.seconds)
            stored = stored_events(settings)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(
        f"\n{args.workers} uvicorn workers, {args.clients} keep-alive clients, "
        f"{args.seconds:.0f} s each, {os.cpu_count()} CPUs, control database "
        f"{'PostgreSQL' if args.pg else 'SQLite'}\n"
    )
    print(f"{'endpoint':<44}{'events/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}"
          f"{'CPU ms/event':>14}")  # fmt: skip
    names = {
        "haihe": "POST /api/v1/governance/events (Haihe)",
        "bare": "bare ASGI: parse, STRtree, INSERT",
    }
    for key, r in results.items():
        print(f"{names[key]:<44}{r['rps']:>10,.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}"
              f"{r['bad']:>8}{r['cpu_ms']:>14.2f}")  # fmt: skip
    ratio = results["haihe"]["rps"] / results["bare"]["rps"]
    print(f"\nHaihe / bare throughput: {ratio:.2f}")
    print(f"events stored by Haihe: {stored:,} (answered 201: "
          f"{results['haihe']['sent'] - results['haihe']['bad']:,})")  # fmt: skip
    verdict = "met" if results["haihe"]["rps"] >= TARGET else "NOT met"
    print(f"target {TARGET} events/s: {verdict}")
    cores = os.cpu_count() or 1
    print(f"the server's CPU per event allows ~{cores * 1000 / results['haihe']['cpu_ms']:,.0f} "
          f"events/s on {cores} otherwise idle cores (load generators aside)")  # fmt: skip
    for key, r in results.items():
        if r["bad"]:
            print(f"{key}: first bad answer: {r['sample']}")


if __name__ == "__main__":
    main()
