"""Who may subscribe, read the change feed and manage subscriptions: each principal, each route."""

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
from haihe.exchange import subscriptions_api, webhooks

PREFIX = "/api/v1/exchange"


@pytest.fixture
def world(session: Session, settings: Settings, tmp_path: Path) -> World:
    return build_world(session, settings, tmp_path / "src", death_rows(30))


@pytest.fixture
def headers(client: TestClient, session_factory: sessionmaker[Session], world: World) -> Any:
    return sign_in(client, session_factory)


def subscription(factory: sessionmaker[Session], settings: Settings, world: World) -> int:
    """A new subscription of RSJ's."""
    actor = Principal(kind="user", id=1, name="rsj", org_id=world.consumer_id, org_code="RSJ")
    with transaction(factory) as s:
        made, _, _ = webhooks.create_subscription(
            s, actor=actor, settings=settings, code=world.code, callback_url=None
        )
        return made.id


Spec = tuple[str, str, Callable[[World], dict[str, Any]] | None, set[str]]
MATRIX: list[Spec] = [
    (
        "POST",
        "/subscriptions",
        lambda w: {"json": {"resource_code": w.code, "callback_url": "https://rsj.example/h"}},
        GRANTEES,
    ),
    ("GET", "/subscriptions", None, SIGNED_IN),
    ("GET", "/subscriptions/{sub}", None, GRANTEES),
    ("DELETE", "/subscriptions/{fresh}", None, GRANTEES),
    ("POST", "/subscriptions/{sub}/redeliver", None, GRANTEES),
    ("GET", "/{code}/changes", None, GRANTEES),
]


def test_every_principal_against_every_subscription_route(
    client: TestClient,
    session_factory: sessionmaker[Session],
    settings: Settings,
    world: World,
    headers: dict[str, dict[str, str]],
) -> None:
    sub = subscription(session_factory, settings, world)
    wrong: list[str] = []
    for method, template, kwargs, allowed in MATRIX:
        for who in PRINCIPALS:
            fresh = subscription(session_factory, settings, world) if "{fresh}" in template else ""
            path = PREFIX + template.format(code=world.code, sub=sub, fresh=fresh)
            extra = kwargs(world) if kwargs else {}
            r = client.request(method, path, headers=headers[who], **extra)
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


def test_the_secret_is_shown_once(
    client: TestClient, world: World, headers: dict[str, dict[str, str]]
) -> None:
    body = {"resource_code": world.code, "callback_url": "https://rsj.example/hook"}
    created = client.post(f"{PREFIX}/subscriptions", json=body, headers=headers["rsj_op"])
    shown = client.get(f"{PREFIX}/subscriptions/{created.json()['id']}", headers=headers["rsj_op"])
    listed = client.get(f"{PREFIX}/subscriptions", headers=headers["rsj_op"])
    assert len(created.json()["secret"]) == 64
    assert "secret" not in shown.json()
    assert all("secret" not in s for s in listed.json())


def test_an_expired_grant_stops_the_feed_and_new_subscriptions(
    client: TestClient,
    session_factory: sessionmaker[Session],
    world: World,
    headers: dict[str, dict[str, str]],
) -> None:
    before = client.get(f"{PREFIX}/{world.code}/changes", headers=headers["rsj_op"])
    expire_grant(session_factory, world.grant_id)
    after = client.get(f"{PREFIX}/{world.code}/changes", headers=headers["rsj_op"])
    body = {"resource_code": world.code}
    sub = client.post(f"{PREFIX}/subscriptions", json=body, headers=headers["rsj_op"])
    assert before.status_code == 200
    assert after.status_code == 403
    assert sub.status_code == 403


def test_a_grant_without_subscribe_gives_no_feed(
    client: TestClient,
    session_factory: sessionmaker[Session],
    world: World,
    headers: dict[str, dict[str, str]],
) -> None:
    from haihe.exchange.models import Grant

    with transaction(session_factory) as s:
        grant = s.get(Grant, world.grant_id)
        assert grant is not None
        grant.modes = ["bulk"]
    r = client.get(f"{PREFIX}/{world.code}/changes", headers=headers["rsj_op"])
    assert r.status_code == 403
    assert "subscribe" in r.json()["error"]["message"]


def test_matrix_covers_every_subscription_route() -> None:
    covered = {
        (
            method,
            PREFIX
            + t.replace("{sub}", "{subscription_id}").replace("{fresh}", "{subscription_id}"),
        )
        for method, t, *_ in MATRIX
    }
    assert routes_of(subscriptions_api.router) == covered
