"""The change feed — 变更订阅: the rows each newly loaded version adds, changes and removes.

``GET /api/v1/exchange/{code}/changes?since=CURSOR`` gives a grantee with mode subscribe the
changes of every version loaded after its cursor, oldest first. The changes of a version are the
difference from the version before it, matched on the resource's key items (a row is changed
when any other value differs; without key items whole rows are compared, so a change shows as a
removal and an addition) — the same rule as ``catalogue.versions.compare``. They are computed
once per version and kept as Parquet under ``DATA_DIR/changes/<code>/vNNNNNN.parquet`` with a
sequence number per row, so a cursor is simply (version, sequence) and stays valid for ever.

Each change is delivered like a query's rows: only granted items, masked unless the grant leaves
them unmasked, and only rows within the grant's row scope (an added or changed row by its new
values, a removed row by its old ones). Each call is audited (action ``exchange.changes``, mode
subscribe, rows, subjects as in exports).
"""

from __future__ import annotations

import base64
import binascii
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from haihe.audit import service as audit
from haihe.catalogue import service as catalogue
from haihe.catalogue.models import Resource, ResourceStatus, SharingMode
from haihe.core.auth import Principal
from haihe.core.errors import Conflict, InvalidInput
from haihe.core.settings import Settings
from haihe.engine import VersionStore, make_store
from haihe.exchange import service
from haihe.exchange.delivery import (
    Subjects,
    deliverable,
    duckdb_connection,
    projection,
    provider_code,
    read_rows,
)
from haihe.exchange.scope import Condition, check_conditions, quote_identifier, where_sql

MAX_LIMIT = 1000
ADDED, CHANGED, REMOVED = "added", "changed", "removed"


# ---------------------------------------------------------------- cursors


def encode_cursor(version: int, offset: int) -> str:
    """The opaque cursor meaning "from change ``offset`` of ``version`` on"."""
    return base64.urlsafe_b64encode(f"v1:{version}:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """(version, offset) of a cursor; InvalidInput for one this server did not give out."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, version, offset = text.split(":")
        if tag != "v1" or int(version) < 1 or int(offset) < 0:
            raise ValueError(text)
        return int(version), int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(f"since={cursor!r} is not a cursor this feed gave out") from None


# ---------------------------------------------------------------- changes of one version


def changes_path(settings: Settings, code: str, version: int) -> Path:
    return settings.data_dir / "changes" / code / f"v{version:06d}.parquet"


def change_file(settings: Settings, store: VersionStore, resource: Resource, version: int) -> Path:
    """The Parquet file of version ``version``'s changes, computed on first use.

    Columns: ``_seq`` (0, 1, …), ``_change`` (added, changed, removed) and the items the version
    shares with the one before it (all of its items for the first version).
    """
    path = changes_path(settings, resource.code, version)
    if path.exists():
        return path
    numbers = [m.version for m in store.versions(resource.code)]
    earlier = [n for n in numbers if n < version]
    new = [str(p) for p in store.paths(store.manifest(resource.code, version))]
    old = (
        [str(p) for p in store.paths(store.manifest(resource.code, earlier[-1]))] if earlier else []
    )
    keys = [i.name for i in resource.items if i.is_key]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    with duckdb_connection(settings) as con:
        new_cols = _columns(con, new)
        columns = [c for c in new_cols if c in _columns(con, old)] if old else new_cols
        sql, params = _diff_sql(columns, [k for k in keys if k in columns], bool(old))
        con.sql(sql, params=[new, old] if old else [new]).to_parquet(str(partial))
    os.replace(partial, path)
    return path


def _columns(con: Any, paths: list[str]) -> list[str]:
    relation = con.sql("SELECT * FROM read_parquet(?) LIMIT 0", params=[paths])
    return list(relation.columns)


def _diff_sql(columns: list[str], keys: list[str], has_old: bool) -> tuple[str, list[Any]]:
    """SQL numbering the changes of ``new`` (parameter 1) against ``old`` (parameter 2)."""
    cols = ", ".join(quote_identifier(c) for c in columns)
    ordered = f"ORDER BY _change, {cols}"
    if not has_old:
        body = f"SELECT '{ADDED}' AS _change, {cols} FROM read_parquet(?)"
    elif keys:
        on = " AND ".join(f"n.{quote_identifier(k)} = o.{quote_identifier(k)}" for k in keys)
        values = [c for c in columns if c not in keys]
        differs = " OR ".join(
            f"n.{quote_identifier(c)} IS DISTINCT FROM o.{quote_identifier(c)}" for c in values
        )
        n_cols = ", ".join(f"n.{quote_identifier(c)}" for c in columns)
        o_cols = ", ".join(f"o.{quote_identifier(c)}" for c in columns)
        key_order = ", ".join(quote_identifier(k) for k in keys)
        ordered = f"ORDER BY _change, {key_order}"
        body = (
            "WITH n AS (SELECT * FROM read_parquet(?)), o AS (SELECT * FROM read_parquet(?)) "
            f"SELECT '{ADDED}' AS _change, {n_cols} FROM n WHERE NOT EXISTS "
            f"(SELECT 1 FROM o WHERE {on}) "
            f"UNION ALL SELECT '{REMOVED}', {o_cols} FROM o WHERE NOT EXISTS "
            f"(SELECT 1 FROM n WHERE {on}) "
            + (
                f"UNION ALL SELECT '{CHANGED}', {n_cols} FROM n JOIN o ON {on} WHERE {differs}"
                if values
                else ""
            )
        )
    else:
        body = (
            "WITH n AS (SELECT * FROM read_parquet(?)), o AS (SELECT * FROM read_parquet(?)) "
            f"SELECT '{ADDED}' AS _change, * FROM "
            f"(SELECT {cols} FROM n EXCEPT ALL SELECT {cols} FROM o) "
            f"UNION ALL SELECT '{REMOVED}', * FROM "
            f"(SELECT {cols} FROM o EXCEPT ALL SELECT {cols} FROM n)"
        )
    sql = (
        f"SELECT (row_number() OVER ({ordered}) - 1)::BIGINT AS _seq, _change, {cols} "
        f"FROM ({body}) {ordered}"
    )
    return sql, []


def change_counts(
    settings: Settings,
    store: VersionStore,
    resource: Resource,
    version: int,
    conditions: list[Condition],
) -> dict[str, int]:
    """How many rows ``version`` added, changed and removed within ``conditions``."""
    path = change_file(settings, store, resource, version)
    where, params = where_sql(conditions)
    with duckdb_connection(settings) as con:
        rows = con.sql(
            f"SELECT _change, count(*) FROM read_parquet(?) WHERE {where} GROUP BY _change",
            params=[[str(path)], *params],
        ).fetchall()
    counts = {ADDED: 0, CHANGED: 0, REMOVED: 0}
    counts.update({str(kind): int(n) for kind, n in rows})
    return counts


# ---------------------------------------------------------------- the feed


@dataclass
class ChangePage:
    """One page of the feed: changes oldest first, the cursor to ask from next, whether more
    changes are already waiting."""

    resource_code: str
    current_version: int | None
    items: list[str]
    masked: list[str]
    changes: list[dict[str, Any]]
    next: str
    more: bool


def start_cursor(resource: Resource) -> str:
    """The cursor of changes loaded from now on (after the current version)."""
    return encode_cursor((resource.current_version or 0) + 1, 0)


def read_changes(
    session: Session,
    *,
    actor: Principal,
    settings: Settings,
    code: str,
    since: str | None,
    limit: int = 100,
    request_id: str | None = None,
) -> ChangePage:
    """Return the changes of entry ``code`` after cursor ``since`` (from now on without one).

    Forbidden without a grant in force with mode subscribe; InvalidInput for a bad cursor or
    limit. Audited in the caller's transaction.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be 1-{MAX_LIMIT}")
    resource = catalogue.get_resource(session, actor=actor, code=code)
    if resource.status is not ResourceStatus.PUBLISHED:
        raise Conflict(f"catalogue entry {code} is not published")
    grant = service.grant_for(session, actor=actor, resource=resource, mode=SharingMode.SUBSCRIBE)
    current = resource.current_version or 0
    start, start_offset = decode_cursor(since) if since else (current + 1, 0)
    store = make_store(settings)
    pending = [m.version for m in store.versions(code) if start <= m.version <= current]
    view = projection(resource, grant, grant.items)
    conditions = check_conditions(grant.scope, resource.items)
    subjects, changes = Subjects(), list[dict[str, Any]]()
    version, offset, more = max(start, current + 1), 0, False
    for number in pending:
        want = limit - len(changes)
        got = 0
        for batch in read_rows(
            settings,
            [change_file(settings, store, resource, number)],
            view,
            conditions,
            extra_sql='"_seq" >= ?',
            extra_params=[start_offset if number == start else 0],
            extra_columns=["_seq", "_change"],
            order_by='"_seq"',
            limit=want,
        ):
            subjects.add(batch, view)
            records = deliverable(batch, view).to_pylist()
            seqs, kinds = batch.column(0).to_pylist(), batch.column(1).to_pylist()
            for seq, kind, record in zip(seqs, kinds, records, strict=True):
                changes.append({"version": number, "change": kind, "record": record})
                version, offset = number, seq + 1
            got += batch.num_rows
        if got == want:
            more = True
            break
        version, offset = current + 1, 0  # this version is done; later ones follow
    _audit(
        session,
        actor,
        resource,
        grant.purpose,
        view.items,
        len(changes),
        subjects,
        settings,
        request_id,
        view.personal,
    )
    return ChangePage(
        resource_code=code,
        current_version=resource.current_version,
        items=view.items,
        masked=sorted(view.masked),
        changes=changes,
        next=encode_cursor(version, offset),
        more=more,
    )


def _audit(
    session: Session,
    actor: Principal,
    resource: Resource,
    purpose: str,
    items: list[str],
    rows: int,
    subjects: Subjects,
    settings: Settings,
    request_id: str | None,
    personal: bool,
) -> None:
    audit.record(
        session,
        actor=actor,
        action="exchange.changes",
        resource_code=resource.code,
        provider_code=provider_code(session, resource),
        items=items,
        purpose=purpose,
        mode=SharingMode.SUBSCRIBE.value,
        rows=rows,
        subjects=subjects.pseudonyms(settings),
        personal=personal,
        request_id=request_id,
        detail={"subjects": subjects.note()},
    )
