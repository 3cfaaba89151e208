"""Who may call each governance route: every principal against every route of the router."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from governance_world import CELLS, INSIDE, build, collection, png
from sqlalchemy.orm import Session, sessionmaker

from factories import ROOT, bearers
from haihe.core.settings import Settings
from haihe.governance import api, intake, workflow
from haihe.governance.models import AreaLevel
from haihe.governance.schemas import ActionIn, EventIn, WhistleIn
from haihe.governance.transitions import Action
from haihe.orgs import service as orgs
from haihe.orgs.auth import principal_of_user

PRINCIPALS = [
    "anon",
    "resident",
    "worker",
    "community_op",
    "street_op",
    "other_street_op",
    "district_op",
    "cgw_officer",
    "auditor",
    "platform",
    "hotline",
]
SIGNED_IN = set(PRINCIPALS) - {"anon"}
STAFF_STATS = {
    "community_op",
    "street_op",
    "other_street_op",
    "district_op",
    "cgw_officer",
    "auditor",
    "platform",
}
# who sees an event reported by the resident in the first cell (a community matter)
SEERS = {"resident", "worker", "community_op", "street_op", "district_op", "auditor", "platform"}
HIDDEN = SIGNED_IN - SEERS


@dataclass
class World:
    headers: dict[str, dict[str, str]]
    factory: sessionmaker[Session]
    settings: Settings

    def event(self) -> int:
        with self.factory() as s:
            data = EventIn(category_code="HJWS", description="x", lng=INSIDE[0], lat=INSIDE[1])
            who = principal_of_user(orgs.get_user(s, username="resident"))
            assert who is not None
            event = intake.report_event(s, actor=who, settings=self.settings, data=data)
            s.commit()
            return event.id

    def street_event(self) -> int:
        """An event the first street holds, accepted (whistle-able)."""
        with self.factory() as s:
            data = EventIn(category_code="ZDJY", description="x", lng=INSIDE[0], lat=INSIDE[1])
            event = intake.report_event(s, actor=ROOT, settings=self.settings, data=data)
            workflow.act(s, actor=ROOT, event_id=event.id, action=Action.ACCEPT, data=ActionIn())
            s.commit()
            return event.id

    def summons(self) -> int:
        eid = self.street_event()
        with self.factory() as s:
            whistle = workflow.blow_whistle(
                s,
                actor=ROOT,
                event_id=eid,
                data=WhistleIn.model_validate(
                    {"reason": "x", "departments": [{"department_code": "CGW"}]}
                ),
            )
            s.commit()
            return workflow.repo.summons_of(s, whistle.event_id)[0].id

    def photo(self) -> int:
        eid = self.event()
        with self.factory() as s:
            intake.add_photos(
                s, actor=ROOT, settings=self.settings, event_id=eid, files=[("a.png", png())]
            )
            s.commit()
            return intake.repo.photos_of(s, eid)[0].id


def _event_body(w: World) -> dict[str, Any]:
    return {
        "json": {
            "category_code": "HJWS",
            "description": "x",
            "lng": INSIDE[0],
            "lat": INSIDE[1],
            "source": None,
        }
    }


Body = Callable[[World], dict[str, Any]] | None
Spec = tuple[str, str, Body, set[str], set[str]]
MATRIX: list[Spec] = [
    (
        "POST",
        "/grids/import?level=district",
        lambda w: {"files": {"file": ("d.geojson", collection(AreaLevel.DISTRICT))}},
        {"platform"},
        set(),
    ),
    ("GET", "/areas?level=cell", None, SIGNED_IN, set()),
    ("GET", "/areas.geojson?level=street", None, SIGNED_IN, set()),
    ("PUT", f"/cells/{CELLS[1]}/workers/worker", None, {"platform"}, set()),
    ("DELETE", f"/cells/{CELLS[0]}/workers/worker", None, {"platform"}, set()),
    ("GET", "/categories", None, SIGNED_IN, set()),
    (
        "PUT",
        "/categories/TEST",
        lambda w: {
            "json": {"name_zh": "测试", "name_en": "Test", "level": "street", "deadline_hours": 8}
        },
        {"platform"},
        set(),
    ),
    (
        "POST",
        "/events",
        _event_body,
        {
            "resident",
            "worker",
            "community_op",
            "street_op",
            "other_street_op",
            "district_op",
            "cgw_officer",
            "platform",
            "hotline",
        },
        set(),
    ),
    ("GET", "/events", None, SIGNED_IN, set()),
    ("GET", "/events/{event}", None, SEERS, HIDDEN),
    (
        "POST",
        "/events/{event}/photos",
        lambda w: {"files": [("files", ("a.png", png(), "image/png"))]},
        {"resident", "community_op", "platform"},
        HIDDEN,
    ),
    (
        "POST",
        "/events/{event}/actions/accept",
        lambda w: {"json": {}},
        {"community_op", "platform"},
        HIDDEN,
    ),
    (
        "POST",
        "/events/{street_event}/whistle",
        lambda w: {"json": {"reason": "x", "departments": [{"department_code": "CGW"}]}},
        {"street_op", "platform"},
        SIGNED_IN - {"street_op", "district_op", "auditor", "platform", "worker", "community_op"},
    ),
    (
        "POST",
        "/summons/{summons}/report",
        lambda w: {"json": {"report": "ok"}},
        {"cgw_officer", "platform"},
        SIGNED_IN
        - {
            "street_op",
            "district_op",
            "auditor",
            "platform",
            "cgw_officer",
            "worker",
            "community_op",
        },
    ),
    ("GET", "/summons", None, SIGNED_IN - {"resident", "auditor"}, set()),
    ("GET", "/photos/{photo}", None, SEERS, HIDDEN),
    ("GET", "/notifications", None, SIGNED_IN - {"resident", "auditor"}, set()),
    ("POST", "/deadlines/scan", None, {"platform"}, set()),
    ("GET", "/statistics", None, STAFF_STATS, set()),
    ("GET", "/statistics/heatmap", None, STAFF_STATS, set()),
    ("POST", "/open311-keys", lambda w: {"json": {"client_id": "nope", "name": "x"}}, set(), set()),
    ("GET", "/open311-keys", None, {"platform"}, set()),
]
FRESH: dict[str, Callable[[World], object]] = {
    "event": World.event,
    "street_event": World.street_event,
    "summons": World.summons,
    "photo": World.photo,
}


def test_every_principal_against_every_governance_route(
    client: TestClient, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    world_data = build(session_factory)
    headers = bearers(
        client, PRINCIPALS[1:-1], {"hotline": (world_data.client_id, world_data.client_secret)}
    )
    w = World(headers, session_factory, settings)
    wrong: list[str] = []
    for method, template, kwargs, allowed, hidden in MATRIX:
        for who in PRINCIPALS:
            values = {k: make(w) for k, make in FRESH.items() if "{" + k + "}" in template}
            path = "/api/v1/governance" + template.format(**values)
            r = client.request(method, path, headers=headers[who], **(kwargs(w) if kwargs else {}))
            if who in allowed:
                ok, expected = 200 <= r.status_code < 300, "2xx"
            else:
                code = 401 if who == "anon" else 404 if who in hidden else 403
                if template.startswith("/open311-keys") and method == "POST" and who == "platform":
                    code = 404  # the platform admin may, but the client does not exist
                ok, expected = r.status_code == code, str(code)
                ok = ok and set(r.json()["error"]) == {"code", "message", "details"}
            if not ok:
                wrong.append(f"{method} {path} as {who}: {r.status_code}, expected {expected}")
    assert wrong == [], "\n".join(wrong)


def test_matrix_covers_every_route_of_the_governance_router() -> None:
    routes = {
        (method, route.path)
        for route in api.router.routes
        for method in getattr(route, "methods", set()) - {"HEAD", "OPTIONS"}
    }
    covered = set()
    for method, template, *_ in MATRIX:
        path = "/api/v1/governance" + template.split("?")[0]
        for name, param in (
            ("{event}", "{event_id}"),
            ("{street_event}", "{event_id}"),
            ("{summons}", "{summons_id}"),
            ("{photo}", "{photo_id}"),
            (CELLS[0], "{cell_code}"),
            (CELLS[1], "{cell_code}"),
            ("/workers/worker", "/workers/{username}"),
            ("/categories/TEST", "/categories/{code}"),
            ("/actions/accept", "/actions/{action}"),
        ):
            path = path.replace(name, param)
        covered.add((method, path))
    assert routes - covered == set()
