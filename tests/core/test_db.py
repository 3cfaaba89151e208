"""The control database: reaching it, its errors, and migrations that match the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from haihe.core import db
from haihe.core.db import Base, make_engine
from haihe.core.errors import StorageError
from haihe.core.settings import Settings
from haihe.migrations import current_revision, downgrade, from_models, head_revision, upgrade
from haihe.models import import_all_models


def test_migrations_build_exactly_the_models(migrated_engine: Engine) -> None:
    """On each backend, the migrated schema and the models agree (no drift either way)."""
    import_all_models()
    with migrated_engine.connect() as conn:
        opts = {"compare_type": True, "include_object": from_models}
        ctx = MigrationContext.configure(conn, opts=opts)
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []
    assert current_revision(migrated_engine) == head_revision()


def test_downgrade_to_nothing_and_back(migrated_engine: Engine) -> None:
    """Every migration's downgrade undoes its upgrade, on each backend."""
    downgrade(migrated_engine, "base")
    assert inspect(migrated_engine).get_table_names() == ["alembic_version"]
    upgrade(migrated_engine)
    assert "catalogue_resources" in inspect(migrated_engine).get_table_names()
    assert current_revision(migrated_engine) == head_revision()


def test_unparsable_url_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot be parsed"):
        make_engine(Settings(data_dir=tmp_path, database_url="sqlite://:bad:url::/x"))


def test_unreachable_server_names_the_problem(tmp_path: Path) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/haihe"
    with pytest.raises(StorageError) as err:
        make_engine(Settings(data_dir=tmp_path, database_url=url))
    assert "cannot connect to database postgresql+psycopg://postgres@127.0.0.1:1/haihe" in str(
        err.value
    )


def test_unwritable_data_dir() -> None:
    """/proc refuses new directories even to root, as a read-only mount would."""
    with pytest.raises(StorageError, match="data directory /proc/haihe-data cannot be created"):
        make_engine(Settings(data_dir=Path("/proc/haihe-data")))


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("not a directory")
    with pytest.raises(StorageError, match="cannot be created"):
        make_engine(Settings(data_dir=target / "sub"))


def test_sqlite_write_ahead_log_is_cut_back_after_a_burst(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst of writes grows SQLite's write-ahead log; once checkpointed, the next write cuts
    it back to the limit, instead of leaving a file every later read looks pages up in."""
    monkeypatch.setattr(db, "WAL_SIZE_LIMIT", 64 * 1024)
    engine = make_engine(Settings(data_dir=tmp_path))
    wal = tmp_path / "haihe.db-wal"
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE burst (x TEXT)")
            conn.exec_driver_sql(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                "WHERE i < 2000) INSERT INTO burst SELECT hex(randomblob(1000)) FROM n"
            )
        grown = wal.stat().st_size
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO burst VALUES ('after')")
        assert grown > 2_000_000
        assert wal.stat().st_size <= 64 * 1024
    finally:
        engine.dispose()
