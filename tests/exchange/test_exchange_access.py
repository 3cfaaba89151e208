"""Who may call each exchange route (requests, grants, calendar): every role, every route."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from factories import ROOT, bearers, make_client, make_org, make_resource, make_user
from haihe.catalogue import service as catalogue
from haihe.core import calendar
from haihe.core.auth import Role
from haihe.core.calendar import DayEntry, DayKind
from haihe.exchange import api, decisions, service
from haihe.exchange.schemas import ApproveIn, RequestIn

PRINCIPALS = [
    "anon",
    "resident",
    "rs_op",
    "rs_admin",
    "wjw_op",
    "wjw_admin",
    "mz_admin",
    "auditor",
    "platform",
    "rs_client",
]
SIGNED_IN = set(PRINCIPALS) - {"anon"}
WITH_ORG_OR_ALL = SIGNED_IN - {"resident"}
SEERS = {"rs_op", "rs_admin", "wjw_op", "wjw_admin", "auditor", "platform", "rs_client"}
HIDDEN = {"resident", "mz_admin"}
RS_REQUESTERS = {"rs_op", "rs_admin", "platform"}
WJW_DECIDERS = {"wjw_admin", "platform"}
_days = itertools.count(1)


@dataclass
class World:
    headers: dict[str, dict[str, str]]
    factory: sessionmaker[Session]

    def resource(self, **overrides: Any) -> str:
        with self.factory() as s:
            wjw = service.orgs.get_org(s, code="WJW")
            r = make_resource(s, wjw, **overrides)
            catalogue.publish(s, actor=ROOT, code=r.code)
            s.commit()
            return r.code

    def pending(self) -> int:
        code = self.resource()
        with self.factory() as s:
            data = RequestIn.model_validate(
                {
                    "resource_code": code,
                    "consumer_org_code": "RS",
                    "items": ["id_number"],
                    "purpose": "养老金停发核查",
                    "modes": ["verify"],
                }
            )
            req = service.submit_request(s, actor=ROOT, data=data)
            s.commit()
            return req.id

    def refused_not_shared(self) -> int:
        code = self.resource(sharing_type="not_shared", sharing_conditions=None, sharing_modes=[])
        with self.factory() as s:
            data = RequestIn.model_validate(
                {
                    "resource_code": code,
                    "consumer_org_code": "RS",
                    "items": ["id_number"],
                    "purpose": "x",
                    "modes": ["query"],
                }
            )
            req = service.submit_request(s, actor=ROOT, data=data)
            s.commit()
            return req.id

    def grant(self) -> int:
        request_id = self.pending()
        with self.factory() as s:
            grant = decisions.approve(s, actor=ROOT, request_id=request_id, data=ApproveIn())
            s.commit()
            return grant.id

    def day(self) -> str:
        day = dt.date(2030, 1, 1) + dt.timedelta(days=next(_days))
        with self.factory() as s:
            calendar.set_days(s, [DayEntry(day, DayKind.HOLIDAY, "测试")])
            s.commit()
        return day.isoformat()


@pytest.fixture
def world(client: TestClient, session_factory: sessionmaker[Session]) -> World:
    with session_factory() as s:
        rs, wjw, mz = make_org(s, code="RS"), make_org(s, code="WJW"), make_org(s, code="MZ")
        make_user(s, Role.RESIDENT, username="resident")
        make_user(s, Role.OPERATOR, org=rs, username="rs_op")
        make_user(s, Role.ORG_ADMIN, org=rs, username="rs_admin")
        make_user(s, Role.OPERATOR, org=wjw, username="wjw_op")
        make_user(s, Role.ORG_ADMIN, org=wjw, username="wjw_admin")
        make_user(s, Role.ORG_ADMIN, org=mz, username="mz_admin")
        make_user(s, Role.AUDITOR, username="auditor")
        make_user(s, Role.PLATFORM_ADMIN, username="platform")
        api_client, secret = make_client(s, rs)
        s.commit()
        cid = api_client.client_id
    headers = bearers(client, PRINCIPALS[1:-1], {"rs_client": (cid, secret)})
    return World(headers, session_factory)


def _new_request(w: World) -> dict[str, Any]:
    body = {
        "resource_code": w.resource(),
        "consumer_org_code": "RS",
        "items": ["id_number", "death_date"],
        "purpose": "养老金停发核查",
        "modes": ["verify"],
    }
    return {"json": body}


Body = Callable[[World], dict[str, Any]] | None
Spec = tuple[str, str, Body, set[str], set[str]]
# (method, path, request kwargs, who may, who is told "not found" instead of "forbidden")
MATRIX: list[Spec] = [
    ("POST", "/requests", _new_request, RS_REQUESTERS, set()),
    ("GET", "/requests", None, WITH_ORG_OR_ALL, set()),
    ("GET", "/requests?inbox=1", None, {"rs_admin", "wjw_admin", "mz_admin", "platform"}, set()),
    ("GET", "/requests/{pending}", None, SEERS, HIDDEN),
    ("POST", "/requests/{pending}/approve", lambda w: {"json": {}}, WJW_DECIDERS, HIDDEN),
    (
        "POST",
        "/requests/{pending}/refuse",
        lambda w: {"json": {"reason": "用途不明"}},
        WJW_DECIDERS,
        HIDDEN,
    ),
    ("POST", "/requests/{pending}/withdraw", None, RS_REQUESTERS, HIDDEN),
    (
        "POST",
        "/requests/{refused}/decide-legal-basis",
        lambda w: {"json": {"legal_basis": "《社会保险法》"}},
        {"platform"},
        HIDDEN,
    ),
    ("GET", "/grants", None, WITH_ORG_OR_ALL, set()),
    ("GET", "/grants/{grant}", None, SEERS, HIDDEN),
    (
        "POST",
        "/grants/{grant}/revoke",
        lambda w: {"json": {"reason": "停用"}},
        WJW_DECIDERS,
        HIDDEN,
    ),
    ("POST", "/grants/{grant}/renew", lambda w: {"json": {}}, RS_REQUESTERS, HIDDEN),
    ("GET", "/calendar?year=2030", None, SIGNED_IN, set()),
    (
        "PUT",
        "/calendar/2030-12-31",
        lambda w: {"json": {"kind": "holiday", "name": "测试"}},
        {"platform"},
        set(),
    ),
    ("DELETE", "/calendar/{day}", None, {"platform"}, set()),
]
FRESH: dict[str, Callable[[World], object]] = {
    "pending": World.pending,
    "refused": World.refused_not_shared,
    "grant": World.grant,
    "day": World.day,
}


def test_every_role_against_every_exchange_route(client: TestClient, world: World) -> None:
    wrong: list[str] = []
    for method, template, kwargs, allowed, hidden in MATRIX:
        for who in PRINCIPALS:
            values = {k: make(world) for k, make in FRESH.items() if "{" + k + "}" in template}
            path = "/api/v1/exchange" + template.format(**values)
            r = client.request(
                method, path, headers=world.headers[who], **(kwargs(world) if kwargs else {})
            )
            if who in allowed:
                ok, expected = 200 <= r.status_code < 300, "2xx"
            else:
                code = 401 if who == "anon" else 404 if who in hidden else 403
                ok, expected = r.status_code == code, str(code)
                ok = ok and set(r.json()["error"]) == {"code", "message", "details"}
            if not ok:
                wrong.append(f"{method} {path} as {who}: {r.status_code}, expected {expected}")
    assert wrong == []


def test_matrix_covers_every_route_of_the_exchange_router() -> None:
    routes = {
        (method, route.path)
        for route in api.router.routes
        for method in getattr(route, "methods", set()) - {"HEAD", "OPTIONS"}
    }
    covered = set()
    for method, template, *_ in MATRIX:
        path = "/api/v1/exchange" + template.split("?")[0]
        for name, param in (
            ("{pending}", "{request_id}"),
            ("{refused}", "{request_id}"),
            ("{grant}", "{grant_id}"),
            ("{day}", "{day}"),
            ("2030-12-31", "{day}"),
        ):
            path = path.replace(name, param)
        covered.add((method, path))
    assert routes - covered == set()


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"items": ["salary"]}, 422, "no data item salary"),
        ({"modes": ["bulk"]}, 422, "not offered by bulk"),
        ({"resource_code": "999-999999"}, 404, "does not exist"),
        ({"purpose": ""}, 422, "purpose"),
    ],
)
def test_bad_requests_get_a_4xx_that_says_what_to_fix(
    client: TestClient, world: World, body: dict[str, Any], status: int, words: str
) -> None:
    base = {
        "resource_code": world.resource(sharing_modes=["query", "verify"]),
        "items": ["id_number"],
        "purpose": "核查",
        "modes": ["verify"],
    }
    r = client.post("/api/v1/exchange/requests", json=base | body, headers=world.headers["rs_op"])
    assert r.status_code == status
    assert words in r.json()["error"]["message"]
