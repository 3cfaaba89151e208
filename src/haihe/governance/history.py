"""Past events — 历史事件: a city's closed and open cases from its former system, taken in as a
batch (and the demo's year of events).

Each past event comes with the moves it went through, at the times they happened. The moves are
checked against the workflow table (``transitions``), so an imported history is one the state
machine could have produced; the points are placed with one vectorised STRtree query; routing
and deadlines are worked out as at intake. Events and their history are written with a few
bulk statements, and the import is one entry in the audit ledger (its rows are history, not new
decisions). Deadlines that have passed are left to the deadline scan, which flags them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from haihe.audit import service as audit
from haihe.core.auth import Principal
from haihe.core.errors import Forbidden, InvalidInput
from haihe.governance import categories, lookup, service
from haihe.governance import repository as repo
from haihe.governance import transitions as flow
from haihe.governance.models import AreaLevel, Category, Event, EventSource, EventStatus
from haihe.governance.transitions import Action

ACTOR_NAME = "历史事件导入"


@dataclass(frozen=True)
class PastMove:
    """One move an event went through: the action, when, and (dispatch, reassign) the unit."""

    action: Action
    at: dt.datetime
    unit_code: str | None = None
    rating: int | None = None
    note: str | None = None


@dataclass(frozen=True)
class PastEvent:
    """An event as the former system knew it — its report and the moves that followed."""

    key: str  # the former system's own number, kept as external_id; makes the token
    category_code: str
    source: EventSource
    description: str
    lng: float
    lat: float
    reported_at: dt.datetime
    moves: Sequence[PastMove] = field(default_factory=tuple)


def import_events(
    session: Session, *, actor: Principal, events: Sequence[PastEvent]
) -> dict[str, int]:
    """Write ``events`` with their histories; counts by status. InvalidInput naming the first
    event whose category, place or moves are wrong (nothing is written then)."""
    if not actor.is_platform_admin:
        raise Forbidden("only the platform admin imports past events")
    if not events:
        return {}
    index = lookup.index_for(session)
    at = index.positions([e.lng for e in events], [e.lat for e in events])
    cats = {c.code: c for c in categories.list_categories(session, active_only=False)}
    deadlines: dict[tuple[str, dt.date], dt.datetime] = {}
    rows: list[dict[str, Any]] = []
    paths: list[list[dict[str, Any]]] = []
    for n, past in enumerate(events):
        category = cats.get(past.category_code)
        if category is None:
            raise InvalidInput(f"past event {past.key}: unknown category {past.category_code!r}")
        if at[n] < 0:
            raise InvalidInput(f"past event {past.key}: lies outside every grid cell")
        community, street, district = index.parents[at[n]]
        event = Event(
            cell_id=int(index.ids[at[n]]),
            community_id=community,
            street_id=street,
            district_id=district,
        )
        level, command = service.first_command(session, event, category.level)
        due = categories.due_at_many(session, category, past.reported_at, deadlines)
        row, steps = _replay(past, category, level, command, due)
        row |= {
            "cell_id": event.cell_id,
            "community_id": community,
            "street_id": street,
            "district_id": district,
        }
        rows.append(row)
        paths.append(steps)
    ids = repo.insert_events(session, rows)
    repo.insert_steps(
        session, [s | {"event_id": i} for i, steps in zip(ids, paths, strict=True) for s in steps]
    )
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"].value] = counts.get(row["status"].value, 0) + 1
    audit.record(
        session,
        actor=actor,
        action="governance.events.import",
        detail={"events": len(rows), "by_status": counts, "first_id": ids[0], "last_id": ids[-1]},
    )
    return counts


def _replay(
    past: PastEvent, category: Category, level: AreaLevel, command: str, due: dt.datetime
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The event's row as its moves leave it, and its history (checked against the table)."""
    status: EventStatus = EventStatus.REPORTED
    unit: str | None = None
    unit_level: AreaLevel | None = None
    resolved: dt.datetime | None = None
    closed: dt.datetime | None = None
    rating: int | None = None
    step: dict[str, Any] = {"actor_kind": "system", "actor_name": ACTOR_NAME, "actor_org": None}
    steps: list[dict[str, Any]] = [
        step
        | {
            "seq": 1,
            "action": "report",
            "from_status": None,
            "to_status": status,
            "level": level,
            "unit_code": None,
            "note": None,
            "at": past.reported_at,
        }
    ]
    last = past.reported_at
    for move in past.moves:
        try:
            target = flow.check(move.action, status).target
        except ValueError as exc:
            raise InvalidInput(f"past event {past.key}: {exc}") from None
        if move.at < last:
            raise InvalidInput(f"past event {past.key}: its moves are not in time order")
        if move.action in (Action.DISPATCH, Action.REASSIGN):
            unit = move.unit_code or category.department_code or command
            unit_level = level
        elif move.action is Action.RETURN:
            unit = unit_level = None
        elif move.action is Action.RESOLVE:
            resolved = move.at
        elif move.action is Action.EVALUATE:
            if move.rating is None:
                raise InvalidInput(f"past event {past.key}: an evaluation needs a rating")
            rating = move.rating
        elif move.action is Action.CLOSE:
            closed = move.at
        elif move.action in (Action.ESCALATE, Action.REOPEN):
            raise InvalidInput(f"past event {past.key}: {move.action.value} is not imported")
        steps.append(
            step
            | {
                "seq": len(steps) + 1,
                "action": move.action.value,
                "from_status": status,
                "to_status": target,
                "level": level,
                "unit_code": unit,
                "note": move.note,
                "at": move.at,
            }
        )
        status, last = target, move.at
    late = resolved is not None and resolved > due
    if late:  # as the deadline scan would have flagged it when the deadline passed
        at = next(i for i, s in enumerate(steps) if s["at"] >= due)
        before = steps[at - 1]
        steps.insert(
            at,
            step
            | {
                "action": "overdue",
                "from_status": before["to_status"],
                "to_status": before["to_status"],
                "level": level,
                "unit_code": before["unit_code"],
                "note": None,
                "at": due,
            },
        )
        for seq, s in enumerate(steps, start=1):
            s["seq"] = seq
    token = hashlib.sha256(f"history:{past.key}".encode()).hexdigest()[:16]
    row = {
        "token": token,
        "source": past.source,
        "category_code": category.code,
        "status": status,
        "description": past.description,
        "address": None,
        "lng": past.lng,
        "lat": past.lat,
        "level": level,
        "command_code": command,
        "unit_code": unit,
        "unit_level": unit_level,
        "reporter_user_id": None,
        "reporter_client_id": None,
        "reporter_name": None,
        "reporter_contact": None,
        "external_id": past.key[:64],
        "due_at": due,
        "reminded_at": None,
        "overdue": late,
        "supervised": False,
        "rating": rating,
        "feedback": None,
        "reopened": 0,
        "status_note": None,
        "created_at": past.reported_at,
        "updated_at": last,
        "resolved_at": resolved,
        "closed_at": closed,
    }
    return row, steps
