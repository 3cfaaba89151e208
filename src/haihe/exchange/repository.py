"""Every query of the exchange domain."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Table, and_, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from haihe.catalogue.models import DataItem, Resource
from haihe.exchange.models import (
    AccessRequest,
    Grant,
    GrantStatus,
    GrantUsage,
    RequestStatus,
)


def grants_in_force(
    session: Session,
    *,
    resource_id: int,
    org_id: int,
    system_id: int | None,
    now: dt.datetime,
) -> Sequence[Grant]:
    """Active, unexpired grants of a resource to an organisation, for a caller from ``system_id``.

    A grant naming a system holds only for calls from that system; one naming none holds for
    every caller of the organisation. Newest first.
    """
    system_match: ColumnElement[bool] = Grant.consumer_system_id.is_(None)
    if system_id is not None:
        system_match = or_(system_match, Grant.consumer_system_id == system_id)
    return session.scalars(
        select(Grant)
        .where(
            Grant.resource_id == resource_id,
            Grant.consumer_org_id == org_id,
            Grant.status == GrantStatus.ACTIVE,
            Grant.starts_at <= now,
            Grant.expires_at > now,
            system_match,
        )
        .order_by(Grant.id.desc())
    ).all()


_grants = cast(Table, Grant.__table__)
_usage = cast(Table, GrantUsage.__table__)
_TERMS = [
    _grants.c[name]
    for name in (
        "id", "items", "unmasked_items", "scope", "modes", "purpose", "calls_per_day",
        "rows_per_day",
    )
]  # fmt: skip


def _terms_statement(*, any_system: bool, with_usage: bool) -> Any:
    system = _grants.c.consumer_system_id
    match = system.is_(None) if any_system else or_(system.is_(None), system == bindparam("sys"))
    columns: list[Any] = list(_TERMS)
    source: Any = _grants
    if with_usage:  # the day's usage rides along: one statement fewer on every gateway call
        used = _usage
        columns += [
            func.coalesce(used.c.calls, 0).label("used_calls"),
            func.coalesce(used.c.rows, 0).label("used_rows"),
        ]
        source = _grants.outerjoin(
            used, and_(used.c.grant_id == _grants.c.id, used.c.day == bindparam("day"))
        )
    return (
        select(*columns)
        .select_from(source)
        .where(
            _grants.c.resource_id == bindparam("resource_id"),
            _grants.c.consumer_org_id == bindparam("org_id"),
            _grants.c.status == GrantStatus.ACTIVE,
            _grants.c.starts_at <= bindparam("now"),
            _grants.c.expires_at > bindparam("now"),
            match,
        )
        .order_by(_grants.c.id.desc())
    )


# Built once: the gateway asks this on every call. Keyed by (any system, with the day's usage).
_TERMS_STATEMENTS = {
    (any_system, with_usage): _terms_statement(any_system=any_system, with_usage=with_usage)
    for any_system in (True, False)
    for with_usage in (True, False)
}


def grant_terms_in_force(
    session: Session,
    *,
    resource_id: int,
    org_id: int,
    system_id: int | None,
    now: dt.datetime,
    day: dt.date | None = None,
) -> Sequence[Row[Any]]:
    """``grants_in_force`` as plain rows of what the gateway enforces (no ORM objects); with
    ``day``, each row also has the calls and rows used under it that day (``used_calls``,
    ``used_rows``)."""
    params: dict[str, Any] = {"resource_id": resource_id, "org_id": org_id, "now": now}
    if system_id is not None:
        params["sys"] = system_id
    if day is not None:
        params["day"] = day
    stmt = _TERMS_STATEMENTS[(system_id is None, day is not None)]
    return session.connection().execute(stmt, params).all()


# ---------------------------------------------------------------- the gateway's hot path
# Statements built once: they run on every gateway call.

_resources = cast(Table, Resource.__table__)
_ENTRY = select(
    _resources.c.id,
    _resources.c.code,
    _resources.c.status,
    _resources.c.current_version,
    _resources.c.updated_at,
    _resources.c.provider_id,
).where(_resources.c.code == bindparam("code"))


def entry_terms(session: Session, code: str) -> tuple[Any, ...] | None:
    """(id, code, status, current version, updated_at, provider id) of an entry, or None."""
    row = session.connection().execute(_ENTRY, {"code": code}).first()
    return None if row is None else tuple(row)


def items_of(session: Session, resource_id: int) -> Sequence[DataItem]:
    return session.scalars(select(DataItem).where(DataItem.resource_id == resource_id)).all()


def _upsert(insert_fn: Any) -> Any:
    stmt = insert_fn(_usage).values(
        grant_id=bindparam("grant_id"), day=bindparam("day"), calls=1, rows=bindparam("rows")
    )
    return stmt.on_conflict_do_update(
        index_elements=[_usage.c.grant_id, _usage.c.day],
        set_={"calls": _usage.c.calls + 1, "rows": _usage.c.rows + stmt.excluded.rows},
    ).returning(_usage.c.calls, _usage.c.rows)


_ADD_USAGE = {"postgresql": _upsert(pg_insert), "sqlite": _upsert(sqlite_insert)}


def add_usage(session: Session, *, grant_id: int, day: dt.date, rows: int) -> tuple[int, int]:
    """Count one call and ``rows`` rows on ``day`` in one statement; return the new totals."""
    conn = session.connection()
    params = {"grant_id": grant_id, "day": day, "rows": rows}
    calls, total = conn.execute(_ADD_USAGE[conn.dialect.name], params).one()
    return int(calls), int(total)


# ---------------------------------------------------------------- requests


def request_by_id(session: Session, request_id: int) -> AccessRequest | None:
    return session.get(AccessRequest, request_id)


def pending_request(
    session: Session, *, resource_id: int, org_id: int, system_id: int | None
) -> AccessRequest | None:
    """The consumer's pending request for the resource from the same system, if any."""
    system_match: ColumnElement[bool] = (
        AccessRequest.consumer_system_id.is_(None)
        if system_id is None
        else AccessRequest.consumer_system_id == system_id
    )
    return session.scalars(
        select(AccessRequest).where(
            AccessRequest.resource_id == resource_id,
            AccessRequest.consumer_org_id == org_id,
            AccessRequest.status == RequestStatus.PENDING,
            system_match,
        )
    ).first()


def list_requests(
    session: Session,
    *,
    consumer_org_id: int | None = None,
    provider_org_id: int | None = None,
    status: RequestStatus | None = None,
    escalated: bool | None = None,
    limit: int = 200,
) -> Sequence[AccessRequest]:
    """Requests, newest first; each argument left None does not filter."""
    stmt = select(AccessRequest)
    if provider_org_id is not None:
        stmt = stmt.join(Resource, Resource.id == AccessRequest.resource_id).where(
            Resource.provider_id == provider_org_id
        )
    if consumer_org_id is not None:
        stmt = stmt.where(AccessRequest.consumer_org_id == consumer_org_id)
    if status is not None:
        stmt = stmt.where(AccessRequest.status == status)
    if escalated is True:
        stmt = stmt.where(AccessRequest.escalated_at.is_not(None))
    return session.scalars(stmt.order_by(AccessRequest.id.desc()).limit(limit)).all()


def overdue_requests(session: Session, *, today: dt.date) -> Sequence[AccessRequest]:
    """Pending requests past their due day that are not escalated yet, oldest first."""
    return session.scalars(
        select(AccessRequest)
        .where(
            AccessRequest.status == RequestStatus.PENDING,
            AccessRequest.due_on < today,
            AccessRequest.escalated_at.is_(None),
        )
        .order_by(AccessRequest.id)
    ).all()


# ---------------------------------------------------------------- grants


def grant_by_id(session: Session, grant_id: int) -> Grant | None:
    return session.get(Grant, grant_id)


def grant_of_request(session: Session, request_id: int) -> Grant | None:
    return session.scalars(select(Grant).where(Grant.request_id == request_id)).first()


def list_grants(
    session: Session,
    *,
    consumer_org_id: int | None = None,
    provider_org_id: int | None = None,
    either_org_id: int | None = None,
    status: GrantStatus | None = None,
    limit: int = 200,
) -> Sequence[Grant]:
    """Grants, newest first; ``either_org_id``: the org is the consumer or the provider."""
    stmt = select(Grant).join(Resource, Resource.id == Grant.resource_id)
    if consumer_org_id is not None:
        stmt = stmt.where(Grant.consumer_org_id == consumer_org_id)
    if provider_org_id is not None:
        stmt = stmt.where(Resource.provider_id == provider_org_id)
    if either_org_id is not None:
        stmt = stmt.where(
            or_(Grant.consumer_org_id == either_org_id, Resource.provider_id == either_org_id)
        )
    if status is not None:
        stmt = stmt.where(Grant.status == status)
    return session.scalars(stmt.order_by(Grant.id.desc()).limit(limit)).all()


def grants_past_expiry(session: Session, *, now: dt.datetime) -> Sequence[Grant]:
    return session.scalars(
        select(Grant)
        .where(Grant.status == GrantStatus.ACTIVE, Grant.expires_at <= now)
        .order_by(Grant.id)
    ).all()
