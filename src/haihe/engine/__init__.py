"""The data plane — 数据平面: immutable resource versions (Parquet + manifest) and the engines
that run Ibis expressions over them.

``VersionStore`` owns the files and is the same whichever engine runs; an ``Engine`` (DuckDB by
default) reads versions as Ibis tables and writes results back through the store.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from haihe.core.errors import ConfigError
from haihe.core.settings import Settings
from haihe.engine.manifest import FileEntry, Manifest
from haihe.engine.rowstore import RowStore, RowTable
from haihe.engine.schema import FieldSpec, fields_to_schema, portable_schema, schema_to_fields
from haihe.engine.store import VersionStore, WriteOptions
from haihe.engine.writer import VersionWriter

if TYPE_CHECKING:
    from haihe.engine.base import DEFAULT_BATCH_ROWS, Engine, EngineError
    from haihe.engine.duckdb import DuckDBEngine

# Ibis and DuckDB take a second or more to import; code that only reads or writes versions
# (loaders, `verify`) should not pay for them, so the engine half is imported on first use.
_LAZY = {
    "DEFAULT_BATCH_ROWS": "haihe.engine.base",
    "Engine": "haihe.engine.base",
    "EngineError": "haihe.engine.base",
    "DuckDBEngine": "haihe.engine.duckdb",
}

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "DuckDBEngine",
    "Engine",
    "EngineError",
    "EngineUnavailable",
    "FieldSpec",
    "FileEntry",
    "Manifest",
    "RowStore",
    "RowTable",
    "VersionStore",
    "VersionWriter",
    "WriteOptions",
    "fields_to_schema",
    "make_engine",
    "make_store",
    "make_rowstore",
    "portable_schema",
    "schema_to_fields",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class EngineUnavailable(ConfigError):
    """The configured engine is not part of this release."""

    code = "engine_unavailable"


def make_store(settings: Settings) -> VersionStore:
    """Return the installation's version store, at DATA_DIR/resources."""
    return VersionStore(settings.data_dir / "resources")


def make_rowstore(settings: Settings) -> RowStore:
    """Return the installation's row stores for point lookups, at DATA_DIR/rowstore."""
    return RowStore(settings.data_dir / "rowstore")


def make_engine(settings: Settings) -> Engine:
    """Return a new engine of the kind the settings name; the caller closes it."""
    if settings.engine == "duckdb":
        from haihe.engine.duckdb import DuckDBEngine

        return DuckDBEngine(
            memory_limit=settings.duckdb_memory_limit,
            threads=settings.duckdb_threads or None,
            temp_dir=settings.data_dir / "tmp" / "duckdb",
        )
    if settings.engine == "spark":
        from haihe.engine.spark import SparkEngine, spark_conf

        return SparkEngine(master=settings.spark_master, conf=spark_conf(settings.spark_conf))
    raise EngineUnavailable(
        f"engine {settings.engine!r} is not available; set HAIHE_ENGINE=duckdb or spark.",
        details={"engine": settings.engine},
    )
