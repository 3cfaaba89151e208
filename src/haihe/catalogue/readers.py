"""Readers of text files — CSV and JSON Lines, their encoding detected — and ``open_reader``.

``open_reader`` opens any load source (``sources`` holds ``LoadSource`` and the Parquet and SQL
readers). A reader gives the source's column names, then ``Chunk``s: the columns the data items
asked for, in the items' order, as Arrow arrays (text for CSV and JSON Lines), with each row's
number. Nothing is held beyond one batch, so files of any size stream in bounded memory.

Row numbers are 1-based data rows: a CSV header is not a row, nor is a blank line; row 1 is the
first record after the header (the first line of a JSON Lines file, the first row of a query).
A CSV row the parser cannot split also names its line: the record number of the file, counting
the header as line 1 (the physical line unless a quoted value spans lines or lines are blank).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson

from haihe.catalogue.sources import (
    _BLOCK,
    BATCH_ROWS,
    Broken,
    Chunk,
    LoadSource,
    ParquetReader,
    Progress,
    Reader,
    SqlReader,
    _first,
    codec_name,
)
from haihe.core.errors import InvalidInput

_JSON_BLOCK = 4 << 20  # bytes of JSON Lines parsed at a time
_SAMPLE = 1 << 20  # bytes looked at to detect an encoding and read the header
_BOM = codecs.BOM_UTF8
_SHOWN = {"utf-8": "UTF-8", "gbk": "GBK", "gb18030": "GB18030", "gb2312": "GB2312"}


def open_reader(source: LoadSource, progress: Progress | None = None) -> Reader:
    """Return a reader of ``source`` with its column names read, or raise InvalidInput."""
    if source.format == "sql":
        return SqlReader(source, progress)
    assert source.path is not None
    if not source.path.is_file():
        raise InvalidInput(f"{source.label}: no such file")
    if source.format == "parquet":
        return ParquetReader(source, progress)
    if source.format == "csv":
        return CsvReader(source, progress)
    return JsonlReader(source, progress)


# ---------------------------------------------------------------- text files


class Utf8Stream(io.RawIOBase):
    """A text file's bytes as checked UTF-8 (transcoded from other encodings), hashed and
    counted as they are read, so one pass gives the rows, the checksum and the progress."""

    def __init__(self, reader: Reader, encoding: str, *, explicit: bool) -> None:
        super().__init__()
        assert reader.source.path is not None
        self._fh = reader.source.path.open("rb")
        self._reader = reader
        self._encoding = encoding
        self._explicit = explicit
        self._decoder = codecs.getincrementaldecoder(encoding)("strict")
        self._passthrough = encoding == "utf-8"
        self._total = reader.source.path.stat().st_size
        self._hash = hashlib.sha256()
        self._done = 0
        self._pending = b""
        self._eof = False
        self.error: InvalidInput | None = None
        head = self._fh.read(len(_BOM))
        self._account(head)
        if head != _BOM:
            self._pending = self._convert(head, final=False)

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Return up to ``size`` bytes of UTF-8 (all that is left when ``size`` is negative)."""
        want = _BLOCK if size is None or size < 0 else size
        # Arrow takes a short read for the end of the file, so fill the request whole.
        while len(self._pending) < want and not self._eof:
            raw = self._fh.read(max(want - len(self._pending), 1 << 16))
            self._account(raw)
            self._eof = not raw
            self._pending += self._convert(raw, final=self._eof)
        if size is None or size < 0 or size >= len(self._pending):
            out, self._pending = self._pending, b""
        else:
            out, self._pending = self._pending[:size], self._pending[size:]
        return out

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._fh.close()
        super().close()

    def finish(self) -> dict[str, Any]:
        """Return the facts of the whole file: bytes, SHA-256, encoding (after reading it all)."""
        while rest := self._fh.read(_BLOCK):  # a reader may stop early; hash what is left
            self._hash.update(rest)
        return {"bytes": self._total, "sha256": self._hash.hexdigest(), "encoding": self._encoding}

    def _account(self, raw: bytes) -> None:
        self._hash.update(raw)
        self._done += len(raw)
        if self._reader.progress is not None and raw:
            self._reader.progress(self._done, self._total)

    def _convert(self, raw: bytes, *, final: bool) -> bytes:
        try:
            buffered = len(self._decoder.getstate()[0])
        except (AttributeError, TypeError):
            buffered = 0
        try:
            text = self._decoder.decode(raw, final=final)
        except UnicodeDecodeError as exc:
            offset = self._done - len(raw) - buffered + exc.start
            self.error = _decode_error(self._reader.label, self._encoding, offset, self._explicit)
            raise self.error from None
        return raw if self._passthrough else text.encode("utf-8")


def _decode_error(label: str, encoding: str, offset: int, explicit: bool) -> InvalidInput:
    shown = _SHOWN.get(encoding, encoding)
    other = {"utf-8": "gb18030", "gbk": "gb18030", "gb2312": "gb18030"}.get(encoding, "utf-8")
    how = "" if explicit else " (detected from the start of the file)"
    return InvalidInput(
        f"{label} is not valid {shown}{how} at byte offset {offset}: try --encoding {other}",
        details={"encoding": encoding, "offset": offset},
    )


def _choose_encoding(reader: Reader) -> tuple[str, bool]:
    """Return (encoding, explicit) for a text file: the one asked for, or the one detected."""
    assert reader.source.path is not None
    with reader.source.path.open("rb") as fh:
        sample = fh.read(_SAMPLE + 4)
    complete = len(sample) <= _SAMPLE
    body = sample.removeprefix(_BOM)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(body[:_SAMPLE], final=complete)
        looks_utf8 = True
    except UnicodeDecodeError:
        looks_utf8 = False
    if reader.source.encoding is not None:
        encoding = codec_name(reader.source.encoding)
        if encoding != "utf-8" and (sample.startswith(_BOM) or (looks_utf8 and not body.isascii())):
            raise InvalidInput(
                f"{reader.label} looks like UTF-8, not {_SHOWN.get(encoding, encoding)}: "
                "try --encoding utf-8, or leave --encoding out to detect it"
            )
        return encoding, True
    return ("utf-8" if sample.startswith(_BOM) or looks_utf8 else "gb18030"), False


def _first_line(reader: Reader, encoding: str) -> tuple[str, bool]:
    """Return a text file's first line, and whether it is all the file holds."""
    assert reader.source.path is not None
    with reader.source.path.open("rb") as fh:
        sample = fh.read(_SAMPLE).removeprefix(_BOM)
    text = codecs.getincrementaldecoder(encoding)("replace").decode(sample, final=False)
    first, _, rest = text.partition("\n")
    return first.rstrip("\r"), len(sample) < _SAMPLE and not rest.strip()


class CsvReader(Reader):
    """A CSV file with a header line; ',' unless the header is split by tabs, '|' or ';'."""

    def __init__(self, source: LoadSource, progress: Progress | None) -> None:
        super().__init__(source, progress)
        self.encoding, self.explicit = _choose_encoding(self)
        header, self.header_only = _first_line(self, self.encoding)
        if not header.strip():
            raise InvalidInput(f"{self.label} is empty: expected a header line naming the columns")
        counts = {d: header.count(d) for d in (",", "\t", "|", ";")}
        self.delimiter = max(counts, key=lambda d: (counts[d], d == ","))
        self.names = next(csv.reader([header], delimiter=self.delimiter))
        self._stream: Utf8Stream | None = None

    def chunks(self, order: list[int]) -> Iterator[Chunk]:
        stream = self._stream = Utf8Stream(self, self.encoding, explicit=self.explicit)
        if self.header_only:
            self.facts.update(stream.finish(), delimiter=self.delimiter)
            return
        broken: list[Any] = []

        def on_invalid(row: Any) -> str:
            broken.append(row)
            return "skip"

        width = len(self.names)
        try:
            reader = pcsv.open_csv(
                stream,
                read_options=pcsv.ReadOptions(
                    column_names=[f"c{i}" for i in range(width)],
                    skip_rows=1,
                    block_size=_BLOCK,
                    use_threads=False,  # the parser then numbers the rows it cannot split
                ),
                parse_options=pcsv.ParseOptions(
                    delimiter=self.delimiter,
                    newlines_in_values=True,
                    invalid_row_handler=on_invalid,
                ),
                convert_options=pcsv.ConvertOptions(
                    column_types={f"c{i}": pa.string() for i in range(width)},
                    strings_can_be_null=False,
                ),
            )
            numbers = _RowNumbers()
            pending: list[pa.RecordBatch] = []
            found: list[Broken] = []
            done = False
            while not done:
                try:
                    pending.append(reader.read_next_batch())
                except StopIteration:
                    done = True
                found += [self._broken(row, order, numbers) for row in broken]
                broken.clear()
                # Small parser blocks keep the reader's memory low; checks want larger batches.
                count = sum(b.num_rows for b in pending)
                if count >= BATCH_ROWS // 2 or (done and (count or found)):
                    table = pa.Table.from_batches(pending, schema=reader.schema)
                    columns = [table.column(i).combine_chunks() for i in order]
                    yield Chunk(columns, numbers.next(count), found)
                    pending, found = [], []
        except (pa.ArrowException, OSError) as exc:
            raise stream.error or InvalidInput(
                f"{self.label} cannot be read as CSV: {_first(exc)}"
            ) from None
        self.facts.update(stream.finish(), delimiter=self.delimiter)

    def _broken(self, row: Any, order: list[int], numbers: _RowNumbers) -> Broken:
        number = numbers.skip(None if row.number is None else row.number - 1)
        fields = next(csv.reader([row.text], delimiter=self.delimiter), [])
        where = f"line {row.number}: " if row.number is not None else ""
        reason = f"{where}expected {row.expected_columns} values, found {row.actual_columns}"
        if len(fields) > row.expected_columns:
            reason += " (extra: " + self.delimiter.join(fields[row.expected_columns :]) + ")"
        values = [fields[i] if i < len(fields) else None for i in order]
        return Broken(number, reason, values)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()


class _RowNumbers:
    """Numbers rows when the parser drops some (broken rows) between those it returns."""

    def __init__(self) -> None:
        self._good = 0  # rows the parser returned so far
        self._broken = 0  # broken rows so far
        self._passed = 0  # broken rows before the next row the parser returns
        self._ahead: list[int] = []  # per broken row not yet passed: the good rows before it + 1

    def skip(self, row: int | None) -> int:
        """Record a broken row (its number, if the parser knew it) and return its number."""
        if row is None:
            row = self._good + self._broken + 1
        self._ahead.append(row - self._broken)
        self._broken += 1
        return row

    def next(self, count: int) -> npt.NDArray[np.int64]:
        """Return the numbers of the next ``count`` rows returned by the parser."""
        k = np.arange(self._good + 1, self._good + count + 1, dtype=np.int64)
        ahead = np.asarray(self._ahead, dtype=np.int64)
        numbers = k + self._passed + np.searchsorted(ahead, k, side="right")
        self._good += count
        passed = int(np.searchsorted(ahead, self._good, side="right"))
        self._passed += passed
        del self._ahead[:passed]
        return numbers


Block = tuple[pa.Table, npt.NDArray[np.int64], list[tuple[int, str, dict[str, Any]]]]


class JsonlReader(Reader):
    """A JSON Lines file: one object per line; the first block's fields are its columns.

    Blocks are parsed by Arrow; a block with a line Arrow refuses is parsed line by line, so
    that line alone is rejected. A later row with a field that is not a column is rejected too.
    """

    def __init__(self, source: LoadSource, progress: Progress | None) -> None:
        super().__init__(source, progress)
        encoding, explicit = _choose_encoding(self)
        self._stream = Utf8Stream(self, encoding, explicit=explicit)
        self._line = self._row = 0
        self._rest = b""
        self._first = self._next_block()
        if self._first is None:
            raise InvalidInput(f"{self.label} is empty: expected one JSON object per line")
        self.names = self._first[0].column_names

    def chunks(self, order: list[int]) -> Iterator[Chunk]:
        wanted = [self.names[i] for i in order]
        block = self._first
        while block is not None:
            table, rows, broken = block
            extra = [n for n in table.column_names if n not in wanted]
            if extra:  # rows with a field that is not a data item
                used = np.zeros(table.num_rows, dtype=bool)
                for name in extra:
                    used |= table.column(name).is_valid().to_numpy(zero_copy_only=False)
                for record, row in zip(
                    table.filter(pa.array(used)).to_pylist(), rows[used], strict=True
                ):
                    names = ", ".join(n for n in extra if record[n] is not None)
                    broken.append((int(row), f"fields that are not data items: {names}", record))
                table, rows = table.filter(pa.array(~used)), rows[~used]
            columns = [
                table.column(n).combine_chunks()
                if n in table.column_names
                else pa.nulls(table.num_rows, pa.string())
                for n in wanted
            ]
            found = [Broken(row, why, [rec.get(n) for n in wanted]) for row, why, rec in broken]
            yield Chunk(columns, rows, found)
            block = self._next_block()
        self.facts.update(self._stream.finish())

    def _next_block(self) -> Block | None:
        """Return the next block of whole lines, parsed, or None at the end of the file."""
        while True:
            data = self._stream.read(_JSON_BLOCK)
            buf = self._rest + data
            cut = len(buf) if not data else buf.rfind(b"\n") + 1
            block, self._rest = buf[:cut], buf[cut:]
            if block.strip():
                return self._parse(block)
            self._line += block.count(b"\n")
            if not data:
                return None

    def _parse(self, block: bytes) -> Block:
        first_line = self._line + 1
        self._line += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
        try:
            table = _read_json(block, [])
            # Arrow reads ISO dates as timestamps; read those fields again as the text they were
            stamps = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
            if stamps:
                table = _read_json(block, stamps)
            table = pa.table({n: _as_text(table.column(n)) for n in table.column_names})
        except (pa.ArrowException, _NotText):
            return self._parse_lines(block, first_line)
        rows = np.arange(self._row + 1, self._row + table.num_rows + 1, dtype=np.int64)
        self._row += table.num_rows
        return table, rows, []

    def _parse_lines(self, block: bytes, first_line: int) -> Block:
        """Parse a block line by line: the slow path, for a block with a bad or mixed line."""
        records: list[dict[str, str | None]] = []
        rows: list[int] = []
        broken: list[tuple[int, str, dict[str, Any]]] = []
        for offset, line in enumerate(block.split(b"\n")):
            if not line.strip():
                continue
            self._row += 1
            where = f"line {first_line + offset}: "
            text = line.decode("utf-8", "replace").strip()
            try:
                value = json.loads(line)
            except ValueError as exc:
                broken.append((self._row, f"{where}not valid JSON ({exc}): {text}", {}))
                continue
            if not isinstance(value, dict):
                broken.append((self._row, f"{where}not a JSON object: {text}", {}))
                continue
            record = {str(k): _text_of(v) for k, v in value.items()}
            nested = [k for k, v in value.items() if isinstance(v, dict | list)]
            if nested:
                broken.append((self._row, f"{where}nested values in {', '.join(nested)}", record))
                continue
            records.append(record)
            rows.append(self._row)
        names = list(dict.fromkeys(k for r in records for k in r))
        table = pa.table({n: pa.array([r.get(n) for r in records], pa.string()) for n in names})
        return table, np.asarray(rows, dtype=np.int64), broken

    def close(self) -> None:
        self._stream.close()


def _read_json(block: bytes, as_text: list[str]) -> pa.Table:
    schema = pa.schema([(name, pa.string()) for name in as_text])
    options = pjson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    return pjson.read_json(io.BytesIO(block), parse_options=options)


class _NotText(Exception):
    """A JSON value that has no text form (a nested object or list)."""


def _as_text(column: pa.ChunkedArray) -> pa.Array:
    if pa.types.is_string(column.type):
        return column.combine_chunks()
    if pa.types.is_null(column.type):
        return pa.nulls(len(column), pa.string())
    if pa.types.is_nested(column.type):
        raise _NotText
    return column.cast(pa.string()).combine_chunks()


def _text_of(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
