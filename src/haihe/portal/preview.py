"""What a dataset's page shows of its data — 数据预览与图表: the first rows and one chart.

The chart is worked out from the dataset's own Parquet (what the view opened, never more): for
an aggregated view, its first figure by its first group; otherwise the count of rows by the
first unmasked text column with a handful of distinct values (a district, a category). A
dataset with no such column has no chart.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import duckdb

from haihe.core.settings import Settings
from haihe.portal import datastore
from haihe.portal.datastore import SearchIn
from haihe.portal.materialise import chart_path, data_store
from haihe.portal.models import Dataset

CHART_BARS = 20
MAX_CATEGORIES = 40


@dataclass(frozen=True)
class Chart:
    """Bars of one chart: the column counted by, its labels and values, and the figure's name
    (None for a count of rows)."""

    category: str
    labels: list[str]
    values: list[float]
    measure: str | None


def first_rows(settings: Settings, ds: Dataset, limit: int) -> list[dict[str, Any]]:
    """The dataset's first ``limit`` rows as CKAN's datastore gives them."""
    req = SearchIn(
        filters={}, q=None, fields=None, sort=None, limit=limit, offset=0,
        include_total=False, records_format="objects", total_estimation_threshold=None,
    )  # fmt: skip
    records: list[dict[str, Any]] = datastore.search(settings, ds, req)["records"]
    return records


def chart(settings: Settings, ds: Dataset) -> Chart | None:
    """The dataset's chart, or None when nothing in it makes one.

    Worked out once per data version and kept beside the data: over the 7 million rows of the
    demo's air-quality readings it scans every text column (1.1 s), which a page view must not
    pay each time (read back: 0.35 ms).
    """
    if not ds.row_count or ds.data_version is None:
        return None
    path = chart_path(settings, ds.uuid, ds.data_version)
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
        return None if kept is None else Chart(**kept)
    except (OSError, ValueError, TypeError):
        pass
    made = _work_out(settings, ds, ds.data_version)
    with contextlib.suppress(OSError):  # a read-only data directory: work it out each time
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        temp.write_text(json.dumps(None if made is None else asdict(made)), encoding="utf-8")
        os.replace(temp, path)
    return made


def _work_out(settings: Settings, ds: Dataset, version: int) -> Chart | None:
    store = data_store(settings)
    files = [str(p) for p in store.paths(store.manifest(ds.uuid, version))]
    con = duckdb.connect(":memory:", config={"threads": 1})
    try:
        con.register("data", con.read_parquet(files))
        aggregate = (ds.view or {}).get("aggregate")
        if aggregate:
            return _figures(con, aggregate)
        return _counts(con, ds)
    finally:
        con.close()


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _figures(con: duckdb.DuckDBPyConnection, aggregate: dict[str, Any]) -> Chart | None:
    group = aggregate["group_by"][0]
    measures = aggregate["measures"]
    measure = next((m for m in measures if m.get("fn", "count") in ("count", "sum")), measures[0])
    name = measure["name"]
    rows = con.execute(
        f"SELECT CAST({_ident(group)} AS VARCHAR), SUM({_ident(name)}) FROM data "
        f"GROUP BY 1 ORDER BY 2 DESC NULLS LAST LIMIT {CHART_BARS}"
    ).fetchall()
    return _made(group, rows, name)


def _counts(con: duckdb.DuckDBPyConnection, ds: Dataset) -> Chart | None:
    candidates = [
        c["id"]
        for c in ds.columns
        if c["type"] == "text" and not (c.get("info") or {}).get("masked")
    ]
    if not candidates:
        return None
    distinct = con.execute(
        "SELECT "
        + ", ".join(f"approx_count_distinct({_ident(c)})" for c in candidates)
        + " FROM data"
    ).fetchone()
    assert distinct is not None
    chosen = next(
        (c for c, n in zip(candidates, distinct, strict=True) if 2 <= n <= MAX_CATEGORIES), None
    )
    if chosen is None:
        return None
    rows = con.execute(
        f"SELECT CAST({_ident(chosen)} AS VARCHAR), count(*) FROM data "
        f"GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {CHART_BARS}"
    ).fetchall()
    return _made(chosen, rows, None)


def _made(category: str, rows: list[tuple[Any, ...]], measure: str | None) -> Chart | None:
    if not rows:
        return None
    labels = ["—" if label is None else str(label) for label, _ in rows]
    values = [float(v or 0) for _, v in rows]
    return Chart(category=category, labels=labels, values=values, measure=measure)
