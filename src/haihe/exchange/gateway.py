"""The query gateway — 查询网关: records of a published resource, under the caller's grant.

Every call is checked against the caller's grant in force for ``query``: the items asked for and
filtered on must be granted (otherwise 403 naming them, and nothing is returned); rows must meet
the grant's row scope and the caller's filters; personal and sensitive items are masked unless the
grant names them unmasked; the grant's daily quotas (Asia/Shanghai days) are counted. Every call
is recorded in the audit ledger — a refused one too, in a fresh transaction after the request's
own rolls back. Rows come from the version's indexed row store (``engine.rowstore``), built lazily
for versions loaded before it existed.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from haihe.audit import service as audit
from haihe.catalogue.models import ItemKind, ResourceStatus, Sensitivity
from haihe.catalogue.models import SharingMode as Mode
from haihe.core.auth import Principal
from haihe.core.db import on_rollback
from haihe.core.errors import Conflict, Forbidden, HaiheError, InvalidInput, NotFound, RateLimited
from haihe.core.masking import mask_values, pseudonymise
from haihe.core.settings import Settings
from haihe.engine import make_rowstore, make_store
from haihe.engine.rowstore import RowTable
from haihe.exchange import repository, service
from haihe.exchange.scope import Condition, check_conditions, parse_conditions, where_sql
from haihe.exchange.service import GrantTerms
from haihe.orgs.models import Organisation

ACTION = "exchange.query"
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
QUOTA_ZONE = ZoneInfo("Asia/Shanghai")
SENSITIVE = frozenset({Sensitivity.L3, Sensitivity.L4})


@dataclass
class Records:
    """One page of records: what was asked, what came back, and where the next page starts."""

    resource: str
    version: int
    items: list[str]
    masked: list[str]
    records: list[dict[str, Any]]
    next: str | None
    request_id: str
    grant_id: int = 0
    subjects: list[str] = field(default_factory=list, repr=False)


def query_records(
    session: Session,
    *,
    actor: Principal,
    settings: Settings,
    code: str,
    items: Sequence[str] | None = None,
    filters: Iterable[Condition | Mapping[str, Any]] = (),
    after: str | None = None,
    limit: int = DEFAULT_LIMIT,
    request_id: str,
) -> Records:
    """Return a page of resource ``code``'s records for ``actor`` under its query grant.

    ``items`` default to every granted item; ``filters`` are conditions on granted items;
    ``after`` is the ``next`` cursor of the previous page. Raises NotFound for an unpublished
    resource or one without data, Forbidden (403) without a grant or for items outside it,
    RateLimited (429, ``retry_after`` to the next midnight in Shanghai) over a daily quota,
    InvalidInput for bad filters or cursors. Refusals are audited even though the caller's
    transaction rolls back. Flushes, never commits.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", details={"limit": limit})
    found = repository.entry_terms(session, code)
    resource = _Entry(*found) if found is not None else None
    if resource is None or resource.status != ResourceStatus.PUBLISHED.value:
        raise NotFound(f"no published catalogue entry {code!r}")
    shape = _shape_of(session, resource)
    call = _Call(actor=actor, code=code, provider=shape.provider)
    call.asked = list(items or [])
    call.request_id = request_id
    try:
        return _serve(session, call, settings, resource, shape, items, filters, after, limit)
    except (Forbidden, RateLimited) as exc:
        on_rollback(session, call.refusal(exc))
        raise


@dataclass(frozen=True)
class _Entry:
    """What a call needs of the catalogue entry."""

    id: int
    code: str
    status: str
    current_version: int | None
    updated_at: dt.datetime
    provider_id: int


@dataclass(frozen=True)
class _Item:
    """What the gateway needs of a data item."""

    name: str
    type: str
    kind: ItemKind
    personal: bool
    masked: bool  # masked unless the grant names it unmasked
    is_key: bool


@dataclass(frozen=True)
class _Shape:
    """A resource's items by name and its provider's code."""

    items: dict[str, _Item]
    provider: str | None


_SHAPES: dict[tuple[int, dt.datetime], _Shape] = {}
_MAX_SHAPES = 1024


def _shape_of(session: Session, resource: _Entry) -> _Shape:
    """Return the resource's items and provider code, kept per process until the entry changes.

    Every change to an entry moves its ``updated_at``, so the key never serves stale items;
    this spares two queries (items, provider) on each gateway call.
    """
    key = (resource.id, resource.updated_at)
    shape = _SHAPES.get(key)
    if shape is None:
        provider = session.get(Organisation, resource.provider_id)
        items = {
            i.name: _Item(
                name=i.name,
                type=i.type,
                kind=i.kind,
                personal=i.personal,
                masked=i.personal or i.sensitivity in SENSITIVE,
                is_key=i.is_key,
            )
            for i in repository.items_of(session, resource.id)
        }
        shape = _Shape(items=items, provider=provider.code if provider else None)
        if len(_SHAPES) >= _MAX_SHAPES:
            _SHAPES.clear()
        _SHAPES[key] = shape
    return shape


@dataclass
class _Call:
    """What the audit entry of a call needs, filled in as the call goes."""

    actor: Principal
    code: str
    provider: str | None
    asked: list[str] = field(default_factory=list)
    request_id: str = ""
    grant: GrantTerms | None = None

    def refusal(self, exc: HaiheError) -> Any:
        purpose = self.grant.purpose if self.grant is not None else None
        detail = {"status": exc.status, "code": exc.code, "reason": exc.message}
        if self.grant is not None:
            detail["grant_id"] = self.grant.id

        def record(after: Session) -> None:
            audit.record(
                after,
                actor=self.actor,
                action=ACTION,
                outcome="refused",
                resource_code=self.code,
                provider_code=self.provider,
                items=self.asked,
                purpose=purpose,
                mode=Mode.QUERY.value,
                request_id=self.request_id,
                detail=detail,
            )

        return record


def _serve(
    session: Session,
    call: _Call,
    settings: Settings,
    resource: _Entry,
    shape: _Shape,
    items: Sequence[str] | None,
    filters: Iterable[Condition | Mapping[str, Any]],
    after: str | None,
    limit: int,
) -> Records:
    day = dt.datetime.now(QUOTA_ZONE).date()
    grant = call.grant = service.grant_terms_for(
        session,
        actor=call.actor,
        resource_id=resource.id,
        resource_code=resource.code,
        mode=Mode.QUERY,
        day=day,
    )
    by_name = shape.items
    granted = [name for name in by_name if name in grant.items]
    wanted = list(dict.fromkeys(items)) if items else granted
    call.asked = wanted
    conditions = parse_conditions(filters)
    _check_granted(resource, by_name, grant, wanted, conditions)
    types = {name: item.type for name, item in by_name.items()}
    checked = check_conditions([*grant.scope, *conditions], types)
    if resource.current_version is None:
        raise NotFound(f"{resource.code} has no data loaded yet")
    room = _quota_room(grant)
    table = _row_table(settings, resource, by_name)
    position = _position(after, table)
    ids = [n for n, item in by_name.items() if item.kind is ItemKind.ID_NUMBER]
    columns = list(dict.fromkeys([*wanted, *ids]))
    sql, params = where_sql(checked)
    page = table.query(
        columns=columns, where=sql, params=params, after=position, limit=min(limit, room)
    )
    records, masked = _records(page.rows, columns, wanted, by_name, grant)
    subjects = _subjects(settings, page.rows, [columns.index(n) for n in ids])
    more = len(page.rows) == min(limit, room) and page.last is not None
    # the writes come last: on SQLite the first one takes the write lock until the commit
    _count(session, grant, day, rows=len(page.rows))
    audit.record(
        session,
        actor=call.actor,
        action=ACTION,
        resource_code=resource.code,
        provider_code=call.provider,
        items=wanted,
        purpose=grant.purpose,
        mode=Mode.QUERY.value,
        rows=len(records),
        subjects=subjects,
        personal=any(by_name[n].personal for n in wanted),
        request_id=call.request_id,
        detail={"grant_id": grant.id, "version": table.version},
    )
    return Records(
        resource=resource.code,
        version=table.version,
        items=wanted,
        masked=masked,
        records=records,
        next=_cursor(table.version, page.last) if more else None,
        request_id=call.request_id,
        grant_id=grant.id,
        subjects=subjects,
    )


def _check_granted(
    resource: _Entry,
    by_name: Mapping[str, _Item],
    grant: GrantTerms,
    wanted: Sequence[str],
    conditions: Sequence[Condition],
) -> None:
    """Refuse, naming them, items the resource lacks (422) or the grant does not cover (403)."""
    named = list(dict.fromkeys([*wanted, *(c.item for c in conditions)]))
    unknown = [n for n in named if n not in by_name]
    if unknown:
        raise InvalidInput(
            f"{resource.code} has no item {', '.join(unknown)}", details={"items": unknown}
        )
    outside = [n for n in wanted if n not in grant.items]
    if outside:
        raise Forbidden(
            f"the grant does not cover the items {', '.join(outside)}",
            details={"items": outside, "grant_id": grant.id},
        )
    unfiltered = [c.item for c in conditions if c.item not in grant.items]
    if unfiltered:
        raise Forbidden(
            f"filters may use only granted items, not {', '.join(dict.fromkeys(unfiltered))}",
            details={"items": list(dict.fromkeys(unfiltered)), "grant_id": grant.id},
        )


def _row_table(settings: Settings, resource: _Entry, by_name: Mapping[str, _Item]) -> RowTable:
    """Return the current version's row store, building it first for versions without one."""
    version = resource.current_version
    assert version is not None  # checked by the caller
    rowstore = make_rowstore(settings)
    try:
        return rowstore.open(resource.code, version)
    except NotFound:
        store = make_store(settings)
        rowstore.ensure(
            store,
            store.manifest(resource.code, version),
            keys=[n for n, item in by_name.items() if item.is_key],
            indexed=[n for n, item in by_name.items() if item.kind is ItemKind.ID_NUMBER],
        )
    return rowstore.open(resource.code, version)


# ---------------------------------------------------------------- quotas


def seconds_to_midnight(now: dt.datetime | None = None) -> int:
    """Return the whole seconds from ``now`` to the next midnight in Asia/Shanghai (at least 1)."""
    local = (now or dt.datetime.now(dt.UTC)).astimezone(QUOTA_ZONE)
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), QUOTA_ZONE)
    return max(1, math.ceil((midnight - local).total_seconds()))


def _quota_room(grant: GrantTerms) -> int:
    """Return how many rows the grant may still get today (its terms carry today's usage);
    RateLimited when nothing is left."""
    if grant.calls_per_day is None and grant.rows_per_day is None:
        return MAX_LIMIT
    assert grant.used_calls is not None, "the gateway reads the terms with the day's usage"
    assert grant.used_rows is not None, "the gateway reads the terms with the day's usage"
    calls, rows = grant.used_calls, grant.used_rows
    if grant.calls_per_day is not None and calls >= grant.calls_per_day:
        _over(f"the grant's {grant.calls_per_day} calls for today are used up", grant)
    if grant.rows_per_day is None:
        return MAX_LIMIT
    if rows >= grant.rows_per_day:
        _over(f"the grant's {grant.rows_per_day} rows for today are used up", grant)
    return min(MAX_LIMIT, grant.rows_per_day - rows)


def _count(session: Session, grant: GrantTerms, day: dt.date, *, rows: int) -> None:
    """Add one call and ``rows`` rows to today's usage; RateLimited if a racing call took the
    last of the quota first (the caller's transaction then rolls back both)."""
    if grant.calls_per_day is None and grant.rows_per_day is None:
        return  # nothing to enforce; the ledger keeps the statistics
    calls, total = repository.add_usage(session, grant_id=grant.id, day=day, rows=rows)
    if grant.calls_per_day is not None and calls > grant.calls_per_day:
        _over(f"the grant's {grant.calls_per_day} calls for today are used up", grant)
    if grant.rows_per_day is not None and total > grant.rows_per_day:
        _over(f"the grant's {grant.rows_per_day} rows for today are used up", grant)


def _over(message: str, grant: GrantTerms) -> None:
    raise RateLimited(
        f"{message}; try again after midnight (Asia/Shanghai)",
        retry_after=seconds_to_midnight(),
        details={"grant_id": grant.id},
    )


# ---------------------------------------------------------------- records


def _records(
    rows: Sequence[tuple[Any, ...]],
    columns: Sequence[str],
    wanted: Sequence[str],
    by_name: Mapping[str, _Item],
    grant: GrantTerms,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Return the rows as objects of the wanted items, masked where due, and the masked items."""
    unmasked = set(grant.unmasked_items)
    masked = [n for n in wanted if by_name[n].masked and n not in unmasked]
    values: dict[str, list[Any]] = {}
    for name in wanted:
        column = [row[columns.index(name)] for row in rows]
        values[name] = mask_values(column, by_name[name].kind) if name in masked else column
    records = [{name: values[name][i] for name in wanted} for i in range(len(rows))]
    return records, masked


def _subjects(settings: Settings, rows: Sequence[tuple[Any, ...]], at: Sequence[int]) -> list[str]:
    """Return the keyed pseudonyms of the ID numbers in the rows (the persons whose data went).

    ID numbers are normalised when they are loaded, so the stored value is the one to key.
    """
    if not at or not rows:
        return []
    key = settings.secret_key_bytes()
    found = {row[i] for row in rows for i in at if isinstance(row[i], str) and row[i]}
    return sorted(pseudonymise(key, value) for value in found)


# ---------------------------------------------------------------- cursors


def _cursor(version: int, last: Sequence[Any] | None) -> str:
    """Return the opaque cursor of a position: version and the last row's keys, base64url."""
    raw = json.dumps([version, list(last or [])], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _position(after: str | None, table: RowTable) -> list[Any] | None:
    """Return the keyset position of a cursor; InvalidInput or Conflict when it cannot serve."""
    if not after:
        return None
    try:
        raw = base64.urlsafe_b64decode(after + "=" * (-len(after) % 4))
        version, last = json.loads(raw)
        valid = isinstance(version, int) and isinstance(last, list)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        valid = False
    if not valid or len(last) != max(1, len(table.keys)):
        raise InvalidInput("the `after` cursor is not one this gateway gave", details=None)
    if version != table.version and not table.keys:
        raise Conflict(
            f"{table.code} has a new version ({table.version}) and no key items to carry the "
            "position over; start again without `after`"
        )
    return list(last)
