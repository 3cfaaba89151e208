"""The workflow: every allowed transition, forbidden ones (409, nothing changed), the whole
story through every level and a whistle, deadlines, evaluation, reopening, the ledger."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from governance_world import COMMUNITIES, DISTRICT, INSIDE, STREETS, build
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from factories import ROOT, bearer
from haihe.audit.models import AuditEntry
from haihe.core.db import utcnow
from haihe.core.settings import Settings
from haihe.governance import deadlines, intake, repository, workflow
from haihe.governance import transitions as flow
from haihe.governance.models import Event, EventStatus, NoticeKind, Notification
from haihe.governance.schemas import ActionIn, EventIn, WhistleIn
from haihe.governance.transitions import Action

URL = "/api/v1/governance"
S = EventStatus


@pytest.mark.parametrize(
    ("action", "status"),
    [(t.action, s) for t in flow.TRANSITIONS.values() for s in sorted(t.sources)],
)
def test_every_allowed_transition_is_allowed(action: Action, status: EventStatus) -> None:
    assert flow.check(action, status).target is flow.TRANSITIONS[action].target


@pytest.mark.parametrize(
    ("action", "status"),
    [
        (Action.RESOLVE, S.REPORTED),
        (Action.EVALUATE, S.IN_PROGRESS),
        (Action.START, S.ACCEPTED),
        (Action.DISPATCH, S.CLOSED),
        (Action.REOPEN, S.CLOSED),
        (Action.CLOSE, S.IN_PROGRESS),
        (Action.ACCEPT, S.ACCEPTED),
        (Action.ESCALATE, S.RESOLVED),
    ],
)
def test_forbidden_transitions_name_the_allowed_ones(action: Action, status: EventStatus) -> None:
    with pytest.raises(ValueError, match="allowed now:") as caught:
        flow.check(action, status)
    for allowed in flow.allowed_actions(status):
        assert allowed.value in str(caught.value)


def test_every_status_but_closed_has_a_way_on() -> None:
    for status in EventStatus:
        assert bool(flow.allowed_actions(status)) is (status is not S.CLOSED)


def _act(client: TestClient, who: str, event_id: int, action: str, **body: Any) -> dict[str, Any]:
    r = client.post(
        f"{URL}/events/{event_id}/actions/{action}", json=body, headers=bearer(client, username=who)
    )
    assert r.status_code == 200, f"{who} {action}: {r.text}"
    return r.json()


def test_a_report_goes_through_every_level_and_a_whistle_to_a_closed_evaluated_case(
    client: TestClient, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    build(session_factory)
    resident = bearer(client, username="resident")
    body = {
        "category_code": "HJWS",
        "description": "垃圾堆积，无人清运",
        "lng": INSIDE[0],
        "lat": INSIDE[1],
    }
    e = client.post(f"{URL}/events", json=body, headers=resident).json()
    eid = e["id"]
    _act(client, "community_op", eid, "accept")
    e = _act(client, "community_op", eid, "dispatch")  # to the community itself
    assert (e["unit_code"], e["unit_level"]) == (COMMUNITIES[0], "community")
    e = _act(client, "worker", eid, "return", note="涉及物业，社区无法处置")
    assert e["status"] == "returned"
    e = _act(client, "community_op", eid, "escalate", note="上报街道")
    assert (e["status"], e["level"], e["command_code"]) == ("escalated", "street", STREETS[0])
    # the street blows the whistle: two departments, each with a deadline
    r = client.post(
        f"{URL}/events/{eid}/whistle",
        json={
            "reason": "垃圾清运涉及城管和交通",
            "departments": [
                {"department_code": "CGW", "hours": 24},
                {"department_code": "JT", "hours": 48},
            ],
        },
        headers=bearer(client, username="street_op"),
    )
    assert r.status_code == 201, r.text
    summons = {s["department_code"]: s for s in r.json()["summons"]}
    assert set(summons) == {"CGW", "JT"}
    due = {k: dt.datetime.fromisoformat(v["due_at"]) for k, v in summons.items()}
    assert due["JT"] - due["CGW"] == dt.timedelta(hours=24)
    cgw = bearer(client, username="cgw_officer")
    assert [s["department_code"] for s in client.get(f"{URL}/summons", headers=cgw).json()] == [
        "CGW"
    ]
    r = client.post(
        f"{URL}/summons/{summons['CGW']['id']}/report", json={"report": "已派车清运"}, headers=cgw
    )
    assert r.status_code == 200, r.text
    again = client.post(
        f"{URL}/summons/{summons['CGW']['id']}/report", json={"report": "x"}, headers=cgw
    )
    assert again.status_code == 409
    e = _act(client, "street_op", eid, "escalate", note="需区级协调")
    assert (e["level"], e["command_code"]) == ("district", DISTRICT)
    e = _act(client, "district_op", eid, "escalate", note="跨区")
    assert e["level"] == "city"
    e = _act(client, "city_op", eid, "dispatch", level="district", unit_code="CGW")
    assert (e["unit_code"], e["unit_level"]) == ("CGW", "district")
    e = _act(client, "city_op", eid, "reassign", unit_code="JT", note="改派交通")
    assert e["unit_code"] == "JT"
    _act(client, "jt_officer", eid, "start")
    e = _act(client, "jt_officer", eid, "resolve", note="已清运完毕")
    assert e["status"] == "resolved"
    e = _act(client, "resident", eid, "reopen", note="又堆上了")
    assert (e["status"], e["reopened"]) == ("accepted", 1)
    _act(client, "city_op", eid, "dispatch", level="district", unit_code="CGW")
    _act(client, "cgw_officer", eid, "start")
    _act(client, "cgw_officer", eid, "resolve")
    e = _act(client, "resident", eid, "evaluate", rating=5, note="满意")
    assert (e["status"], e["rating"]) == ("evaluated", 5)
    e = _act(client, "city_op", eid, "close")
    assert e["status"] == "closed"
    assert e["allowed_actions"] == []
    actions = [h["action"] for h in e["history"]]
    assert actions == [
        "report",
        "accept",
        "dispatch",
        "return",
        "escalate",
        "whistle",
        "report_back",
        "escalate",
        "escalate",
        "dispatch",
        "reassign",
        "start",
        "resolve",
        "reopen",
        "dispatch",
        "start",
        "resolve",
        "evaluate",
        "close",
    ]
    assert [h["seq"] for h in e["history"]] == list(range(1, len(actions) + 1))
    with session_factory() as s:
        logged = s.scalars(
            select(AuditEntry.action).where(AuditEntry.action.like("governance.event.%"))
        ).all()
    assert len(logged) == len(actions)
    # statistics saw one event, resolved once (the reopen took the first back), rated 5
    stats = client.get(f"{URL}/statistics", headers=bearer(client, username="platform")).json()
    assert stats["totals"]["reported"] == 1
    assert stats["totals"]["resolved"] == 1
    assert stats["totals"]["satisfaction"] == 5.0
    assert stats["by_status"] == {
        "accepted": 0,
        "dispatched": 0,
        "escalated": 0,
        "in_progress": 0,
        "reported": 0,
        "resolved": 0,
        "returned": 0,
        "evaluated": 0,
        "closed": 1,
    }


def test_a_forbidden_move_is_a_409_and_changes_nothing(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    build(session_factory)
    body = {"category_code": "HJWS", "description": "x", "lng": INSIDE[0], "lat": INSIDE[1]}
    eid = client.post(
        f"{URL}/events", json=body, headers=bearer(client, username="resident")
    ).json()["id"]
    before = client.get(f"{URL}/events/{eid}", headers=bearer(client, username="platform")).json()
    r = client.post(
        f"{URL}/events/{eid}/actions/resolve", json={}, headers=bearer(client, username="platform")
    )
    assert r.status_code == 409
    message = r.json()["error"]["message"]
    assert "cannot resolve an event that is reported" in message
    assert "accept, escalate, close" in message
    # another party's move is refused too, and a missing note is asked for
    r = client.post(
        f"{URL}/events/{eid}/actions/accept", json={}, headers=bearer(client, username="resident")
    )
    assert r.status_code == 403
    after = client.get(f"{URL}/events/{eid}", headers=bearer(client, username="platform")).json()
    assert after == before
    # the whistle is a street's, on an event it holds
    r = client.post(
        f"{URL}/events/{eid}/whistle",
        headers=bearer(client, username="platform"),
        json={"reason": "x", "departments": [{"department_code": "CGW"}]},
    )
    assert r.status_code == 409
    assert "being handled" in r.json()["error"]["message"]


def test_deadlines_remind_flag_and_supervise_once(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    build(session_factory)
    start = utcnow() - dt.timedelta(hours=30)
    with session_factory() as s:
        data = EventIn(category_code="JGQS", description="井盖缺失", lng=INSIDE[0], lat=INSIDE[1])
        event = intake.report_event(s, actor=ROOT, settings=settings, data=data, at=start)
        eid = event.id
        s.commit()
    with session_factory() as s:  # 井盖缺失 has 4 hours: due 26 hours ago
        first = deadlines.scan_deadlines(s, settings=settings, now=utcnow())
        s.commit()
    assert first.startswith("events: 1 reminded, 1 overdue, 1 supervised")
    with session_factory() as s:
        second = deadlines.scan_deadlines(s, settings=settings, now=utcnow())
        s.commit()
        assert second.startswith("events: 0 reminded, 0 overdue, 0 supervised")
        event = s.get(Event, eid)
        assert event is not None
        assert event.overdue
        assert event.supervised
        kinds = {(n.kind, n.org_code) for n in repository.notifications_of_event(s, eid)}
        # the street holds 井盖缺失; supervision goes to the district above it
        assert kinds == {
            (NoticeKind.REMINDER, STREETS[0]),
            (NoticeKind.OVERDUE, STREETS[0]),
            (NoticeKind.SUPERVISION, DISTRICT),
        }
        steps = [st.action for st in repository.steps_of(s, eid)]
        assert steps == ["report", "overdue", "supervise"]
        assert (
            s.scalar(select(Notification.id).where(Notification.kind == NoticeKind.SUMMONS)) is None
        )


def test_whistle_deadlines_are_scanned_too(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    build(session_factory)
    past = utcnow() - dt.timedelta(hours=60)
    with session_factory() as s:
        data = EventIn(category_code="ZDJY", description="占道", lng=INSIDE[0], lat=INSIDE[1])
        event = intake.report_event(s, actor=ROOT, settings=settings, data=data)
        workflow.act(s, actor=ROOT, event_id=event.id, action=Action.ACCEPT, data=ActionIn())
        workflow.blow_whistle(
            s,
            actor=ROOT,
            event_id=event.id,
            at=past,
            data=WhistleIn.model_validate(
                {"reason": "联合执法", "departments": [{"department_code": "CGW", "hours": 24}]}
            ),
        )
        s.commit()
    with session_factory() as s:
        out = deadlines.scan_deadlines(s, settings=settings, now=utcnow())
        s.commit()
    assert out.endswith("summons: 1 reminded, 1 overdue, 1 supervised")
