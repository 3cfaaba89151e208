"""Control-plane database: declarative base, engine and session factories.

The edges own transactions (STYLE.md §3): a request dependency, a CLI command or a job runner opens
a session with ``transaction()`` and commits or rolls back; services only flush.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
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


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


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


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


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
