"""Fixtures shared by every test: a real migrated database on SQLite and on PostgreSQL.

PostgreSQL is the server at 127.0.0.1:5432 (user postgres, trust auth). Where it cannot be reached
its tests skip, except under CI=true, where they fail: CI must prove both backends.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from haihe.core.db import Base, make_session_factory
from haihe.core.settings import Settings
from haihe.migrations import upgrade
from haihe.models import import_all_models
from testenv import IN_CI, PG_ADMIN_URL


def _pg_available() -> str | None:
    """None when the PostgreSQL server answers, else the reason it does not."""
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect means "not available"
        return str(exc).splitlines()[0]


@pytest.fixture(autouse=True)
def _clean_haihe_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see no HAIHE_* variables from the developer's shell."""
    for key in list(os.environ):
        if key.startswith("HAIHE_") and key != "HAIHE_TEST_PG_URL":
            monkeypatch.delenv(key)


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """Argon2id at its cheapest cost: the same algorithm, without 0.3 s per hash in every test.

    test_security.py checks the production parameters separately.
    """
    import argon2
    from argon2.profiles import CHEAPEST

    from haihe.core import security

    production = security._hasher
    security._hasher = argon2.PasswordHasher.from_parameters(CHEAPEST)
    yield
    security._hasher = production


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this test session, dropped at the end."""
    reason = _pg_available()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unreachable: {reason}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {reason}")
    name = f"haihe_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
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
        admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def migrated_engine(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Engine]:
    """An engine on a database built by the real migrations, once per backend and session."""
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "haihe.db"
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_database")
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), database_url=url)
    from haihe.core.db import make_engine

    engine = make_engine(settings)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def db_engine(migrated_engine: Engine) -> Iterator[Engine]:
    """The migrated engine, emptied of rows after the test."""
    yield migrated_engine
    import_all_models()
    tables = list(reversed(Base.metadata.sorted_tables))
    with migrated_engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                # a self-reference (an org's parent) is RESTRICT: cut it before deleting rows
                for fk in table.foreign_keys:
                    if fk.column.table is table:
                        conn.execute(table.update().values({fk.parent.name: None}))
                conn.execute(table.delete())


@pytest.fixture
def settings(db_engine: Engine, tmp_path: Path) -> Settings:
    """Settings pointing at the test database and a fresh data directory."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_engine.url.render_as_string(hide_password=False),
        secret_key="test-secret-key-not-for-production",
        jobs_enabled=False,  # tests run jobs by calling them, not on a timer
    )


@pytest.fixture
def session_factory(db_engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(db_engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work the test commits itself, as an edge would."""
    with session_factory() as s:
        yield s


@pytest.fixture
def app(settings: Settings) -> Iterator[object]:
    from haihe.app import create_app

    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app: object) -> Iterator[object]:
    """An in-process HTTP client on the real app."""
    from fastapi.testclient import TestClient

    with TestClient(app) as c:  # type: ignore[arg-type]
        yield c
