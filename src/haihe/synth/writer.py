"""Writing the city: Parquet (zstd) on background threads, GeoJSON, and the manifest entries.

Files are byte-identical for the same inputs: no timestamps, fixed writer settings, and rows in
generation order. Each table is checked against its description in ``data/columns.csv`` before it
is written, so the manifest can never describe a column that is not there.
"""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from haihe.synth import reference
from haihe.synth.schemas import ColumnInfo, DatasetInfo, GeoInfo, TruthColumn, TruthInfo

PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 1,
    "row_group_size": 1 << 20,
}
MAX_PENDING = 3  # tables queued for writing at once; bounds the memory they hold


def logical_type(arrow_type: pa.DataType) -> str:
    """Return the type name a reader sees: dictionary columns are their value type."""
    if pa.types.is_dictionary(arrow_type):
        return str(arrow_type.value_type)
    return str(arrow_type)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_parquet(table: pa.Table, path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, **PARQUET_OPTIONS)
    return path.stat().st_size, _sha256(path)


def check_table(dataset_id: str, table: pa.Table) -> list[ColumnInfo]:
    """Return the column descriptions of ``table``, or raise if it differs from its spec."""
    specs = reference.column_specs()[dataset_id]
    expected = [spec["column"] for spec in specs]
    if table.column_names != expected:
        raise ValueError(f"{dataset_id}: columns {table.column_names} != spec {expected}")
    columns = []
    for spec, field in zip(specs, table.schema, strict=True):
        nullable = spec["nullable"] == "1"
        if not nullable and table.column(field.name).null_count:
            raise ValueError(f"{dataset_id}.{field.name} has nulls but is declared not nullable")
        columns.append(
            ColumnInfo(
                name=field.name,
                name_zh=spec["name_zh"],
                type=logical_type(field.type),
                is_key=spec["key"] == "1",
                nullable=nullable,
                sensitivity=spec["level"],
                personal=spec["personal"] == "1",
                kind=spec["kind"],
            )
        )
    return columns


class CityWriter:
    """Writes tables under ``out`` on a small thread pool and collects manifest entries."""

    def __init__(self, out: Path, *, threads: int = 2) -> None:
        self.out = out
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="synth-write")
        self._slots = threading.BoundedSemaphore(MAX_PENDING)
        self._datasets: list[tuple[dict[str, Any], list[ColumnInfo], int, Future[Any]]] = []
        self._truth: list[tuple[str, str, str, list[TruthColumn], int, Future[Any]]] = []
        self._geo: list[GeoInfo] = []
        self.rows: dict[str, int] = {}

    def _submit(self, table: pa.Table, path: Path) -> Future[tuple[int, str]]:
        self._slots.acquire()
        future = self._pool.submit(_write_parquet, table, path)
        future.add_done_callback(lambda _: self._slots.release())
        return future

    def dataset(self, dataset_id: str, table: pa.Table) -> None:
        """Queue one departmental dataset for writing at its path in ``data/datasets.json``."""
        spec = reference.dataset_specs()[dataset_id]
        columns = check_table(dataset_id, table)
        self.rows[dataset_id] = table.num_rows
        future = self._submit(table, self.out / spec["path"])
        self._datasets.append((spec, columns, table.num_rows, future))

    def truth(self, truth_id: str, table: pa.Table, summary_en: str) -> None:
        """Queue one ground-truth table for writing at ``truth/<truth_id>.parquet``."""
        path = f"truth/{truth_id}.parquet"
        columns = [TruthColumn(name=f.name, type=logical_type(f.type)) for f in table.schema]
        self.rows[f"truth.{truth_id}"] = table.num_rows
        future = self._submit(table, self.out / path)
        self._truth.append((truth_id, path, summary_en, columns, table.num_rows, future))

    def geojson(self, level: str, features: list[dict[str, Any]]) -> None:
        """Write one FeatureCollection at ``grids/<level>.geojson`` (synchronously: it is small)."""
        path = self.out / "grids" / f"{level}.geojson"
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"type": "FeatureCollection", "features": features}
        path.write_text(
            json.dumps(body, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8"
        )
        self._geo.append(
            GeoInfo(
                level=level,
                path=f"grids/{level}.geojson",
                features=len(features),
                bytes=path.stat().st_size,
                sha256=_sha256(path),
            )
        )

    def close(self) -> tuple[list[DatasetInfo], list[TruthInfo], list[GeoInfo]]:
        """Wait for every write and return the manifest entries, in a fixed order."""
        try:
            datasets = []
            for spec, columns, rows, future in self._datasets:
                size, digest = future.result()
                datasets.append(
                    DatasetInfo(
                        **{k: spec[k] for k in spec},
                        provider=spec["id"].split(".")[0],
                        rows=rows,
                        bytes=size,
                        sha256=digest,
                        columns=columns,
                    )
                )
            truth = []
            for truth_id, path, summary, tcols, rows, future in self._truth:
                size, digest = future.result()
                truth.append(
                    TruthInfo(
                        id=truth_id,
                        path=path,
                        summary_en=summary,
                        rows=rows,
                        bytes=size,
                        sha256=digest,
                        columns=tcols,
                    )
                )
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
        order = list(reference.dataset_specs())
        datasets.sort(key=lambda d: order.index(d.id))
        truth.sort(key=lambda t: t.id)
        return datasets, truth, list(self._geo)  # districts, streets, communities, cells
