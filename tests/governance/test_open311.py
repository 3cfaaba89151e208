"""Open311 GeoReport v2: every response validated against the published JSON Schemas, XML
carrying the same data, the standard's errors and codes, api_key handling."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from governance_world import INSIDE, OUTSIDE, build, png
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from factories import bearer
from haihe.governance.models import Event, EventStep

SCHEMAS = Path(__file__).resolve().parents[3] / "shared" / "open311-schemas"
BASE = "/open311/v2"


def _validator(name: str) -> Draft4Validator:
    if not SCHEMAS.is_dir():
        pytest.skip(
            f"the Open311 JSON Schemas are not at {SCHEMAS} (CI checks out ../shared beside the "
            "repository; this checkout lacks it)"
        )
    registry: Registry = Registry()
    for path in SCHEMAS.glob("*.json"):
        contents = json.loads(path.read_text())
        resource = Resource.from_contents(contents, default_specification=DRAFT4)
        registry = registry.with_resource(path.name, resource)
    schema = json.loads((SCHEMAS / name).read_text())
    return Draft4Validator(schema, registry=registry)


def valid(name: str, body: Any) -> Any:
    errors = [e.message for e in _validator(name).iter_errors(body)]
    assert errors == [], errors
    return body


def xml_rows(text: str, root: str) -> list[dict[str, str]]:
    top = ET.fromstring(text.encode())
    assert top.tag == root
    return [{child.tag: (child.text or "") for child in item} for item in top]


def _post(client: TestClient, key: str | None, **fields: Any) -> Any:
    data = {
        "service_code": "HJWS",
        "lat": INSIDE[1],
        "long": INSIDE[0],
        "description": "小区门口垃圾没人清",
        "first_name": "女士",
        "last_name": "王",
        "phone": "13800000000",
    } | fields
    if key is not None:
        data["api_key"] = key
    return client.post(
        f"{BASE}/requests.json", data={k: v for k, v in data.items() if v is not None}
    )


def test_services_and_their_definitions(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    build(session_factory)
    services = valid("services.json", client.get(f"{BASE}/services.json").json())
    codes = {s["service_code"]: s for s in services}
    assert codes["JGQS"]["service_name"] == "井盖缺失"
    assert codes["JGQS"]["group"] == "市政设施"
    r = client.get(f"{BASE}/services.xml")
    assert r.headers["content-type"].startswith("text/xml")
    assert r.text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    rows = xml_rows(r.text, "services")
    assert {row["service_code"]: row["service_name"] for row in rows} == {
        c: s["service_name"] for c, s in codes.items()
    }
    assert rows[0]["metadata"] == "false"
    english = client.get(f"{BASE}/services.json", headers={"Accept-Language": "en"}).json()
    assert {s["service_code"]: s["service_name"] for s in english}[
        "JGQS"
    ] == "Missing manhole cover"
    definition = valid("service-definition.json", client.get(f"{BASE}/services/JGQS.json").json())
    assert definition == {"service_code": "JGQS", "attributes": []}
    top = ET.fromstring(client.get(f"{BASE}/services/JGQS.xml").content)
    assert (top.tag, top.findtext("service_code")) == ("service_definition", "JGQS")
    missing = client.get(f"{BASE}/services/NOPE.json")
    assert missing.status_code == 404
    assert missing.json() == [{"code": 404, "description": "service_code 'NOPE' does not exist"}]


def test_post_track_and_list_requests(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    world = build(session_factory)
    r = _post(client, world.key)
    assert r.status_code == 200, r.text
    (made,) = r.json()
    assert set(made) >= {"service_request_id", "token"}
    request_id, token = made["service_request_id"], made["token"]
    # XML posting answers the same shape
    rx = client.post(
        f"{BASE}/requests.xml",
        data={"api_key": world.key, "service_code": "JGQS", "address_string": "花园社区第2网格"},
    )
    assert rx.status_code == 200, rx.text
    (made_xml,) = xml_rows(rx.text, "service_requests")
    assert made_xml["service_request_id"] != request_id
    tokens = client.get(f"{BASE}/tokens/{token}.json").json()
    assert tokens == [{"service_request_id": request_id, "token": token}]
    assert xml_rows(client.get(f"{BASE}/tokens/{token}.xml").text, "service_requests") == [
        {"service_request_id": request_id, "token": token}
    ]
    one = valid("requests.json", client.get(f"{BASE}/requests/{request_id}.json").json())
    assert one[0]["status"] == "open"
    assert one[0]["service_code"] == "HJWS"
    assert (one[0]["lat"], one[0]["long"]) == (INSIDE[1], INSIDE[0])
    assert one[0]["agency_responsible"] == "120101001001"
    assert "王" not in json.dumps(one)  # the reporter's name and phone are not published
    xml_one = xml_rows(client.get(f"{BASE}/requests/{request_id}.xml").text, "service_requests")
    assert xml_one[0]["service_request_id"] == request_id
    assert xml_one[0]["status"] == one[0]["status"]
    assert xml_one[0]["requested_datetime"] == one[0]["requested_datetime"]
    assert float(xml_one[0]["lat"]) == one[0]["lat"]
    # the hotline's client reported it: its event, source hotline_12345
    staff = bearer(client, username="platform")
    event = client.get(f"/api/v1/governance/events/{request_id}", headers=staff).json()
    assert event["source"] == "hotline_12345"
    # list with the spec's filters and the page/page_size extension
    everything = valid("requests.json", client.get(f"{BASE}/requests.json").json())
    assert [e["service_request_id"] for e in everything] == [
        made_xml["service_request_id"],
        request_id,
    ]
    assert [
        e["service_request_id"]
        for e in client.get(f"{BASE}/requests.json?service_code=JGQS").json()
    ] == [made_xml["service_request_id"]]
    assert client.get(f"{BASE}/requests.json?status=closed").json() == []
    assert len(client.get(f"{BASE}/requests.json?status=open").json()) == 2
    page2 = client.get(f"{BASE}/requests.json?page=2&page_size=1").json()
    assert [e["service_request_id"] for e in page2] == [request_id]
    by_id = client.get(f"{BASE}/requests.json?service_request_id={request_id},999&status=closed")
    assert [e["service_request_id"] for e in by_id.json()] == [request_id]
    assert client.get(f"{BASE}/requests.json?end_date=2001-01-01T00:00:00Z").json() == []
    listed = xml_rows(client.get(f"{BASE}/requests.xml").text, "service_requests")
    assert [row["service_request_id"] for row in listed] == [
        e["service_request_id"] for e in everything
    ]
    # once resolved it is closed for Open311
    for action in ("accept", "dispatch", "start", "resolve"):
        client.post(
            f"/api/v1/governance/events/{request_id}/actions/{action}", json={}, headers=staff
        )
    closed = valid("requests.json", client.get(f"{BASE}/requests/{request_id}.json").json())
    assert closed[0]["status"] == "closed"
    assert closed[0]["status_notes"].startswith("已办结")


def _count(factory: sessionmaker[Session]) -> tuple[int, int]:
    with factory() as s:
        return (
            s.scalar(select(func.count()).select_from(Event)) or 0,
            s.scalar(select(func.count()).select_from(EventStep)) or 0,
        )


@pytest.mark.parametrize(
    ("key", "fields", "code", "words"),
    [
        (None, {}, 400, "api_key is required"),
        ("o311_wrong", {}, 403, "api_key is not valid"),
        ("KEY", {"service_code": "NOPE"}, 400, "unknown event category 'NOPE'"),
        ("KEY", {"service_code": None}, 400, "service_code is required"),
        ("KEY", {"lat": OUTSIDE[1], "long": OUTSIDE[0]}, 400, "outside every grid cell"),
        ("KEY", {"lat": None, "long": None}, 400, "give the location"),
        ("KEY", {"lat": "north"}, 400, "lat must be a number"),
    ],
)
def test_bad_posts_answer_the_standard_error_and_keep_nothing(
    client: TestClient,
    session_factory: sessionmaker[Session],
    key: str | None,
    fields: dict[str, Any],
    code: int,
    words: str,
) -> None:
    world = build(session_factory)
    r = _post(client, world.key if key == "KEY" else key, **fields)
    assert r.status_code == code
    body = r.json()
    assert len(body) == 1
    assert body[0]["code"] == code
    assert words in body[0]["description"]
    assert _count(session_factory) == (0, 0)


def test_errors_in_xml_and_photos_through_open311(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    world = build(session_factory)
    r = client.post(f"{BASE}/requests.xml", data={"service_code": "HJWS"})
    assert r.status_code == 400
    top = ET.fromstring(r.content)
    assert top.tag == "errors"
    assert top.find("error/code").text == "400"  # type: ignore[union-attr]
    assert "api_key" in (top.findtext("error/description") or "")
    bad = client.post(
        f"{BASE}/requests.json",
        data={"api_key": world.key, "service_code": "HJWS", "lat": INSIDE[1], "long": INSIDE[0]},
        files=[("media", ("x.jpg", b"GIF89a not at all", "image/jpeg"))],
    )
    assert bad.status_code == 400
    assert "not an image" in bad.json()[0]["description"]
    assert _count(session_factory) == (0, 0)
    good = client.post(
        f"{BASE}/requests.json",
        data={"api_key": world.key, "service_code": "HJWS", "lat": INSIDE[1], "long": INSIDE[0]},
        files=[("media", ("x.png", png(), "image/png"))],
    )
    assert good.status_code == 200, good.text
    assert _count(session_factory) == (1, 1)
    assert client.get(f"{BASE}/requests/12345.json").status_code == 404
    assert client.get(f"{BASE}/tokens/nope.json").json() == [
        {"code": 404, "description": "token 'nope' is unknown"}
    ]
    assert client.get(f"{BASE}/services.csv").status_code == 404
    unknown = client.get(f"{BASE}/nothing-here.json", headers={"Accept": "text/html"})
    assert unknown.status_code == 404
    assert "login" not in unknown.headers.get("location", "")
