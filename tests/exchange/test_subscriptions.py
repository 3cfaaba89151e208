"""Change feeds, subscriptions and signed webhooks, end to end.

The webhook receiver is a real HTTP server on 127.0.0.1 in a thread: it stands for the outside
world (a subscriber's system), the one boundary these tests fake. It records every delivery and
answers with the status codes it is told to, so retries and dead letters are real.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from test_exports_world import World, build_world, death_rows, load_rows

from factories import bearer, make_user
from haihe.background import register_background_work
from haihe.core import jobs, outbox
from haihe.core.auth import Principal, Role
from haihe.core.db import transaction, utcnow
from haihe.core.masking import mask_id_number
from haihe.core.outbox import OutboxMessage, OutboxStatus
from haihe.core.settings import Settings
from haihe.exchange import feeds, webhooks
from haihe.exchange.models import Subscription
from haihe.orgs import service as orgs

FIRST = death_rows(40)


@dataclass
class Receiver:
    """A subscriber's webhook endpoint: records requests, answers with the queued statuses."""

    url: str
    statuses: list[int]
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="", statuses=[])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append((dict(self.headers.items()), body))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/deaths"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def fast_retries(settings: Settings) -> Settings:
    return settings.model_copy(update={"outbox_max_attempts": 3, "outbox_retry_base_seconds": 10})


@pytest.fixture
def world(session: Session, settings: Settings, tmp_path: Path) -> World:
    return build_world(session, settings, tmp_path / "src", FIRST)


def rsj(world: World) -> Principal:
    return Principal(kind="user", id=9001, name="rsj_op", org_id=world.consumer_id, org_code="RSJ")


def subscribe(
    factory: sessionmaker[Session], settings: Settings, world: World, url: str | None
) -> tuple[int, str, str]:
    with transaction(factory) as session:
        sub, secret, cursor = webhooks.create_subscription(
            session, actor=rsj(world), settings=settings, code=world.code, callback_url=url
        )
        return sub.id, secret, cursor


def second_version(
    factory: sessionmaker[Session], settings: Settings, world: World, tmp: Path
) -> list[tuple[str, ...]]:
    """Load v2: C0 removed, C1 renamed, 8 new deaths C50-C57 (aged 60-67); return its rows."""
    rows = [FIRST[1][:2] + ("更正名",) + FIRST[1][3:], *FIRST[2:], *death_rows(8, start=50)]
    with transaction(factory) as session:
        load_rows(session, settings, world.code, rows, tmp)
    return rows


def token(client: TestClient, factory: sessionmaker[Session], world: World) -> dict[str, str]:
    with transaction(factory) as session:
        org = orgs.get_org(session, code="RSJ")
        make_user(session, Role.OPERATOR, org=org, username="rsj_op")
    return bearer(client, username="rsj_op")


def run_jobs(factory: sessionmaker[Session], settings: Settings, now: dt.datetime) -> None:
    register_background_work(settings)
    runs = jobs.run_due(factory, settings=settings, now=now, force=True)
    assert {r.outcome for r in runs} == {"ok"}


def test_new_death_records_reach_the_social_security_centre_the_day_they_are_loaded(
    client: TestClient,
    session_factory: sessionmaker[Session],
    settings: Settings,
    world: World,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    headers = token(client, session_factory, world)
    created = client.post(
        "/api/v1/exchange/subscriptions",
        json={"resource_code": world.code, "callback_url": receiver.url},
        headers=headers,
    )
    assert created.status_code == 201
    secret = created.json()["secret"]
    second_version(session_factory, settings, world, tmp_path / "v2")

    run_jobs(session_factory, settings, utcnow())  # the scheduler's next pass

    assert len(receiver.received) == 1
    sent_headers, body = receiver.received[0]
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    event = json.loads(body)
    assert sent_headers["X-Haihe-Signature"] == expected
    assert event["resource"] == world.code
    assert event["version"] == 2
    new_in_scope = [r for r in death_rows(8, start=50) if int(r[4]) >= 60]
    assert event["added"] == len(new_in_scope)
    # C1 (age 51) and C0 (age 50) are outside the grant's scope: not counted
    assert (event["changed"], event["removed"]) == (0, 0)
    feed = client.get(event["feed"].removeprefix(settings.resolved_public_url), headers=headers)
    assert feed.status_code == 200
    page = feed.json()
    assert [c["record"]["certificate_no"] for c in page["changes"]] == [r[0] for r in new_in_scope]
    assert {c["change"] for c in page["changes"]} == {"added"}
    assert [c["record"]["id_number"] for c in page["changes"]] == [
        mask_id_number(r[1]) for r in new_in_scope
    ]
    assert page["more"] is False


def test_the_feed_pages_with_its_cursor_and_diffs_by_key(
    session_factory: sessionmaker[Session], settings: Settings, world: World, tmp_path: Path
) -> None:
    from haihe.exchange.models import Grant

    with transaction(session_factory) as session:
        grant = session.get(Grant, world.grant_id)
        assert grant is not None
        grant.scope = []
    _, _, cursor = subscribe(session_factory, settings, world, None)
    second_version(session_factory, settings, world, tmp_path / "v2")
    seen: list[tuple[str, str]] = []
    pages = 0
    while True:
        with transaction(session_factory) as session:
            page = feeds.read_changes(
                session,
                actor=rsj(world),
                settings=settings,
                code=world.code,
                since=cursor,
                limit=3,
            )
        seen += [(c["change"], c["record"]["certificate_no"]) for c in page.changes]
        cursor, pages = page.next, pages + 1
        if not page.more:
            break
    added = [("added", f"C{i:06d}") for i in range(50, 58)]
    assert sorted(seen) == sorted([*added, ("changed", "C000001"), ("removed", "C000000")])
    assert pages == 4
    with transaction(session_factory) as session:
        after = feeds.read_changes(
            session, actor=rsj(world), settings=settings, code=world.code, since=cursor
        )
    assert after.changes == []
    assert after.next == feeds.encode_cursor(3, 0)


def test_a_failing_receiver_is_retried_with_back_off_then_reached(
    session_factory: sessionmaker[Session],
    fast_retries: Settings,
    world: World,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    settings = fast_retries.model_copy(update={"outbox_max_attempts": 5})
    register_background_work(settings)
    _, secret, _ = subscribe(session_factory, settings, world, receiver.url)
    second_version(session_factory, settings, world, tmp_path / "v2")
    t0 = utcnow()
    with transaction(session_factory) as session:
        assert webhooks.scan_subscriptions(session, settings=settings, now=t0) == 1
    receiver.statuses = [500, 500, 503]
    reports = [
        outbox.deliver_due(session_factory, settings=settings, now=t0 + dt.timedelta(seconds=s))
        for s in (0, 5, 10, 25, 30, 69, 70)
    ]
    assert [r.attempted for r in reports] == [1, 0, 1, 0, 1, 0, 1]
    assert reports[-1].delivered == 1
    ids = {h["X-Haihe-Delivery"] for h, _ in receiver.received}
    assert len(ids) == 1
    for sent_headers, body in receiver.received:
        assert sent_headers["X-Haihe-Signature"] == webhooks.signature(secret, body)


def test_after_the_last_attempt_a_message_is_dead_until_redelivered(
    client: TestClient,
    session_factory: sessionmaker[Session],
    fast_retries: Settings,
    world: World,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    settings = fast_retries
    register_background_work(settings)
    sub_id, _, _ = subscribe(session_factory, settings, world, receiver.url)
    second_version(session_factory, settings, world, tmp_path / "v2")
    t0 = utcnow()
    with transaction(session_factory) as session:
        webhooks.scan_subscriptions(session, settings=settings, now=t0)
    receiver.statuses = [500] * 3
    for seconds in (0, 10, 30):
        outbox.deliver_due(
            session_factory, settings=settings, now=t0 + dt.timedelta(seconds=seconds)
        )
    with session_factory() as session:
        message = session.query(OutboxMessage).one()
        assert message.status is OutboxStatus.DEAD
        assert message.attempts == 3
        assert message.last_error == "RuntimeError: the receiver answered 500"
    later = outbox.deliver_due(session_factory, settings=settings, now=t0 + dt.timedelta(days=2))
    assert later.attempted == 0

    headers = token(client, session_factory, world)
    r = client.post(f"/api/v1/exchange/subscriptions/{sub_id}/redeliver", headers=headers)
    assert r.json() == {"redelivered": [message.id]}
    report = outbox.deliver_due(session_factory, settings=settings)
    assert report.delivered == 1
    assert len(receiver.received) == 4


def test_no_event_without_a_new_version_and_none_twice(
    session_factory: sessionmaker[Session],
    settings: Settings,
    world: World,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    subscribe(session_factory, settings, world, receiver.url)
    with transaction(session_factory) as session:
        before = webhooks.scan_subscriptions(session, settings=settings, now=utcnow())
    second_version(session_factory, settings, world, tmp_path / "v2")
    with transaction(session_factory) as session:
        first = webhooks.scan_subscriptions(session, settings=settings, now=utcnow())
    with transaction(session_factory) as session:
        again = webhooks.scan_subscriptions(session, settings=settings, now=utcnow())
        last = session.query(Subscription).one().last_version
    assert (before, first, again) == (0, 1, 0)
    assert last == 2


def test_the_secret_is_derived_not_stored(
    session_factory: sessionmaker[Session], settings: Settings, world: World
) -> None:
    sub_id, secret, _ = subscribe(session_factory, settings, world, "https://rsj.example/hook")
    with session_factory() as session:
        row = session.get(Subscription, sub_id)
        stored = json.dumps({c.name: str(getattr(row, c.name)) for c in Subscription.__table__.c})
    assert secret == webhooks.secret_for(settings, sub_id)
    assert secret not in stored
    assert webhooks.secret_for(settings, sub_id + 1) != secret


def test_a_bad_cursor_or_callback_is_invalid(
    session_factory: sessionmaker[Session], settings: Settings, world: World
) -> None:
    from haihe.core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="not a cursor"):
        feeds.decode_cursor("bm9wZQ")
    with pytest.raises(InvalidInput, match="http"), transaction(session_factory) as session:
        webhooks.create_subscription(
            session,
            actor=rsj(world),
            settings=settings,
            code=world.code,
            callback_url="ftp://rsj.example/",
        )
