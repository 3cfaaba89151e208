"""Loading from a department's own database: SQLite files and PostgreSQL tables or queries."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker
from test_catalogue_loading import IDS, assert_unchanged, csv_text, load_file, read_version, rows

from factories import ROOT, make_org, make_resource
from haihe.catalogue.loading import LoadSource, load_resource
from haihe.catalogue.models import Load, Resource
from haihe.core.db import transaction
from haihe.core.errors import Forbidden, InvalidInput
from haihe.core.settings import Settings
from testenv import PG_ADMIN_URL


@pytest.fixture
def entry(session: Session) -> Resource:
    resource = make_resource(session, make_org(session, code="WJW"))
    session.commit()
    return resource


@pytest.fixture
def department_db(tmp_path: Path) -> str:
    """URL of a department's SQLite database holding a table of deaths (one bad row)."""
    path = tmp_path / "department.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE deaths (certificate_no TEXT, id_number TEXT, name TEXT, "
            "death_date TEXT, age INTEGER)"
        )
        conn.executemany("INSERT INTO deaths VALUES (?, ?, ?, ?, ?)", rows(4))
        conn.execute("INSERT INTO deaths VALUES ('C9', '123', '错', '2024-01-09', 70)")
    conn.close()
    return f"sqlite:///{path}"


def _load_sql(session: Session, settings: Settings, entry: Resource, **source: str) -> Load:
    return load_resource(
        session,
        actor=ROOT,
        settings=settings,
        code=entry.code,
        source=LoadSource(format="sql", **source),
    )


def test_a_table_of_a_sqlite_database(
    session: Session, settings: Settings, entry: Resource, department_db: str
) -> None:
    load = _load_sql(session, settings, entry, url=department_db, table="deaths")
    assert (load.rows_read, load.rows_accepted, load.rows_rejected) == (5, 4, 1)
    assert load.source["table"] == "deaths"
    assert read_version(settings, entry.code, 1).column("id_number").to_pylist() == IDS[:4]


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM deaths WHERE age < 62",
        "  -- the first two\n WITH young AS (SELECT * FROM deaths WHERE age < 62) "
        "SELECT * FROM young;",
    ],
)
def test_a_select_query(
    session: Session, settings: Settings, entry: Resource, department_db: str, query: str
) -> None:
    load = _load_sql(session, settings, entry, url=department_db, query=query)
    assert (load.rows_read, load.rows_accepted) == (2, 2)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"query": "DELETE FROM deaths"}, r"the query must be a single SELECT statement"),
        ({"query": "SELECT 1; DROP TABLE deaths"}, r"the query must be a single SELECT"),
        (
            {"query": "WITH x AS (SELECT 1) DELETE FROM deaths"},
            r"cannot read from database sqlite:///.*: attempt to write a readonly database",
        ),
        ({"table": "nope"}, r"cannot read from database sqlite:///.*: no such table: nope"),
        ({"table": "deaths; drop"}, r"'deaths; drop' is not a table name"),
        ({"query": "SELECT name FROM deaths"}, r"missing columns certificate_no, id_number"),
    ],
)
def test_bad_database_sources_change_nothing(
    session_factory: sessionmaker[Session],
    settings: Settings,
    entry: Resource,
    department_db: str,
    tmp_path: Path,
    source: dict[str, str],
    message: str,
) -> None:
    first = tmp_path / "first.csv"
    first.write_text(csv_text(rows(2)), encoding="utf-8")
    with transaction(session_factory) as session:
        load_file(session, settings, entry, first)
    with pytest.raises(InvalidInput, match=message), transaction(session_factory) as session:
        _load_sql(session, settings, entry, url=department_db, **source)
    assert_unchanged(session_factory, settings, entry.code)
    with sqlite3.connect(department_db.removeprefix("sqlite:///")) as conn:
        assert conn.execute("SELECT count(*) FROM deaths").fetchone() == (5,)
    conn.close()


def test_a_database_that_does_not_answer(
    session_factory: sessionmaker[Session], settings: Settings, entry: Resource, tmp_path: Path
) -> None:
    first = tmp_path / "first.csv"
    first.write_text(csv_text(rows(2)), encoding="utf-8")
    with transaction(session_factory) as session:
        load_file(session, settings, entry, first)
    url = "postgresql+psycopg://loader:s3cret@127.0.0.1:1/deaths"
    with pytest.raises(InvalidInput) as caught, transaction(session_factory) as session:
        _load_sql(session, settings, entry, url=url, table="deaths")
    message = caught.value.message
    assert message.startswith(
        "cannot connect to database postgresql+psycopg://loader:***@127.0.0.1:1/deaths "
        "(host 127.0.0.1): "
    )
    assert "s3cret" not in message
    assert "\n" not in message
    failed = assert_unchanged(session_factory, settings, entry.code)
    assert failed.error == message
    assert "s3cret" not in str(failed.source)


def test_a_missing_sqlite_file_is_not_created(
    session: Session, settings: Settings, entry: Resource, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.db"
    with pytest.raises(InvalidInput, match=r"cannot read database sqlite:///.*: no such file"):
        _load_sql(session, settings, entry, url=f"sqlite:///{missing}", table="deaths")
    assert not missing.exists()


def test_haihe_s_own_database_is_refused(
    session: Session, settings: Settings, entry: Resource
) -> None:
    own = settings.resolved_database_url
    with pytest.raises(Forbidden, match="a load reads a department's database, not Haihe's own"):
        _load_sql(session, settings, entry, url=own, table="users")
    inside = settings.data_dir / "copy.db"
    with pytest.raises(Forbidden, match="not Haihe's own"):
        _load_sql(session, settings, entry, url=f"sqlite:///{inside}", table="users")


@pytest.fixture
def pg_table(pg_database: str) -> Iterator[tuple[str, str]]:
    """(URL, table) of a 300,000-row table in another PostgreSQL database than Haihe's.

    A department's PostgreSQL is read whichever backend Haihe's own database uses;
    ``pg_database`` skips or, under CI, fails when the server is not there.
    """
    name = f"dept_{uuid.uuid4().hex[:8]}"
    engine = create_engine(PG_ADMIN_URL)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {name} (code bigint, name text, born date)"))
        conn.execute(
            text(
                f"INSERT INTO {name} SELECT g, '名' || g, DATE '1950-01-01' + (g % 20000) "
                "FROM generate_series(1, 300000) AS g"
            )
        )
    yield PG_ADMIN_URL, f"public.{name}"
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {name}"))
    engine.dispose()


def test_a_postgresql_table_streams_in_batches(
    session: Session, settings: Settings, pg_table: tuple[str, str]
) -> None:
    items = [
        {"name": "code", "name_zh": "编码", "type": "int64", "is_key": True, "nullable": False},
        {"name": "name", "name_zh": "名称"},
        {"name": "born", "name_zh": "出生日期", "type": "date32"},
    ]
    entry = make_resource(session, make_org(session, code="GA"), items=items)
    seen: list[tuple[int, int | None]] = []
    load = load_resource(
        session,
        actor=ROOT,
        settings=settings,
        code=entry.code,
        source=LoadSource(format="sql", url=pg_table[0], table=pg_table[1]),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert (load.rows_read, load.rows_accepted, load.rows_rejected) == (300_000, 300_000, 0)
    assert len(seen) > 1  # more than one batch
    assert seen[-1] == (300_000, None)
    version = read_version(settings, entry.code, 1)
    assert version.schema.field("born").type == "date32[day]"
    assert version.slice(0, 1).to_pylist()[0]["name"] == "名1"
