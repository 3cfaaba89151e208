"""Control-plane database: declarative base, engine and session factories.

The edges own transactions (STYLE.md §3): a request dependency, a CLI command or a job runner opens
a session with ``transaction()`` and commits or rolls back; services only flush.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, Enum, MetaData, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from haihe.core.errors import StorageError
from haihe.core.settings import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every control-plane table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def str_enum(cls: type[StrEnum], name: str) -> Enum:
    """A column type keeping a StrEnum's values as checked VARCHAR(32), alike on every backend."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        length=32,
        validate_strings=True,
        values_callable=lambda e: [m.value for m in e],
    )


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# Bytes the SQLite write-ahead log is cut back to after a checkpoint (see ``_sqlite_pragmas``).
WAL_SIZE_LIMIT = 64 * 1024 * 1024


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    # A checkpoint that has copied the write-ahead log back into the database truncates the
    # log to this size: without it the file keeps the size of the largest burst of writes
    # (hundreds of megabytes after a bulk load), and every read looks its pages up there.
    cur.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cur.close()


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


class SQLiteWriteQueue:
    """Writers of one SQLite database queue here instead of in SQLite's busy handler.

    SQLite lets one transaction write at a time; the others retry after sleeping 1, 2, 5, 10 …
    100 ms. Under a steady stream of short writes (a gateway auditing every call) those sleeps
    dominate: measured here, 4 threads writing through one process served 256 calls/s at p99
    136 ms. So a connection about to write first takes this queue — a lock for the threads of
    the process, then an exclusive ``flock`` on ``path`` for the processes on the machine — and
    leaves it when its transaction ends. The kernel wakes the next writer at once. A thread
    re-entering (a second connection of the same thread) is let through, and then SQLite's own
    busy handling applies as before; waiting longer than ``timeout`` raises StorageError.
    """

    _queues: dict[Path, SQLiteWriteQueue] = {}
    _queues_lock = threading.Lock()

    @classmethod
    def of(cls, path: Path) -> SQLiteWriteQueue:
        """The process's one queue for ``path``, shared by every engine on that database."""
        path = path.resolve()
        with cls._queues_lock:
            queue = cls._queues.get(path)
            if queue is None:
                queue = cls._queues[path] = cls(path)
            return queue

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.path = path
        self.timeout = timeout
        # Not an RLock: a transaction may end on another thread than the one that began writing
        # (FastAPI runs a sync dependency's exit on a worker thread of its own), and an RLock
        # may only be released by its owner. The owner is remembered to let a thread re-enter.
        self._state = threading.Condition()
        self._owner: int | None = None
        self._depth = 0
        self._fd: int | None = None

    def install(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._before_execute)
        event.listen(engine, "commit", self._end)
        event.listen(engine, "rollback", self._end)
        event.listen(engine.pool, "checkin", self._checked_in)

    def _before_execute(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if conn.info.get("haihe_writer") or not statement.lstrip()[:7].upper().startswith(_WRITES):
            return
        self._acquire()
        conn.info["haihe_writer"] = True

    def _end(self, conn: Any) -> None:
        if conn.info.pop("haihe_writer", False):
            self._release()

    def _checked_in(self, _dbapi_conn: Any, record: Any) -> None:
        if record.info.pop("haihe_writer", False):  # closed mid-transaction: do not leak it
            self._release()

    def _acquire(self) -> None:
        me = threading.get_ident()
        with self._state:
            if self._depth and self._owner == me:
                self._depth += 1
                return
            if not self._state.wait_for(lambda: not self._depth, timeout=self.timeout):
                raise StorageError(f"the database stayed busy for {self.timeout:.0f} s; try again")
            self._owner, self._depth = me, 1
        try:
            self._lock_file()
        except BaseException:
            self._free()
            raise

    def _lock_file(self) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.timeout
        pause = 0.00005  # a write holds the lock for well under a millisecond: look back soon
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StorageError(
                        f"the database stayed busy for {self.timeout:.0f} s; try again"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.001)

    def _release(self) -> None:
        with self._state:
            if not self._depth:
                return
            self._depth -= 1
            if self._depth:
                return
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._owner = None
            self._state.notify()

    def _free(self) -> None:
        with self._state:
            self._owner, self._depth = None, 0
            self._state.notify()


def make_engine(settings: Settings) -> Engine:
    """An engine for the control database, checking that it can be reached.

    Raises StorageError naming the problem (bad URL, unwritable data directory, server down).
    """
    url_text = settings.resolved_database_url
    try:
        url = make_url(url_text)
    except (ArgumentError, ValueError):
        raise StorageError(f"database URL {url_text!r} cannot be parsed") from None
    if url.get_backend_name() == "sqlite":
        ensure_data_dir(settings)
        engine = create_engine(url, echo=settings.sql_echo)
        event.listen(engine, "connect", _sqlite_pragmas)
        if url.database and url.database != ":memory:":
            SQLiteWriteQueue.of(Path(f"{url.database}.writers")).install(engine)
    else:
        engine = create_engine(url, echo=settings.sql_echo, pool_pre_ping=True, pool_size=10)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        shown = url.render_as_string(hide_password=True)
        raise StorageError(f"cannot connect to database {shown}: {reason}") from None
    return engine


def ensure_data_dir(settings: Settings) -> None:
    """Create the data directory if needed; StorageError if it cannot be written."""
    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"data directory {path} cannot be created: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise StorageError(f"data directory {path} is not writable")


def make_session_factory(engine: Engine, settings: Settings | None = None) -> sessionmaker[Session]:
    """Sessions on ``engine``; with ``settings``, each knows the audit chain it appends to."""
    info = {"audit_chain": settings.audit_chain} if settings is not None else {}
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True, info=info)


RollbackHook = Callable[[Session], None]


def on_rollback(session: Session, hook: RollbackHook) -> None:
    """Run ``hook`` in a fresh transaction if this one rolls back.

    For the few writes that must outlive a failed request — a failed sign-in counted, a refused
    call recorded — while services still never commit: the edge runs the hooks and commits them.
    """
    session.info.setdefault("on_rollback", []).append(hook)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back if it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        hooks: list[RollbackHook] = session.info.pop("on_rollback", [])
        session.rollback()
        if hooks:
            with factory() as after:
                for hook in hooks:
                    hook(after)
                after.commit()
        raise
    finally:
        session.close()


def is_migrated(engine: Engine) -> bool:
    return inspect(engine).has_table("alembic_version")
