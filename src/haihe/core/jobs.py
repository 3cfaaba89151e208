"""Periodic background work — 定时任务: a registry of tasks and the scheduler that runs them.

A task is a function of a ``TaskContext`` registered under a name with how often it runs
(``register_task``); Haihe's built-ins (grant expiry, overdue escalation, audit checkpoints,
outbox delivery, export clean-up, subscription scans) are registered at the app's edge, a city's
own tasks by a module named in the ``plugins`` setting — the same call either way.

Each run is its own transaction, committed when the task returns and rolled back if it raises;
a failure is logged and recorded, and never stops the other tasks or the scheduler. When a task
is next due is kept in the database (table ``scheduled_tasks``), so it survives restarts, and a
run is claimed with one compare-and-set ``UPDATE``: several processes may each run a scheduler
(``haihe serve --workers 4``, or separate ``haihe jobs run`` workers) and every due task still
runs once.

The ``Scheduler`` is a thread the app starts in its lifespan when ``jobs_enabled`` is set and
stops cleanly on shutdown; ``run_due`` is the same work once, for the CLI and for tests.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, Text, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from haihe.core.db import Base, UTCDateTime, transaction, utcnow
from haihe.core.errors import HaiheError, InvalidInput, NotFound
from haihe.core.settings import Settings

log = logging.getLogger("haihe.jobs")

RESULT_CHARS = 2000


class ScheduledTask(Base):
    """When a periodic task runs next and how its last run went — 任务计划."""

    __tablename__ = "scheduled_tasks"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    next_run_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_outcome: Mapped[str | None] = mapped_column(String(16))
    last_result: Mapped[str | None] = mapped_column(Text)


@dataclass(frozen=True)
class TaskContext:
    """What a task is given: its transaction's session, the settings and the time of the run.

    ``session_factory`` is for the few tasks that are edges themselves and open transactions
    of their own (outbox delivery, a long export).
    """

    session: Session
    settings: Settings
    now: dt.datetime
    session_factory: sessionmaker[Session]


TaskFunction = Callable[[TaskContext], Any]


@dataclass(frozen=True)
class PeriodicTask:
    """A registered task: its name, how often it runs, and the function that runs it."""

    name: str
    every: dt.timedelta
    run: TaskFunction
    description: str = ""


@dataclass(frozen=True)
class TaskRun:
    """The outcome of one run: ``ok`` with what the task returned, or ``error`` with why."""

    name: str
    outcome: str
    result: str
    seconds: float


_TASKS: dict[str, PeriodicTask] = {}


def register_task(
    name: str,
    every: dt.timedelta,
    run: TaskFunction,
    *,
    description: str = "",
    replace: bool = False,
) -> PeriodicTask:
    """Run ``run`` every ``every`` from now on; the same call for built-ins and a city's tasks."""
    if not name or len(name) > 100:
        raise InvalidInput(f"task name {name!r}: give 1-100 characters")
    if every <= dt.timedelta(0):
        raise InvalidInput(f"task {name}: the interval must be positive")
    if name in _TASKS and _TASKS[name].run is not run and not replace:
        raise InvalidInput(f"periodic task {name!r} is already registered")
    task = PeriodicTask(name=name, every=every, run=run, description=description)
    _TASKS[name] = task
    return task


def registered_tasks() -> list[PeriodicTask]:
    """The registered tasks, by name."""
    return [_TASKS[name] for name in sorted(_TASKS)]


def run_due(
    session_factory: sessionmaker[Session],
    *,
    settings: Settings,
    now: dt.datetime | None = None,
    tasks: Sequence[PeriodicTask] | None = None,
    force: bool = False,
) -> list[TaskRun]:
    """Run every task that is due at ``now`` (all of them with ``force``); return the runs.

    A task is due when it has never run or its ``next_run_at`` has passed; claiming it moves
    ``next_run_at`` one interval on, so a task that fails waits its interval before the next try.
    """
    at = now or utcnow()
    runs = []
    for task in registered_tasks() if tasks is None else tasks:
        if not _claim(session_factory, task, now=at, force=force):
            continue
        runs.append(run_task(session_factory, task, settings=settings, now=at))
    return runs


def run_task(
    session_factory: sessionmaker[Session],
    task: PeriodicTask,
    *,
    settings: Settings,
    now: dt.datetime,
) -> TaskRun:
    """Run one task in its own transaction and record its outcome; never raises for a failure."""
    started = time.perf_counter()
    try:
        with transaction(session_factory) as session:
            context = TaskContext(
                session=session, settings=settings, now=now, session_factory=session_factory
            )
            result = task.run(context)
        outcome, text = "ok", "" if result is None else str(result)
    except Exception as exc:  # a failing task must not stop the others
        outcome = "error"
        text = exc.message if isinstance(exc, HaiheError) else f"{type(exc).__name__}: {exc}"
        log.exception("periodic task %s failed", task.name)
    run = TaskRun(
        name=task.name,
        outcome=outcome,
        result=text[:RESULT_CHARS],
        seconds=round(time.perf_counter() - started, 3),
    )
    with transaction(session_factory) as session:
        session.execute(
            update(ScheduledTask)
            .where(ScheduledTask.name == task.name)
            .values(last_finished_at=utcnow(), last_outcome=run.outcome, last_result=run.result)
        )
    return run


def _claim(
    session_factory: sessionmaker[Session], task: PeriodicTask, *, now: dt.datetime, force: bool
) -> bool:
    """Take this run of ``task`` for this process (compare-and-set on its row); commit."""
    with transaction(session_factory) as session:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(
            insert(ScheduledTask)
            .values(name=task.name, next_run_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        query = update(ScheduledTask).where(ScheduledTask.name == task.name)
        if not force:
            query = query.where(ScheduledTask.next_run_at <= now)
        claimed = session.execute(query.values(next_run_at=now + task.every, last_started_at=now))
        return bool(getattr(claimed, "rowcount", 0))


def find_task(name: str) -> PeriodicTask:
    """The registered task called ``name``; NotFound naming the known ones if there is none."""
    if name not in _TASKS:
        known = ", ".join(sorted(_TASKS)) or "none"
        raise NotFound(f"no periodic task {name!r} (registered: {known})")
    return _TASKS[name]


def schedule_of(session: Session) -> dict[str, ScheduledTask]:
    """Each task's row in ``scheduled_tasks`` by name (tasks that never ran have none)."""
    return {row.name: row for row in session.scalars(select(ScheduledTask)).all()}


@dataclass
class Scheduler:
    """A daemon thread that runs due tasks every ``tick`` seconds until ``stop``."""

    session_factory: sessionmaker[Session]
    settings: Settings
    tick: float = 5.0
    tasks: Sequence[PeriodicTask] | None = None  # None: every registered task, as registered
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="haihe-jobs", daemon=True)
        self._thread.start()
        names = [t.name for t in (registered_tasks() if self.tasks is None else self.tasks)]
        log.info("scheduler started: %s", ", ".join(names))

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to stop and wait for the run in progress to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        log.info("scheduler stopped")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                run_due(self.session_factory, settings=self.settings, tasks=self.tasks)
            except Exception:  # the database may be away for a while; try again next tick
                log.exception("scheduler pass failed")
            self._stop.wait(self.tick)
