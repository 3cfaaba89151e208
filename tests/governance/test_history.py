"""Past events taken in as a batch: histories checked against the workflow table, placed and
routed as at intake, one ledger entry; a wrong one is refused and nothing is written."""

from __future__ import annotations

import datetime as dt

import pytest
from governance_world import COMMUNITIES, INSIDE, OUTSIDE, STREETS, build
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from factories import ROOT
from haihe.audit.models import AuditEntry
from haihe.core.errors import InvalidInput
from haihe.governance import history, repository
from haihe.governance.history import PastEvent, PastMove
from haihe.governance.models import Event, EventSource
from haihe.governance.transitions import Action

T0 = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)  # a Monday


def _past(key: str, moves: list[PastMove], **over: object) -> PastEvent:
    fields: dict[str, object] = {
        "key": key,
        "category_code": "HJWS",
        "source": EventSource.HOTLINE_12345,
        "description": "垃圾",
        "lng": INSIDE[0],
        "lat": INSIDE[1],
        "reported_at": T0,
        "moves": moves,
    }
    return PastEvent(**(fields | over))  # type: ignore[arg-type]


def _h(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def test_past_events_are_placed_routed_and_keep_their_history(
    session_factory: sessionmaker[Session],
) -> None:
    build(session_factory)
    closed = [
        PastMove(Action.ACCEPT, _h(1)),
        PastMove(Action.DISPATCH, _h(2)),
        PastMove(Action.START, _h(3)),
        PastMove(Action.RESOLVE, _h(80)),  # after its 2 working days: flagged overdue
        PastMove(Action.EVALUATE, _h(90), rating=4),
        PastMove(Action.CLOSE, _h(100)),
    ]
    with session_factory() as s:
        counts = history.import_events(
            s,
            actor=ROOT,
            events=[_past("A1", closed), _past("A2", closed[:2], category_code="ZDJY")],
        )
        s.commit()
        assert counts == {"closed": 1, "dispatched": 1}
        first, second = s.scalars(select(Event).order_by(Event.id)).all()
        assert (first.command_code, first.unit_code, first.rating) == (COMMUNITIES[0], "CGW", 4)
        assert first.overdue is True
        assert first.external_id == "A1"
        steps = [x.action for x in repository.steps_of(s, first.id)]
        assert steps == [
            "report",
            "accept",
            "dispatch",
            "start",
            "overdue",
            "resolve",
            "evaluate",
            "close",
        ]
        assert [x.seq for x in repository.steps_of(s, first.id)] == list(range(1, 9))
        assert (second.status.value, second.command_code) == ("dispatched", STREETS[0])
        entries = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "governance.events.import")
        ).all()
        assert len(entries) == 1


@pytest.mark.parametrize(
    ("past", "message"),
    [
        (_past("B1", [PastMove(Action.RESOLVE, _h(1))]), "cannot resolve an event"),
        (_past("B2", [PastMove(Action.ACCEPT, _h(-1))]), "not in time order"),
        (_past("B3", [], lng=OUTSIDE[0], lat=OUTSIDE[1]), "outside every grid cell"),
        (_past("B4", [], category_code="NOPE"), "unknown category"),
    ],
)
def test_a_wrong_past_event_is_refused_and_nothing_is_written(
    session_factory: sessionmaker[Session], past: PastEvent, message: str
) -> None:
    build(session_factory)
    with session_factory() as s:
        good = _past("OK", [PastMove(Action.ACCEPT, _h(1))])
        with pytest.raises(InvalidInput, match=message):
            history.import_events(s, actor=ROOT, events=[good, past])
        s.rollback()
        assert s.scalar(select(func.count()).select_from(Event)) == 0
