"""Benchmark: the query gateway against a bare endpoint doing the same row-store lookup.

Loads a register of ``--rows`` people (default 1,000,000) through the real catalogue load (which
builds the row store), grants a consumer's API client ``query`` on four items (two of them
masked), then serves the real app with uvicorn (``--workers`` processes) and drives authorised
single-record queries by ID number — token, grant, scope, quota, masking, one audit entry with
the person's pseudonym — from ``--clients`` load-generator processes, each one keep-alive
connection sending raw HTTP/1.1. In the same run the same lookup goes through a bare ASGI app
(no framework, no checks; the same ``RowStore`` query) on the same uvicorn with the same
workers. Prints requests/s, p50, p99 and the ratio; checks every answer is 200 with one record.

    .venv/bin/python benchmarks/gateway.py [--rows 1000000] [--seconds 10] [--clients 4]
        [--workers 2] [--pg] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
ITEMS = ["id_number", "name", "age", "district"]
SECRET = "benchmark-secret-key-not-for-production"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


# ---------------------------------------------------------------- data and grant


def register(rows: int, path: Path) -> list[str]:
    """Write a population register of ``rows`` people as Parquet; return a sample of ID numbers."""
    from haihe.core.identity import compose_ids_arrow

    i = np.arange(rows, dtype=np.int64)
    born = np.datetime64("1930-01-01") + (i % 27_000).astype("timedelta64[D]")
    ymd = born.astype("datetime64[D]").astype(str)
    region = np.array([120101, 120102, 120103, 120104], dtype=np.int64)[i % 4]
    date_int = np.char.replace(ymd, "-", "").astype(np.int64)
    bodies = (region * 10**8 + date_int) * 1000 + i // 27_000
    ids = compose_ids_arrow(bodies)
    table = pa.table(
        {
            "person_no": pa.array([f"P{n:08d}" for n in range(rows)]),
            "id_number": ids,
            "name": pa.array([f"{'王李张刘陈杨'[n % 6]}海{n}" for n in range(rows)]),
            "phone": pa.array([f"138{n:08d}" for n in range(rows)]),
            "district": pa.array(region.astype(str)),
            "born": pa.array(born.astype("datetime64[D]")),
            "age": pa.array((96 - (i % 27_000) // 365).astype(np.int32)),
        }
    )
    pq.write_table(table, path, row_group_size=100_000)
    sample = random.Random(7).sample(range(rows), min(rows, 20_000))
    return [ids[n].as_py() for n in sample]


def set_up(settings: Any, rows: int, work: Path) -> dict[str, Any]:
    """Migrate, create the orgs, the entry, its load, the grant and a client token."""
    from haihe.catalogue import service as catalogue
    from haihe.catalogue.loading import LoadSource, load_resource
    from haihe.catalogue.schemas import ResourceIn
    from haihe.core.auth import system_principal
    from haihe.core.db import make_engine, make_session_factory, transaction, utcnow
    from haihe.engine import RowStore, make_rowstore, make_store
    from haihe.exchange.models import Grant, GrantBasis, GrantStatus
    from haihe.migrations import upgrade
    from haihe.orgs import auth, service
    from haihe.orgs.models import OrgKind
    from haihe.orgs.schemas import ClientCreate, OrgCreate

    root = system_principal("benchmark")
    engine = make_engine(settings)
    upgrade(engine)
    factory = make_session_factory(engine, settings)
    started = time.perf_counter()
    ids = register(rows, work / "register.parquet")
    generated = time.perf_counter() - started
    with transaction(factory) as s:
        orgs = {}
        for code in ("GA", "MZ"):
            data = OrgCreate(code=code, name_zh=code, kind=OrgKind.MUNICIPAL_DEPARTMENT)
            orgs[code] = service.create_org(s, actor=root, data=data)
        items = [
            {"name": "person_no", "name_zh": "人员编号", "type": "string", "is_key": True,
             "nullable": False},
            {"name": "id_number", "name_zh": "身份证号", "type": "string", "sensitivity": "L3",
             "personal": True, "kind": "id_number", "nullable": False},
            {"name": "name", "name_zh": "姓名", "type": "string", "sensitivity": "L2",
             "personal": True, "kind": "name"},
            {"name": "phone", "name_zh": "电话", "type": "string", "sensitivity": "L3",
             "personal": True, "kind": "phone"},
            {"name": "district", "name_zh": "区", "type": "string"},
            {"name": "born", "name_zh": "出生日期", "type": "date32"},
            {"name": "age", "name_zh": "年龄", "type": "int32"},
        ]  # fmt: skip
        entry = catalogue.create_resource(
            s,
            actor=root,
            data=ResourceIn(
                name_zh="人口基础信息",
                summary_zh="基准测试用人口库",
                provider_code="GA",
                base_library="population",
                topic="02",
                sharing_type="conditional",
                sharing_conditions="用于资格核查",
                legal_basis="《社会救助暂行办法》",
                sharing_modes=["query"],
                update_cycle="daily",
                items=items,
            ),
        )
        catalogue.publish(s, actor=root, code=entry.code)
        code, resource_id = entry.code, entry.id
    started = time.perf_counter()
    with transaction(factory) as s:
        source = LoadSource.for_file(work / "register.parquet")
        load_resource(s, actor=root, settings=settings, code=code, source=source)
    loaded = time.perf_counter() - started
    # the row store alone, built again into a scratch directory, for its own figure
    store = make_store(settings)
    manifest = store.manifest(code, 1)
    built = RowStore(work / "scratch").build(
        store, manifest, keys=["person_no"], indexed=["id_number"]
    )
    with transaction(factory) as s:
        now = utcnow()
        s.add(
            Grant(
                resource_id=resource_id,
                consumer_org_id=orgs["MZ"].id,
                items=ITEMS,
                unmasked_items=["age"],
                scope=[{"item": "district", "op": "in", "values": ["120101", "120102",
                                                                   "120103", "120104"]}],
                modes=["query"],
                purpose="最低生活保障资格复核",
                calls_per_day=2_000_000_000,
                rows_per_day=10**12,
                basis=GrantBasis.APPROVED,
                status=GrantStatus.ACTIVE,
                starts_at=now - dt.timedelta(hours=1),
                expires_at=now + dt.timedelta(days=30),
                created_by="benchmark",
            )
        )  # fmt: skip
        client, secret = auth.create_client(
            s, actor=root, data=ClientCreate(name="民政核查系统", org_code="MZ")
        )
        token, _ = auth.issue_client_token(
            s, settings=settings, client_id=client.client_id, client_secret=secret
        )
    engine.dispose()
    return {
        "code": code,
        "token": token,
        "ids": ids,
        "rowstore": str(make_rowstore(settings).path(code, 1)),
        "generated": generated,
        "loaded": loaded,
        "built": built.seconds,
        "rowstore_bytes": built.path.stat().st_size,
    }


# ---------------------------------------------------------------- the bare endpoint


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> bool:
    """For the bare ASGI apps: answer uvicorn's lifespan protocol; False for a request."""
    if scope["type"] != "lifespan":
        return False
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return True


async def request_body(receive: Any) -> bytes:
    """For the bare ASGI apps: the whole body of the request."""
    raw = b""
    while True:
        message = await receive()
        raw += message.get("body", b"")
        if not message.get("more_body"):
            return raw


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A minimal ASGI app: the same row-store lookup by ID number, JSON out, nothing else."""
    if await lifespan(scope, receive, send):
        return
    query = parse_qs(scope["query_string"].decode())
    page = _bare_table().query(
        columns=ITEMS, where='"id_number" = ?', params=[query["id_number"][0]], limit=100
    )
    body = json.dumps(
        {"records": [dict(zip(ITEMS, row, strict=True)) for row in page.rows]},
        ensure_ascii=False,
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_BARE: list[Any] = []


def _bare_table() -> Any:
    if not _BARE:
        from haihe.engine import RowTable

        _BARE.append(RowTable(Path(os.environ["BENCH_ROWSTORE"])))
    return _BARE[0]


# ---------------------------------------------------------------- servers and load


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_SERVERS: dict[int, int] = {}  # port → pid of the process supervising its workers


def worker_cpu(port: int) -> dict[int, float]:
    """CPU seconds (user + system) used so far by each worker process serving ``port``."""
    parent = _SERVERS.get(port)
    children = Path(f"/proc/{parent}/task/{parent}/children")
    if parent is None or not children.exists():
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in map(int, children.read_text().split()):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            used[pid] = (int(fields[11]) + int(fields[12])) / tick
    return used


@contextlib.contextmanager
def server(app: str, env: dict[str, str], workers: int, *, factory: bool = False) -> Iterator[int]:
    """Serve ``app`` with uvicorn in ``workers`` processes on a free port until the block ends."""
    port = free_port()
    cmd = [sys.executable, __file__, "--serve", app, "--port", str(port)]
    cmd += ["--workers", str(workers), *(["--factory"] if factory else [])]
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=HERE, start_new_session=True)
    _SERVERS[port] = proc.pid
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if proc.poll() is not None:
                raise SystemExit(f"the server exited with {proc.returncode}")
            time.sleep(0.2)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def serve(app: str, port: int, workers: int, factory: bool) -> None:
    """uvicorn in ``workers`` processes, each on its own listening socket (SO_REUSEPORT).

    How ``haihe serve`` runs (``haihe.serving``): the kernel spreads connections over the
    workers, where one shared socket let the first worker to wake accept every connection.
    """
    from haihe.serving import run_workers

    run_workers(
        app,
        host="127.0.0.1",
        port=port,
        workers=workers,
        factory=factory,
        log_level="warning",
        access_log=False,
        worker_env=lambda n: {"HAIHE_AUDIT_CHAIN": f"main.w{n}"},  # as `haihe serve` does
    )


def _read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, bytes]:
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = bytearray(rest)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        body += chunk
    buffer[:] = body[length:]
    return status, bytes(body[:length])


def found_one(status: int, body: bytes) -> bool:
    """The gateway's answer to a lookup of one person: 200 and one record."""
    return status == 200 and body.count(b'"id_number":') == 1


def drive(
    port: int,
    requests: list[bytes],
    start: float,
    warm: float,
    stop: float,
    out: Any,
    ok: Callable[[int, bytes], bool] = found_one,
) -> None:
    """One load-generator process: one keep-alive connection, one request at a time; ``ok``
    says whether an answer is the right one."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = bytearray()
    latencies: list[float] = []
    bad = 0
    sample: bytes = b""
    n = 0
    while time.time() < start:
        time.sleep(0.001)
    while True:
        if time.time() >= stop:
            break
        t0 = time.perf_counter()
        sock.sendall(requests[n % len(requests)])
        status, body = _read_response(sock, buffer)
        t1 = time.perf_counter()
        n += 1
        if not ok(status, body):
            bad += 1
            sample = sample or body[:300]
        if time.time() >= warm:
            latencies.append(t1 - t0)
    sock.close()
    out.put((latencies, bad, sample, n))


def load(
    port: int,
    requests: list[bytes],
    clients: int,
    seconds: float,
    ok: Callable[[int, bytes], bool] = found_one,
) -> dict[str, Any]:
    """Drive the server from ``clients`` processes; return requests/s, p50, p99, errors and
    requests sent, and the workers' CPU time per request and how it was shared between them.

    CPU per request hardly depends on what else the machine runs, where requests/s does: it
    says what the server would do on cores of its own (``cores / cpu per request``).
    """
    queue: Any = mp.Queue()
    cpu_before = worker_cpu(port)
    start = time.time() + 1.0
    warm, stop = start + 2.0, start + 2.0 + seconds
    procs = [
        mp.Process(target=drive, args=(port, requests[i::clients], start, warm, stop, queue, ok))
        for i in range(clients)
    ]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    cpu_after = worker_cpu(port)
    spent = [cpu_after[pid] - cpu_before[pid] for pid in cpu_after if pid in cpu_before]
    served = sum(r[3] for r in results)
    latencies = sorted(x for r in results for x in r[0])
    bad = sum(r[1] for r in results)
    samples = [r[2] for r in results if r[2]]
    return {
        "rps": len(latencies) / seconds,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(len(latencies) * 0.99)] * 1000,
        "bad": bad,
        "sent": served,
        "sample": samples[0].decode(errors="replace") if samples else "",
        "cpu_us": sum(spent) / served * 1e6 if served and spent else float("nan"),
        "shares": [x / sum(spent) for x in spent] if spent and sum(spent) else [],
    }


def requests_for(path: str, ids: list[str], headers: dict[str, str]) -> list[bytes]:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return [
        f"GET {path.format(id=i)} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode() for i in ids
    ]


# ---------------------------------------------------------------- main


# ---------------------------------------------------------------- shared with verify_single.py


@contextlib.contextmanager
def scratch_postgres(wanted: bool) -> Iterator[str | None]:
    """A fresh PostgreSQL database's URL for the run (dropped afterwards), or None for SQLite."""
    if not wanted:
        yield None
        return
    from sqlalchemy import create_engine, text

    name = f"haihe_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))


def compare(
    args: argparse.Namespace,
    env: dict[str, str],
    haihe: tuple[str, list[bytes]],
    bare: tuple[str, str, list[bytes]],
    *,
    what: str = "",
) -> None:
    """Drive Haihe's app, then the bare app, with the same load; print both and the ratio.

    ``haihe`` is (label, requests); ``bare`` is (label, "module:app", requests).
    """
    results = {}
    with server("haihe.app:app_from_environment", env, args.workers, factory=True) as port:
        results["haihe"] = load(port, haihe[1], args.clients, args.seconds)
    with server(bare[1], env, args.workers) as port:
        results["bare"] = load(port, bare[2], args.clients, args.seconds)
    print(
        f"\n{args.workers} uvicorn workers, {args.clients} keep-alive clients, "
        f"{args.seconds:.0f} s each, {os.cpu_count()} CPUs, control database "
        f"{'PostgreSQL' if args.pg else 'SQLite'}{what}\n"
    )
    print(f"{'endpoint':<38}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}"
          f"{'CPU µs/req':>12}  workers' shares")  # fmt: skip
    names = {"haihe": haihe[0], "bare": bare[0]}
    for key, r in results.items():
        shares = " / ".join(f"{x:.0%}" for x in r["shares"])
        print(f"{names[key]:<38}{r['rps']:>10,.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}"
              f"{r['bad']:>8}{r['cpu_us']:>12,.0f}  {shares}")  # fmt: skip
    ratio = results["haihe"]["rps"] / results["bare"]["rps"]
    print(f"\nHaihe / bare throughput: {ratio:.2f}")
    for key, r in results.items():
        if r["bad"]:
            print(f"{key}: first bad answer: {r['sample']}")


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pg", action="store_true", help="control database on PostgreSQL")
    parser.add_argument("--keep", type=Path, help="work in DIR and keep it (default: temporary)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # internal: run one server
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--factory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.workers, args.factory)
        return

    from haihe.core.settings import Settings

    work = args.keep or Path(tempfile.mkdtemp(prefix="haihe-gateway-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        with scratch_postgres(args.pg) as database_url:
            settings = Settings(
                data_dir=work / "data", secret_key=SECRET, database_url=database_url
            )
            print(f"setting up {args.rows:,} rows in {work} …", flush=True)
            facts = set_up(settings, args.rows, work)
            print(
                f"register generated in {facts['generated']:.1f} s; loaded (with row store) in "
                f"{facts['loaded']:.1f} s; row store alone built in {facts['built']:.1f} s "
                f"({facts['rowstore_bytes'] / 2**20:,.0f} MiB)",
                flush=True,
            )
            env = {
                "HAIHE_DATA_DIR": str(settings.data_dir),
                "HAIHE_SECRET_KEY": SECRET,
                "HAIHE_LOG_LEVEL": "WARNING",
                "BENCH_ROWSTORE": facts["rowstore"],
                "PYTHONPATH": str(HERE),
            }
            if database_url:
                env["HAIHE_DATABASE_URL"] = database_url
            auth = {"Authorization": f"Bearer {facts['token']}"}
            path = f"/api/v1/exchange/{facts['code']}/records?id_number={{id}}"
            compare(
                args,
                env,
                ("Haihe gateway (checked, audited)", requests_for(path, facts["ids"], auth)),
                (
                    "bare ASGI lookup",
                    "gateway:bare_app",
                    requests_for("/lookup?id_number={id}", facts["ids"], {}),
                ),
            )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
