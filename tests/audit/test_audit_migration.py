"""Migration 0010 gives a ledger written before it its stored text, and takes it away again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from audit_support import build_ledger, run_verify, sign_heads, sign_heads_as_before_blocks
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from haihe.audit import service
from haihe.core.db import make_engine, make_session_factory
from haihe.core.settings import Settings
from haihe.migrations import downgrade, upgrade
from testenv import PG_ADMIN_URL

Factory = sessionmaker[Session]


@pytest.fixture
def old_ledger(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Engine, Settings]]:
    """A database of its own at revision 0009, with 40 entries (6 with subjects), signed."""
    name = f"haihe_0010_{uuid.uuid4().hex[:8]}"
    admin = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        base = request.getfixturevalue("pg_database")  # skips where PostgreSQL is not reachable
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = base.rsplit("/", 1)[0] + f"/{name}"
    settings = Settings(
        data_dir=tmp_path / "data", database_url=url, secret_key="test-secret-key-not-for-prod"
    )
    engine = make_engine(settings)
    try:
        upgrade(engine, "0009")
        factory = make_session_factory(engine)
        with monkeypatch.context() as before_0010:
            before_0010.setattr(service, "_writes_body", lambda conn: False)  # no body column
            build_ledger(factory, 40)
        sign_heads_as_before_blocks(factory, settings)
        yield engine, settings
    finally:
        engine.dispose()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def snapshot(engine: Engine) -> dict[str, Any]:
    """Every entry and subject row (ids included), and the two tables' indexes and keys."""
    schema = inspect(engine)
    with engine.connect() as conn:
        return {
            "entries": conn.execute(
                text(
                    "SELECT id, chain, seq, purpose, prev_hash, hash FROM audit_entries ORDER BY id"
                )
            ).all(),
            "subjects": conn.execute(
                text("SELECT id, entry_id, token FROM audit_subjects ORDER BY id")
            ).all(),
            "indexes": {
                table: sorted(
                    (i["name"], tuple(i["column_names"])) for i in schema.get_indexes(table)
                )
                for table in ("audit_entries", "audit_subjects")
            },
            "unique": schema.get_unique_constraints("audit_entries"),
            "foreign_keys": schema.get_foreign_keys("audit_subjects"),
        }


def columns(engine: Engine) -> list[str]:
    return [c["name"] for c in inspect(engine).get_columns("audit_entries")]


def test_0010_keeps_an_earlier_ledger_verifiable_and_its_downgrade_undoes_it(
    old_ledger: tuple[Engine, Settings],
) -> None:
    engine, settings = old_ledger
    factory = make_session_factory(engine)
    before = snapshot(engine)
    assert len(before["entries"]) == 40
    assert len(before["subjects"]) == 6
    assert "body" not in columns(engine)

    upgrade(engine)
    assert "body" in columns(engine)
    report = run_verify(factory, settings)
    assert report.problems == []
    assert (report.entries, report.chains[0].checkpoints) == (40, 1)
    assert report.chains[0].sealed == 0  # a checkpoint from before blocks seals none
    assert snapshot(engine) == before  # row ids, subjects, indexes and keys all kept
    with factory() as s:  # the subjects' foreign key still cascades
        s.execute(text("DELETE FROM audit_entries WHERE seq = 6"))
        left = s.execute(text("SELECT count(*) FROM audit_subjects")).scalar_one()
        s.rollback()
    assert left == 5

    downgrade(engine, "0009")
    assert "body" not in columns(engine)
    assert snapshot(engine) == before


def test_after_0010_appends_continue_the_earlier_chain(old_ledger: tuple[Engine, Settings]) -> None:
    engine, settings = old_ledger
    upgrade(engine)
    factory = make_session_factory(engine)
    build_ledger(factory, 10)
    sign_heads(factory, settings)
    report = run_verify(factory, settings, workers=2)
    assert report.problems == []
    assert report.entries == 50
    assert report.chains[0].sealed == 10  # the new checkpoint seals what came after the old
