"""Fixtures for the data-plane tests: a store in a fresh directory and a DuckDB engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from haihe.engine import DuckDBEngine, VersionStore, WriteOptions


@pytest.fixture
def store(tmp_path: Path) -> VersionStore:
    """A store with small row groups and part files, so a few thousand rows span several."""
    return VersionStore(
        tmp_path / "resources", options=WriteOptions(row_group_rows=1000, file_rows=4000)
    )


@pytest.fixture
def data_engine(tmp_path: Path) -> Iterator[DuckDBEngine]:
    """A DuckDB engine spilling into the test's own directory."""
    engine = DuckDBEngine(memory_limit="1GB", threads=2, temp_dir=tmp_path / "spill")
    yield engine
    engine.close()
