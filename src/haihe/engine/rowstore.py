"""RowStore — 行存储 — an indexed SQLite copy of a resource version, for point lookups.

DuckDB is built for scans: a point query costs it about a millisecond of CPU. The query gateway
and single checks look up a few rows by key or ID number, which an indexed SQLite file answers in
tens of microseconds. So each version gets, beside its Parquet, one SQLite file::

    DATA_DIR/rowstore/<resource_code>/v000003.sqlite

holding table ``rows`` (the version's columns, in order) and table ``haihe_rowstore`` (what was
built from what, as JSON). It is written under a temporary name and renamed into place, so a
reader finds a whole file or none; once there it never changes, and readers open it read-only
and immutable (no locks). Indexes: one unique index on the key items, one on each item named in
``indexed`` (ID numbers).

Values are held as SQLite compares them: text, integers, reals (decimals too), booleans as 0/1,
dates as ISO text (``2024-05-01``) and timestamps as ISO text with microseconds
(``2024-05-01T08:00:00.000000``, UTC ones ending ``+00:00``), so that comparing the text compares
the instants. ``haihe.exchange.scope`` writes condition values the same way.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from haihe.core.errors import NotFound, StorageError
from haihe.engine import _fs
from haihe.engine.manifest import Manifest, version_dir_name
from haihe.engine.store import VersionStore

ROWS = "rows"
META = "haihe_rowstore"
FORMAT = 1
BUILD_BATCH_ROWS = 50_000
OPEN_PER_THREAD = 32  # open files each thread keeps; beyond them the least recently used closes


def timestamp_text(moment: dt.datetime, *, utc: bool) -> str:
    """Return the ISO text the row store holds for a timestamp (UTC ones end ``+00:00``)."""
    if utc:
        aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        return aware.astimezone(dt.UTC).isoformat(timespec="microseconds")
    if moment.tzinfo is not None:
        raise ValueError(f"{moment.isoformat()} has a time zone; this item's times have none")
    return moment.isoformat(timespec="microseconds")


def quote(name: str) -> str:
    """Return ``name`` as a double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _sql_type(portable: str) -> str:
    if portable.startswith("int") or portable == "bool":
        return "INTEGER"
    if portable.startswith(("float", "decimal")):
        return "REAL"
    return "BLOB" if portable == "binary" else "TEXT"


def _sqlite_column(arr: pa.ChunkedArray | pa.Array) -> list[Any]:
    """Return a column's values as the row store holds them (see the module docstring)."""
    t = arr.type
    if pa.types.is_boolean(t):
        arr = arr.cast(pa.int8())
    elif pa.types.is_decimal(t):
        # through text: Arrow's direct cast is not correctly rounded (3020.20 → 3020.2000000000003)
        arr = arr.cast(pa.string()).cast(pa.float64())
    elif pa.types.is_date(t):
        arr = arr.cast(pa.string())
    elif pa.types.is_timestamp(t):
        arr = pc.strftime(arr, "%Y-%m-%dT%H:%M:%S" + ("+00:00" if t.tz else ""))
    values: list[Any] = arr.to_pylist()
    return values


@dataclass(frozen=True)
class Built:
    """A row store just built: where, how many rows and how long it took."""

    path: Path
    rows: int
    seconds: float


@dataclass(frozen=True)
class Page:
    """Rows of a query, and the keyset position of its last row (None when it found none)."""

    rows: list[tuple[Any, ...]]
    last: list[Any] | None


class RowTable:
    """One version's row store, open read-only; ``query`` may be called from one thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._conn = sqlite3.connect(
                f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False
            )
            meta = dict(self._conn.execute(f"SELECT name, value FROM {META}").fetchall())
        except sqlite3.Error as exc:
            raise StorageError(f"row store {path} cannot be read: {exc}") from None
        self.code: str = json.loads(meta["code"])
        self.version: int = json.loads(meta["version"])
        self.types: dict[str, str] = dict(json.loads(meta["columns"]))
        self.keys: list[str] = json.loads(meta["keys"])
        self.indexed: list[str] = json.loads(meta["indexed"])
        self.rows: int = json.loads(meta["rows"])
        self._bools = {name for name, t in self.types.items() if t == "bool"}
        self._order = [quote(k) for k in self.keys] or ["rowid"]
        self._sql: dict[tuple[tuple[str, ...], str, bool], str] = {}

    def query(
        self,
        *,
        columns: Sequence[str],
        where: str = "1 = 1",
        params: Sequence[Any] = (),
        after: Sequence[Any] | None = None,
        limit: int,
    ) -> Page:
        """Return up to ``limit`` rows meeting ``where``, in key order, after position ``after``.

        ``columns`` must be names of the version's columns; ``where`` is an SQL predicate with
        ``?`` placeholders (``haihe.exchange.scope.where_sql``); ``after`` is a ``Page.last``.
        """
        unknown = [c for c in columns if c not in self.types]
        if unknown:
            raise NotFound(f"version {self.version} of {self.code} has no column {unknown[0]!r}")
        if after is not None and len(after) != len(self._order):
            raise ValueError("the position does not fit this row store's keys")
        sql = self._statement(tuple(columns), where, after is not None)
        args = [*params, *(after or ()), limit]
        try:
            found = self._conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"row store {self.path} cannot be queried: {exc}") from None
        width = len(columns)
        bools = [i for i, c in enumerate(columns) if c in self._bools]
        rows = []
        for row in found:
            values = row[:width]
            if bools:
                listed = list(values)
                for i in bools:
                    if listed[i] is not None:
                        listed[i] = bool(listed[i])
                values = tuple(listed)
            rows.append(values)
        last = list(found[-1][width:]) if found else None
        return Page(rows=rows, last=last)

    def _statement(self, columns: tuple[str, ...], where: str, after: bool) -> str:
        key = (columns, where, after)
        sql = self._sql.get(key)
        if sql is None:
            selected = ", ".join([*(quote(c) for c in columns), *self._order])
            order = ", ".join(self._order)
            position = ""
            if after:
                marks = ", ".join("?" for _ in self._order)
                position = (
                    f" AND ({order}) > ({marks})" if len(self._order) > 1 else f" AND {order} > ?"
                )
            sql = (
                f"SELECT {selected} FROM {ROWS} WHERE ({where}){position} ORDER BY {order} LIMIT ?"
            )
            if len(self._sql) > 256:
                self._sql.clear()
            self._sql[key] = sql
        return sql

    def close(self) -> None:
        self._conn.close()


class RowStore:
    """The row stores of every resource version, under ``root`` (DATA_DIR/rowstore)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, code: str, version: int) -> Path:
        """Return where the row store of a version is (or would be)."""
        return self.root / code / f"{version_dir_name(version)}.sqlite"

    def exists(self, code: str, version: int) -> bool:
        return self.path(code, version).is_file()

    def build(
        self,
        store: VersionStore,
        manifest: Manifest,
        *,
        keys: Sequence[str] = (),
        indexed: Sequence[str] = (),
        progress: Callable[[int], None] | None = None,
    ) -> Built:
        """Build the row store of ``manifest``'s version from its Parquet files; return it.

        Replaces nothing that readers could see half-done: the file appears whole, by rename.
        Raises StorageError when the files cannot be read or the store cannot be written (for
        instance when the key items repeat, which a load never lets happen).
        """
        started = time.perf_counter()
        target = self.path(manifest.resource_code, manifest.version)
        names = [c.name for c in manifest.columns]
        missing = [n for n in [*keys, *indexed] if n not in names]
        if missing:
            raise StorageError(f"version {manifest.version} has no column {missing[0]!r}")
        temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            rows = _write(temp, store, manifest, keys=keys, indexed=indexed, progress=progress)
            fd = os.open(temp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, target)
            _fs.fsync_dir(target.parent)
        except (OSError, sqlite3.Error, pa.ArrowException) as exc:
            raise StorageError(
                f"cannot build the row store of {manifest.resource_code} v{manifest.version}: {exc}"
            ) from None
        finally:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
        return Built(path=target, rows=rows, seconds=time.perf_counter() - started)

    def ensure(
        self,
        store: VersionStore,
        manifest: Manifest,
        *,
        keys: Sequence[str] = (),
        indexed: Sequence[str] = (),
    ) -> Path:
        """Return the row store of a version, building it first if it has none (older data).

        Concurrent callers wait on a lock file while one of them builds.
        """
        target = self.path(manifest.resource_code, manifest.version)
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with _fs.locked(target.with_name(f".{target.name}.lock")):
            if not target.is_file():
                self.build(store, manifest, keys=keys, indexed=indexed)
        return target

    def open(self, code: str, version: int) -> RowTable:
        """Return the open row store of a version, one per thread (NotFound if never built)."""
        path = self.path(code, version)
        cache: OrderedDict[Path, RowTable] | None = getattr(_open, "tables", None)
        if cache is None:
            cache = _open.tables = OrderedDict()
        table = cache.get(path)
        if table is not None:
            cache.move_to_end(path)
            return table
        if not path.is_file():
            raise NotFound(f"resource {code} v{version} has no row store yet")
        table = cache[path] = RowTable(path)
        if len(cache) > OPEN_PER_THREAD:
            cache.popitem(last=False)[1].close()
        return table

    def remove(self, code: str, version: int) -> None:
        """Delete a version's row store, closing this thread's handle on it."""
        path = self.path(code, version)
        cache: OrderedDict[Path, RowTable] | None = getattr(_open, "tables", None)
        if cache is not None and path in cache:
            cache.pop(path).close()
        path.unlink(missing_ok=True)


_open = threading.local()


def _write(
    path: Path,
    store: VersionStore,
    manifest: Manifest,
    *,
    keys: Sequence[str],
    indexed: Sequence[str],
    progress: Callable[[int], None] | None,
) -> int:
    """Write the rows, indexes and statistics of a version into a new SQLite file."""
    columns = [(c.name, c.type) for c in manifest.columns]
    names = [n for n, _ in columns]
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-131072")  # 128 MiB while the indexes are built
        defs = ", ".join(f"{quote(n)} {_sql_type(t)}" for n, t in columns)
        conn.execute(f"CREATE TABLE {ROWS} ({defs})")
        conn.execute(f"CREATE TABLE {META} (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        insert = f"INSERT INTO {ROWS} VALUES ({', '.join('?' for _ in columns)})"
        written = 0
        conn.execute("BEGIN")
        for file in store.paths(manifest):
            parquet = pq.ParquetFile(file)
            for batch in parquet.iter_batches(batch_size=BUILD_BATCH_ROWS, columns=names):
                values = [_sqlite_column(batch.column(i)) for i in range(batch.num_columns)]
                conn.executemany(insert, zip(*values, strict=True))
                written += batch.num_rows
                if progress is not None:
                    progress(written)
        if keys:
            conn.execute(
                f"CREATE UNIQUE INDEX ix_key ON {ROWS} ({', '.join(quote(k) for k in keys)})"
            )
        for n, name in enumerate(dict.fromkeys(i for i in indexed if [i] != list(keys))):
            conn.execute(f"CREATE INDEX ix_{n} ON {ROWS} ({quote(name)})")
        meta = {
            "format": FORMAT,
            "code": manifest.resource_code,
            "version": manifest.version,
            "checksum": manifest.checksum,
            "columns": columns,
            "keys": list(keys),
            "indexed": list(indexed),
            "rows": written,
            "built_at": dt.datetime.now(dt.UTC).isoformat(),
        }
        conn.executemany(
            f"INSERT INTO {META} VALUES (?, ?)",
            [(name, json.dumps(value, ensure_ascii=False)) for name, value in meta.items()],
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA analysis_limit=1000")
        conn.execute("ANALYZE")
        if written != manifest.row_count:
            raise StorageError(
                f"the row store got {written} rows of {manifest.row_count}; not published"
            )
    finally:
        conn.close()
    return written
