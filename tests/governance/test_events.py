"""Event intake over the REST API: placed in its areas, routed, photos checked; bad input keeps
nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from governance_world import CELLS, COMMUNITIES, DISTRICT, INSIDE, OUTSIDE, STREETS, build, png
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from factories import bearer
from haihe.core import calendar
from haihe.core.settings import Settings
from haihe.governance.models import Event, EventStep, Photo

URL = "/api/v1/governance"


def _counts(factory: sessionmaker[Session]) -> tuple[int, int, int]:
    with factory() as s:
        return (
            s.scalar(select(func.count()).select_from(Event)) or 0,
            s.scalar(select(func.count()).select_from(EventStep)) or 0,
            s.scalar(select(func.count()).select_from(Photo)) or 0,
        )


def _body(**over: Any) -> dict[str, Any]:
    return {
        "category_code": "HJWS",
        "description": "楼道口暴露垃圾",
        "lng": INSIDE[0],
        "lat": INSIDE[1],
    } | over


def test_a_resident_report_is_placed_routed_and_tracked(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    build(session_factory)
    headers = bearer(client, username="resident")
    r = client.post(f"{URL}/events", json=_body(), headers=headers)
    assert r.status_code == 201, r.text
    event = r.json()
    assert event["source"] == "resident"
    assert event["status"] == "reported"
    assert (event["cell_code"], event["community_code"], event["street_code"]) == (
        CELLS[0],
        COMMUNITIES[0],
        STREETS[0],
    )
    assert event["district_code"] == DISTRICT
    # 环境卫生 goes to the community's command centre, due at the end of 2 working days
    assert (event["level"], event["command_code"]) == ("community", COMMUNITIES[0])
    assert event["category_name"] == "环境卫生"
    due = dt.datetime.fromisoformat(event["due_at"]).astimezone(calendar.CHINA_TIME)
    reported = dt.datetime.fromisoformat(event["created_at"]).astimezone(calendar.CHINA_TIME)
    assert due.time() == dt.time(23, 59, 59)
    weekdays = sum(
        (reported.date() + dt.timedelta(days=d)).weekday() < 5
        for d in range(1, (due.date() - reported.date()).days + 1)
    )
    assert weekdays == 2
    assert due.date().weekday() < 5
    assert [h["action"] for h in event["history"]] == ["report"]
    assert event["allowed_actions"] == []  # nothing is the resident's move yet
    # the community sees it in its queue, the other street does not see it at all
    mine = client.get(f"{URL}/events", headers=bearer(client, username="community_op")).json()
    assert [e["id"] for e in mine["items"]] == [event["id"]]
    assert mine["items"][0]["allowed_actions"] == ["accept", "escalate", "close"]
    other = client.get(
        f"{URL}/events/{event['id']}", headers=bearer(client, username="other_street_op")
    )
    assert other.status_code == 404


def test_an_address_places_the_event_at_the_named_area(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    build(session_factory)
    body = _body(lng=None, lat=None, address="五大道社区第1网格 睦南道 20 号", category_code="ZDJY")
    r = client.post(f"{URL}/events", json=body, headers=bearer(client, username="street_op"))
    assert r.status_code == 201, r.text
    assert r.json()["cell_code"] == COMMUNITIES[3] + "001"
    assert r.json()["command_code"] == STREETS[1]  # 占道经营 is the street's


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (_body(lng=OUTSIDE[0], lat=OUTSIDE[1]), "outside every grid cell"),
        (_body(category_code="NOPE"), "unknown event category 'NOPE'"),
        (_body(lng=None, lat=None), "give the location"),
        (_body(lat=None), "both lng and lat"),
        (_body(lng=None, lat=None, address="北京市朝阳区"), "names no grid cell"),
    ],
)
def test_bad_reports_get_a_422_and_leave_nothing(
    client: TestClient, session_factory: sessionmaker[Session], body: dict[str, Any], words: str
) -> None:
    build(session_factory)
    r = client.post(f"{URL}/events", json=body, headers=bearer(client, username="resident"))
    assert r.status_code == 422
    assert words in r.json()["error"]["message"]
    assert _counts(session_factory) == (0, 0, 0)


def test_photos_are_decoded_before_anything_is_kept(
    client: TestClient, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    build(session_factory)
    headers = bearer(client, username="worker")
    event = client.post(f"{URL}/events", json=_body(), headers=headers).json()
    assert event["source"] == "grid_worker"
    url = f"{URL}/events/{event['id']}/photos"
    fake = ("files", ("a.jpg", b"\xff\xd8\xff\xe0 not really a jpeg", "image/jpeg"))
    r = client.post(url, files=[fake], headers=headers)
    assert r.status_code == 422
    assert "not an image" in r.json()["error"]["message"]
    big = ("files", ("big.png", png((1500, 1500)) + b"\0" * (6 * 1024 * 1024), "image/png"))
    r = client.post(url, files=[big], headers=headers)
    assert r.status_code == 422
    assert "the limit is" in r.json()["error"]["message"]
    # a good photo beside a bad one: the whole upload is refused
    good = ("files", ("ok.png", png(), "image/png"))
    assert client.post(url, files=[good, fake], headers=headers).status_code == 422
    assert _counts(session_factory) == (1, 1, 0)
    photo_dir = Path(settings.data_dir) / "governance" / "photos" / str(event["id"])
    assert not photo_dir.exists() or not any(photo_dir.iterdir())
    r = client.post(url, files=[good], headers=headers)
    assert r.status_code == 201, r.text
    shown = r.json()["photos"]
    assert [(p["media_type"], p["width"], p["height"]) for p in shown] == [("image/png", 8, 6)]
    got = client.get(shown[0]["url"], headers=headers)
    assert got.status_code == 200
    assert got.content == png()
    # someone who does not see the event does not see its photo either
    other = client.get(shown[0]["url"], headers=bearer(client, username="other_street_op"))
    assert other.status_code == 404
