"""Event intake — 事件上报: check, place in its cell, community, street and district, route to
its category's command centre with a deadline, and keep photos and history."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from haihe.audit import service as audit
from haihe.core.auth import Principal, Role
from haihe.core.db import utcnow
from haihe.core.errors import Forbidden, InvalidInput
from haihe.core.settings import Settings
from haihe.governance import categories, photos, service
from haihe.governance import repository as repo
from haihe.governance.models import Category, Event, EventSource, EventStatus, EventStep, Photo
from haihe.governance.schemas import EventIn

# Sources an organisation's systems (API clients and staff) may report for.
SYSTEM_SOURCES = frozenset(
    {EventSource.HOTLINE_12345, EventSource.SENSOR, EventSource.PLATFORM, EventSource.RESIDENT}
)


def default_source(actor: Principal) -> EventSource:
    if actor.kind == "user" and actor.has(Role.GRID_WORKER):
        return EventSource.GRID_WORKER
    if actor.kind == "user" and actor.has(Role.RESIDENT) and actor.org_id is None:
        return EventSource.RESIDENT
    return EventSource.PLATFORM


def _check_source(actor: Principal, source: EventSource) -> None:
    if actor.is_platform_admin:
        return
    if source is EventSource.GRID_WORKER and not actor.has(Role.GRID_WORKER):
        raise Forbidden("only grid workers report patrol events (source grid_worker)")
    if actor.kind == "user" and actor.org_id is None and source is not EventSource.RESIDENT:
        raise Forbidden("residents report as source resident")
    if source is not EventSource.GRID_WORKER and actor.org_id is not None:
        if source not in SYSTEM_SOURCES:
            raise Forbidden(f"source {source.value} is not for this caller")


@dataclass(frozen=True)
class Reported:
    """A new event with what was written beside it: its first history step and its photos."""

    event: Event
    category: Category
    step: EventStep
    photos: list[Photo]


def report_event(
    session: Session,
    *,
    actor: Principal,
    settings: Settings,
    data: EventIn,
    files: Sequence[tuple[str, bytes]] = (),
    source: EventSource | None = None,
    at: dt.datetime | None = None,
) -> Event:
    """A new event, placed and routed; 422 (nothing kept) for an unknown category, a point
    outside every grid cell, or a photo that is not an image or too big."""
    return take(
        session, actor=actor, settings=settings, data=data, files=files, source=source, at=at
    ).event


def take(
    session: Session,
    *,
    actor: Principal,
    settings: Settings,
    data: EventIn,
    files: Sequence[tuple[str, bytes]] = (),
    source: EventSource | None = None,
    at: dt.datetime | None = None,
) -> Reported:
    """``report_event``, answering what it wrote as well (for describing it at once)."""
    category = categories.get_category(session, code=data.category_code)
    if len(files) > settings.governance_photos_per_event:
        raise InvalidInput(
            f"at most {settings.governance_photos_per_event} photos per event, not {len(files)}"
        )
    checked = [photos.check_photo(body, settings=settings, name=name) for name, body in files]
    chosen = source or data.source or default_source(actor)
    _check_source(actor, chosen)
    lng, lat, address = data.lng, data.lat, data.address
    if lng is not None and lat is not None:
        placement = service.place(session, lng=lng, lat=lat)
    elif lng is not None or lat is not None:
        raise InvalidInput("give both lng and lat, or an address")
    elif address:
        area, placement = service.place_address(session, address=address)
        lng, lat = area.centre_lng, area.centre_lat
    else:
        raise InvalidInput("give the location: lng and lat (WGS 84), or an address")
    now = at or utcnow()
    event = Event(
        token=secrets.token_urlsafe(12),
        source=chosen,
        category_code=category.code,
        status=EventStatus.REPORTED,
        description=data.description,
        address=address,
        lng=lng,
        lat=lat,
        cell_id=placement.cell_id,
        community_id=placement.community_id,
        street_id=placement.street_id,
        district_id=placement.district_id,
        level=category.level,
        reporter_user_id=actor.id if actor.kind == "user" else None,
        reporter_client_id=actor.id if actor.kind == "client" else None,
        reporter_name=data.reporter_name,
        reporter_contact=data.reporter_contact,
        external_id=data.external_id,
        due_at=categories.due_at(session, category, now),
        overdue=False,
        supervised=False,
        reopened=0,
        created_at=now,
        updated_at=now,
    )
    if event.street_id is None or event.district_id is None:
        raise InvalidInput(f"grid cell {placement.cell_code} is not inside a street and district")
    event.level, event.command_code = service.first_command(session, event, category.level)
    session.add(event)
    session.flush()
    step = service.append_step(
        session, event=event, actor=actor, action="report", old=None, note=None, at=now, first=True
    )
    stored = [
        photos.store_photo(session, settings=settings, event_id=event.id, photo=photo)
        for photo in checked
    ]
    audit.record(
        session,
        actor=actor,
        action="governance.event.report",
        detail={
            "event_id": event.id,
            "category": category.code,
            "cell": placement.cell_code,
            "source": chosen.value,
            "photos": len(checked),
        },
    )
    return Reported(event, category, step, stored)


def add_photos(
    session: Session,
    *,
    actor: Principal,
    settings: Settings,
    event_id: int,
    files: Sequence[tuple[str, bytes]],
) -> Event:
    """Add photos to an open event (its reporter, command centre or unit); 422 keeps nothing."""
    event = service.get_event(session, actor=actor, event_id=event_id, lock=True)
    if not service.roles_on(session, actor, event):
        raise Forbidden("only the reporter, the command centre or the unit add photos")
    have = len(repo.photos_of(session, event.id))
    if have + len(files) > settings.governance_photos_per_event:
        raise InvalidInput(
            f"event {event_id} has {have} photos; at most "
            f"{settings.governance_photos_per_event} per event"
        )
    checked = [photos.check_photo(body, settings=settings, name=name) for name, body in files]
    for photo in checked:
        photos.store_photo(session, settings=settings, event_id=event.id, photo=photo)
    audit.record(
        session,
        actor=actor,
        action="governance.event.photos",
        detail={"event_id": event.id, "photos": len(checked)},
    )
    return event
