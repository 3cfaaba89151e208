"""The outbox — 发件箱: side effects written in the caller's transaction, delivered after commit.

A service that wants something to happen outside the database (a webhook POST, a notification)
calls ``enqueue`` in its own transaction; the message commits or rolls back with the work that
caused it, so nothing is sent for work that did not happen and nothing is lost for work that did.
``deliver_due`` (run by the scheduler in ``haihe.core.jobs``, or ``haihe jobs run-once``) then
hands each due message to the handler registered for its channel:

- a message is claimed in a short transaction of its own (``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL, so several workers share the queue; SQLite has one writer anyway): its attempt is
  counted and its next attempt pushed one lease ahead, so a worker that dies mid-delivery leaves
  a message that another worker retries once the lease runs out;
- the handler runs outside any transaction (a slow receiver holds no lock);
- success marks it ``delivered``; a failure schedules a retry after an exponential back-off
  (``base * 2**(attempts-1)``, capped at a day), and after ``max_attempts`` the message is
  ``dead`` (a dead letter) until an operator ``redeliver``s it.

Delivery is at least once: a handler must tolerate seeing a message twice (the message id is a
natural idempotency key). Channels are registered by name with ``register_channel`` — the same
call for Haihe's built-ins (wired at the app's edge) and for a city's own package (a module named
in the ``plugins`` setting).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from haihe.core.db import Base, UTCDateTime, str_enum, transaction, utcnow
from haihe.core.errors import InvalidInput, NotFound
from haihe.core.settings import Settings

log = logging.getLogger("haihe.outbox")

MAX_BACKOFF = dt.timedelta(days=1)
LEASE = dt.timedelta(minutes=5)  # how long a claimed message is someone else's
ERROR_CHARS = 2000


class OutboxStatus(StrEnum):
    """Where an outbox message stands."""

    PENDING = "pending"  # 待发送: waiting for its next attempt
    DELIVERED = "delivered"  # 已送达
    DEAD = "dead"  # 死信: gave up after the last attempt


class OutboxMessage(Base):
    """One side effect to deliver after commit — 待发消息."""

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_status_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    key: Mapped[str | None] = mapped_column(String(200), index=True)
    status: Mapped[OutboxStatus] = mapped_column(str_enum(OutboxStatus, "outbox_status"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class Delivery:
    """What a channel handler is given: one message, as it was claimed."""

    id: int
    channel: str
    payload: dict[str, Any]
    key: str | None
    attempt: int  # 1 for the first try


Handler = Callable[[Delivery, Settings], None]
"""Delivers one message; raising any exception means "not delivered, try again later"."""

_CHANNELS: dict[str, Handler] = {}


def register_channel(name: str, handler: Handler, *, replace: bool = False) -> None:
    """Make ``handler`` deliver the messages of channel ``name``.

    The same call registers a built-in channel and a city's own; registering a taken name is an
    error unless ``replace`` is given (a city may replace a built-in on purpose).
    """
    if not name or len(name) > 64:
        raise InvalidInput(f"channel name {name!r}: give 1-64 characters")
    if name in _CHANNELS and _CHANNELS[name] is not handler and not replace:
        raise InvalidInput(f"outbox channel {name!r} is already registered")
    _CHANNELS[name] = handler


def channels() -> dict[str, Handler]:
    """The registered channels by name."""
    return dict(_CHANNELS)


def enqueue(
    session: Session,
    *,
    channel: str,
    payload: dict[str, Any],
    key: str | None = None,
    now: dt.datetime | None = None,
) -> OutboxMessage:
    """Add a message to the outbox in the caller's transaction (flushed, not committed)."""
    at = now or utcnow()
    message = OutboxMessage(
        channel=channel,
        payload=payload,
        key=key,
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=at,
        created_at=at,
    )
    session.add(message)
    session.flush()
    return message


def backoff(attempts: int, *, base_seconds: float) -> dt.timedelta:
    """The wait after the ``attempts``-th failed attempt: base * 2**(attempts-1), at most a day."""
    seconds = base_seconds * 2 ** max(attempts - 1, 0)
    return min(dt.timedelta(seconds=seconds), MAX_BACKOFF)


@dataclass
class DeliveryReport:
    """What one ``deliver_due`` pass did."""

    delivered: int = 0
    retried: int = 0
    dead: int = 0

    @property
    def attempted(self) -> int:
        return self.delivered + self.retried + self.dead

    def __str__(self) -> str:
        return f"delivered {self.delivered}, retried {self.retried}, dead {self.dead}"


def deliver_due(
    session_factory: sessionmaker[Session],
    *,
    settings: Settings,
    now: dt.datetime | None = None,
    limit: int = 100,
) -> DeliveryReport:
    """Deliver up to ``limit`` messages whose next attempt is due at ``now``; commits itself.

    This is an edge (like a CLI command): it opens its own transactions, one to claim the batch
    and one per outcome, so a handler's slowness holds no lock and one failure loses nothing.
    """
    at = now or utcnow()
    report = DeliveryReport()
    for delivery in _claim(session_factory, now=at, limit=limit):
        handler = _CHANNELS.get(delivery.channel)
        try:
            if handler is None:
                raise LookupError(f"no handler is registered for channel {delivery.channel!r}")
            handler(delivery, settings)
        except Exception as exc:  # any failure of a handler is a failed attempt, retried
            error = f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
            dead = delivery.attempt >= settings.outbox_max_attempts
            log.warning("outbox message %s (%s) failed: %s", delivery.id, delivery.channel, error)
            _finish(session_factory, delivery, now=at, error=error, dead=dead, settings=settings)
            if dead:
                report.dead += 1
            else:
                report.retried += 1
            continue
        _finish(session_factory, delivery, now=at, error=None, dead=False, settings=settings)
        report.delivered += 1
    return report


def _claim(
    session_factory: sessionmaker[Session], *, now: dt.datetime, limit: int
) -> list[Delivery]:
    """Claim due messages: count the attempt and push the next one a lease ahead; commit."""
    with transaction(session_factory) as session:
        rows = session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.next_attempt_at <= now,
            )
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        claimed = []
        for row in rows:
            row.attempts += 1
            row.next_attempt_at = now + LEASE
            claimed.append(
                Delivery(
                    id=row.id,
                    channel=row.channel,
                    payload=dict(row.payload),
                    key=row.key,
                    attempt=row.attempts,
                )
            )
        return claimed


def _finish(
    session_factory: sessionmaker[Session],
    delivery: Delivery,
    *,
    now: dt.datetime,
    error: str | None,
    dead: bool,
    settings: Settings,
) -> None:
    values: dict[str, Any]
    if error is None:
        values = {"status": OutboxStatus.DELIVERED, "delivered_at": utcnow(), "last_error": None}
    elif dead:
        values = {"status": OutboxStatus.DEAD, "last_error": error}
    else:
        wait = backoff(delivery.attempt, base_seconds=settings.outbox_retry_base_seconds)
        values = {"next_attempt_at": now + wait, "last_error": error}
    with transaction(session_factory) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == delivery.id, OutboxMessage.attempts == delivery.attempt)
            .values(**values)
        )


def redeliver(
    session: Session, *, ids: Iterable[int], now: dt.datetime | None = None
) -> list[OutboxMessage]:
    """Put messages back in the queue with fresh attempts, due at once; return them.

    For dead letters after the receiver is fixed, or to send a delivered message again.
    """
    wanted = sorted(set(ids))
    rows = list(session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(wanted))).all())
    missing = sorted(set(wanted) - {r.id for r in rows})
    if missing:
        raise NotFound(f"no outbox message {missing[0]}")
    at = now or utcnow()
    for row in rows:
        row.status = OutboxStatus.PENDING
        row.attempts = 0
        row.next_attempt_at = at
        row.delivered_at = None
    session.flush()
    return rows


def list_messages(
    session: Session,
    *,
    status: OutboxStatus | None = None,
    channel: str | None = None,
    key: str | None = None,
    limit: int = 100,
) -> Sequence[OutboxMessage]:
    """Outbox messages, newest first, optionally of one status, channel or key."""
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    if channel is not None:
        query = query.where(OutboxMessage.channel == channel)
    if key is not None:
        query = query.where(OutboxMessage.key == key)
    return session.scalars(query).all()
