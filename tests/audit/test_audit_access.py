"""Who may call each audit route, and who may not: every role against every route."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from audit_support import build_ledger
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from factories import bearers, make_client, make_org, make_user
from haihe.core.auth import Role

PRINCIPALS = [
    "anon",
    "resident",
    "wjw_op",
    "wjw_admin",
    "mz_admin",
    "auditor",
    "platform",
    "wjw_client",
]
USERS = set(PRINCIPALS) - {"anon", "wjw_client"}
EVERYONE = set(PRINCIPALS)
LEDGER_READERS = {"platform", "auditor", "wjw_admin", "mz_admin"}
VERIFIERS = {"platform", "auditor"}

# (method, path, request kwargs, who may)
MATRIX: list[tuple[str, str, dict[str, Any] | None, set[str]]] = [
    ("GET", "/api/v1/audit/entries", None, LEDGER_READERS),
    ("GET", "/api/v1/audit/entries.csv", None, LEDGER_READERS),
    ("POST", "/api/v1/audit/verify", {"json": {}}, VERIFIERS),
    ("GET", "/api/v1/audit/statistics", None, LEDGER_READERS),
    ("GET", "/api/v1/audit/me", None, USERS),
    ("GET", "/audit", None, LEDGER_READERS),
    ("GET", "/audit/statistics", None, LEDGER_READERS),
    ("GET", "/audit/me", None, USERS),
    ("GET", "/audit/statistics.js", None, EVERYONE),
]


@dataclass
class World:
    headers: dict[str, dict[str, str]]


@pytest.fixture
def world(client: TestClient, session_factory: sessionmaker[Session]) -> World:
    with session_factory() as s:
        wjw, mz = make_org(s, code="WJW"), make_org(s, code="MZ")
        make_user(s, Role.RESIDENT, username="resident")
        make_user(s, Role.OPERATOR, org=wjw, username="wjw_op")
        make_user(s, Role.ORG_ADMIN, org=wjw, username="wjw_admin")
        make_user(s, Role.ORG_ADMIN, org=mz, username="mz_admin")
        make_user(s, Role.AUDITOR, username="auditor")
        make_user(s, Role.PLATFORM_ADMIN, username="platform")
        api_client, secret = make_client(s, wjw)
        s.commit()
        cid = api_client.client_id
    build_ledger(session_factory, 10)
    return World(bearers(client, PRINCIPALS[1:-1], {"wjw_client": (cid, secret)}))


def test_every_role_against_every_audit_route(client: TestClient, world: World) -> None:
    wrong: list[str] = []
    for method, path, kwargs, allowed in MATRIX:
        for who in PRINCIPALS:
            r = client.request(method, path, headers=world.headers[who], **(kwargs or {}))
            if who in allowed:
                ok, expected = 200 <= r.status_code < 300, "2xx"
            else:
                code = 401 if who == "anon" else 403
                ok = r.status_code == code and set(r.json()["error"]) == {
                    "code",
                    "message",
                    "details",
                }
                expected = str(code)
            if not ok:
                wrong.append(f"{method} {path} as {who}: {r.status_code}, expected {expected}")
    assert wrong == []


def test_matrix_covers_every_audit_route(app: Any) -> None:
    routes = {
        (method, route.path)
        for route in app.routes
        if getattr(route, "path", "").startswith(("/api/v1/audit", "/audit"))
        for method in getattr(route, "methods", set()) - {"HEAD", "OPTIONS"}
    }
    covered = {(method, path) for method, path, *_ in MATRIX}
    assert routes - covered == set()
