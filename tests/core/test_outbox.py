"""The outbox: messages commit with their work, are delivered after commit, retried, dead-lettered.

The channel handlers here are real registered channels (as a city's package would register);
what they "send" is kept in a list, because the receiving side is not part of Haihe.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from haihe.core import outbox
from haihe.core.db import transaction, utcnow
from haihe.core.errors import InvalidInput, NotFound
from haihe.core.outbox import Delivery, OutboxMessage, OutboxStatus
from haihe.core.settings import Settings

SENT: list[dict[str, Any]] = []
FAILURES: list[int] = []  # how many more deliveries on channel "test.flaky" fail


def _record(delivery: Delivery, settings: Settings) -> None:
    SENT.append({"id": delivery.id, "attempt": delivery.attempt, **delivery.payload})


def _flaky(delivery: Delivery, settings: Settings) -> None:
    if FAILURES and FAILURES[0] > 0:
        FAILURES[0] -= 1
        raise ConnectionError("receiver down")
    _record(delivery, settings)


@pytest.fixture(autouse=True)
def channels() -> None:
    SENT.clear()
    FAILURES[:] = [0]
    outbox.register_channel("test.record", _record, replace=True)
    outbox.register_channel("test.flaky", _flaky, replace=True)


def status_of(factory: sessionmaker[Session], message_id: int) -> OutboxMessage:
    with factory() as session:
        row = session.get(OutboxMessage, message_id)
        assert row is not None
        return row


def test_a_message_commits_with_its_work_and_is_delivered_after(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    with transaction(session_factory) as session:
        message = outbox.enqueue(session, channel="test.record", payload={"n": 1}, key="k1")
    report = outbox.deliver_due(session_factory, settings=settings)
    row = status_of(session_factory, message.id)
    assert report.delivered == 1
    assert SENT == [{"id": message.id, "attempt": 1, "n": 1}]
    assert row.status is OutboxStatus.DELIVERED
    assert row.delivered_at is not None


def test_a_rolled_back_transaction_sends_nothing(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    def work_that_fails() -> None:
        with transaction(session_factory) as session:
            outbox.enqueue(session, channel="test.record", payload={"n": 2})
            raise RuntimeError("the work failed")

    with pytest.raises(RuntimeError):
        work_that_fails()
    report = outbox.deliver_due(session_factory, settings=settings)
    assert report.attempted == 0
    assert SENT == []


def test_failures_back_off_exponentially_then_go_dead(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    settings = settings.model_copy(
        update={"outbox_max_attempts": 3, "outbox_retry_base_seconds": 30}
    )
    FAILURES[0] = 99
    t0 = utcnow()
    with transaction(session_factory) as session:
        message = outbox.enqueue(session, channel="test.flaky", payload={}, now=t0)
    first = outbox.deliver_due(session_factory, settings=settings, now=t0)
    due_1 = status_of(session_factory, message.id).next_attempt_at
    outbox.deliver_due(session_factory, settings=settings, now=due_1)
    due_2 = status_of(session_factory, message.id).next_attempt_at
    last = outbox.deliver_due(session_factory, settings=settings, now=due_2)
    row = status_of(session_factory, message.id)
    assert first.retried == 1
    assert due_1 - t0 == dt.timedelta(seconds=30)
    assert due_2 - due_1 == dt.timedelta(seconds=60)
    assert last.dead == 1
    assert row.status is OutboxStatus.DEAD
    assert row.attempts == 3
    assert row.last_error == "ConnectionError: receiver down"


def test_back_off_is_capped_at_a_day() -> None:
    assert outbox.backoff(1, base_seconds=30) == dt.timedelta(seconds=30)
    assert outbox.backoff(4, base_seconds=30) == dt.timedelta(seconds=240)
    assert outbox.backoff(40, base_seconds=30) == dt.timedelta(days=1)


def test_a_dead_letter_is_redelivered_with_fresh_attempts(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    settings = settings.model_copy(update={"outbox_max_attempts": 1})
    FAILURES[0] = 1
    with transaction(session_factory) as session:
        message = outbox.enqueue(session, channel="test.flaky", payload={"n": 3})
    outbox.deliver_due(session_factory, settings=settings)
    assert status_of(session_factory, message.id).status is OutboxStatus.DEAD
    with transaction(session_factory) as session:
        outbox.redeliver(session, ids=[message.id])
    report = outbox.deliver_due(session_factory, settings=settings)
    assert report.delivered == 1
    assert SENT == [{"id": message.id, "attempt": 1, "n": 3}]


def test_redelivering_an_unknown_message_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound, match="no outbox message 424242"):
        outbox.redeliver(session, ids=[424242])


def test_a_message_without_a_handler_waits_and_says_why(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    with transaction(session_factory) as session:
        message = outbox.enqueue(session, channel="test.nobody", payload={})
    report = outbox.deliver_due(session_factory, settings=settings)
    row = status_of(session_factory, message.id)
    assert report.retried == 1
    assert row.status is OutboxStatus.PENDING
    assert "no handler is registered for channel 'test.nobody'" in (row.last_error or "")


def test_a_claim_abandoned_by_a_dead_worker_is_retried_after_the_lease(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    t0 = utcnow()
    with transaction(session_factory) as session:
        message = outbox.enqueue(session, channel="test.record", payload={}, now=t0)
    claimed = outbox._claim(session_factory, now=t0, limit=10)  # the worker dies here
    during = outbox.deliver_due(
        session_factory, settings=settings, now=t0 + dt.timedelta(minutes=1)
    )
    after = outbox.deliver_due(session_factory, settings=settings, now=t0 + outbox.LEASE)
    assert [c.id for c in claimed] == [message.id]
    assert during.attempted == 0
    assert after.delivered == 1
    assert SENT[0]["attempt"] == 2


# SKIP LOCKED is PostgreSQL's; SQLite has a single writer, so this runs on PostgreSQL only.
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_workers_on_postgresql_skip_messages_another_holds(
    session_factory: sessionmaker[Session], settings: Settings, backend: str
) -> None:
    with transaction(session_factory) as session:
        ids = [
            outbox.enqueue(session, channel="test.record", payload={"n": n}).id for n in range(4)
        ]
    with session_factory() as other_worker:
        held = other_worker.scalars(
            select(OutboxMessage).where(OutboxMessage.id.in_(ids[:2])).with_for_update()
        ).all()
        report = outbox.deliver_due(session_factory, settings=settings)
        other_worker.rollback()
    assert len(held) == 2
    assert report.delivered == 2
    assert sorted(m["id"] for m in SENT) == ids[2:]


def test_a_channel_name_is_taken_once() -> None:
    with pytest.raises(InvalidInput, match="already registered"):
        outbox.register_channel("test.record", _flaky)
