"""Downloads — 数据下载: a dataset's current data as CSV, JSON, Parquet or xlsx, streamed.

Each format is written batch by batch from the dataset's Parquet files, so a file of millions of
rows never sits in memory (xlsx through openpyxl's write-only mode, up to a worksheet's rows).
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from haihe.core.errors import NotFound
from haihe.core.settings import Settings
from haihe.portal.materialise import XLSX_MAX_ROWS, data_store
from haihe.portal.models import Dataset

MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
BATCH_ROWS = 50_000


def _batches(settings: Settings, ds: Dataset) -> Iterator[pa.RecordBatch]:
    store = data_store(settings)
    manifest = store.manifest(ds.uuid, ds.data_version)
    for path in store.paths(manifest):
        yield from pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS)


def stream(settings: Settings, ds: Dataset, ext: str) -> Iterator[bytes]:
    """Return the dataset's data in format ``ext`` as a stream of bytes."""
    if ext not in MEDIA or (ext == "xlsx" and (ds.row_count or 0) > XLSX_MAX_ROWS):
        raise NotFound(f"dataset {ds.name} has no {ext} download")
    names = [c["id"] for c in ds.columns]
    if ext == "csv":
        return _csv(settings, ds, names)
    if ext == "json":
        return _json(settings, ds)
    if ext == "parquet":
        return _parquet(settings, ds)
    return _xlsx(settings, ds, names)


def _value(v: Any) -> Any:
    return v.isoformat() if hasattr(v, "isoformat") else v


def _csv(settings: Settings, ds: Dataset, names: list[str]) -> Iterator[bytes]:
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    buf.write("\ufeff")  # Excel opens UTF-8 CSV as Chinese text only with the BOM
    out.writerow(names)
    for batch in _batches(settings, ds):
        for row in batch.to_pylist():
            out.writerow(["" if row[n] is None else _value(row[n]) for n in names])
        yield buf.getvalue().encode("utf-8")
        buf.seek(0)
        buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode("utf-8")


def _json(settings: Settings, ds: Dataset) -> Iterator[bytes]:
    yield b"["
    first = True
    for batch in _batches(settings, ds):
        parts = []
        for row in batch.to_pylist():
            text = json.dumps({k: _value(v) for k, v in row.items()}, ensure_ascii=False)
            parts.append(text if first else "," + text)
            first = False
        yield "\n".join(parts).encode("utf-8")
    yield b"]\n"


def _parquet(settings: Settings, ds: Dataset) -> Iterator[bytes]:
    store = data_store(settings)
    manifest = store.manifest(ds.uuid, ds.data_version)
    paths = store.paths(manifest)
    if len(paths) == 1:
        with paths[0].open("rb") as fh:
            while chunk := fh.read(1 << 20):
                yield chunk
        return
    with tempfile.TemporaryFile() as tmp:
        with pq.ParquetWriter(tmp, manifest.arrow_schema) as writer:
            for batch in _batches(settings, ds):
                writer.write_batch(batch)
        tmp.seek(0)
        while chunk := tmp.read(1 << 20):
            yield chunk


def _xlsx(settings: Settings, ds: Dataset, names: list[str]) -> Iterator[bytes]:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title="data")
    sheet.append(names)
    for batch in _batches(settings, ds):
        for row in batch.to_pylist():
            sheet.append([row[n] for n in names])
    with tempfile.TemporaryFile() as tmp:
        book.save(tmp)
        tmp.seek(0)
        while chunk := tmp.read(1 << 20):
            yield chunk
