"""SparkEngine — the same Ibis expressions on Apache Spark (PySpark), for data past one machine.

A city points Haihe at its cluster with ``HAIHE_SPARK_MASTER`` (``local[*]`` by default: Spark
inside this process, for tests and trials; ``spark://host:7077``, ``yarn`` or ``k8s://…`` for a
cluster) and ``HAIHE_SPARK_CONF`` (a JSON object of Spark settings, e.g. executor memory). The
Parquet files must be readable at the same path by every executor (shared storage or HDFS).
The session time zone is UTC, so dates and timestamps read as written, as on DuckDB.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import ibis
import ibis.common.exceptions as ibis_errors
import ibis.expr.types as ir
import pyarrow as pa

from haihe.core.errors import Conflict, InvalidInput
from haihe.engine.base import DEFAULT_BATCH_ROWS, Engine, EngineError


@ibis.udf.scalar.builtin(name="octet_length")
def _octet_length(text: str) -> int:  # type: ignore[empty-body]
    """Spark's byte length of a text."""


class SparkEngine(Engine):
    """An engine on a Spark session (the active one if there is one, else a new one it owns)."""

    name: ClassVar[str] = "spark"

    def __init__(
        self,
        *,
        master: str = "local[*]",
        conf: Mapping[str, str] | None = None,
        app_name: str = "haihe",
    ) -> None:
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        self._owns = active is None
        if active is None:
            builder = SparkSession.builder.master(master).appName(app_name)
            settings = {
                "spark.sql.session.timeZone": "UTC",
                "spark.ui.enabled": "false",
                "spark.sql.shuffle.partitions": "8",
                **(conf or {}),
            }
            for key, value in settings.items():
                builder = builder.config(key, value)
            try:
                active = builder.getOrCreate()
            except Exception as exc:  # the JVM's errors have no common Python base
                raise EngineError(f"Spark did not start ({master}): {exc}") from exc
        self._session = active
        self._backend = ibis.pyspark.connect(active)
        self._closed = False

    def read_parquet(self, paths: Sequence[str | Path]) -> ir.Table:
        """Return a table over the given Parquet files."""
        if isinstance(paths, str | Path) or not paths:
            raise InvalidInput("read_parquet needs a non-empty list of file paths")
        with self._errors():
            frame = self._session.read.parquet(*[str(Path(p).resolve()) for p in paths])
            name = f"haihe_{abs(hash(tuple(str(p) for p in paths))):x}_{id(frame):x}"
            frame.createOrReplaceTempView(name)
            return self._backend.table(name)

    def byte_length(self, text: ir.StringValue) -> ir.IntegerValue:
        return _octet_length(text)

    def execute(self, expr: ir.Expr) -> pa.Table:
        """Run an expression and return its whole result as an Arrow table (Ibis schema)."""
        table = expr.as_table()
        with self._errors():
            result = self._backend.to_pyarrow(table)
        target = table.schema().to_pyarrow()
        return result if result.schema.equals(target) else result.cast(target)

    def to_batches(
        self, expr: ir.Expr, *, batch_size: int = DEFAULT_BATCH_ROWS
    ) -> pa.RecordBatchReader:
        """Run an expression and return its result as a stream of batches."""
        if batch_size < 1:
            raise InvalidInput("batch_size must be positive")
        table = expr.as_table()
        with self._errors():
            reader = self._backend.to_pyarrow_batches(table, chunk_size=batch_size)
        target = table.schema().to_pyarrow()
        return reader if reader.schema.equals(target) else reader.cast(target)

    def close(self) -> None:
        """Stop the Spark session if this engine started it (idempotent)."""
        if not self._closed:
            self._closed = True
            if self._owns:
                self._session.stop()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        if self._closed:
            raise Conflict("the Spark engine is closed")
        try:
            yield
        except ibis_errors.IbisError as exc:
            raise EngineError(f"Spark cannot run the expression: {exc}") from exc
        except Exception as exc:  # py4j and pyspark errors share no base worth naming
            if exc.__class__.__module__.startswith(("pyspark", "py4j")):
                raise EngineError(f"Spark cannot run the expression: {exc}") from exc
            raise


def spark_conf(values: Mapping[str, Any]) -> dict[str, str]:
    """Return Spark settings as the text Spark wants."""
    return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}
