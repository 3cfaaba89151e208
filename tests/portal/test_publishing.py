"""Publishing rules: what may be opened, by whom, and what a dataset's data then holds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from portal_city import user
from portal_world import dataset_in, loaded_resource, people
from sqlalchemy.orm import Session

from factories import ROOT, bearers
from haihe.core.calendar import DayEntry, DayKind, set_days
from haihe.core.errors import Conflict, Forbidden, HaiheError, InvalidInput, NotFound
from haihe.core.settings import Settings
from haihe.portal import repository, service
from haihe.portal.schemas import ApplicationIn


@pytest.mark.parametrize(
    ("view", "error", "words"),
    [
        ({"items": ["record_no", "diagnosis"]}, InvalidInput, "L4 items are never opened"),
        ({"items": ["diagnosis"], "masked": ["diagnosis"]}, InvalidInput, "diagnosis (诊断, L4)"),
        ({"items": ["record_no", "id_number"]}, InvalidInput, "id_number (身份证号, L3, personal)"),
        ({"items": ["name", "district"]}, InvalidInput, "must be masked or aggregated away"),
        (
            {"items": ["district"], "where": [{"item": "id_number", "op": "eq", "value": "1"}]},
            InvalidInput,
            "row condition may not name",
        ),
        (
            {"aggregate": {"group_by": ["name"], "measures": [{"name": "n"}]}},
            InvalidInput,
            "name (姓名, L2, personal)",
        ),
        (
            {
                "aggregate": {
                    "group_by": ["district"],
                    "measures": [{"name": "x", "fn": "max", "item": "id_number"}],
                }
            },
            InvalidInput,
            "id_number",
        ),
        ({"items": ["salary"]}, InvalidInput, "no data item salary"),
    ],
)
def test_publishing_refuses_items_their_sensitivity_forbids(
    session: Session,
    settings: Settings,
    tmp_path: Path,
    view: dict[str, Any],
    error: type[HaiheError],
    words: str,
) -> None:
    orgs = people(session)
    code = loaded_resource(session, settings, orgs["MZ"], tmp_path, people=8)
    with pytest.raises(error) as err:
        service.publish(session, actor=ROOT, settings=settings, data=dataset_in(code, view=view))
    assert words in err.value.message
    assert repository.active_names(session, limit=None, offset=0) == []


def test_open_types_and_publishers(session: Session, settings: Settings, tmp_path: Path) -> None:
    orgs = people(session)
    closed = loaded_resource(
        session, settings, orgs["MZ"], tmp_path, people=4, open_type="not_open"
    )
    conditional = loaded_resource(
        session, settings, orgs["MZ"], tmp_path, people=4, open_type="conditional",
        open_conditions="仅限研究",
    )  # fmt: skip
    with pytest.raises(InvalidInput, match="不予开放"):
        service.publish(session, actor=ROOT, settings=settings, data=dataset_in(closed))
    with pytest.raises(InvalidInput, match="conditional too"):
        service.publish(
            session, actor=ROOT, settings=settings,
            data=dataset_in(conditional, open_type="unconditional"),
        )  # fmt: skip

    for who in ("rs_admin", "mz_op", "resident"):
        with pytest.raises(Forbidden):
            service.publish(
                session, actor=user(session, who), settings=settings, data=dataset_in(conditional)
            )
    ds = service.publish(
        session, actor=user(session, "mz_admin"), settings=settings, data=dataset_in(conditional)
    )
    assert ds.open_type.value == "conditional"
    assert ds.terms == "仅限研究"
    with pytest.raises(Conflict, match="already exists"):
        service.publish(
            session, actor=ROOT, settings=settings, data=dataset_in(conditional, name=ds.name)
        )


def test_a_new_load_refreshes_the_dataset(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    from portal_world import row, write_csv

    from haihe.catalogue.loading import LoadSource, load_resource

    orgs = people(session)
    code = loaded_resource(session, settings, orgs["MZ"], tmp_path, people=8)
    ds = service.publish(session, actor=ROOT, settings=settings, data=dataset_in(code))
    assert (ds.row_count, ds.source_version) == (8, 1)
    path = write_csv(tmp_path / "again.csv", [row(i) for i in range(12)])
    load_resource(
        session, actor=ROOT, settings=settings, code=code, source=LoadSource.for_file(path)
    )
    assert service.refresh_stale(session, settings=settings, actor=ROOT) == [ds.name]
    assert (ds.row_count, ds.source_version, ds.data_version) == (12, 2, 2)
    assert service.refresh_stale(session, settings=settings, actor=ROOT) == []


def test_applications_are_due_in_two_working_days(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    orgs = people(session)
    code = loaded_resource(
        session, settings, orgs["MZ"], tmp_path, people=4, open_type="conditional",
        open_conditions="仅限研究",
    )  # fmt: skip
    ds = service.publish(session, actor=ROOT, settings=settings, data=dataset_in(code))
    set_days(session, [DayEntry(dt.date(2026, 10, 5), DayKind.HOLIDAY, "国庆节")])

    resident = user(session, "resident")
    friday = dt.datetime(2026, 10, 2, 2, 0, tzinfo=dt.UTC)  # 10:00 in Tianjin
    data = ApplicationIn(dataset=ds.name, purpose="研究", accept_terms=True)
    app = service.apply(session, actor=resident, data=data, now=friday)
    assert app.due_on == dt.date(2026, 10, 7)  # Monday the 5th is a holiday
    with pytest.raises(Conflict, match="already have"):
        service.apply(session, actor=resident, data=data)
    with pytest.raises(InvalidInput, match="accept"):
        service.apply(
            session, actor=user(session, "resident2"),
            data=ApplicationIn(dataset=ds.name, purpose="研究", accept_terms=False),
        )  # fmt: skip
    with pytest.raises(NotFound):  # another department does not even see it
        service.decide(session, actor=user(session, "rs_admin"), app_id=app.id, approve=True,
                       reason=None)  # fmt: skip
    with pytest.raises(InvalidInput, match="why"):
        service.decide(session, actor=ROOT, app_id=app.id, approve=False, reason=" ")
    assert not service.may_read_data(session, resident, ds)
    service.decide(session, actor=user(session, "mz_admin"), app_id=app.id, approve=True,
                   reason=None)  # fmt: skip
    assert service.may_read_data(session, resident, ds)
    assert not service.may_read_data(session, user(session, "resident2"), ds)


PRINCIPALS = ["anon", "resident", "mz_admin", "mz_op", "rs_admin", "auditor", "platform"]


def test_who_may_call_each_portal_route(
    client: TestClient, session: Session, settings: Settings, tmp_path: Path
) -> None:
    orgs = people(session)
    code = loaded_resource(
        session, settings, orgs["MZ"], tmp_path, people=4, open_type="conditional",
        open_conditions="仅限研究",
    )  # fmt: skip
    ds = service.publish(session, actor=ROOT, settings=settings, data=dataset_in(code))
    session.commit()
    name = ds.name
    headers = bearers(client, PRINCIPALS[1:])

    def fresh_app() -> int:
        body = {"dataset": name, "purpose": "研究", "accept_terms": True}
        r = client.post("/api/v1/portal/applications", json=body, headers=headers["resident"])
        if r.status_code == 409:  # a pending one exists: withdraw it, then apply again
            mine = client.get("/api/v1/portal/applications", headers=headers["resident"]).json()
            for item in mine["items"]:
                if item["status"] in ("pending", "approved"):
                    client.post(f"/api/v1/portal/applications/{item['id']}/withdraw",
                                headers=headers["resident"])  # fmt: skip
            r = client.post("/api/v1/portal/applications", json=body, headers=headers["resident"])
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    admins = {"mz_admin", "platform"}
    matrix: list[tuple[str, str, Any, set[str]]] = [
        ("GET", "/datasets", None, {"mz_admin", "rs_admin", "platform"}),
        ("GET", f"/datasets/{name}", None, admins),
        ("PATCH", f"/datasets/{name}", {"json": {"notes_zh": "说明"}}, admins),
        ("POST", f"/datasets/{name}/refresh", None, admins),
        ("POST", f"/datasets/{name}/withdraw", None, admins),
        ("POST", f"/datasets/{name}/restore", None, admins),
        ("GET", "/applications", None, set(PRINCIPALS[1:])),
        ("GET", "/applications?inbox=1", None, {"mz_admin", "rs_admin", "platform"}),
        ("GET", "/applications/{app}", None, {"resident", "mz_admin", "platform"}),
        ("POST", "/applications/{app}/approve", {"json": {}}, admins),
        ("POST", "/applications/{app}/refuse", {"json": {"reason": "用途不明"}}, admins),
        ("POST", "/applications/{app}/withdraw", None, {"resident"}),
        ("POST", "/keys", {"json": {"name": "k"}}, set(PRINCIPALS[1:])),
        ("GET", "/keys", None, set(PRINCIPALS[1:])),
        ("GET", "/usage?by=topic", None, {"mz_admin", "rs_admin", "auditor", "platform"}),
    ]  # fmt: skip
    wrong = []
    for method, template, kwargs, allowed in matrix:
        for who in PRINCIPALS:
            path = "/api/v1/portal" + template.replace(
                "{app}", str(fresh_app()) if "{app}" in template else ""
            )
            r = client.request(method, path, headers=headers.get(who, {}), **(kwargs or {}))
            if who in allowed:
                ok = 200 <= r.status_code < 300
            else:
                ok = r.status_code in ((401,) if who == "anon" else (403, 404))
                ok = ok and set(r.json()["error"]) == {"code", "message", "details"}
            if not ok:
                wrong.append(f"{method} {path} as {who}: {r.status_code}")
    assert wrong == []
