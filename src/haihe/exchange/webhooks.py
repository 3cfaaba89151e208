"""Subscriptions and their webhooks — 订阅与回调: telling a grantee that new data was loaded.

A subscription belongs to a grant with mode subscribe; its ``callback_url`` is optional (without
one the grantee polls the change feed). The catalogue sits below the exchange and cannot call
it, so a periodic task (``scan_subscriptions``) compares each subscription's ``last_version``
with its resource's current version and, for each version loaded since, writes one outbox
message (channel ``webhook``). Delivery (``deliver_webhook``, through ``haihe.core.outbox``)
POSTs a JSON event — the resource, the version, how many rows it added, changed and removed
within the grant's scope, and the change-feed URL with the cursor of that version — retried with
back-off and dead-lettered after the last attempt.

Each event is signed: ``X-Haihe-Signature: sha256=<hex HMAC-SHA256(secret, body)>``, with the
time of sending in ``X-Haihe-Timestamp`` and inside the body (so the signature covers it and a
receiver can refuse old replays) and the outbox message id in ``X-Haihe-Delivery`` (delivery is
at least once; the id lets a receiver drop duplicates). The secret is derived from the
installation's secret key and the subscription id, shown once when the subscription is created,
and never stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Sequence
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from haihe.catalogue import service as catalogue
from haihe.catalogue.models import Resource, ResourceStatus, SharingMode
from haihe.core.auth import Principal
from haihe.core.db import utcnow
from haihe.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from haihe.core.outbox import Delivery, OutboxMessage, OutboxStatus, enqueue, list_messages
from haihe.core.outbox import redeliver as redeliver_messages
from haihe.core.settings import Settings
from haihe.engine import make_store
from haihe.exchange import repository, service
from haihe.exchange.delivery import grant_in_force
from haihe.exchange.feeds import change_counts, encode_cursor, start_cursor
from haihe.exchange.models import Grant, Subscription
from haihe.exchange.scope import check_conditions

CHANNEL = "webhook"
SIGNATURE_HEADER = "X-Haihe-Signature"
TIMESTAMP_HEADER = "X-Haihe-Timestamp"
DELIVERY_HEADER = "X-Haihe-Delivery"


def secret_for(settings: Settings, subscription_id: int) -> str:
    """The HMAC secret of a subscription's webhooks, derived (never stored)."""
    message = f"haihe-webhook:{subscription_id}".encode()
    return hmac.new(settings.secret_key_bytes(), message, hashlib.sha256).hexdigest()


def signature(secret: str, body: bytes) -> str:
    """The ``X-Haihe-Signature`` value of ``body``: ``sha256=<hex HMAC>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _subscription_key(subscription_id: int) -> str:
    return f"subscription:{subscription_id}"


# ---------------------------------------------------------------- the grantee's subscriptions


def create_subscription(
    session: Session,
    *,
    actor: Principal,
    settings: Settings,
    code: str,
    callback_url: str | None,
) -> tuple[Subscription, str, str]:
    """Subscribe the actor's organisation to entry ``code``; return it, its webhook secret and
    the feed cursor it starts from (changes loaded from now on).

    Forbidden without a grant in force with mode subscribe; InvalidInput for a callback URL that
    is not http(s).
    """
    if callback_url is not None:
        parts = urlsplit(callback_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInput(f"callback_url {callback_url!r}: give an http:// or https:// URL")
    resource = catalogue.get_resource(session, actor=actor, code=code)
    if resource.status is not ResourceStatus.PUBLISHED:
        raise Conflict(f"catalogue entry {code} is not published")
    grant = service.grant_for(session, actor=actor, resource=resource, mode=SharingMode.SUBSCRIBE)
    subscription = Subscription(
        grant_id=grant.id,
        callback_url=callback_url,
        active=True,
        last_version=resource.current_version,
        created_by=catalogue.actor_label(actor),
    )
    session.add(subscription)
    session.flush()
    return subscription, secret_for(settings, subscription.id), start_cursor(resource)


def list_subscriptions(session: Session, *, actor: Principal) -> Sequence[Subscription]:
    """The active subscriptions of the actor's organisation, newest first."""
    if actor.org_id is None:
        return []
    return session.scalars(
        select(Subscription)
        .join(Grant, Grant.id == Subscription.grant_id)
        .where(Grant.consumer_org_id == actor.org_id, Subscription.active.is_(True))
        .order_by(Subscription.id.desc())
    ).all()


def get_subscription(session: Session, *, actor: Principal, subscription_id: int) -> Subscription:
    """An active subscription of the actor's organisation; NotFound or Forbidden otherwise."""
    subscription = session.get(Subscription, subscription_id)
    if subscription is None or not subscription.active:
        raise NotFound(f"subscription {subscription_id} does not exist")
    grant = session.get(Grant, subscription.grant_id)
    if grant is None or actor.org_id is None or grant.consumer_org_id != actor.org_id:
        raise Forbidden(f"subscription {subscription_id} belongs to another organisation")
    return subscription


def resource_of(session: Session, subscription: Subscription) -> Resource:
    grant = session.get(Grant, subscription.grant_id)
    resource = session.get(Resource, grant.resource_id) if grant else None
    if resource is None:
        raise NotFound(f"the resource of subscription {subscription.id} is gone")
    return resource


def cancel_subscription(session: Session, *, actor: Principal, subscription_id: int) -> None:
    """End a subscription: no more events are queued for it (those already queued still go)."""
    subscription = get_subscription(session, actor=actor, subscription_id=subscription_id)
    subscription.active = False
    session.flush()


def redeliver(session: Session, *, actor: Principal, subscription_id: int) -> list[OutboxMessage]:
    """Queue a subscription's dead-lettered events again; return them.

    Forbidden once the grant is no longer in force for the caller.
    """
    subscription = get_subscription(session, actor=actor, subscription_id=subscription_id)
    grant = session.get(Grant, subscription.grant_id)
    assert grant is not None
    in_force = repository.grants_in_force(
        session,
        resource_id=grant.resource_id,
        org_id=grant.consumer_org_id,
        system_id=actor.system_id,
        now=utcnow(),
    )
    if grant.id not in {g.id for g in in_force}:
        raise Forbidden(f"the grant of subscription {subscription_id} is no longer in force")
    dead = list_messages(
        session,
        status=OutboxStatus.DEAD,
        channel=CHANNEL,
        key=_subscription_key(subscription.id),
        limit=1000,
    )
    return redeliver_messages(session, ids=[m.id for m in dead])


# ---------------------------------------------------------------- new versions → events


def scan_subscriptions(session: Session, *, settings: Settings, now: dt.datetime) -> int:
    """Queue an event for each version loaded since each subscription last heard; return how
    many. Subscriptions whose grant is not in force wait (and catch up if it is renewed)."""
    store = make_store(settings)
    queued = 0
    rows = session.execute(
        select(Subscription, Grant, Resource)
        .join(Grant, Grant.id == Subscription.grant_id)
        .join(Resource, Resource.id == Grant.resource_id)
        .where(Subscription.active.is_(True), Resource.current_version.is_not(None))
    ).all()
    for subscription, grant, resource in rows:
        current = resource.current_version or 0
        last = subscription.last_version or 0
        if (
            current <= last
            or not grant_in_force(grant, now)
            or SharingMode.SUBSCRIBE.value not in grant.modes
        ):
            continue
        if subscription.callback_url:
            conditions = check_conditions(grant.scope, resource.items)
            for manifest in store.versions(resource.code):
                if last < manifest.version <= current:
                    counts = change_counts(settings, store, resource, manifest.version, conditions)
                    _queue_event(
                        session, settings, subscription, resource, manifest.version, counts, now
                    )
                    queued += 1
        subscription.last_version = current
    session.flush()
    return queued


def _queue_event(
    session: Session,
    settings: Settings,
    subscription: Subscription,
    resource: Resource,
    version: int,
    counts: dict[str, int],
    now: dt.datetime,
) -> None:
    cursor = encode_cursor(version, 0)
    feed = f"{settings.resolved_public_url}/api/v1/exchange/{resource.code}/changes?since={cursor}"
    event = {
        "event": "resource.version",
        "subscription_id": subscription.id,
        "resource": resource.code,
        "version": version,
        **counts,
        "feed": feed,
        "cursor": cursor,
    }
    enqueue(
        session,
        channel=CHANNEL,
        payload={
            "subscription_id": subscription.id,
            "url": subscription.callback_url,
            "event": event,
        },
        key=_subscription_key(subscription.id),
        now=now,
    )


def deliver_webhook(delivery: Delivery, settings: Settings) -> None:
    """POST one event, signed; any answer but 2xx (or no answer) raises, so it is retried.

    Registered as outbox channel ``webhook`` at the app's edge.
    """
    payload = delivery.payload
    sent_at = utcnow().isoformat(timespec="seconds")
    body = json.dumps(
        {**payload["event"], "sent_at": sent_at, "delivery": delivery.id},
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    secret = secret_for(settings, int(payload["subscription_id"]))
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Haihe-Webhooks",
        SIGNATURE_HEADER: signature(secret, body),
        TIMESTAMP_HEADER: sent_at,
        DELIVERY_HEADER: str(delivery.id),
    }
    response = httpx.post(
        str(payload["url"]),
        content=body,
        headers=headers,
        timeout=settings.webhook_timeout_seconds,
        follow_redirects=False,
    )
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"the receiver answered {response.status_code}")
