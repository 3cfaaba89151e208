"""Engine — 计算引擎 — the interface every data-plane engine implements (DuckDB now, Spark later).

Only Ibis expressions and Arrow data cross it: callers build Ibis expressions over the tables an
engine gives them and get Arrow back. No connection, SQL string or engine-specific relation ever
leaves an engine, so a verification rule or risk model written against this interface runs
unchanged, with identical results, on any engine.

Rules every implementation keeps and every caller may rely on:

- ``table()`` reads exactly the files a manifest lists, with the manifest's schema.
- Results come back with the Arrow types of the expression's Ibis schema (``expr.schema()``),
  whichever engine ran them.
- An engine object runs one query at a time: read a ``to_batches()`` stream to the end (or
  close it) before starting another query on the same engine, and do not share one engine
  between threads. Open another engine for interleaved work.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import ibis.expr.types as ir
import pyarrow as pa

from haihe.core.errors import HaiheError
from haihe.engine.manifest import Manifest
from haihe.engine.store import VersionStore

DEFAULT_BATCH_ROWS = 128 * 1024


class EngineError(HaiheError):
    """The engine could not run an expression (the message says why)."""

    status = 500
    code = "engine_error"


class Engine(ABC):
    """Runs Ibis expressions over resource versions and other Parquet; returns Arrow."""

    name: ClassVar[str]

    @abstractmethod
    def read_parquet(self, paths: Sequence[str | Path]) -> ir.Table:
        """Return a table over the given Parquet files (e.g. a subject list or a synthetic set).

        All files must share one schema.
        """

    def table(self, store: VersionStore, manifest: Manifest) -> ir.Table:
        """Return one resource version as a table (its files only, never a staging file)."""
        return self.read_parquet(store.paths(manifest))

    @abstractmethod
    def byte_length(self, text: ir.StringValue) -> ir.IntegerValue:
        """The bytes of a text's UTF-8: how an ASCII code's length is checked (counting
        characters decodes every row, a tenth slower over a city's records on DuckDB)."""

    @abstractmethod
    def execute(self, expr: ir.Expr) -> pa.Table:
        """Run an expression and return its whole result as an Arrow table.

        A column or scalar expression comes back as a one-column table.
        """

    def scalar(self, expr: ir.Scalar) -> Any:
        """Run a scalar expression (a count, a sum…) and return its value as a Python object."""
        return self.execute(expr).column(0)[0].as_py()

    @abstractmethod
    def to_batches(
        self, expr: ir.Expr, *, batch_size: int = DEFAULT_BATCH_ROWS
    ) -> pa.RecordBatchReader:
        """Run an expression and return its result as a stream of batches of at most
        ``batch_size`` rows, without holding the whole result in memory.

        Read the stream to the end or close it before the next query on this engine.
        """

    def write_version(
        self,
        store: VersionStore,
        resource_code: str,
        expr: ir.Table,
        *,
        source: dict[str, Any] | None = None,
        created_by: str | None = None,
        batch_size: int = DEFAULT_BATCH_ROWS,
    ) -> Manifest:
        """Run a table expression and write its result as a new version; return the manifest.

        The result streams from the engine into the store batch by batch, so its size is not
        bounded by memory; the version becomes visible only when all of it is written.
        """
        reader = self.to_batches(expr, batch_size=batch_size)
        try:
            with store.begin(
                resource_code, schema=reader.schema, source=source, created_by=created_by
            ) as writer:
                for batch in _read_all(reader):
                    writer.write(batch)
                return writer.commit()
        finally:
            reader.close()

    @abstractmethod
    def close(self) -> None:
        """Release the engine's connections, threads and temporary files."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _read_all(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    """Yield a stream's batches; a failure of the engine behind it becomes an EngineError."""
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:
            # Errors cross the Arrow C stream as OSError or ArrowException, whatever the engine.
            raise EngineError(f"the engine failed while streaming a result: {exc}") from exc
        yield batch
