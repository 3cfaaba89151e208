"""Load sources — 数据来源 — the reader they open, and the Parquet and SQL readers.

A reader gives the source's column names, then ``Chunk``s: the columns the data items asked for,
in the items' order, as Arrow arrays (the source's own types for Parquet and SQL; text for the
CSV and JSON Lines readers in ``readers``), with each row's number. Nothing is held beyond one
batch, so sources of any size stream in bounded memory. Row numbers are 1-based data rows: row 1
is the first row of a Parquet file or of a query.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from haihe.core.errors import InvalidInput

Progress = Callable[[int, int | None], None]
FORMATS = ("csv", "parquet", "jsonl", "sql")
SUFFIXES = {
    ".csv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
BATCH_ROWS = 128 * 1024
_BLOCK = 1 << 20  # bytes of CSV parsed at a time: Arrow holds many times this in memory


@dataclass(frozen=True)
class LoadSource:
    """Where a load reads from — 数据来源: a file (csv, parquet, jsonl) or a database (sql).

    ``encoding`` None means detect it: a UTF-8 byte-order mark, else UTF-8 if the start of the
    file decodes as UTF-8, else GB18030 (a superset of GBK and GB2312). ``original_name`` is the
    file's name as the provider knows it (an upload is saved under another name).
    """

    format: str
    path: Path | None = None
    encoding: str | None = None
    url: str | None = None
    table: str | None = None
    query: str | None = None
    original_name: str | None = None

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise InvalidInput(f"format {self.format!r} is not one of {', '.join(FORMATS)}")
        if self.format == "sql":
            if not self.url:
                raise InvalidInput("a database source needs a URL (an SQLAlchemy URL)")
            if bool(self.table) == bool(self.query):
                raise InvalidInput("a database source needs either a table or a query, not both")
        elif self.path is None:
            raise InvalidInput(f"a {self.format} source needs a file")
        if self.encoding is not None and self.format in ("parquet", "sql"):
            raise InvalidInput(f"--encoding applies to CSV and JSON Lines, not {self.format}")
        if self.encoding is not None:
            codec_name(self.encoding)

    @classmethod
    def for_file(
        cls,
        path: Path | str,
        *,
        format: str | None = None,
        encoding: str | None = None,
        original_name: str | None = None,
    ) -> LoadSource:
        """Return the source of a file, its format given or guessed from its name's suffix."""
        path = Path(path)
        name = original_name or path.name
        if format is None:
            format = SUFFIXES.get(Path(name).suffix.lower())
            if format is None:
                raise InvalidInput(
                    f"cannot tell the format of {name} from its name: use a .csv, .txt, "
                    ".parquet, .jsonl or .ndjson file, or give --format csv|parquet|jsonl"
                )
        if format == "sql":
            raise InvalidInput("format sql reads a database: give its URL, not a file")
        return cls(
            format=format,
            path=path,
            encoding=encoding or None,
            original_name=original_name,
        )

    @property
    def label(self) -> str:
        """Return how messages name the source: the file's name, or the database URL."""
        if self.format == "sql":
            from sqlalchemy.engine import make_url

            try:
                return make_url(self.url or "").render_as_string(hide_password=True)
            except Exception:  # an unparsable URL is reported when it is opened
                return "the database"
        assert self.path is not None  # checked in __post_init__
        return self.original_name or self.path.name


def codec_name(encoding: str) -> str:
    """Return Python's name of an encoding, or raise InvalidInput for one it does not know."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise InvalidInput(f"unknown encoding {encoding!r}; use utf-8, gbk or gb18030") from None
    return "utf-8" if name == "utf-8-sig" else name


@dataclass
class Broken:
    """A row the parser could not turn into columns: its number, why, and its values as text."""

    row: int
    reason: str
    values: list[str | None]


@dataclass
class Chunk:
    """Rows of a source: one array per data item, the rows' numbers, and the broken rows."""

    columns: list[pa.Array]
    rows: npt.NDArray[np.int64]
    broken: list[Broken] = field(default_factory=list)


class Reader(ABC):
    """A source opened for reading; ``names`` are its columns, ``chunks`` its rows."""

    names: list[str]

    def __init__(self, source: LoadSource, progress: Progress | None) -> None:
        self.source = source
        self.label = source.label
        self.progress = progress
        self.facts: dict[str, Any] = {"format": source.format}

    @abstractmethod
    def chunks(self, order: list[int]) -> Iterator[Chunk]:
        """Yield the rows, with the source columns ``order`` names (one per data item)."""

    @abstractmethod
    def close(self) -> None:
        """Release the file or connection (idempotent)."""


# ---------------------------------------------------------------- Parquet


class ParquetReader(Reader):
    """A Parquet file, read one batch at a time in its own column types."""

    def __init__(self, source: LoadSource, progress: Progress | None) -> None:
        super().__init__(source, progress)
        assert source.path is not None
        self.path = source.path
        try:
            self._file = pq.ParquetFile(self.path)
            self.names = list(self._file.schema_arrow.names)
        except (pa.ArrowException, OSError) as exc:
            raise self._unreadable(exc) from None

    def chunks(self, order: list[int]) -> Iterator[Chunk]:
        total_rows = self._file.metadata.num_rows or 1
        size = self.path.stat().st_size
        done = 0
        columns = [self.names[i] for i in order]
        try:
            for batch in self._file.iter_batches(batch_size=BATCH_ROWS, columns=columns):
                rows = np.arange(done + 1, done + batch.num_rows + 1, dtype=np.int64)
                done += batch.num_rows
                if self.progress is not None:
                    self.progress(min(size, size * done // total_rows), size)
                yield Chunk([batch.column(i) for i in range(len(columns))], rows)
        except (pa.ArrowException, OSError) as exc:
            raise self._unreadable(exc) from None
        self.facts.update(bytes=size, sha256=_sha256(self.path))

    def _unreadable(self, exc: BaseException) -> InvalidInput:
        return InvalidInput(f"{self.label} is not a readable Parquet file: {_first(exc)}")

    def close(self) -> None:
        if hasattr(self, "_file"):
            self._file.close()


# ---------------------------------------------------------------- SQL databases

_SELECT = re.compile(r"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*(?:select|with)\b", re.I | re.S)
_TABLE = re.compile(r"^(?:([A-Za-z_][A-Za-z0-9_$]*)\.)?([A-Za-z_\u4e00-\u9fff][\w$]*)$")
_CONNECT_TIMEOUT = 10  # seconds before a database that does not answer is given up


class SqlReader(Reader):
    """A table or one SELECT query of a department's own database, streamed by a server-side
    cursor in read-only mode where the database offers one."""

    def __init__(self, source: LoadSource, progress: Progress | None) -> None:
        super().__init__(source, progress)
        import sqlalchemy as sa
        from sqlalchemy.exc import SQLAlchemyError
        from sqlalchemy.pool import NullPool

        try:
            url = sa.engine.make_url(source.url or "")
        except sa.exc.ArgumentError:
            raise InvalidInput("the database URL is not an SQLAlchemy URL") from None
        self.facts.update(url=self.label, table=source.table, query=source.query)
        stmt = self._statement(sa, source)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            if not Path(url.database).is_file():
                raise InvalidInput(f"cannot read database {self.label}: no such file")
        timeout = {"connect_timeout": _CONNECT_TIMEOUT}
        args = timeout if url.get_backend_name() in ("postgresql", "mysql", "mariadb") else {}
        where = f" (host {url.host})" if url.host else ""
        try:
            self._engine = sa.create_engine(url, connect_args=args, poolclass=NullPool)
            self._conn = self._engine.connect()
        except (SQLAlchemyError, ImportError) as exc:
            reason = _first(getattr(exc, "orig", None) or exc)
            raise InvalidInput(
                f"cannot connect to database {self.label}{where}: {reason}"
            ) from None
        try:
            conn = self._conn
            if url.get_backend_name() == "sqlite":
                conn.exec_driver_sql("PRAGMA query_only = ON")
            elif url.get_backend_name() == "postgresql":
                conn = conn.execution_options(postgresql_readonly=True)
            self._result = conn.execution_options(
                stream_results=True, yield_per=BATCH_ROWS
            ).execute(stmt)
            self.names = list(self._result.keys())
        except SQLAlchemyError as exc:
            self.close()
            reason = _first(getattr(exc, "orig", None) or exc)
            raise InvalidInput(f"cannot read from database {self.label}: {reason}") from None

    def _statement(self, sa: Any, source: LoadSource) -> Any:
        if source.table:
            match = _TABLE.match(source.table)
            if not match:
                raise InvalidInput(f"{source.table!r} is not a table name (schema.table or table)")
            table = sa.table(match[2], schema=match[1])
            return sa.select(sa.literal_column("*")).select_from(table)
        query = (source.query or "").strip().rstrip(";")
        if not _SELECT.match(query) or ";" in query:
            raise InvalidInput("the query must be a single SELECT statement (WITH … SELECT too)")
        return sa.text(query)

    def chunks(self, order: list[int]) -> Iterator[Chunk]:
        from sqlalchemy.exc import SQLAlchemyError

        done = 0
        try:
            for part in self._result.partitions():
                columns = list(zip(*part, strict=True))
                rows = np.arange(done + 1, done + len(part) + 1, dtype=np.int64)
                done += len(part)
                if self.progress is not None:
                    self.progress(done, None)
                yield Chunk([_from_python(columns[i]) for i in order], rows)
        except SQLAlchemyError as exc:
            reason = _first(getattr(exc, "orig", None) or exc)
            raise InvalidInput(f"reading from database {self.label} failed: {reason}") from None

    def close(self) -> None:
        if hasattr(self, "_conn"):
            self._conn.close()
            self._engine.dispose()
            del self._conn


def _from_python(values: tuple[Any, ...]) -> pa.Array:
    """Return a column of database values as Arrow, as text if their types are mixed."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_BLOCK):
            digest.update(chunk)
    return digest.hexdigest()


def _first(exc: BaseException) -> str:
    """Return the first line of an exception's message."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
