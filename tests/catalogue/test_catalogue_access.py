"""Who may call each catalogue endpoint, and who may not: every role against every route."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from factories import (
    ROOT,
    bearers,
    make_client,
    make_org,
    make_resource,
    make_user,
    resource_in,
)
from haihe.catalogue import service
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
SIGNED_IN = set(PRINCIPALS) - {"anon"}
WJW_ADMINS = {"platform", "wjw_admin"}
LOADERS = {"platform", "wjw_admin", "wjw_op", "wjw_client"}
DRAFT_SEERS = {"platform", "auditor", "wjw_admin", "wjw_op", "wjw_client"}
CSV = "certificate_no,id_number,name,death_date,age\nC1,11010519491231002X,张三,2026-10-01,76\n"
_n = itertools.count(1)


@dataclass
class World:
    headers: dict[str, dict[str, str]]
    factory: sessionmaker[Session]
    published: str
    load_id: int

    def fresh(self, status: str) -> str:
        """A new entry of WJW in the given status (for calls that change it)."""
        with self.factory() as s:
            org = service.orgs.get_org(s, code="WJW")
            r = make_resource(s, org)
            if status in ("published", "retired"):
                service.publish(s, actor=ROOT, code=r.code)
            s.commit()
            return r.code


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
        published = make_resource(s, wjw)
        service.publish(s, actor=ROOT, code=published.code)
        s.commit()
        cid, code = api_client.client_id, published.code
    headers = bearers(client, PRINCIPALS[1:-1], {"wjw_client": (cid, secret)})
    bad = "certificate_no,id_number,name,death_date,age\nC9,123,李四,2026-10-01,x\n" + CSV[46:]
    r = client.post(
        f"/api/v1/catalogue/resources/{code}/loads",
        files={"file": ("deaths.csv", bad.encode())},
        headers=headers["platform"],
    )
    assert r.status_code == 201, r.text
    return World(headers, session_factory, code, r.json()["id"])


def _entry() -> dict[str, Any]:
    with_provider = resource_in(_Org("WJW")).model_dump(mode="json")
    with_provider["name_zh"] = f"新资源{next(_n)}"
    return with_provider


class _Org:
    def __init__(self, code: str) -> None:
        self.code = code


def _upload(name: str, body: str) -> Callable[[], dict[str, Any]]:
    return lambda: {"files": {"file": (name, body.encode())}}


def _import() -> dict[str, Any]:
    doc = {"format": "haihe-catalogue", "version": 1, "resources": [_entry()]}
    return {"files": {"file": ("c.json", json.dumps(doc, ensure_ascii=False).encode())}}


Spec = tuple[str, str, Callable[[], dict[str, Any]] | None, set[str], set[str]]
# (method, path, request kwargs, who may, who is told "not found" instead of "forbidden")
MATRIX: list[Spec] = [
    ("GET", "/api/v1/catalogue/classification", None, SIGNED_IN, set()),
    ("GET", "/api/v1/catalogue/resources?q=死亡", None, SIGNED_IN, set()),
    ("POST", "/api/v1/catalogue/resources", lambda: {"json": _entry()}, WJW_ADMINS, set()),
    ("GET", "/api/v1/catalogue/resources/{published}", None, SIGNED_IN, set()),
    ("GET", "/api/v1/catalogue/resources/{draft}", None, DRAFT_SEERS, {"resident", "mz_admin"}),
    (
        "PATCH",
        "/api/v1/catalogue/resources/{draft}",
        lambda: {"json": {"summary_zh": "改"}},
        WJW_ADMINS,
        {"resident", "mz_admin"},
    ),
    (
        "POST",
        "/api/v1/catalogue/resources/{draft}/publish",
        None,
        {"platform"},
        {"resident", "mz_admin"},
    ),
    ("POST", "/api/v1/catalogue/resources/{fresh_published}/retire", None, {"platform"}, set()),
    ("GET", "/api/v1/catalogue/resources/{published}/history", None, SIGNED_IN, set()),
    ("GET", "/api/v1/catalogue/resources/{published}/sample", None, SIGNED_IN, set()),
    (
        "POST",
        "/api/v1/catalogue/resources/{published}/loads",
        _upload("d.csv", CSV),
        LOADERS,
        set(),
    ),
    ("GET", "/api/v1/catalogue/resources/{published}/loads", None, SIGNED_IN, set()),
    (
        "GET",
        "/api/v1/catalogue/resources/{published}/loads/{load_id}/rejects",
        None,
        LOADERS,
        set(),
    ),
    ("GET", "/api/v1/catalogue/resources/{published}/versions", None, SIGNED_IN, set()),
    (
        "GET",
        "/api/v1/catalogue/resources/{published}/versions/compare?from=1&to=1",
        None,
        SIGNED_IN,
        set(),
    ),
    ("GET", "/api/v1/catalogue/export.json", None, SIGNED_IN, set()),
    ("GET", "/api/v1/catalogue/export.xlsx", None, SIGNED_IN, set()),
    ("POST", "/api/v1/catalogue/import", _import, WJW_ADMINS, set()),
]
# Shown by their own tests: SQL loads are refused to everyone unless the host is allow-listed.
COVERED_ELSEWHERE = {("POST", "/api/v1/catalogue/resources/{code}/loads/sql")}


def test_every_role_against_every_catalogue_route(client: TestClient, world: World) -> None:
    wrong: list[str] = []
    for method, template, kwargs, allowed, hidden in MATRIX:
        for who in PRINCIPALS:
            path = template.format(
                published=world.published,
                draft=world.fresh("draft") if "{draft}" in template else "",
                fresh_published=world.fresh("published") if "{fresh_" in template else "",
                load_id=world.load_id,
            )
            r = client.request(
                method, path, headers=world.headers[who], **(kwargs() if kwargs else {})
            )
            if who in allowed:
                ok = 200 <= r.status_code < 300
                expected = "2xx"
            else:
                code = 401 if who == "anon" else 404 if who in hidden else None
                if code is None:
                    # refused either as forbidden, or (imports) as a per-row problem report
                    ok = r.status_code in ((403, 422) if "import" in path else (403,))
                    expected = "403"
                else:
                    ok = r.status_code == code
                    expected = str(code)
                ok = ok and set(r.json()["error"]) == {"code", "message", "details"}
            if not ok:
                wrong.append(f"{method} {path} as {who}: {r.status_code}, expected {expected}")
    assert wrong == []


def test_matrix_covers_every_catalogue_route(app: Any) -> None:
    routes = {
        (method, route.path)
        for route in app.routes
        if getattr(route, "path", "").startswith("/api/v1/catalogue")
        for method in getattr(route, "methods", set()) - {"HEAD", "OPTIONS"}
    }
    covered = set()
    for method, template, *_ in MATRIX:
        path = template.split("?")[0]
        for name in ("{published}", "{draft}", "{fresh_published}"):
            path = path.replace(name, "{code}")
        covered.add((method, path))
    assert routes - covered - COVERED_ELSEWHERE == set()


def test_sql_loads_through_the_api_need_an_allow_listed_host(
    client: TestClient, world: World
) -> None:
    for url in ("sqlite:////etc/passwd", "postgresql+psycopg://postgres@10.0.0.1/x"):
        r = client.post(
            f"/api/v1/catalogue/resources/{world.published}/loads/sql",
            json={"url": url, "table": "t"},
            headers=world.headers["platform"],
        )
        assert r.status_code == 403
        assert "not allowed through the API" in r.json()["error"]["message"]
