"""Deadlines — 时限: a periodic scan (registered in ``haihe.background``) that reminds units
before an event's or a summons' deadline, flags them overdue when it passes and, some hours
later, sends them to the level above for supervision (督办). The deadlines and the flags live
in the database, so a restart loses nothing and several workers never act twice (rows are
claimed with SKIP LOCKED on PostgreSQL; SQLite has one writer)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from haihe.audit import service as audit
from haihe.core.auth import system_principal
from haihe.core.errors import Conflict
from haihe.core.settings import Settings
from haihe.governance import repository as repo
from haihe.governance import service
from haihe.governance import transitions as flow
from haihe.governance.models import Event, NoticeKind, Notification, Summons

ACTOR = system_principal("governance.deadlines")
BATCH = 1000


def scan_deadlines(session: Session, *, settings: Settings, now: dt.datetime) -> str:
    """Remind, flag overdue and supervise what is due; return what was done, in a line."""
    soon = now + dt.timedelta(hours=settings.governance_remind_before_hours)
    late = now - dt.timedelta(hours=settings.governance_supervise_after_hours)
    n = {"reminded": 0, "overdue": 0, "supervised": 0}
    s = {"reminded": 0, "overdue": 0, "supervised": 0}
    for event in repo.events_due_before(session, statuses=flow.LIVE, before=soon, limit=BATCH):
        event.reminded_at = now
        _notify(
            session,
            NoticeKind.REMINDER,
            event.unit_code or event.command_code,
            event,
            now,
            f"事件 {event.id} 将于 {_local(event.due_at)} 到期，请抓紧办理。",
        )
        n["reminded"] += 1
    for event in repo.events_past(
        session, statuses=flow.LIVE, before=now, flag="overdue", limit=BATCH
    ):
        event.overdue = True
        _notify(
            session,
            NoticeKind.OVERDUE,
            event.command_code,
            event,
            now,
            f"事件 {event.id} 已超过办理时限（{_local(event.due_at)}）。",
        )
        service.append_step(
            session, event=event, actor=ACTOR, action="overdue", old=event.status, note=None, at=now
        )
        n["overdue"] += 1
    for event in repo.events_past(
        session, statuses=flow.LIVE, before=late, flag="supervised", limit=BATCH
    ):
        event.supervised = True
        _notify(
            session,
            NoticeKind.SUPERVISION,
            _above(session, event),
            event,
            now,
            f"督办：事件 {event.id} 超期 {settings.governance_supervise_after_hours:g} 小时"
            f"以上未办结（{event.command_code}）。",
        )
        service.append_step(
            session,
            event=event,
            actor=ACTOR,
            action="supervise",
            old=event.status,
            note=None,
            at=now,
        )
        n["supervised"] += 1
    for summons in repo.summons_past(session, before=soon, flag="reminded", limit=BATCH):
        summons.reminded_at = now
        _notify_summons(
            session,
            NoticeKind.REMINDER,
            summons.department_code,
            summons,
            now,
            f"吹哨事件 {summons.event_id} 将于 {_local(summons.due_at)} 到期，请报到反馈。",
        )
        s["reminded"] += 1
    for summons in repo.summons_past(session, before=now, flag="overdue", limit=BATCH):
        summons.overdue = True
        _notify_summons(
            session,
            NoticeKind.OVERDUE,
            summons.department_code,
            summons,
            now,
            f"吹哨事件 {summons.event_id} 报到已超期。",
        )
        s["overdue"] += 1
    for summons in repo.summons_past(session, before=late, flag="supervised", limit=BATCH):
        summons.supervised = True
        summoned = repo.event_by_id(session, summons.event_id)
        assert summoned is not None
        _notify_summons(
            session,
            NoticeKind.SUPERVISION,
            _above(session, summoned),
            summons,
            now,
            f"督办：{summons.department_code} 未就吹哨事件 {summons.event_id} 报到。",
        )
        s["supervised"] += 1
    session.flush()
    if any(n.values()) or any(s.values()):
        audit.record(
            session,
            actor=ACTOR,
            action="governance.deadlines.scan",
            detail={"events": n, "summons": s},
        )
    return (
        f"events: {n['reminded']} reminded, {n['overdue']} overdue, {n['supervised']} "
        f"supervised; summons: {s['reminded']} reminded, {s['overdue']} overdue, "
        f"{s['supervised']} supervised"
    )


def _local(when: dt.datetime) -> str:
    return when.astimezone(service.CHINA).strftime("%Y-%m-%d %H:%M")


def _above(session: Session, event: Event) -> str | None:
    """The organisation above the event's command centre (the supervisor)."""
    up = flow.LEVELS_UP.get(event.level)
    if up is None:
        return event.command_code
    try:
        return service.first_command(session, event, up)[1]
    except Conflict:
        return event.command_code


def _notify(
    session: Session,
    kind: NoticeKind,
    org_code: str | None,
    event: Event,
    now: dt.datetime,
    message: str,
) -> None:
    session.add(
        Notification(
            kind=kind, org_code=org_code, event_id=event.id, message=message, created_at=now
        )
    )


def _notify_summons(
    session: Session,
    kind: NoticeKind,
    org_code: str | None,
    summons: Summons,
    now: dt.datetime,
    message: str,
) -> None:
    session.add(
        Notification(
            kind=kind,
            org_code=org_code,
            event_id=summons.event_id,
            summons_id=summons.id,
            message=message,
            created_at=now,
        )
    )
