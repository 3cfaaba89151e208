"""The event workflow — 事件流转: moves allowed by ``transitions.TRANSITIONS`` and taken by the
right party, whistles (吹哨) and the departments' report-back (报到). Every move appends to the
event's history and is audited; a forbidden one changes nothing (409)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from haihe.audit import service as audit
from haihe.core.auth import Principal
from haihe.core.db import utcnow
from haihe.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from haihe.governance import categories, service
from haihe.governance import repository as repo
from haihe.governance import transitions as flow
from haihe.governance.models import (
    AreaLevel,
    Event,
    NoticeKind,
    Notification,
    Summons,
    SummonsStatus,
    Whistle,
)
from haihe.governance.schemas import ActionIn, ReportBackIn, WhistleIn
from haihe.governance.transitions import Action
from haihe.orgs import service as orgs
from haihe.orgs.models import OrgKind

NEEDS_NOTE = {Action.RETURN: "why it is sent back", Action.REOPEN: "why it is not resolved"}
DOWN: dict[AreaLevel, AreaLevel] = {
    AreaLevel.CITY: AreaLevel.DISTRICT,
    AreaLevel.DISTRICT: AreaLevel.STREET,
    AreaLevel.STREET: AreaLevel.COMMUNITY,
    AreaLevel.COMMUNITY: AreaLevel.COMMUNITY,
}
DEPARTMENT_KINDS = frozenset({OrgKind.MUNICIPAL_DEPARTMENT, OrgKind.INSTITUTION})


def act(
    session: Session,
    *,
    actor: Principal,
    event_id: int,
    action: Action,
    data: ActionIn,
    at: dt.datetime | None = None,
) -> Event:
    """The event after ``action``; 409 naming the allowed actions when the state forbids it,
    403 when it is another party's move — the event and its history unchanged either way."""
    event = service.get_event(session, actor=actor, event_id=event_id, lock=True)
    try:
        transition = flow.check(action, event.status)
    except ValueError as exc:
        raise Conflict(str(exc), details={"allowed": _allowed(event)}) from None
    if transition.by not in service.roles_on(session, actor, event):
        raise Forbidden(f"{action.value} is the {transition.by.value}'s move on event {event.id}")
    if action in NEEDS_NOTE and not (data.note or "").strip():
        raise InvalidInput(f"{action.value}: give a note saying {NEEDS_NOTE[action]}")
    old = event.status
    now = at or utcnow()
    _apply(session, event, action, data, now)
    event.status = transition.target
    event.status_note = data.note
    event.updated_at = now
    service.append_step(
        session, event=event, actor=actor, action=action.value, old=old, note=data.note, at=now
    )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"governance.event.{action.value}",
        detail={
            "event_id": event.id,
            "from": old.value,
            "to": event.status.value,
            "level": event.level.value,
            "unit": event.unit_code,
        },
    )
    return event


def _allowed(event: Event) -> list[str]:
    return [a.value for a in flow.allowed_actions(event.status)]


def _apply(
    session: Session, event: Event, action: Action, data: ActionIn, now: dt.datetime
) -> None:
    if action is Action.DISPATCH:
        _dispatch(session, event, data)
    elif action is Action.REASSIGN:
        if not data.unit_code:
            raise InvalidInput("reassign: name the new unit (unit_code)")
        if data.unit_code == event.unit_code:
            raise InvalidInput(f"reassign: {data.unit_code} already handles this event")
        _require_org(session, data.unit_code)
        event.unit_code = data.unit_code
    elif action is Action.ESCALATE:
        up = flow.LEVELS_UP.get(event.level)
        if up is None:
            raise Conflict("the event is already held by the city; it cannot go higher")
        event.level, event.command_code = service.first_command(session, event, up)
        event.unit_code, event.unit_level = None, None
    elif action is Action.RETURN:
        event.unit_code, event.unit_level = None, None
    elif action is Action.RESOLVE:
        event.resolved_at = now
    elif action is Action.EVALUATE:
        if data.rating is None:
            raise InvalidInput("evaluate: give a rating from 1 to 5")
        event.rating, event.feedback = data.rating, data.note
    elif action is Action.REOPEN:
        _reopen(session, event, now)
    elif action is Action.CLOSE:
        if event.resolved_at is None and not (data.note or "").strip():
            raise InvalidInput("close: an event closed without being resolved needs a note why")
        event.closed_at = now


def _dispatch(session: Session, event: Event, data: ActionIn) -> None:
    level = data.level or (event.level if data.unit_code else DOWN[event.level])
    if level is AreaLevel.CELL or flow.LEVEL_RANK[level] > flow.LEVEL_RANK[event.level]:
        raise InvalidInput(
            f"dispatch: a {event.level.value} command centre dispatches to its own level or "
            f"below, not to a {level.value}"
        )
    if data.unit_code:
        _require_org(session, data.unit_code)
        unit = data.unit_code
    else:
        unit = service.command_org(session, event, level)
    event.unit_code, event.unit_level = unit, level


def _reopen(session: Session, event: Event, now: dt.datetime) -> None:
    category = categories.find_category(session, code=event.category_code)
    event.reopened += 1
    event.resolved_at, event.rating = None, None
    event.unit_code, event.unit_level = None, None
    event.due_at = categories.due_at(session, category, now)
    event.reminded_at, event.overdue, event.supervised = None, False, False


def _require_org(session: Session, code: str) -> None:
    org = orgs.find_org(session, code=code)
    if org is None or not org.active:
        raise InvalidInput(f"unit {code!r} is not an active member organisation")


# ---------------------------------------------------------------- 吹哨报到


def blow_whistle(
    session: Session,
    *,
    actor: Principal,
    event_id: int,
    data: WhistleIn,
    at: dt.datetime | None = None,
) -> Whistle:
    """A street summons departments to report for duty on an event, each with a deadline."""
    event = service.get_event(session, actor=actor, event_id=event_id, lock=True)
    if event.status not in flow.WHISTLE_STATES:
        states = ", ".join(sorted(s.value for s in flow.WHISTLE_STATES))
        raise Conflict(
            f"the whistle is blown on an event being handled ({states}), not one that is "
            f"{event.status.value}"
        )
    if event.level is not AreaLevel.STREET:
        raise Conflict(
            f"a street's command centre blows the whistle; this event is held by the "
            f"{event.level.value}"
        )
    if flow.Role.COMMAND not in service.roles_on(session, actor, event):
        raise Forbidden("only the street's command centre blows the whistle on this event")
    codes = [d.department_code for d in data.departments]
    if len(set(codes)) != len(codes):
        raise InvalidInput("each department is summoned once per whistle")
    for code in codes:
        org = orgs.find_org(session, code=code)
        if org is None or not org.active or org.kind not in DEPARTMENT_KINDS:
            raise InvalidInput(f"{code!r} is not a municipal or district department")
    now = at or utcnow()
    assert event.command_code is not None
    whistle = Whistle(
        event_id=event.id,
        street_code=event.command_code,
        reason=data.reason,
        blown_by=actor.name,
        created_at=now,
    )
    session.add(whistle)
    session.flush()
    for d in data.departments:
        summons = Summons(
            whistle_id=whistle.id,
            event_id=event.id,
            department_code=d.department_code,
            status=SummonsStatus.SUMMONED,
            due_at=now + dt.timedelta(hours=d.hours),
            overdue=False,
            supervised=False,
        )
        session.add(summons)
        session.flush()
        session.add(
            Notification(
                kind=NoticeKind.SUMMONS,
                org_code=d.department_code,
                event_id=event.id,
                summons_id=summons.id,
                message=f"{event.command_code} 吹哨：事件 {event.id} 请于 {d.hours} 小时内"
                f"报到反馈。{data.reason}",
                created_at=now,
            )
        )
    event.updated_at = now
    service.append_step(
        session,
        event=event,
        actor=actor,
        action="whistle",
        old=event.status,
        note=f"{', '.join(codes)}: {data.reason}",
        at=now,
    )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="governance.event.whistle",
        detail={"event_id": event.id, "whistle_id": whistle.id, "departments": codes},
    )
    return whistle


def report_back(
    session: Session,
    *,
    actor: Principal,
    summons_id: int,
    data: ReportBackIn,
    at: dt.datetime | None = None,
) -> Summons:
    """A summoned department reports back (报到) on what it did."""
    summons = repo.summons_by_id(session, summons_id, lock=True)
    if summons is None:
        raise NotFound(f"summons {summons_id} does not exist")
    event = service.get_event(session, actor=actor, event_id=summons.event_id, lock=True)
    if not actor.is_platform_admin and actor.org_code != summons.department_code:
        raise Forbidden(f"only {summons.department_code} reports back on this summons")
    if summons.status is SummonsStatus.REPORTED:
        raise Conflict(f"{summons.department_code} already reported back on this summons")
    now = at or utcnow()
    summons.status = SummonsStatus.REPORTED
    summons.report, summons.reported_by, summons.reported_at = data.report, actor.name, now
    event.updated_at = now
    service.append_step(
        session,
        event=event,
        actor=actor,
        action="report_back",
        old=event.status,
        note=f"{summons.department_code}: {data.report}",
        at=now,
    )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="governance.event.report_back",
        detail={"event_id": event.id, "summons_id": summons.id, "on_time": now <= summons.due_at},
    )
    return summons
