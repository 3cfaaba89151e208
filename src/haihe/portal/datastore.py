"""datastore_search — 数据查询: rows of one dataset, from its indexed SQLite row store.

Filters on the items a provider indexed use the index; ``q`` looks for every word in any text
column; ``total_estimation_threshold`` lets a caller trade an exact total for speed: past it,
the total is estimated from evenly spread blocks of rows (``total_was_estimated``), as CKAN does
with PostgreSQL's planner estimate.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from haihe.core.errors import InvalidInput, StorageError
from haihe.core.settings import Settings
from haihe.portal.materialise import rowstore_path
from haihe.portal.models import Dataset

MAX_LIMIT = 32000
DEFAULT_LIMIT = 100
SAMPLE_BLOCKS = 32
SAMPLE_BLOCK_ROWS = 2000
RECORDS_FORMATS = ("objects", "lists", "csv", "tsv")


class FieldErrors(InvalidInput):
    """Bad parameters of a datastore call, by parameter (CKAN's Validation Error dict)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        first = next(iter(errors.items()))
        super().__init__(f"{first[0]}: {first[1][0]}", details=errors)
        self.errors = errors


@dataclass(frozen=True)
class SearchIn:
    filters: dict[str, Any]
    q: str | dict[str, str] | None
    fields: list[str] | None
    sort: str | None
    limit: int
    offset: int
    include_total: bool
    records_format: str
    total_estimation_threshold: int | None


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect(settings: Settings, ds: Dataset) -> sqlite3.Connection:
    """A read-only connection to the dataset's current row store."""
    if ds.data_version is None:
        raise StorageError(f"dataset {ds.name} has no data yet")
    path = rowstore_path(settings, ds.uuid, ds.data_version)
    try:
        return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as exc:
        raise StorageError(f"the data of {ds.name} cannot be read: {exc}") from None


def search(settings: Settings, ds: Dataset, req: SearchIn) -> dict[str, Any]:
    """Return CKAN's datastore_search result for ``req`` over dataset ``ds``."""
    types = {c["id"]: c["type"] for c in ds.columns}
    names = list(types)
    errors: dict[str, list[str]] = {}
    chosen = req.fields or ["_id", *names]
    unknown = [f for f in chosen if f != "_id" and f not in types]
    if unknown:
        errors["fields"] = [f'field "{unknown[0]}" not in resource']
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    for field, value in req.filters.items():
        if field not in types and field != "_id":
            errors.setdefault("filters", []).append(f'field "{field}" not in resource')
            continue
        column = "rowid" if field == "_id" else quote(field)
        values = value if isinstance(value, list) else [value]
        if not values or any(isinstance(v, dict | list) for v in values):
            errors.setdefault("filters", []).append(f'filter on "{field}": give values')
            continue
        where.append(f"{column} IN ({', '.join('?' for _ in values)})")
        params.extend(_as_stored(v, types.get(field, "int")) for v in values)
    if isinstance(req.q, dict):
        for field, text in req.q.items():
            if field not in types:
                errors.setdefault("q", []).append(f'field "{field}" not in resource')
                continue
            where.append(f"CAST({quote(field)} AS TEXT) LIKE ?")
            params.append(f"%{text}%")
    elif req.q:
        for word in str(req.q).split():
            ors = " OR ".join(f"CAST({quote(c)} AS TEXT) LIKE ?" for c in names) or "0"
            where.append(f"({ors})")
            params.extend(f"%{word}%" for _ in names)
    order = _order(req.sort, types, errors)
    if errors:
        raise FieldErrors(errors)
    columns = ", ".join("rowid" if f == "_id" else quote(f) for f in chosen)
    sql_where = " AND ".join(where)
    con = connect(settings, ds)
    try:
        rows = con.execute(
            f"SELECT {columns} FROM rows WHERE {sql_where} ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, req.limit, req.offset],
        ).fetchall()
        total, estimated = None, False
        if req.include_total:
            total, estimated = _total(con, ds, sql_where, params, req.total_estimation_threshold)
    except sqlite3.Error as exc:
        raise FieldErrors({"query": [str(exc)]}) from None
    finally:
        con.close()
    fields = [_field(f, ds) for f in chosen]
    out: dict[str, Any] = {
        "include_total": req.include_total,
        "limit": req.limit,
        "records_format": req.records_format,
        "resource_id": ds.resource_uuid,
        "total_estimation_threshold": req.total_estimation_threshold,
        "fields": fields,
        "records": _records(rows, chosen, types, req.records_format),
        "_links": {},
    }
    if req.filters:
        out["filters"] = req.filters
    if req.q:
        out["q"] = req.q
    if req.sort:
        out["sort"] = req.sort
    if req.offset:
        out["offset"] = req.offset
    if req.include_total:
        out["total"] = total
        out["total_was_estimated"] = estimated
    return out


def _as_stored(value: Any, ckan_type: str) -> Any:
    """A filter value as the row store holds it (booleans 0/1, numbers as numbers)."""
    if ckan_type == "bool":
        if isinstance(value, str):
            return 1 if value.lower() in ("true", "1", "t", "yes") else 0
        return 1 if value else 0
    if ckan_type in ("int", "numeric") and isinstance(value, str):
        try:
            return int(value) if ckan_type == "int" else float(value)
        except ValueError:
            return value
    return value


def _order(sort: str | None, types: dict[str, str], errors: dict[str, list[str]]) -> str:
    if not sort:
        return "rowid"
    parts = []
    for part in sort.split(","):
        bits = part.strip().strip('"').split()
        if not bits:
            continue
        name = bits[0].strip('"')
        direction = bits[1].lower() if len(bits) > 1 else "asc"
        if (
            (name not in types and name != "_id")
            or direction not in ("asc", "desc")
            or len(bits) > 2
        ):
            errors.setdefault("sort", []).append(f'field "{part.strip()}" not in resource')
            continue
        parts.append(f"{'rowid' if name == '_id' else quote(name)} {direction.upper()}")
    return ", ".join([*parts, "rowid"])


def _total(
    con: sqlite3.Connection,
    ds: Dataset,
    where: str,
    params: list[Any],
    threshold: int | None,
) -> tuple[int, bool]:
    rows = ds.row_count or 0
    if where == "1 = 1":
        return rows, False
    if threshold is not None and rows > threshold:
        estimate = _estimate(con, rows, where, params)
        if estimate > threshold:
            return estimate, True
    return int(con.execute(f"SELECT count(*) FROM rows WHERE {where}", params).fetchone()[0]), False


def _estimate(con: sqlite3.Connection, rows: int, where: str, params: list[Any]) -> int:
    """Matches among evenly spread blocks of rowids, scaled to the whole table."""
    block = min(SAMPLE_BLOCK_ROWS, max(1, rows // SAMPLE_BLOCKS))
    step = max(block, rows // SAMPLE_BLOCKS)
    seen = matched = 0
    for start in range(1, rows + 1, step):
        end = min(rows, start + block - 1)
        found = con.execute(
            f"SELECT count(*) FROM rows WHERE rowid BETWEEN ? AND ? AND ({where})",
            [start, end, *params],
        ).fetchone()[0]
        matched += int(found)
        seen += end - start + 1
    return round(matched * rows / seen) if seen else 0


def _field(name: str, ds: Dataset) -> dict[str, Any]:
    if name == "_id":
        return {"id": "_id", "type": "int"}
    for c in ds.columns:
        if c["id"] == name:
            return {"id": name, "type": c["type"], "info": c.get("info", {})}
    return {"id": name, "type": "text"}


def _records(
    rows: list[tuple[Any, ...]], chosen: list[str], types: dict[str, str], fmt: str
) -> Any:
    bools = [i for i, f in enumerate(chosen) if types.get(f) == "bool"]
    if bools:
        fixed = []
        for r in rows:
            values = list(r)
            for i in bools:
                if values[i] is not None:
                    values[i] = bool(values[i])
            fixed.append(tuple(values))
        rows = fixed
    if fmt == "objects":
        return [dict(zip(chosen, r, strict=True)) for r in rows]
    if fmt == "lists":
        return [list(r) for r in rows]
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t" if fmt == "tsv" else ",", lineterminator="\n")
    for r in rows:
        writer.writerow([_text(v) for v in r])
    return buf.getvalue()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
