"""`haihe serve --workers N`: every worker serves, a worker that dies is replaced, SIGTERM stops
them all. A real server on a free port, driven over real connections."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import text

from factories import PASSWORD, make_org, make_user, resource_in
from haihe.core.auth import Role
from haihe.core.db import make_engine, make_session_factory
from haihe.core.settings import Settings
from haihe.migrations import upgrade


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def _cpu_ms(pid: int) -> int:
    """CPU time (user + system) of ``pid`` so far, in milliseconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) * 1000 // os.sysconf("SC_CLK_TCK")


def _token(port: int) -> dict[str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    form = urlencode({"grant_type": "password", "username": "root", "password": PASSWORD})
    conn.request(
        "POST", "/api/v1/auth/token", form, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    response = conn.getresponse()
    assert response.status == 200
    token = json.loads(response.read())["access_token"]
    conn.close()
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def _healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def _wait(condition: object, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_workers_serve_restart_and_stop(tmp_path: Path) -> None:
    data = tmp_path / "data"
    engine = make_engine(Settings(data_dir=data))
    upgrade(engine)
    with make_session_factory(engine)() as s:
        provider = make_org(s, code="GA")
        make_user(s, Role.PLATFORM_ADMIN, username="root")
        s.commit()
        body = resource_in(provider).model_dump(mode="json")
    port = _free_port()
    env = {**os.environ, "HAIHE_DATA_DIR": str(data), "HAIHE_JOBS_ENABLED": "false"}
    cmd = [
        str(Path(sys.executable).parent / "haihe"),
        "serve",
        "--port",
        str(port),
        "--workers",
        "2",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(lambda: len(_children(proc.pid)) == 2 and _healthy(port))
        first = _children(proc.pid)
        # each worker has its own socket: fresh connections reach both, and both do the work
        before = {pid: _cpu_ms(pid) for pid in first}
        for _ in range(300):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            assert response.status == 200
            response.read()
            conn.close()
        spent = {pid: _cpu_ms(pid) - before[pid] for pid in first}
        assert all(ms >= 30 for ms in spent.values()), spent
        # each worker appends to its own audit chain: catalogue entries created over fresh
        # connections land in main.w1 and main.w2, and the ledger verifies
        headers = _token(port)
        for n in range(40):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            entry = {**body, "name_zh": f"人口信息{n}"}
            conn.request("POST", "/api/v1/catalogue/resources", json.dumps(entry), headers)
            response = conn.getresponse()
            assert response.status == 201, response.read()
            response.read()
            conn.close()
        with engine.connect() as c:
            rows = c.execute(text("SELECT chain, count(*) FROM audit_entries GROUP BY chain"))
            chains = dict(rows.all())
        assert set(chains) == {"main.w1", "main.w2"}, chains
        assert sum(chains.values()) == 40
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        _wait(lambda: len(_children(proc.pid)) == 2 and victim not in _children(proc.pid))
        _wait(lambda: _healthy(port))
        assert _children(proc.pid) - first, "a new worker replaced the killed one"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert not _healthy(port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        engine.dispose()
