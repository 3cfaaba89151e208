"""Every query grid governance runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, delete, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from haihe.governance.models import (
    Area,
    AreaLevel,
    Category,
    CellWorker,
    Event,
    EventStatus,
    EventStep,
    GridRevision,
    Notification,
    Open311Key,
    Photo,
    Summons,
    SummonsStatus,
    Whistle,
)
from haihe.orgs.models import ApiClient, Organisation

# ---------------------------------------------------------------- grid map


def grid_revision(session: Session) -> str:
    """The grid map's revision, with the moment it was made ("0" before any import): the moment
    tells apart two maps that reached the same number (a database emptied and imported again)."""
    row = session.execute(
        select(GridRevision.revision, GridRevision.updated_at).where(GridRevision.id == 1)
    ).first()
    return f"{row[0]}@{row[1].isoformat()}" if row else "0"


def bump_grid_revision(session: Session, now: dt.datetime) -> int:
    row = session.get(GridRevision, 1, with_for_update=True)
    if row is None:
        row = GridRevision(id=1, revision=0)
        session.add(row)
    row.revision += 1
    row.updated_at = now
    session.flush()
    session.info.pop("governance_index", None)  # this transaction's index is out of date
    return row.revision


def cell_shapes(session: Session) -> Sequence[Any]:
    stmt = (
        select(
            Area.id,
            Area.code,
            Area.community_id,
            Area.street_id,
            Area.district_id,
            Area.geometry,
        )
        .where(Area.level == AreaLevel.CELL)
        .order_by(Area.id)
    )
    return session.execute(stmt).all()


def area_facts(session: Session) -> Sequence[Any]:
    """(id, code, name_zh, name_en, commanding organisation's code) of every area."""
    stmt = select(Area.id, Area.code, Area.name_zh, Area.name_en, Organisation.code).outerjoin(
        Organisation, Organisation.id == Area.org_id
    )
    return session.execute(stmt).all()


def area_by_code(session: Session, code: str) -> Area | None:
    return session.scalars(select(Area).where(Area.code == code)).first()


def area_by_id(session: Session, area_id: int) -> Area | None:
    return session.get(Area, area_id)


def areas_by_codes(session: Session, codes: Iterable[str]) -> dict[str, Area]:
    wanted = list(set(codes))
    found: dict[str, Area] = {}
    for at in range(0, len(wanted), 900):
        chunk = wanted[at : at + 900]
        found.update({a.code: a for a in session.scalars(select(Area).where(Area.code.in_(chunk)))})
    return found


def areas_by_ids(session: Session, ids: Iterable[int]) -> dict[int, Area]:
    wanted = [i for i in set(ids) if i is not None]
    if not wanted:
        return {}
    return {a.id: a for a in session.scalars(select(Area).where(Area.id.in_(wanted)))}


def areas_of_org(session: Session, org_id: int) -> Sequence[Area]:
    return session.scalars(select(Area).where(Area.org_id == org_id)).all()


def list_areas(
    session: Session,
    *,
    level: AreaLevel | None,
    parent_id: int | None,
    q: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Area], int]:
    stmt = select(Area)
    if level is not None:
        stmt = stmt.where(Area.level == level)
    if parent_id is not None:
        stmt = stmt.where(Area.parent_id == parent_id)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(Area.code.ilike(like), Area.name_zh.ilike(like)))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Area.code).limit(limit).offset(offset)).all()
    return rows, total


def count_areas(session: Session) -> dict[str, int]:
    rows = session.execute(select(Area.level, func.count()).group_by(Area.level)).all()
    return {level.value: n for level, n in rows}


def areas_named_in(session: Session, text: str) -> Sequence[Area]:
    """Cells, communities and streets whose Chinese name occurs in ``text``, most specific and
    longest name first."""
    rank = case(
        (Area.level == AreaLevel.CELL, 0),
        (Area.level == AreaLevel.COMMUNITY, 1),
        else_=2,
    )
    stmt = (
        select(Area)
        .where(
            Area.level.in_([AreaLevel.CELL, AreaLevel.COMMUNITY, AreaLevel.STREET]),
            literal(text).contains(Area.name_zh),
        )
        .order_by(rank, func.length(Area.name_zh).desc(), Area.code)
        .limit(5)
    )
    return session.scalars(stmt).all()


def area_shapes(session: Session, level: AreaLevel, parent_id: int | None) -> Sequence[Area]:
    stmt = select(Area).where(Area.level == level)
    if parent_id is not None:
        stmt = stmt.where(or_(Area.parent_id == parent_id, Area.street_id == parent_id))
    return session.scalars(stmt.order_by(Area.code)).all()


# ---------------------------------------------------------------- grid workers


def worker_cells(session: Session, user_id: int) -> list[int]:
    stmt = select(CellWorker.cell_id).where(CellWorker.user_id == user_id)
    return list(session.scalars(stmt))


def cell_workers(session: Session, cell_id: int) -> list[int]:
    return list(session.scalars(select(CellWorker.user_id).where(CellWorker.cell_id == cell_id)))


def assignment(session: Session, cell_id: int, user_id: int) -> CellWorker | None:
    return session.get(CellWorker, (cell_id, user_id))


def unassign(session: Session, cell_id: int, user_id: int) -> int:
    result = session.execute(
        delete(CellWorker).where(CellWorker.cell_id == cell_id, CellWorker.user_id == user_id)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# ---------------------------------------------------------------- categories


def category(session: Session, code: str) -> Category | None:
    return session.get(Category, code)


def categories(session: Session, *, active_only: bool) -> Sequence[Category]:
    stmt = select(Category)
    if active_only:
        stmt = stmt.where(Category.active.is_(True))
    return session.scalars(stmt.order_by(Category.code)).all()


# ---------------------------------------------------------------- events


def event_by_id(session: Session, event_id: int, *, lock: bool = False) -> Event | None:
    return session.get(Event, event_id, with_for_update=lock or None)


def event_by_token(session: Session, token: str) -> Event | None:
    return session.scalars(select(Event).where(Event.token == token)).first()


@dataclass(frozen=True)
class Scope:
    """Which events a caller sees: all, or those touching its areas, cells, codes or reports."""

    everything: bool = False
    area_ids: frozenset[int] = frozenset()
    cell_ids: frozenset[int] = frozenset()
    org_codes: frozenset[str] = frozenset()
    reporter_user_id: int | None = None
    reporter_client_id: int | None = None

    def clause(self) -> ColumnElement[bool] | None:
        if self.everything:
            return None
        parts: list[ColumnElement[bool]] = []
        if self.area_ids:
            ids = list(self.area_ids)
            parts += [
                Event.district_id.in_(ids),
                Event.street_id.in_(ids),
                Event.community_id.in_(ids),
            ]
        if self.cell_ids:
            parts.append(Event.cell_id.in_(list(self.cell_ids)))
        if self.org_codes:
            codes = list(self.org_codes)
            summoned = select(Summons.event_id).where(Summons.department_code.in_(codes))
            parts += [
                Event.command_code.in_(codes),
                Event.unit_code.in_(codes),
                Event.id.in_(summoned),
            ]
        if self.reporter_user_id is not None:
            parts.append(Event.reporter_user_id == self.reporter_user_id)
        if self.reporter_client_id is not None:
            parts.append(Event.reporter_client_id == self.reporter_client_id)
        return or_(*parts) if parts else literal(False)


@dataclass(frozen=True)
class EventFilter:
    statuses: tuple[EventStatus, ...] = ()
    category_codes: tuple[str, ...] = ()
    ids: tuple[int, ...] = ()
    area_id: int | None = None
    command_code: str | None = None
    unit_code: str | None = None
    overdue: bool | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    extra: list[ColumnElement[bool]] = field(default_factory=list)


def list_events(
    session: Session,
    *,
    scope: Scope,
    where: EventFilter,
    order: str = "newest",
    limit: int,
    offset: int,
    count: bool = True,
) -> tuple[Sequence[Event], int]:
    stmt = select(Event)
    visible = scope.clause()
    if visible is not None:
        stmt = stmt.where(visible)
    if where.statuses:
        stmt = stmt.where(Event.status.in_(where.statuses))
    if where.category_codes:
        stmt = stmt.where(Event.category_code.in_(where.category_codes))
    if where.ids:
        stmt = stmt.where(Event.id.in_(where.ids))
    if where.area_id is not None:
        a = where.area_id
        stmt = stmt.where(
            or_(
                Event.cell_id == a,
                Event.community_id == a,
                Event.street_id == a,
                Event.district_id == a,
            )
        )
    if where.command_code is not None:
        stmt = stmt.where(Event.command_code == where.command_code)
    if where.unit_code is not None:
        stmt = stmt.where(Event.unit_code == where.unit_code)
    if where.overdue is not None:
        stmt = stmt.where(Event.overdue.is_(where.overdue))
    if where.created_from is not None:
        stmt = stmt.where(Event.created_at >= where.created_from)
    if where.created_to is not None:
        stmt = stmt.where(Event.created_at <= where.created_to)
    for extra in where.extra:
        stmt = stmt.where(extra)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0 if count else 0
    ordering = {
        "newest": (Event.created_at.desc(), Event.id.desc()),
        "oldest": (Event.created_at.asc(), Event.id.asc()),
        "due": (Event.due_at.asc(), Event.id.asc()),
    }[order]
    rows = session.scalars(stmt.order_by(*ordering).limit(limit).offset(offset)).all()
    return rows, total


def insert_events(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert events in bulk; their new ids, in the order given."""
    stmt = insert(Event).returning(Event.id, sort_by_parameter_order=True)
    return list(session.scalars(stmt, list(rows)))


def insert_steps(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert history steps in bulk."""
    if rows:
        session.execute(insert(EventStep), list(rows))


def steps_of(session: Session, event_id: int) -> Sequence[EventStep]:
    stmt = select(EventStep).where(EventStep.event_id == event_id).order_by(EventStep.seq)
    return session.scalars(stmt).all()


def last_seq(session: Session, event_id: int) -> int:
    return (
        session.scalar(select(func.max(EventStep.seq)).where(EventStep.event_id == event_id)) or 0
    )


def photos_of(session: Session, event_id: int) -> Sequence[Photo]:
    stmt = select(Photo).where(Photo.event_id == event_id).order_by(Photo.id)
    return session.scalars(stmt).all()


def photo_by_id(session: Session, photo_id: int) -> Photo | None:
    return session.get(Photo, photo_id)


def first_photos(session: Session, event_ids: Sequence[int]) -> dict[int, int]:
    if not event_ids:
        return {}
    stmt = (
        select(Photo.event_id, func.min(Photo.id))
        .where(Photo.event_id.in_(event_ids))
        .group_by(Photo.event_id)
    )
    return {e: p for e, p in session.execute(stmt).all()}


def whistles_of(session: Session, event_id: int) -> Sequence[Whistle]:
    stmt = select(Whistle).where(Whistle.event_id == event_id).order_by(Whistle.id)
    return session.scalars(stmt).all()


def summons_of(session: Session, event_id: int) -> Sequence[Summons]:
    stmt = select(Summons).where(Summons.event_id == event_id).order_by(Summons.id)
    return session.scalars(stmt).all()


def summons_by_id(session: Session, summons_id: int, *, lock: bool = False) -> Summons | None:
    return session.get(Summons, summons_id, with_for_update=lock or None)


def open_summons(session: Session, *, department_code: str | None, limit: int) -> Sequence[Summons]:
    stmt = select(Summons).where(Summons.status == SummonsStatus.SUMMONED)
    if department_code is not None:
        stmt = stmt.where(Summons.department_code == department_code)
    return session.scalars(stmt.order_by(Summons.due_at).limit(limit)).all()


# ---------------------------------------------------------------- deadlines


def events_due_before(
    session: Session, *, statuses: Iterable[EventStatus], before: dt.datetime, limit: int
) -> Sequence[Event]:
    """Live events due before ``before`` not yet reminded (oldest deadline first), locked."""
    stmt = (
        select(Event)
        .where(
            Event.status.in_(list(statuses)),
            Event.due_at <= before,
            Event.reminded_at.is_(None),
        )
        .order_by(Event.due_at)
        .limit(limit)
    )
    return session.scalars(_skip_locked(session, stmt)).all()


def events_past(
    session: Session,
    *,
    statuses: Iterable[EventStatus],
    before: dt.datetime,
    flag: str,
    limit: int,
) -> Sequence[Event]:
    """Live events whose deadline passed before ``before`` and whose ``flag`` is still unset."""
    column = Event.overdue if flag == "overdue" else Event.supervised
    stmt = (
        select(Event)
        .where(Event.status.in_(list(statuses)), Event.due_at <= before, column.is_(False))
        .order_by(Event.due_at)
        .limit(limit)
    )
    return session.scalars(_skip_locked(session, stmt)).all()


def summons_past(
    session: Session, *, before: dt.datetime, flag: str, limit: int
) -> Sequence[Summons]:
    columns = {
        "reminded": Summons.reminded_at.is_(None),
        "overdue": Summons.overdue.is_(False),
        "supervised": Summons.supervised.is_(False),
    }
    stmt = (
        select(Summons)
        .where(Summons.status == SummonsStatus.SUMMONED, Summons.due_at <= before, columns[flag])
        .order_by(Summons.due_at)
        .limit(limit)
    )
    return session.scalars(_skip_locked(session, stmt)).all()


def _skip_locked(session: Session, stmt: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update(skip_locked=True)
    return stmt


# ---------------------------------------------------------------- notifications


def notifications_for(
    session: Session, *, org_codes: Sequence[str] | None, limit: int
) -> Sequence[Notification]:
    stmt = select(Notification)
    if org_codes is not None:
        stmt = stmt.where(Notification.org_code.in_(org_codes))
    return session.scalars(stmt.order_by(Notification.id.desc()).limit(limit)).all()


def notifications_of_event(session: Session, event_id: int) -> Sequence[Notification]:
    stmt = select(Notification).where(Notification.event_id == event_id)
    return session.scalars(stmt.order_by(Notification.id)).all()


# ---------------------------------------------------------------- Open311 keys


def open311_key(session: Session, key_hash: str) -> Open311Key | None:
    return session.scalars(select(Open311Key).where(Open311Key.key_hash == key_hash)).first()


def open311_keys(session: Session) -> Sequence[Open311Key]:
    return session.scalars(select(Open311Key).order_by(Open311Key.id)).all()


def api_client(session: Session, client_id: int) -> ApiClient | None:
    """The orgs API client a key stands for (read by primary key)."""
    return session.get(ApiClient, client_id)


def touch_open311_key(session: Session, key_id: int, now: dt.datetime) -> None:
    session.execute(update(Open311Key).where(Open311Key.id == key_id).values(last_used_at=now))


# ---------------------------------------------------------------- statistics snapshot

# The columns of an event the statistics read (snapshot.py derives the rest from them).
SNAPSHOT_COLUMNS = (
    Event.id,
    Event.created_at,
    Event.district_id,
    Event.street_id,
    Event.community_id,
    Event.cell_id,
    Event.category_code,
    Event.source,
    Event.status,
    Event.overdue,
    Event.due_at,
    Event.resolved_at,
    Event.rating,
)


def changed_events(
    session: Session, *, since: dt.datetime | None, after_id: int, limit: int
) -> Sequence[Any]:
    """Up to ``limit`` events written at or after ``since`` (all when None) with an id above
    ``after_id``, in id order: one page of a snapshot read."""
    stmt = select(*SNAPSHOT_COLUMNS).where(Event.id > after_id)
    if since is not None:
        stmt = stmt.where(Event.changed_at >= since)
    # Core rows through the session's connection: no ORM machinery for a plain read
    return session.connection().execute(stmt.order_by(Event.id).limit(limit)).all()


def cell_centres(session: Session) -> Sequence[Any]:
    """(id, code, centre lng, centre lat, district id, street id) of every grid cell."""
    stmt = select(
        Area.id, Area.code, Area.centre_lng, Area.centre_lat, Area.district_id, Area.street_id
    ).where(Area.level == AreaLevel.CELL)
    return session.execute(stmt).all()
