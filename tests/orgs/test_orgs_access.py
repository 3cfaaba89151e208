"""Who may call each members endpoint, and who may not: every role against every route."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from factories import PASSWORD, make_client, make_org, make_system, make_user
from haihe.core.auth import Role

PRINCIPALS = [
    "anon",
    "resident",
    "operator_a",
    "admin_a",
    "admin_b",
    "auditor",
    "platform",
    "client_a",
]
_n = itertools.count(1)


@dataclass
class World:
    headers: dict[str, dict[str, str]]
    ids: dict[str, str]


@pytest.fixture
def world(client: TestClient, session_factory: sessionmaker[Session]) -> World:
    with session_factory() as s:
        org_a = make_org(s, code="A")
        org_b = make_org(s, code="B")
        make_system(s, org_a, code="S")
        make_user(s, Role.RESIDENT, username="resident")
        make_user(s, Role.OPERATOR, org=org_a, username="operator_a")
        make_user(s, Role.ORG_ADMIN, org=org_a, username="admin_a")
        make_user(s, Role.ORG_ADMIN, org=org_b, username="admin_b")
        make_user(s, Role.AUDITOR, username="auditor")
        make_user(s, Role.PLATFORM_ADMIN, username="platform")
        api_client, secret = make_client(s, org_a)
        spare, _ = make_client(s, org_a)
        s.commit()
        ids = {"client_a": api_client.client_id, "spare_client": spare.client_id}
    headers: dict[str, dict[str, str]] = {"anon": {}}
    for name in PRINCIPALS[1:-1]:
        r = client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": name, "password": PASSWORD},
        )
        assert r.status_code == 200, r.text
        headers[name] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": ids["client_a"],
            "client_secret": secret,
        },
    )
    assert r.status_code == 200, r.text
    headers["client_a"] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return World(headers=headers, ids=ids)


def _org_body() -> dict[str, Any]:
    n = next(_n)
    return {"code": f"NEW{n}", "name_zh": f"新单位{n}", "kind": "municipal_department"}


def _user_body() -> dict[str, Any]:
    n = next(_n)
    return {
        "username": f"new{n}",
        "display_name": f"新用户{n}",
        "password": "a long password",
        "org_code": "A",
        "roles": ["operator"],
    }


ADMINS_A = {"platform", "admin_a"}
SIGNED_IN = set(PRINCIPALS) - {"anon"}
USERS = SIGNED_IN - {"client_a"}
Body = Callable[[], dict[str, Any]] | None

# (method, path, body, who may) — the path's {client_a}/{spare_client} come from the world.
MATRIX: list[tuple[str, str, Body, set[str]]] = [
    ("GET", "/api/v1/auth/whoami", None, SIGNED_IN),
    ("GET", "/api/v1/orgs", None, SIGNED_IN),
    ("POST", "/api/v1/orgs", _org_body, {"platform"}),
    ("GET", "/api/v1/orgs/A", None, SIGNED_IN),
    ("PATCH", "/api/v1/orgs/A", lambda: {"name_en": f"A {next(_n)}"}, ADMINS_A),
    ("GET", "/api/v1/orgs/A/systems", None, SIGNED_IN),
    ("POST", "/api/v1/orgs/A/systems", lambda: {"code": f"S{next(_n)}", "name": "系统"}, ADMINS_A),
    ("PATCH", "/api/v1/orgs/A/systems/S", lambda: {"name": "改名"}, ADMINS_A),
    ("GET", "/api/v1/users", None, {"platform", "auditor", "admin_a", "admin_b"}),
    ("POST", "/api/v1/users", _user_body, ADMINS_A),
    ("GET", "/api/v1/users/me", None, USERS),
    ("GET", "/api/v1/users/operator_a", None, ADMINS_A | {"operator_a", "auditor"}),
    (
        "PATCH",
        "/api/v1/users/operator_a",
        lambda: {"display_name": "张三"},
        ADMINS_A | {"operator_a"},
    ),
    ("GET", "/api/v1/clients", None, {"platform", "auditor", "admin_a", "admin_b"}),
    ("POST", "/api/v1/clients", lambda: {"name": "c", "org_code": "A"}, ADMINS_A),
    ("GET", "/api/v1/clients/{client_a}", None, ADMINS_A | {"auditor"}),
    ("PATCH", "/api/v1/clients/{client_a}", lambda: {"name": "renamed"}, ADMINS_A),
    ("POST", "/api/v1/clients/{spare_client}/rotate-secret", None, ADMINS_A),
]
# Routes whose access is shown by their own tests below (public, or self-only by nature).
COVERED_ELSEWHERE = {
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/revoke"),
    ("POST", "/api/v1/users/me/password"),
}


def test_every_role_against_every_route(client: TestClient, world: World) -> None:
    wrong: list[str] = []
    for method, template, body, allowed in MATRIX:
        path = template.format(**world.ids)
        for who in PRINCIPALS:
            r = client.request(
                method, path, json=body() if body else None, headers=world.headers[who]
            )
            if who in allowed:
                ok = 200 <= r.status_code < 300
            else:
                expected = 401 if who == "anon" else 403
                ok = r.status_code == expected and set(r.json()["error"]) == {
                    "code",
                    "message",
                    "details",
                }
            if not ok:
                verdict = "allowed" if who in allowed else "refused"
                wrong.append(f"{method} {path} as {who}: {r.status_code} (should be {verdict})")
    assert wrong == []


def test_matrix_covers_every_members_route(app: Any) -> None:
    routes = {
        (method, route.path)
        for route in app.routes
        if getattr(route, "path", "").startswith("/api/v1/")
        and not route.path.startswith("/api/v1/openapi")
        and not route.path.startswith("/api/v1/docs")
        for method in getattr(route, "methods", set()) - {"HEAD", "OPTIONS"}
    }
    in_matrix = {
        (m, p.replace("{client_a}", "{client_id}").replace("{spare_client}", "{client_id}"))
        for m, p, _, _ in MATRIX
    }
    in_matrix = {
        (m, p.replace("/A/systems/S", "/{code}/systems/{system_code}")) for m, p in in_matrix
    }
    normalised = set()
    for m, p in in_matrix:
        p = p.replace("/orgs/A", "/orgs/{code}").replace("/users/operator_a", "/users/{username}")
        normalised.add((m, p))
    missing = routes - normalised - COVERED_ELSEWHERE
    assert missing == set(), f"routes with no access test: {sorted(missing)}"
