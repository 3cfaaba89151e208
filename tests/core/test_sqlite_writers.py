"""The SQLite write queue: a transaction may begin writing on one thread and end on another.

FastAPI runs a sync route on one worker thread and the exit of its session dependency (the
commit) on another; the queue must let that transaction go and let the next writer in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from haihe.core.db import make_engine
from haihe.core.settings import Settings


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    made = make_engine(Settings(data_dir=tmp_path / "data"))
    with made.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    return made


def _on_thread(work: Callable[[], Any]) -> None:
    """Run ``work`` on a thread of its own; raise here what it raised there."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed back to the test's thread
            failed.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    if failed:
        raise failed[0]


def test_a_transaction_ended_on_another_thread_frees_the_queue(engine: Engine) -> None:
    conn = engine.connect()
    _on_thread(lambda: conn.execute(text("INSERT INTO t VALUES (1)")))
    _on_thread(conn.commit)  # an RLock would refuse: "cannot release un-acquired lock"
    conn.close()

    def next_writer() -> None:
        with engine.begin() as other:
            other.execute(text("INSERT INTO t VALUES (2)"))

    _on_thread(next_writer)  # would wait out the queue's timeout were the first still holding
    with engine.connect() as check:
        assert check.execute(text("SELECT n FROM t ORDER BY n")).scalars().all() == [1, 2]
    engine.dispose()


def test_many_writers_beginning_and_ending_on_pool_threads(engine: Engine) -> None:
    """Like a busy console: writes on one pool's threads, commits on another's; none is lost."""
    writes, commits = ThreadPoolExecutor(4), ThreadPoolExecutor(4)

    def request(n: int) -> None:
        conn = engine.connect()
        writes.submit(conn.execute, text("INSERT INTO t VALUES (:n)"), {"n": n}).result(30)
        commits.submit(conn.commit).result(30)
        conn.close()

    with ThreadPoolExecutor(8) as clients:
        list(clients.map(request, range(200)))
    writes.shutdown()
    commits.shutdown()
    with engine.connect() as check:
        assert check.execute(text("SELECT count(*), sum(n) FROM t")).one() == (200, 19900)
    engine.dispose()
