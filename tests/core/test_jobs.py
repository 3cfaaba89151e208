"""Periodic jobs: each run is its own transaction, claimed once across processes, kept in the
database across restarts; the scheduler thread starts with the app and stops cleanly."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from haihe.core import jobs, outbox
from haihe.core.db import transaction, utcnow
from haihe.core.jobs import PeriodicTask, ScheduledTask, TaskContext
from haihe.core.outbox import Delivery, OutboxMessage
from haihe.core.settings import Settings

MINUTE = dt.timedelta(minutes=1)


def _write(context: TaskContext) -> int:
    outbox.enqueue(context.session, channel="test.jobs", payload={"at": context.now.isoformat()})
    return 1


def _write_then_fail(context: TaskContext) -> None:
    _write(context)
    raise RuntimeError("the task broke")


WRITER = PeriodicTask("test.writer", MINUTE, _write, "writes one outbox row")
BROKEN = PeriodicTask("test.broken", MINUTE, _write_then_fail, "writes, then fails")


def messages(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


def test_a_due_task_runs_in_its_own_committed_transaction(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    runs = jobs.run_due(session_factory, settings=settings, tasks=[WRITER])
    assert [(r.name, r.outcome, r.result) for r in runs] == [("test.writer", "ok", "1")]
    assert messages(session_factory) == 1


def test_a_failing_task_is_rolled_back_and_recorded_and_the_others_still_run(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    runs = jobs.run_due(session_factory, settings=settings, tasks=[BROKEN, WRITER])
    with session_factory() as session:
        broken = session.get(ScheduledTask, "test.broken")
    assert [r.outcome for r in runs] == ["error", "ok"]
    assert messages(session_factory) == 1
    assert broken is not None
    assert broken.last_outcome == "error"
    assert broken.last_result == "RuntimeError: the task broke"


def test_a_task_runs_once_per_interval_whoever_asks(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    t0 = utcnow()
    first = jobs.run_due(session_factory, settings=settings, now=t0, tasks=[WRITER])
    # a second process (or a restart) at the same moment finds the run taken
    second = jobs.run_due(session_factory, settings=settings, now=t0, tasks=[WRITER])
    early = jobs.run_due(session_factory, settings=settings, now=t0 + MINUTE / 2, tasks=[WRITER])
    due = jobs.run_due(session_factory, settings=settings, now=t0 + MINUTE, tasks=[WRITER])
    forced = jobs.run_due(
        session_factory, settings=settings, now=t0 + MINUTE, tasks=[WRITER], force=True
    )
    assert [len(r) for r in (first, second, early, due, forced)] == [1, 0, 0, 1, 1]


def test_concurrent_schedulers_run_a_due_task_once(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    t0 = utcnow()
    results: list[int] = []

    def worker() -> None:
        results.append(
            len(jobs.run_due(session_factory, settings=settings, now=t0, tasks=[WRITER]))
        )

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, 0, 0, 1]
    assert messages(session_factory) == 1


def test_the_scheduler_thread_runs_tasks_and_stops(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    ran = threading.Event()

    def signal(context: TaskContext) -> None:
        ran.set()

    task = PeriodicTask("test.signal", MINUTE, signal)
    scheduler = jobs.Scheduler(session_factory, settings, tick=0.05, tasks=[task])
    scheduler.start()
    assert ran.wait(10)
    scheduler.stop()
    assert not scheduler.running


def test_the_app_runs_the_scheduler_when_jobs_are_enabled(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    from haihe.app import create_app

    delivered = threading.Event()

    def deliver(delivery: Delivery, settings: Settings) -> None:
        delivered.set()

    outbox.register_channel("test.jobs", deliver, replace=True)
    enabled = settings.model_copy(update={"jobs_enabled": True, "jobs_tick_seconds": 0.05})
    app = create_app(enabled)
    with transaction(session_factory) as session:
        outbox.enqueue(session, channel="test.jobs", payload={})
    with TestClient(app):
        assert delivered.wait(10)
    app.state.engine.dispose()
    assert app.state.missing_jobs == []


def test_registering_checks_names_and_intervals() -> None:
    from haihe.core.errors import InvalidInput, NotFound

    with pytest.raises(InvalidInput, match="positive"):
        jobs.register_task("test.never", dt.timedelta(0), _write)
    with pytest.raises(NotFound, match="no periodic task"):
        jobs.find_task("test.unknown")


def test_the_operator_lists_and_redelivers_dead_letters_and_runs_jobs(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    session_factory: sessionmaker[Session],
) -> None:
    import json
    import sys

    from haihe.cli import main

    def haihe(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["haihe", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        return code, capsys.readouterr().out

    got: list[int] = []
    outbox.register_channel("test.cli", lambda d, s: got.append(d.id), replace=True)
    monkeypatch.setenv("HAIHE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("HAIHE_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("HAIHE_SECRET_KEY", "test-secret-key-not-for-production")
    with transaction(session_factory) as session:
        message = outbox.enqueue(session, channel="test.cli", payload={})
        message.status = outbox.OutboxStatus.DEAD
    code, listed = haihe("jobs", "outbox", "list", "--status", "dead", "--json")
    assert code == 0
    assert [m["id"] for m in json.loads(listed)] == [message.id]
    assert haihe("jobs", "outbox", "redeliver", str(message.id))[0] == 0
    code, _ = haihe("jobs", "run-once", "--task", "outbox.deliver", "--force")
    assert code == 0
    assert got == [message.id]
    code, tasks = haihe("jobs", "list", "--json")
    assert "exchange.subscriptions.scan" in {t["task"] for t in json.loads(tasks)}
