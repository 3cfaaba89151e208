"""The governance console over HTTP: a grid worker reports with a photo and moves an event on,
a command centre works its queue and blows the whistle, the map and the figures render; bad
input shows the form again and keeps nothing."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from governance_world import CELLS, INSIDE, OUTSIDE, STREETS, build, png
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from factories import PASSWORD
from haihe.governance.models import Event, EventStep, Photo

HTML = {"accept": "text/html"}


def sign_in(client: TestClient, username: str) -> TestClient:
    client.cookies.clear()
    r = client.post(
        "/login", data={"username": username, "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 303
    return client


def text_of(html: str) -> str:
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _counts(factory: sessionmaker[Session]) -> tuple[int, int, int]:
    with factory() as s:
        return tuple(  # type: ignore[return-value]
            s.scalar(select(func.count()).select_from(t)) or 0 for t in (Event, EventStep, Photo)
        )


def _report(client: TestClient, **over: object) -> object:
    form = {
        "category_code": "HJWS",
        "description": "楼道堆放垃圾",
        "lng": str(INSIDE[0]),
        "lat": str(INSIDE[1]),
    } | over
    files = [("photos", ("scene.png", png(), "image/png"))]
    return client.post(
        "/governance/report", data=form, files=files, headers=HTML, follow_redirects=False
    )


def test_a_grid_worker_reports_with_a_photo_and_works_the_event(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    build(session_factory)
    sign_in(client, "worker")
    assert client.get("/governance", follow_redirects=False).headers["location"] == (
        "/governance/tasks"
    )
    form = client.get("/governance/report", headers=HTML).text
    assert 'accept="image/*" capture="environment"' in form
    assert "环境卫生（2 个工作日）" in text_of(form)
    r = _report(client)
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]
    page = client.get(r.headers["location"], headers=HTML).text  # type: ignore[attr-defined]
    assert "事件已上报" in page
    assert 'src="/api/v1/governance/photos/' in page
    assert CELLS[0] in page
    event_id = int(re.search(r"/governance/events/(\d+)", r.headers["location"]).group(1))  # type: ignore[union-attr, attr-defined]
    # the community's operator accepts and dispatches it to the community; the worker works it
    sign_in(client, "community_op")
    queue = client.get("/governance/queue", headers=HTML).text
    assert f'href="/governance/events/{event_id}"' in queue
    for action in ("accept", "dispatch"):
        r = client.post(
            f"/governance/events/{event_id}/actions/{action}",
            data={"note": ""},
            headers=HTML,
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
    sign_in(client, "worker")
    tasks = text_of(client.get("/governance/tasks", headers=HTML).text)
    assert "待我处理" in tasks
    assert "已派遣" in tasks
    page = client.get(f"/governance/events/{event_id}", headers=HTML).text
    assert f'action="/governance/events/{event_id}/actions/start"' in page
    # a move the state forbids: 409, said on the page, nothing changed
    before = _counts(client.app.state.session_factory)  # type: ignore[attr-defined]
    r = client.post(f"/governance/events/{event_id}/actions/resolve", data={}, headers=HTML)
    assert r.status_code == 409
    assert "allowed now: start, return" in text_of(r.text)
    assert _counts(client.app.state.session_factory) == before  # type: ignore[attr-defined]
    for action in ("start", "resolve"):
        r = client.post(
            f"/governance/events/{event_id}/actions/{action}",
            data={"note": "已清理"},
            headers=HTML,
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
    page = text_of(client.get(f"/governance/events/{event_id}", headers=HTML).text)
    assert "已办结" in page
    assert "开始处置" in page


def test_bad_reports_show_the_form_again_and_keep_nothing(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    build(session_factory)
    sign_in(client, "worker")
    before = _counts(session_factory)
    r = _report(client, lng=str(OUTSIDE[0]), lat=str(OUTSIDE[1]))
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert "outside every grid cell" in text_of(r.text)  # type: ignore[attr-defined]
    assert 'value="楼道堆放垃圾"' not in r.text  # type: ignore[attr-defined]
    assert "楼道堆放垃圾" in r.text  # type: ignore[attr-defined]  # what was typed is kept
    r = client.post(
        "/governance/report",
        data={"category_code": "HJWS", "description": "x", "lng": "117.05", "lat": "39.02"},
        files=[("photos", ("a.png", b"not an image", "image/png"))],
        headers=HTML,
    )
    assert r.status_code == 422
    assert "not an image" in text_of(r.text)
    r = _report(client, category_code="NOPE")
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert _counts(session_factory) == before


def test_the_street_blows_the_whistle_and_a_department_reports_back(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    build(session_factory)
    sign_in(client, "worker")
    r = _report(client, category_code="ZDJY")  # a street's category
    event_id = int(r.headers["location"].split("/")[-1].split("?")[0])  # type: ignore[attr-defined]
    sign_in(client, "street_op")
    client.post(f"/governance/events/{event_id}/actions/accept", data={}, headers=HTML)
    page = client.get(f"/governance/events/{event_id}", headers=HTML).text
    assert 'data-testid="whistle-form"' in page
    r = client.post(
        f"/governance/events/{event_id}/whistle",
        data={"reason": "占道经营需城管交通联合执法", "hours": "24", "departments": ["CGW", "JT"]},
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    sign_in(client, "cgw_officer")
    queue = client.get("/governance/queue", headers=HTML).text
    assert 'data-testid="summons"' in queue
    page = client.get(f"/governance/events/{event_id}", headers=HTML).text
    summons_id = re.search(r"/governance/summons/(\d+)/report", page).group(1)  # type: ignore[union-attr]
    r = client.post(
        f"/governance/summons/{summons_id}/report",
        data={"report": "已派执法队员到场"},
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = text_of(client.get(f"/governance/events/{event_id}", headers=HTML).text)
    assert "已派执法队员到场" in page
    assert "待报到" in page


def test_map_and_statistics_pages_for_command_centres_only(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    build(session_factory)
    sign_in(client, "worker")
    _report(client)
    assert client.get("/governance/map", headers=HTML).status_code == 403
    assert client.get("/governance/statistics", headers=HTML).status_code == 403
    sign_in(client, "street_op")
    page = client.get("/governance/map?days=30&level=cell", headers=HTML).text
    data = re.search(r'id="gv-map-data">(.*?)</script>', page, flags=re.S).group(1)  # type: ignore[union-attr]
    assert '"FeatureCollection"' in data
    assert f'"cell": "{CELLS[0]}"' in data
    stats = client.get(f"/governance/statistics?area={STREETS[0]}", headers=HTML)
    assert stats.status_code == 200
    assert "环境卫生" in text_of(stats.text)
    assert client.get("/governance/static/map.js").status_code == 200
    assert client.get("/governance/static/nope.js").status_code == 404
    english = client.get("/governance/statistics", headers=HTML | {"accept-language": "en"})
    assert "Resolved on time" in english.text


PAGES = [
    "/governance",
    "/governance/tasks",
    "/governance/queue",
    "/governance/report",
    "/governance/map",
    "/governance/statistics",
    "/governance/events/1",
]


def test_every_page_needs_a_signed_in_user_and_the_figures_need_staff(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    build(session_factory)
    client.cookies.clear()
    for path in PAGES:
        r = client.get(path, headers=HTML, follow_redirects=False)
        assert r.status_code in (302, 303), path
        assert r.headers["location"].startswith("/login"), path
    expected = {
        # who: (tasks, report, queue, map, statistics)
        "worker": (200, 200, 200, 403, 403),
        "resident": (200, 200, 200, 403, 403),
        "street_op": (200, 200, 200, 200, 200),
        "cgw_officer": (200, 200, 200, 200, 200),
        "auditor": (200, 200, 200, 200, 200),
        "platform": (200, 200, 200, 200, 200),
    }
    for who, codes in expected.items():
        sign_in(client, who)
        got = tuple(client.get(p, headers=HTML).status_code for p in PAGES[1:6])
        assert got == codes, who
