"""Deadlines in working days (one holiday) and statistics equal to a direct count over the
events table — with no snapshot, a snapshot plus changes since, delta parts and a compaction."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest
from governance_world import CELLS, DISTRICT, STREETS, build, features
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from factories import ROOT
from haihe.background import register_background_work
from haihe.core import calendar, jobs
from haihe.core.calendar import DayEntry, DayKind
from haihe.core.db import utcnow
from haihe.core.settings import Settings
from haihe.governance import categories, grids, intake, snapshot, statistics, workflow
from haihe.governance.models import AreaLevel, Event
from haihe.governance.schemas import ActionIn, CategoryIn, EventIn
from haihe.governance.transitions import Action

CHINA = calendar.CHINA_TIME


def test_a_working_day_deadline_skips_the_weekend_and_a_holiday(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    build(session_factory)
    with session_factory() as s:
        # Thursday 2026-09-24, 10:00 China time; Friday the 25th is made a holiday
        calendar.set_days(s, [DayEntry(dt.date(2026, 9, 25), DayKind.HOLIDAY, "测试假日")])
        reported = dt.datetime(2026, 9, 24, 10, 0, tzinfo=CHINA)
        body = EventIn(category_code="HJWS", description="垃圾", lng=117.05, lat=39.02)
        event = intake.report_event(s, actor=ROOT, settings=settings, data=body, at=reported)
        # 2 working days after Thursday: not Fri (holiday), not Sat/Sun → Mon 28, Tue 29
        assert event.due_at == dt.datetime(2026, 9, 29, 23, 59, 59, tzinfo=CHINA)
        # an urgent category keeps counting hours on the clock, holiday or not
        body = EventIn(category_code="JGQS", description="井盖缺失", lng=117.05, lat=39.02)
        urgent = intake.report_event(s, actor=ROOT, settings=settings, data=body, at=reported)
        assert urgent.due_at - urgent.created_at == dt.timedelta(hours=4)
        s.rollback()


def test_a_category_gives_its_deadline_one_way() -> None:
    base = {"name_zh": "测试", "name_en": "Test", "level": "street"}
    assert CategoryIn(**base, deadline_working_days=3).deadline_hours is None
    for both in ({}, {"deadline_hours": 4, "deadline_working_days": 3}):
        with pytest.raises(ValueError, match="deadline_hours or deadline_working_days"):
            CategoryIn(**base, **both)


# ---------------------------------------------------------------- statistics == SQL

FIRST, LAST = dt.date(2026, 3, 1), dt.date(2026, 3, 20)
CATS = ("HJWS", "ZDJY", "DLPS", "JGQS")


def _cell_centre(code: str) -> tuple[float, float]:
    for f in features()[AreaLevel.CELL]:
        if f["properties"]["code"] == code:
            (x0, y0), _, (x1, y1) = f["geometry"]["coordinates"][0][:3]
            return (x0 + x1) / 2, (y0 + y1) / 2
    raise KeyError(code)


def _report(s: Session, settings: Settings, n: int, offset: int = 0) -> list[int]:
    ids = []
    for i in range(offset, offset + n):
        lng, lat = _cell_centre(CELLS[i % len(CELLS)])
        at = dt.datetime(2026, 2, 27, 20, tzinfo=CHINA) + dt.timedelta(hours=11 * i)
        body = EventIn(category_code=CATS[i % 4], description=f"事件{i}", lng=lng, lat=lat)
        source = ["resident", "hotline_12345", "grid_worker"][i % 3]
        e = intake.report_event(
            s, actor=ROOT, settings=settings, data=body, at=at, source=intake.EventSource(source)
        )
        ids.append(e.id)
    return ids


def _move(s: Session, event_id: int, steps: int, at: dt.datetime) -> None:
    path: list[tuple[Action, ActionIn]] = [
        (Action.ACCEPT, ActionIn()),
        (Action.DISPATCH, ActionIn()),
        (Action.START, ActionIn()),
        (Action.RESOLVE, ActionIn()),
        (Action.EVALUATE, ActionIn(rating=1 + event_id % 5)),
    ]
    for action, data in path[:steps]:
        workflow.act(s, actor=ROOT, event_id=event_id, action=action, data=data, at=at)


def _direct(s: Session, street: int | None = None) -> dict[str, Any]:
    """The figures by a plain query over governance_events, counted in Python."""
    start = dt.datetime.combine(FIRST, dt.time(), CHINA)
    end = dt.datetime.combine(LAST + dt.timedelta(days=1), dt.time(), CHINA)
    stmt = select(Event).where(Event.created_at >= start, Event.created_at < end)
    if street is not None:
        stmt = stmt.where(Event.street_id == street)
    rows = s.scalars(stmt).all()
    resolved = [e for e in rows if e.resolved_at is not None]
    rated = [e.rating for e in rows if e.rating is not None]
    return {
        "reported": len(rows),
        "resolved": len(resolved),
        "on_time": sum(e.resolved_at <= e.due_at for e in resolved),  # type: ignore[operator]
        "overdue": sum(e.overdue for e in rows),
        "hours": round(
            sum((e.resolved_at - e.created_at).total_seconds() for e in resolved)  # type: ignore[operator]
            / len(resolved)
            / 3600,
            2,
        )
        if resolved
        else None,
        "satisfaction": round(sum(rated) / len(rated), 2) if rated else None,
        "status": Counter(e.status.value for e in rows),
        "category": Counter(e.category_code for e in rows),
        "source": Counter(e.source.value for e in rows),
        "street": Counter(e.street_id for e in rows),
        "day": Counter(e.created_at.astimezone(CHINA).date().isoformat() for e in rows),
        "cell": Counter(e.cell_id for e in rows),
    }


def _check(s: Session, settings: Settings) -> None:
    out = statistics.summary(s, actor=ROOT, settings=settings, first=FIRST, last=LAST)
    want = _direct(s)
    t = out["totals"]
    assert want["reported"] > 0
    assert (t["reported"], t["resolved"], t["on_time"], t["overdue"]) == (
        want["reported"],
        want["resolved"],
        want["on_time"],
        want["overdue"],
    )
    assert (t["avg_handling_hours"], t["satisfaction"]) == (want["hours"], want["satisfaction"])
    assert {k: v for k, v in out["by_status"].items() if v} == dict(want["status"])
    assert {c["code"]: c["reported"] for c in out["by_category"]} == dict(want["category"])
    assert {c["source"]: c["reported"] for c in out["by_source"]} == dict(want["source"])
    assert {d["day"]: d["reported"] for d in out["trend"] if d["reported"]} == dict(want["day"])
    assert len(out["trend"]) == (LAST - FIRST).days + 1  # every day, those without events too
    assert sum(a["reported"] for a in out["by_area"]) == want["reported"]
    heat = statistics.heatmap(s, actor=ROOT, settings=settings, first=FIRST, last=LAST)
    assert sum(h["count"] for h in heat) == want["reported"]
    assert sorted(h["count"] for h in heat) == sorted(want["cell"].values())
    # one district, by street
    street = statistics.summary(
        s, actor=ROOT, settings=settings, first=FIRST, last=LAST, area_code=STREETS[1]
    )
    own = _direct(s, street=grids.get_area(s, code=STREETS[1]).id)
    assert 0 < street["totals"]["reported"] == own["reported"] < want["reported"]
    assert street["by_status"] == {k: own["status"].get(k, 0) for k in street["by_status"]}
    district = statistics.summary(
        s, actor=ROOT, settings=settings, first=FIRST, last=LAST, area_code=DISTRICT
    )
    assert {a["code"] for a in district["by_area"]} <= set(STREETS)
    assert district["totals"]["reported"] == want["reported"]


def _status(s: Session, event_id: int) -> str:
    event = s.get(Event, event_id)
    assert event is not None
    return event.status.value


@pytest.mark.parametrize("margin", [snapshot.MARGIN, dt.timedelta(0)])
def test_statistics_equal_a_direct_count_through_snapshots_and_changes(
    session_factory: sessionmaker[Session],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    margin: dt.timedelta,
) -> None:
    # margin 0: what the database gives at query time is only what changed since the last
    # part, so the parts themselves must carry the rest
    monkeypatch.setattr(snapshot, "MARGIN", margin)
    monkeypatch.setattr(snapshot, "MAX_PARTS", 2)
    build(session_factory)
    with session_factory() as s:
        ids = _report(s, settings, 40)
        for n, eid in enumerate(ids):
            _move(s, eid, n % 6, dt.datetime(2026, 3, 10, tzinfo=CHINA))
        s.commit()
        _check(s, settings)  # no snapshot yet: all from the database
        assert "full part of 40" in snapshot.refresh(s, settings=settings, now=utcnow())
        _check(s, settings)
        # changes after the snapshot: new events, moves on, reopened, flagged overdue
        ids += _report(s, settings, 6, offset=40)
        for eid in ids[:12]:
            if _status(s, eid) == "reported":
                _move(s, eid, 5, dt.datetime(2026, 3, 21, tzinfo=CHINA))
        reopened = s.get(Event, ids[5])
        assert reopened is not None
        assert reopened.status.value == "evaluated"
        workflow.act(
            s, actor=ROOT, event_id=ids[5], action=Action.REOPEN, data=ActionIn(note="又坏了")
        )
        late = s.get(Event, ids[1])
        assert late is not None
        late.overdue = True
        s.commit()
        _check(s, settings)
        for _ in range(3):  # delta parts, then a compaction into a new base
            if _status(s, ids[41]) == "reported":
                _move(s, ids[41], 1, dt.datetime(2026, 3, 22, tzinfo=CHINA))
            else:
                s.get(Event, ids[42]).overdue = True  # type: ignore[union-attr]
            s.commit()
            line = snapshot.refresh(s, settings=settings, now=utcnow())
            _check(s, settings)
        assert "compacted" in line or len(snapshot.read_manifest(settings).parts) <= 3
        snapshot.refresh(s, settings=settings, now=utcnow(), full=True)
        assert len(snapshot.read_manifest(settings).parts) == 1
        _check(s, settings)


def test_categories_name_their_deadlines(session_factory: sessionmaker[Session]) -> None:
    build(session_factory)
    with session_factory() as s:
        by_code = {c.code: c for c in categories.list_categories(s)}
    assert categories.deadline_label(by_code["HJWS"]) == "2 个工作日"
    assert categories.deadline_label(by_code["JGQS"], "en") == "4 hours"


def test_the_periodic_tasks_keep_the_snapshot_and_the_deadlines(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    build(session_factory)
    with session_factory() as s:
        _report(s, settings, 3)
        s.commit()
    register_background_work(settings)
    tasks = [jobs.find_task("governance.snapshot"), jobs.find_task("governance.deadlines")]
    runs = jobs.run_due(session_factory, settings=settings, tasks=tasks, force=True)
    assert [r.outcome for r in runs] == ["ok", "ok"]
    assert "full part of 3 events" in str(runs[0].result)
    assert snapshot.read_manifest(settings).base_rows == 3
