"""Who may export, see, download and cancel bulk exports: every principal against every route."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from test_exports_world import (
    GRANTEES,
    PRINCIPALS,
    SIGNED_IN,
    World,
    build_world,
    death_rows,
    expire_grant,
    routes_of,
    sign_in,
)

from haihe.core.auth import Principal
from haihe.core.db import transaction
from haihe.core.settings import Settings
from haihe.exchange import exports, exports_api

PREFIX = "/api/v1/exchange"


@pytest.fixture
def world(session: Session, settings: Settings, tmp_path: Path) -> World:
    return build_world(session, settings, tmp_path / "src", death_rows(30))


@pytest.fixture
def headers(client: TestClient, session_factory: sessionmaker[Session], world: World) -> Any:
    return sign_in(client, session_factory)


def queued(factory: sessionmaker[Session], world: World) -> int:
    """A new export of RSJ's, left queued."""
    actor = Principal(kind="user", id=1, name="rsj", org_id=world.consumer_id, org_code="RSJ")
    with transaction(factory) as s:
        return exports.create_export(
            s, actor=actor, code=world.code, items=None, filters=[], format="csv"
        ).id


def finished(client: TestClient, world: World, headers: dict[str, dict[str, str]]) -> int:
    r = client.post(
        f"{PREFIX}/{world.code}/exports",
        json={"format": "csv", "items": ["certificate_no", "age"]},
        headers=headers["rsj_op"],
    )
    assert r.status_code == 202, r.text
    return int(r.json()["id"])


Spec = tuple[str, str, Callable[[], dict[str, Any]] | None, set[str]]
MATRIX: list[Spec] = [
    ("POST", "/{code}/exports", lambda: {"json": {"format": "parquet"}}, GRANTEES),
    ("GET", "/exports", None, SIGNED_IN),
    ("GET", "/exports/{done}", None, GRANTEES),
    ("GET", "/exports/{done}/download", None, GRANTEES),
    ("POST", "/exports/{queued}/cancel", None, GRANTEES),
]


def test_every_principal_against_every_export_route(
    client: TestClient,
    session_factory: sessionmaker[Session],
    world: World,
    headers: dict[str, dict[str, str]],
) -> None:
    done = finished(client, world, headers)
    wrong: list[str] = []
    for method, template, kwargs, allowed in MATRIX:
        for who in PRINCIPALS:
            path = PREFIX + template.format(
                code=world.code,
                done=done,
                queued=queued(session_factory, world) if "{queued}" in template else "",
            )
            r = client.request(method, path, headers=headers[who], **(kwargs() if kwargs else {}))
            if who in allowed:
                ok, expected = 200 <= r.status_code < 300, "2xx"
            else:
                expected = "401" if who == "anon" else "403"
                ok = str(r.status_code) == expected and set(r.json()["error"]) == {
                    "code",
                    "message",
                    "details",
                }
            if not ok:
                wrong.append(f"{method} {path} as {who}: {r.status_code}, expected {expected}")
    assert wrong == []


def test_a_grantee_exports_in_the_background_and_downloads_with_the_checksum(
    client: TestClient, world: World, headers: dict[str, dict[str, str]]
) -> None:
    export_id = finished(client, world, headers)
    job = client.get(f"{PREFIX}/exports/{export_id}", headers=headers["rsj_client"]).json()
    r = client.get(f"{PREFIX}/exports/{export_id}/download", headers=headers["rsj_client"])
    import hashlib

    assert job["status"] == "succeeded"
    assert job["rows"] == sum(1 for row in death_rows(30) if int(row[4]) >= 60)
    assert r.status_code == 200
    assert r.headers["X-Checksum-SHA256"] == hashlib.sha256(r.content).hexdigest()
    assert r.content.decode("utf-8-sig").splitlines()[0] == '"certificate_no","age"'


def test_other_organisations_see_none_of_the_grantees_exports(
    client: TestClient, world: World, headers: dict[str, dict[str, str]]
) -> None:
    finished(client, world, headers)
    mine = client.get(f"{PREFIX}/exports", headers=headers["rsj_admin"]).json()
    theirs = client.get(f"{PREFIX}/exports", headers=headers["mz_admin"]).json()
    assert len(mine) == 1
    assert theirs == []


def test_an_expired_grant_stops_exports_and_downloads(
    client: TestClient,
    session_factory: sessionmaker[Session],
    world: World,
    headers: dict[str, dict[str, str]],
) -> None:
    done = finished(client, world, headers)
    expire_grant(session_factory, world.grant_id)
    r = client.post(f"{PREFIX}/{world.code}/exports", json={}, headers=headers["rsj_op"])
    d = client.get(f"{PREFIX}/exports/{done}/download", headers=headers["rsj_op"])
    assert r.status_code == 403
    assert d.status_code == 403


def test_an_expired_export_is_gone(
    client: TestClient,
    session_factory: sessionmaker[Session],
    world: World,
    headers: dict[str, dict[str, str]],
) -> None:
    from haihe.exchange.models import ExportJob

    done = finished(client, world, headers)
    with transaction(session_factory) as s:
        job = s.get(ExportJob, done)
        assert job is not None
        assert job.expires_at is not None
        exports.remove_expired_exports(s, now=job.expires_at)
    r = client.get(f"{PREFIX}/exports/{done}/download", headers=headers["rsj_op"])
    assert r.status_code == 410
    assert r.json()["error"]["code"] == "gone"


def test_matrix_covers_every_export_route() -> None:
    covered = {
        (method, PREFIX + t.replace("{done}", "{export_id}").replace("{queued}", "{export_id}"))
        for method, t, *_ in MATRIX
    }
    assert routes_of(exports_api.router) == covered
