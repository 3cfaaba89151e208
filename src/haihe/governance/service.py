"""Grid governance — 网格化治理: who sees an event and who may move it, the chain of command
from a cell up to the city, and the history every change appends to.

Services take the acting principal and keyword-only arguments, flush but never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from haihe.core.auth import Principal, Role
from haihe.core.errors import Conflict, InvalidInput, NotFound
from haihe.governance import categories, lookup
from haihe.governance import repository as repo
from haihe.governance import transitions as flow
from haihe.governance.models import Area, AreaLevel, Category, Event, EventStatus, EventStep, Photo
from haihe.governance.repository import Scope
from haihe.governance.schemas import EventOut, PhotoOut, StepOut, SummonsOut
from haihe.orgs import service as orgs
from haihe.orgs.models import OrgKind

CHINA = ZoneInfo("Asia/Shanghai")
COMMAND_ROLES = (Role.ORG_ADMIN, Role.OPERATOR, Role.OFFICER)
UNIT_ROLES = (Role.ORG_ADMIN, Role.OPERATOR, Role.OFFICER, Role.GRID_WORKER)


def china_day(when: dt.datetime) -> dt.date:
    return when.astimezone(CHINA).date()


# ---------------------------------------------------------------- where a point lies


def place(session: Session, *, lng: float, lat: float) -> lookup.Placement:
    """The cell (and community, street, district) a point lies in; 422 outside every cell."""
    index = lookup.index_for(session)
    if len(index) == 0:
        raise InvalidInput("no grid cells are imported yet (haihe governance grids import)")
    found = index.place(lng, lat)
    if found is None:
        raise InvalidInput(
            f"the point lng={lng}, lat={lat} lies outside every grid cell of this city"
        )
    return found


def place_address(session: Session, *, address: str) -> tuple[Area, lookup.Placement]:
    """The most specific area named in ``address`` and the placement of its centre.

    Addresses are matched against the Chinese names of cells, communities and streets; an
    address naming none of them is refused (send coordinates instead).
    """
    named = repo.areas_named_in(session, address)
    if not named:
        raise InvalidInput(
            f"the address {address!r} names no grid cell, community or street of this city; "
            "send lng/lat instead"
        )
    area = named[0]
    return area, place(session, lng=area.centre_lng, lat=area.centre_lat)


# ---------------------------------------------------------------- who sees and acts


def scope_for(session: Session, actor: Principal) -> Scope:
    """The events ``actor`` sees: everything for the platform admin and auditors; else those in
    its organisation's areas, commanded by, dispatched or summoned to it, in its cells, or its
    own reports."""
    if actor.is_platform_admin or actor.has(Role.AUDITOR):
        return Scope(everything=True)
    area_ids: frozenset[int] = frozenset()
    codes: frozenset[str] = frozenset()
    if actor.org_id is not None and actor.kind != "client":
        area_ids = frozenset(a.id for a in repo.areas_of_org(session, actor.org_id))
        codes = frozenset({actor.org_code}) if actor.org_code else frozenset()
    cells: frozenset[int] = frozenset()
    if actor.kind == "user" and actor.has(Role.GRID_WORKER):
        cells = frozenset(repo.worker_cells(session, actor.id))
    return Scope(
        area_ids=area_ids,
        cell_ids=cells,
        org_codes=codes,
        reporter_user_id=actor.id if actor.kind == "user" else None,
        reporter_client_id=actor.id if actor.kind == "client" else None,
    )


def sees(session: Session, actor: Principal, event: Event) -> bool:
    if (actor.kind == "user" and event.reporter_user_id == actor.id) or (
        actor.kind == "client" and event.reporter_client_id == actor.id
    ):
        return True
    scope = scope_for(session, actor)
    if scope.everything:
        return True
    if {event.district_id, event.street_id, event.community_id} & scope.area_ids:
        return True
    if event.cell_id in scope.cell_ids:
        return True
    if {event.command_code, event.unit_code} & scope.org_codes:
        return True
    return bool(scope.org_codes) and any(
        s.department_code in scope.org_codes for s in repo.summons_of(session, event.id)
    )


def get_event(session: Session, *, actor: Principal, event_id: int, lock: bool = False) -> Event:
    """The event, if ``actor`` may see it; NotFound otherwise (never says it exists)."""
    event = repo.event_by_id(session, event_id, lock=lock)
    if event is None or not sees(session, actor, event):
        raise NotFound(f"event {event_id} does not exist")
    return event


def roles_on(session: Session, actor: Principal, event: Event) -> set[flow.Role]:
    """Which parts ``actor`` plays on ``event``: command centre, handling unit, reporter."""
    if actor.is_platform_admin:
        return set(flow.Role)
    found: set[flow.Role] = set()
    if actor.kind == "user" and actor.org_code:
        if actor.org_code == event.command_code and actor.has(*COMMAND_ROLES):
            found.add(flow.Role.COMMAND)
        if actor.org_code == event.unit_code and actor.has(*UNIT_ROLES):
            found.add(flow.Role.UNIT)
    if (
        actor.kind == "user"
        and actor.has(Role.GRID_WORKER)
        and event.unit_level is AreaLevel.COMMUNITY
        and event.cell_id in repo.worker_cells(session, actor.id)
    ):
        found.add(flow.Role.UNIT)
    if (actor.kind == "user" and event.reporter_user_id == actor.id) or (
        actor.kind == "client" and event.reporter_client_id == actor.id
    ):
        found.add(flow.Role.REPORTER)
    return found


def allowed_for(session: Session, actor: Principal, event: Event) -> list[flow.Action]:
    """The actions ``actor`` may take on ``event`` now."""
    mine = roles_on(session, actor, event)
    return [a for a in flow.allowed_actions(event.status) if flow.TRANSITIONS[a].by in mine]


# ---------------------------------------------------------------- chain of command


def _area_id(event: Event, level: AreaLevel) -> int | None:
    return {
        AreaLevel.CELL: event.cell_id,
        AreaLevel.COMMUNITY: event.community_id,
        AreaLevel.STREET: event.street_id,
        AreaLevel.DISTRICT: event.district_id,
    }.get(level)


def command_org(session: Session, event: Event, level: AreaLevel) -> str:
    """The code of the organisation commanding ``event``'s area at ``level`` (the city's for
    the city); Conflict when no member organisation is linked to that area."""
    if level is AreaLevel.CITY:
        cities, _ = orgs.list_orgs(session, kind=OrgKind.CITY, limit=1)
        if not cities:
            raise Conflict("no city organisation is registered to take escalated events")
        return cities[0].code
    area_id = _area_id(event, level)
    area = lookup.index_for(session).areas.get(area_id) if area_id else None
    if area is None:
        raise Conflict(f"the event lies in no {level.value}")
    if area.org_code is None:
        raise Conflict(
            f"no member organisation is linked to {level.value} {area.code} ({area.name_zh}); "
            "register it (haihe orgs create) and import the grids again"
        )
    return area.org_code


def first_command(session: Session, event: Event, level: AreaLevel) -> tuple[AreaLevel, str]:
    """The command centre at ``level`` or, where that area has no organisation, the first one
    above it (so that an event is never left without someone to handle it)."""
    current: AreaLevel | None = level
    while current is not None:
        try:
            return current, command_org(session, event, current)
        except Conflict:
            current = flow.LEVELS_UP.get(current)
    raise Conflict("no organisation anywhere up the chain of command takes this event")


def append_step(
    session: Session,
    *,
    event: Event,
    actor: Principal,
    action: str,
    old: EventStatus | None,
    note: str | None,
    at: dt.datetime,
    first: bool = False,
) -> EventStep:
    """Add one row to the event's history (never updated afterwards); ``first`` for a new
    event's report, which needs no look at the history."""
    step = EventStep(
        event_id=event.id,
        seq=1 if first else repo.last_seq(session, event.id) + 1,
        action=action,
        from_status=old,
        to_status=event.status,
        level=event.level,
        unit_code=event.unit_code,
        actor_kind=actor.kind,
        actor_name=actor.name,
        actor_org=actor.org_code,
        note=note,
        at=at,
    )
    session.add(step)
    return step


# ---------------------------------------------------------------- describing


def describe(
    session: Session,
    events: Sequence[Event],
    *,
    actor: Principal,
    lang: str = "zh",
    full: bool = False,
    names: dict[str, str] | None = None,
) -> list[EventOut]:
    """API views of ``events``; ``full`` adds photos, history and summons; ``names`` are the
    categories' names when the caller has them."""
    names = dict(names or {})
    for category_code in {e.category_code for e in events} - set(names):
        found = repo.category(session, category_code)
        names[category_code] = categories.name_of(found, lang) if found else category_code
    areas = lookup.index_for(session).areas

    def code(area_id: int | None) -> str | None:
        return areas[area_id].code if area_id in areas else None

    out = []
    for e in events:
        cell = areas.get(e.cell_id)
        community = areas.get(e.community_id) if e.community_id else None
        place_name = " ".join(
            (a.name_en or a.name_zh) if lang == "en" else a.name_zh
            for a in (areas.get(e.street_id or 0), community or cell)
            if a is not None
        )
        view = EventOut(
            id=e.id,
            token=e.token,
            source=e.source,
            category_code=e.category_code,
            category_name=names.get(e.category_code, e.category_code),
            status=e.status,
            description=e.description,
            address=e.address,
            lng=e.lng,
            lat=e.lat,
            cell_code=code(e.cell_id) or "",
            community_code=code(e.community_id),
            street_code=code(e.street_id),
            district_code=code(e.district_id),
            place_name=place_name,
            level=e.level,
            command_code=e.command_code,
            unit_code=e.unit_code,
            unit_level=e.unit_level,
            due_at=e.due_at,
            overdue=e.overdue,
            supervised=e.supervised,
            rating=e.rating,
            feedback=e.feedback,
            reopened=e.reopened,
            created_at=e.created_at,
            updated_at=e.updated_at,
            resolved_at=e.resolved_at,
            closed_at=e.closed_at,
            allowed_actions=[a.value for a in allowed_for(session, actor, e)],
        )
        if full:
            view.photos = [photo_out(p) for p in repo.photos_of(session, e.id)]
            view.history = [StepOut.model_validate(s) for s in repo.steps_of(session, e.id)]
            view.summons = [SummonsOut.model_validate(s) for s in repo.summons_of(session, e.id)]
        out.append(view)
    return out


def photo_out(p: Photo) -> PhotoOut:
    return PhotoOut(
        id=p.id,
        url=f"/api/v1/governance/photos/{p.id}",
        media_type=p.media_type,
        bytes=p.bytes,
        width=p.width,
        height=p.height,
    )


def describe_new(
    session: Session,
    event: Event,
    *,
    actor: Principal,
    category: Category,
    step: EventStep,
    photos: Sequence[Photo],
    lang: str = "zh",
) -> EventOut:
    """The full view of an event just reported in this transaction: its history is its report
    step, its photos those just stored, no summons yet (no need to read them back)."""
    names = {category.code: categories.name_of(category, lang)}
    view = describe(session, [event], actor=actor, lang=lang, names=names)[0]
    view.history = [StepOut.model_validate(step)]
    view.photos = [photo_out(p) for p in photos]
    return view
