"""Who may call the query gateway over HTTP, and what every answer carries (request id, errors).

A grant names an organisation and, optionally, one of its systems: its users and API clients may
call (only the named system's clients when there is one); other organisations, residents, the
platform admin and anonymous callers may not; expired, revoked and not-yet-started grants hold
for nobody.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_gateway_world import City, build_city, grant, person

from haihe.audit.models import AuditEntry
from haihe.core.db import utcnow
from haihe.core.settings import Settings
from haihe.exchange import gateway_api
from haihe.exchange.models import GrantStatus

CALLERS = [
    "anon",
    "resident",
    "platform",
    "ga_admin",
    "mz_admin",
    "mz_client",
    "rsj_op",
    "rsj_client",
    "rsj_pension_client",
    "rsj_other_client",
]
PEOPLE = 30
RSJ = {"rsj_op", "rsj_client", "rsj_pension_client", "rsj_other_client"}


@pytest.fixture
def city(client: TestClient, session: Session, settings: Settings, tmp_path: Path) -> City:
    return build_city(session, settings, tmp_path / "in", people=PEOPLE)


def records(client: TestClient, city: City, who: str, query: str = "") -> Any:
    return client.get(f"/api/v1/exchange/{city.code}/records{query}", headers=city.headers(who))


def expected_status(who: str, admitted: set[str]) -> int:
    if who == "anon":
        return 401
    return 200 if who in admitted else 403


@pytest.mark.parametrize("who", CALLERS)
def test_a_grant_to_the_organisation_admits_its_users_and_clients_only(
    client: TestClient, session: Session, city: City, who: str
) -> None:
    grant(session, city)
    r = records(client, city, who, "?limit=3")
    assert r.status_code == expected_status(who, RSJ)


@pytest.mark.parametrize("who", CALLERS)
def test_a_grant_tied_to_a_system_admits_that_systems_clients_only(
    client: TestClient, session: Session, city: City, who: str
) -> None:
    grant(session, city, consumer_system_id=city.system_ids["pension"])
    r = records(client, city, who, "?limit=3")
    assert r.status_code == expected_status(who, {"rsj_pension_client"})


@pytest.mark.parametrize(
    "change",
    [
        {"expires_at": utcnow() - dt.timedelta(minutes=1)},
        {"status": GrantStatus.REVOKED},
        {"status": GrantStatus.EXPIRED},
        {"starts_at": utcnow() + dt.timedelta(days=1)},
        {"modes": ["bulk", "verify"]},
    ],
    ids=["past-expiry", "revoked", "expired", "not-started", "no-query-mode"],
)
def test_a_grant_not_in_force_for_query_admits_nobody(
    client: TestClient, session: Session, city: City, change: dict[str, Any]
) -> None:
    grant(session, city, **change)
    r = records(client, city, "rsj_client")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")


def test_every_route_of_the_gateway_is_in_this_matrix() -> None:
    tested = {("GET", "/api/v1/exchange/{resource_code}/records")}
    routes = {
        (method, route.path)
        for route in gateway_api.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert routes == tested


def test_a_refused_call_returns_nothing_and_leaves_an_audit_entry(
    client: TestClient, session: Session, city: City
) -> None:
    grant(session, city, items=["person_no", "age"])
    r = records(client, city, "rsj_client", "?items=person_no,name")
    session.expire_all()
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "exchange.query")).one()
    assert set(r.json()) == {"error"}
    assert r.json()["error"]["details"]["items"] == ["name"]
    assert (entry.outcome, entry.request_id) == ("refused", r.headers["X-Request-ID"])


def test_filters_items_limit_and_cursor_come_from_the_query_string(
    client: TestClient, session: Session, city: City
) -> None:
    grant(session, city)
    query = "?items=person_no,age,district&district=120101&age__between=30,70&limit=2"
    first = records(client, city, "rsj_client", query).json()
    second = records(client, city, "rsj_client", f"{query}&after={first['next']}").json()
    expected = [
        {"person_no": p["person_no"], "age": p["age"], "district": p["district"]}
        for p in map(person, range(PEOPLE))
        if p["district"] == "120101" and 30 <= p["age"] <= 70
    ]
    assert len(expected) == 3  # so the second page is the last, with one record
    assert first["records"] + second["records"] == expected
    assert (first["items"], second["next"]) == (["person_no", "age", "district"], None)


def test_masked_items_are_listed_in_the_answer(
    client: TestClient, session: Session, city: City
) -> None:
    grant(session, city, unmasked_items=["phone"])
    body = records(client, city, "rsj_client", "?items=id_number,phone,age&limit=2").json()
    assert body["masked"] == ["id_number"]
    assert re.fullmatch(r"\d{6}\*{8}\d{3}[\dX]", body["records"][0]["id_number"])


def test_over_the_quota_the_answer_is_429_with_retry_after(
    client: TestClient, session: Session, city: City
) -> None:
    grant(session, city, calls_per_day=1)
    assert records(client, city, "rsj_client").status_code == 200
    r = records(client, city, "rsj_client")
    assert (r.status_code, r.json()["error"]["code"]) == (429, "rate_limited")
    assert 0 < int(r.headers["Retry-After"]) <= 86400
    assert r.headers["X-Request-ID"]


def test_the_callers_request_id_is_echoed_and_recorded(
    client: TestClient, session: Session, city: City
) -> None:
    grant(session, city)
    r = client.get(
        f"/api/v1/exchange/{city.code}/records?limit=1",
        headers={**city.headers("rsj_client"), "X-Request-ID": "trace-42"},
    )
    session.expire_all()
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "exchange.query")).one()
    assert (r.headers["X-Request-ID"], r.json()["request_id"]) == ("trace-42", "trace-42")
    assert entry.request_id == "trace-42"


@pytest.mark.parametrize("given", [None, "x" * 65, "with space"])
def test_without_a_usable_request_id_one_is_made(
    client: TestClient, session: Session, city: City, given: str | None
) -> None:
    grant(session, city)
    headers = city.headers("rsj_client") | ({"X-Request-ID": given} if given else {})
    r = client.get(f"/api/v1/exchange/{city.code}/records?limit=1", headers=headers)
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-ID"])


def test_errors_before_the_service_carry_the_request_id_too(client: TestClient, city: City) -> None:
    r = client.get(
        f"/api/v1/exchange/{city.code}/records?limit=5000",
        headers={**city.headers("rsj_client"), "X-Request-ID": "big-page"},
    )
    assert (r.status_code, r.headers["X-Request-ID"]) == (422, "big-page")


def test_an_unknown_filter_op_is_read_as_an_item_name(
    client: TestClient, session: Session, city: City
) -> None:
    grant(session, city)
    r = records(client, city, "rsj_client", "?age__about=60")
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_input")


def test_the_route_documents_its_filters_in_openapi(client: TestClient, city: City) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    op = spec["paths"]["/api/v1/exchange/{resource_code}/records"]["get"]
    names = {p["name"] for p in op["parameters"]}
    assert {"resource_code", "items", "limit", "after", "filters"} <= names
