"""Versions of a resource — 资源版本: the list of them, and what changed between two.

Versions come from the store's manifests; the current one is the version the control database
names (``Resource.current_version``), the publication point of every load. Comparisons run as
Ibis expressions through the Engine, so they scan versions of any size on DuckDB or Spark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from haihe.catalogue import service
from haihe.catalogue.schemas import CompareOut, VersionOut
from haihe.core.auth import Principal
from haihe.core.settings import Settings
from haihe.engine import make_engine, make_store

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from haihe.engine import Engine


def list_versions(
    session: Session, *, actor: Principal, settings: Settings, code: str
) -> list[VersionOut]:
    """Return the versions of entry ``code``, newest first, marking the current one."""
    resource = service.get_resource(session, actor=actor, code=code)
    manifests = make_store(settings).versions(resource.code)
    return [
        VersionOut(
            version=m.version,
            row_count=m.row_count,
            checksum=m.checksum,
            created_at=m.created_at,
            created_by=m.created_by,
            source=m.source,
            current=m.version == resource.current_version,
        )
        for m in reversed(manifests)
    ]


def compare(
    session: Session,
    *,
    actor: Principal,
    settings: Settings,
    code: str,
    from_version: int,
    to_version: int,
) -> CompareOut:
    """Return how many rows ``to_version`` adds, removes and changes against ``from_version``.

    With key items, rows are matched on the key: a row is changed when any other value differs
    (two nulls are equal). Without keys, whole rows are compared as multisets, so a changed row
    counts as one removed and one added. NotFound for a version the entry does not have.
    """
    resource = service.get_resource(session, actor=actor, code=code)
    store = make_store(settings)
    old = store.manifest(resource.code, from_version)
    new = store.manifest(resource.code, to_version)
    keys = [i.name for i in resource.items if i.is_key]
    with make_engine(settings) as engine:
        before, after = engine.table(store, old), engine.table(store, new)
        columns = [c for c in before.columns if c in after.columns]
        if keys and all(k in columns for k in keys):
            added, removed, changed, unchanged = _by_key(engine, before, after, keys, columns)
        else:
            keys = []
            added, removed, unchanged = _as_multisets(engine, before, after, columns)
            changed = 0
    return CompareOut(
        resource_code=resource.code,
        from_version=from_version,
        to_version=to_version,
        added=added,
        removed=removed,
        changed=changed,
        unchanged=unchanged,
        key=keys,
    )


def _by_key(
    engine: Engine, before: ir.Table, after: ir.Table, keys: list[str], columns: list[str]
) -> tuple[int, int, int, int]:
    """Return (added, removed, changed, unchanged) of two versions matched on their key."""
    import ibis  # like the engine, only when a comparison runs: it takes a second to import

    added = int(engine.scalar(after.anti_join(before, keys).count()))
    removed = int(engine.scalar(before.anti_join(after, keys).count()))
    old = before.select(*columns)
    new = after.select(*columns).rename({f"{c}__new": c for c in columns if c not in keys})
    both = old.join(new, keys)
    values = [c for c in columns if c not in keys]
    differs = ibis.or_(*[~both[c].identical_to(both[f"{c}__new"]) for c in values])
    flag = differs.ifelse(1, 0) if values else ibis.literal(0)
    counts = engine.execute(
        both.aggregate(matched=both.count(), changed=flag.sum().coalesce(0))
    ).to_pylist()[0]
    matched, changed = int(counts["matched"]), int(counts["changed"])
    return added, removed, changed, matched - changed


def _as_multisets(
    engine: Engine, before: ir.Table, after: ir.Table, columns: list[str]
) -> tuple[int, int, int]:
    """Return (added, removed, unchanged) of two versions compared as multisets of rows."""
    import ibis

    one, zero = ibis.literal(1), ibis.literal(0)
    rows = (
        before.select(*columns)
        .mutate(_old=one, _new=zero)
        .union(after.select(*columns).mutate(_old=zero, _new=one), distinct=False)
    )
    copies = rows.group_by(columns).aggregate(old=rows["_old"].sum(), new=rows["_new"].sum())
    totals = copies.aggregate(
        added=ibis.greatest(copies["new"] - copies["old"], 0).sum().coalesce(0),
        removed=ibis.greatest(copies["old"] - copies["new"], 0).sum().coalesce(0),
        unchanged=ibis.least(copies["old"], copies["new"]).sum().coalesce(0),
    )
    counts = engine.execute(totals).to_pylist()[0]
    return int(counts["added"]), int(counts["removed"]), int(counts["unchanged"])
