"""Delivering rows under a grant — 按授权交付: what a grant lets out, and reading it.

Shared by bulk exports and change feeds: the projection (granted items, which are masked, which
name the subjects), reading Parquet with DuckDB under the grant's row scope AND the caller's
filters (``scope.where_sql``), vectorised masking, and the subjects (persons) of delivered rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy.orm import Session

from haihe.catalogue.models import ItemKind, Resource, Sensitivity
from haihe.core.auth import Principal
from haihe.core.errors import Forbidden
from haihe.core.masking import MaskKind, mask_array, pseudonymise
from haihe.core.settings import Settings
from haihe.exchange.models import Grant, GrantStatus
from haihe.exchange.scope import (
    Condition,
    check_conditions,
    parse_conditions,
    quote_identifier,
    where_sql,
)
from haihe.orgs.models import Organisation

SUBJECT_LIMIT = 10_000
BATCH_ROWS = 64 * 1024
_MASK_KIND = {
    ItemKind.ID_NUMBER: MaskKind.ID_NUMBER,
    ItemKind.NAME: MaskKind.NAME,
    ItemKind.PHONE: MaskKind.PHONE,
    ItemKind.ADDRESS: MaskKind.ADDRESS,
    ItemKind.USCC: MaskKind.USCC,
}


# ---------------------------------------------------------------- what a grant lets out


@dataclass(frozen=True)
class Projection:
    """The items delivered under a grant, which of them are masked, and the ID items whose
    values name the subjects (persons) of the rows."""

    items: list[str]
    masked: dict[str, MaskKind]
    subject_items: list[str]
    personal: bool


def projection(resource: Resource, grant: Grant, items: Sequence[str]) -> Projection:
    """Return what delivering ``items`` of ``resource`` under ``grant`` shows and masks.

    A personal item, or one of sensitivity L3/L4, is masked unless the grant names it in
    ``unmasked_items``.
    """
    by_name = {i.name: i for i in resource.items}
    masked = {}
    for name in items:
        item = by_name[name]
        sensitive = item.personal or item.sensitivity in (Sensitivity.L3, Sensitivity.L4)
        if sensitive and name not in grant.unmasked_items:
            masked[name] = _MASK_KIND.get(item.kind, MaskKind.GENERIC)
    subject_items = [i.name for i in resource.items if i.kind is ItemKind.ID_NUMBER]
    personal = any(by_name[n].personal for n in items)
    return Projection(list(items), masked, subject_items, personal)


def checked_request(
    resource: Resource,
    grant: Grant,
    *,
    items: Sequence[str] | None,
    filters: Sequence[Condition | dict[str, Any]],
) -> tuple[list[str], list[Condition]]:
    """Return the items asked for (all granted ones when none are named) and the checked filters.

    Forbidden naming the items when any item or filter lies outside the grant; InvalidInput for
    a filter that does not suit its item.
    """
    wanted = list(dict.fromkeys(items or grant.items))
    outside = [i for i in wanted if i not in grant.items]
    if outside:
        raise Forbidden(
            f"the grant does not cover the items {', '.join(outside)} of {resource.code}",
            details={"items": outside},
        )
    parsed = parse_conditions(filters)
    unfiltered = sorted({c.item for c in parsed} - set(grant.items))
    if unfiltered:
        raise Forbidden(
            f"filters may use only granted items; not {', '.join(unfiltered)}",
            details={"items": unfiltered},
        )
    return wanted, check_conditions(parsed, resource.items)


def grant_in_force(grant: Grant, now: dt.datetime) -> bool:
    return grant.status is GrantStatus.ACTIVE and grant.starts_at <= now < grant.expires_at


def audit_actor(session: Session, grant: Grant, label: str) -> Principal:
    """A principal for audit entries of background work done for the grantee (the requester
    is named by ``label``, e.g. ``user:alice``)."""
    org = session.get(Organisation, grant.consumer_org_id)
    return Principal(
        kind="system",
        id=0,
        name=label,
        org_id=grant.consumer_org_id,
        org_code=org.code if org else None,
        system_id=grant.consumer_system_id,
    )


def provider_code(session: Session, resource: Resource) -> str | None:
    org = session.get(Organisation, resource.provider_id)
    return org.code if org else None


# ---------------------------------------------------------------- reading and masking


def duckdb_connection(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB held to the configured memory and threads, spilling to DATA_DIR.

    Exports and feeds filter with ``scope.where_sql`` (SQL with ``?`` parameters), which the
    Ibis ``Engine`` interface does not take, so they run on DuckDB itself.
    """
    temp = settings.data_dir / "tmp" / "duckdb"
    temp.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "memory_limit": settings.duckdb_memory_limit,
        "temp_directory": str(temp),
    }
    if settings.duckdb_threads:
        config["threads"] = settings.duckdb_threads
    return duckdb.connect(config=config)


def mask_column(values: pa.Array, kind: MaskKind) -> pa.Array:
    """Return a column masked as ``kind`` (text out), as the query gateway masks each value."""
    return mask_array(values, kind)


def masked_schema(schema: pa.Schema, view: Projection) -> pa.Schema:
    """The schema of delivered rows: the projected items, masked ones as text."""
    return pa.schema(
        [pa.field(n, pa.string()) if n in view.masked else schema.field(n) for n in view.items]
    )


def subject_column(n: int) -> str:
    return f"__subject_{n}"


def select_list(view: Projection, extra: Sequence[str] = ()) -> str:
    """The SELECT list of the projected items plus the subject ID items under private names."""
    columns = [quote_identifier(c) for c in (*extra, *view.items)]
    columns += [
        f"{quote_identifier(item)} AS {quote_identifier(subject_column(n))}"
        for n, item in enumerate(view.subject_items)
    ]
    return ", ".join(columns)


@dataclass
class Subjects:
    """The distinct subjects (ID numbers) of delivered rows, while there are few enough rows."""

    limit: int = SUBJECT_LIMIT
    rows: int = 0
    ids: set[str] = field(default_factory=set)

    def add(self, batch: pa.RecordBatch, view: Projection) -> None:
        self.rows += batch.num_rows
        if self.rows > self.limit:
            self.ids.clear()
            return
        for n in range(len(view.subject_items)):
            column = batch.column(batch.schema.get_field_index(subject_column(n)))
            self.ids.update(v for v in column.to_pylist() if v)

    def pseudonyms(self, settings: Settings) -> list[str]:
        if self.rows > self.limit:
            return []
        key = settings.secret_key_bytes()
        return sorted(pseudonymise(key, i) for i in self.ids)

    def note(self) -> str:
        if self.rows > self.limit:
            return f"{self.rows} rows: subjects not listed (over {self.limit})"
        return f"{len(self.ids)} subjects listed"


def deliverable(batch: pa.RecordBatch, view: Projection) -> pa.RecordBatch:
    """Return a batch of the projected items with the masked ones masked."""
    columns = [
        mask_column(batch.column(batch.schema.get_field_index(n)), view.masked[n])
        if n in view.masked
        else batch.column(batch.schema.get_field_index(n))
        for n in view.items
    ]
    return pa.RecordBatch.from_arrays(columns, names=view.items)


def read_rows(
    settings: Settings,
    paths: Sequence[Path],
    view: Projection,
    conditions: Sequence[Condition],
    *,
    extra_sql: str = "",
    extra_params: Sequence[Any] = (),
    extra_columns: Sequence[str] = (),
    order_by: str = "",
    limit: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield the rows of Parquet ``paths`` meeting ``conditions``, projected (not yet masked)."""
    where, params = where_sql(conditions)
    sql = f"SELECT {select_list(view, extra_columns)} FROM read_parquet(?) WHERE {where}"
    if extra_sql:
        sql += f" AND ({extra_sql})"
    if order_by:
        sql += f" ORDER BY {order_by}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    with duckdb_connection(settings) as con:
        relation = con.sql(sql, params=[[str(p) for p in paths], *params, *extra_params])
        yield from relation.to_arrow_reader(BATCH_ROWS)
