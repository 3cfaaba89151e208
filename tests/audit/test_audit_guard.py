"""The database holds each entry's hashed text to its columns, and verify checks that it still does.

SQLite generates the text (``body``) from the columns; PostgreSQL refuses a row whose text is not
its columns' (a CHECK constraint). Verifying hashes the text, so an edit of the columns that the
text does not follow must be impossible without a schema change, and a schema change is seen.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from audit_support import (
    PG_CHECK,
    PG_TEXT,
    build_ledger,
    checks,
    run_verify,
    sign_heads,
    sql,
)
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker, undefer

from haihe.audit import chain, signing, verify
from haihe.audit.models import AuditEntry
from haihe.core.settings import Settings

Factory = sessionmaker[Session]


@pytest.fixture(autouse=True)
def _schema_put_back(session_factory: Factory) -> Iterator[None]:
    """Tests here change the schema as an attacker would; the next test gets it back."""
    with session_factory() as s:
        sqlite = s.get_bind().dialect.name == "sqlite"
        original = _table_sql(s) if sqlite else ""
    yield
    if sqlite:
        _set_table_sql(session_factory, original)
        return
    ddl(
        session_factory,
        "ALTER TABLE audit_entries DROP CONSTRAINT IF EXISTS ck_audit_entries_body",
        f"UPDATE audit_entries SET body = {PG_TEXT} WHERE body IS DISTINCT FROM {PG_TEXT}",
        "ALTER TABLE audit_entries ALTER COLUMN body SET NOT NULL",
        f"ALTER TABLE audit_entries ADD CONSTRAINT {PG_CHECK}",
    )


@pytest.fixture
def ledger(session_factory: Factory, settings: Settings) -> Factory:
    build_ledger(session_factory, 40)
    sign_heads(session_factory, settings)
    return session_factory


def deep_verify(factory: Factory, settings: Settings, workers: int | None = 1) -> verify.Report:
    key = signing.local_public_key(settings)
    with factory() as s:
        return verify.verify_ledger(s, public_keys=[key] if key else [], workers=workers, deep=True)


def ddl(factory: Factory, *statements: str) -> None:
    """Change the schema (or rows) as a database administrator could, committed."""
    with factory() as s:
        for statement in statements:
            s.execute(text(statement))
        s.commit()


def backend_of(factory: Factory) -> str:
    with factory() as s:
        return s.get_bind().dialect.name


def test_each_entry_stores_the_text_its_hash_covers(ledger: Factory) -> None:
    with ledger() as s:
        stmt = select(AuditEntry).options(undefer(AuditEntry.body)).order_by(AuditEntry.seq)
        rows = s.scalars(stmt).all()
    assert len(rows) == 40
    for row in rows:
        assert row.body == chain.body([getattr(row, f) for f in chain.FIELDS])
        assert chain.link(row.prev_hash, row.body) == row.hash


def test_a_deep_verification_of_an_untouched_ledger_is_intact(
    ledger: Factory, settings: Settings
) -> None:
    report = deep_verify(ledger, settings, workers=2)
    assert report.problems == []
    assert report.deep
    assert report.entries == 40


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_on_sqlite_an_edit_rewrites_the_text_and_breaks_the_hash(
    ledger: Factory, settings: Settings
) -> None:
    ddl(ledger, "UPDATE audit_entries SET actor_name = '李四' WHERE seq = 9")
    with ledger() as s:
        body = s.scalars(select(AuditEntry.body).where(AuditEntry.seq == 9)).one()
    assert "李四" in body
    assert checks(run_verify(ledger, settings)) == {(9, "hash")}


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_on_postgresql_an_edit_of_the_columns_alone_is_refused(ledger: Factory) -> None:
    with pytest.raises(IntegrityError, match="ck_audit_entries_body"):
        ddl(ledger, "UPDATE audit_entries SET rows = rows + 1000 WHERE seq = 7")
    with pytest.raises(IntegrityError, match="ck_audit_entries_body"):
        ddl(ledger, "UPDATE audit_entries SET body = body || 'x' WHERE seq = 7")


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_on_postgresql_a_dropped_constraint_is_a_guard_problem_and_deep_names_the_edit(
    ledger: Factory, settings: Settings
) -> None:
    ddl(
        ledger,
        "ALTER TABLE audit_entries DROP CONSTRAINT ck_audit_entries_body",
        "UPDATE audit_entries SET purpose = '改过的用途' WHERE seq = 7",
    )
    report = run_verify(ledger, settings)
    # the text hashed is untouched, so only the guard tells that the columns may differ from it
    assert checks(report) == {(None, "guard")}
    assert not report.intact
    assert "ck_audit_entries_body" in report.problems[0].message
    assert "--deep" in report.problems[0].message
    assert list(verify.lines(report))[0].startswith("ledger: guard: ")
    deep = deep_verify(ledger, settings, workers=2)
    assert checks(deep) == {(None, "guard"), (7, "columns")}


@pytest.mark.parametrize(
    ("statements", "said"),
    [
        (
            [
                "ALTER TABLE audit_entries DROP CONSTRAINT ck_audit_entries_body",
                f"ALTER TABLE audit_entries ADD CONSTRAINT {PG_CHECK} NOT VALID",
            ],
            "NOT VALID",
        ),
        (
            [
                "ALTER TABLE audit_entries DROP CONSTRAINT ck_audit_entries_body",
                "ALTER TABLE audit_entries ADD CONSTRAINT ck_audit_entries_body "
                "CHECK (length(body) > 0)",
            ],
            "another expression",
        ),
        (["ALTER TABLE audit_entries ALTER COLUMN body DROP NOT NULL"], "may be NULL"),
    ],
)
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_on_postgresql_a_weakened_constraint_is_a_guard_problem(
    ledger: Factory, settings: Settings, statements: list[str], said: str
) -> None:
    ddl(ledger, *statements)
    report = run_verify(ledger, settings)
    assert checks(report) == {(None, "guard")}
    assert said in report.problems[0].message


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_on_postgresql_an_entry_without_text_is_caught(ledger: Factory, settings: Settings) -> None:
    ddl(
        ledger,
        "ALTER TABLE audit_entries ALTER COLUMN body DROP NOT NULL",
        "UPDATE audit_entries SET body = NULL, purpose = '抹掉' WHERE seq = 12",
    )
    assert checks(run_verify(ledger, settings)) == {(None, "guard"), (12, "hash")}


def _table_sql(session: Session) -> str:
    return str(
        session.connection()
        .exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'audit_entries'"
        )
        .scalar_one()
    )


def _set_table_sql(factory: Factory, table_sql: str) -> None:
    """Replace audit_entries' CREATE TABLE text in place (PRAGMA writable_schema), as someone
    with the database file could, and have every connection read the new schema."""
    with factory() as s:
        conn = s.connection()
        version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
        conn.exec_driver_sql("PRAGMA writable_schema = ON")
        conn.exec_driver_sql(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'audit_entries'",
            (table_sql,),
        )
        conn.exec_driver_sql(f"PRAGMA schema_version = {version + 1}")
        conn.exec_driver_sql("PRAGMA writable_schema = OFF")
        s.commit()


def _rewrite_sqlite_schema(factory: Factory, pattern: str, replacement: str) -> None:
    with factory() as s:
        edited, n = re.subn(pattern, replacement, _table_sql(s), flags=re.S)
    assert n == 1
    _set_table_sql(factory, edited)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_on_sqlite_a_schema_making_the_text_a_plain_column_is_a_guard_problem(
    ledger: Factory, settings: Settings
) -> None:
    _rewrite_sqlite_schema(ledger, r"GENERATED ALWAYS AS \(printf\(.*?\)\) STORED", "")
    ddl(ledger, "UPDATE audit_entries SET purpose = '改过的用途' WHERE seq = 7")
    report = run_verify(ledger, settings)
    assert checks(report) == {(None, "guard")}
    assert "not a stored generated column" in report.problems[0].message
    assert checks(deep_verify(ledger, settings)) == {(None, "guard"), (7, "columns")}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_on_sqlite_a_text_generated_by_another_expression_is_a_guard_problem(
    ledger: Factory, settings: Settings
) -> None:
    # the time left out of the text: an edited time would no longer break the hash
    _rewrite_sqlite_schema(ledger, r"chain, seq, at, action", "chain, seq, '', action")
    report = run_verify(ledger, settings)
    assert checks(report) == {(None, "guard")}
    assert "another expression" in report.problems[0].message


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_on_sqlite_a_commented_out_expression_does_not_pass_for_the_guard(
    ledger: Factory, settings: Settings
) -> None:
    _rewrite_sqlite_schema(
        ledger,
        r"GENERATED ALWAYS AS \((printf\(.*?\))\) STORED",
        r"GENERATED ALWAYS AS ('') STORED /* GENERATED ALWAYS AS (\1) STORED */",
    )
    assert checks(run_verify(ledger, settings)) == {(None, "guard")}


def test_the_helper_that_tampers_on_postgresql_leaves_the_guard_in_place(
    ledger: Factory, settings: Settings
) -> None:
    # the tamper tests elsewhere edit through `sql`: their problems must be the edit's alone
    sql(ledger, "UPDATE audit_entries SET outcome = 'ok2' WHERE seq = 21")
    assert checks(run_verify(ledger, settings)) == {(21, "hash")}
