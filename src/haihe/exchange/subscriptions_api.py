"""Change subscriptions under /api/v1/exchange: the change feed and webhooks."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from haihe.core.web import AppSettings, CurrentPrincipal, DbSession
from haihe.exchange import feeds, webhooks
from haihe.exchange.gateway_api import request_id_of
from haihe.exchange.models import Subscription

router = APIRouter(prefix="/api/v1/exchange", tags=["exchange subscriptions"])
SubscriptionId = Annotated[int, Path(description="Subscription id.")]


class SubscriptionIn(BaseModel):
    """A subscription to a resource's changes, with an optional webhook."""

    resource_code: str = Field(description="Catalogue entry to follow.")
    callback_url: str | None = Field(
        None,
        max_length=500,
        description="Where to POST a signed event for each newly loaded version; empty means "
        "the feed is polled instead.",
    )


class SubscriptionOut(BaseModel):
    """A subscription — 订阅."""

    id: int
    resource_code: str
    callback_url: str | None
    last_version: int | None
    created_at: dt.datetime
    created_by: str


class SubscriptionCreated(SubscriptionOut):
    """A new subscription, with its webhook secret (shown this once) and the feed to poll."""

    secret: str = Field(
        description="HMAC-SHA256 key of X-Haihe-Signature; shown only now, keep it."
    )
    feed: str = Field(description="The change feed from now on (a URL with its cursor).")


class ChangesOut(BaseModel):
    """A page of the change feed: changes oldest first and the cursor to continue from."""

    resource_code: str
    current_version: int | None
    items: list[str]
    masked: list[str]
    changes: list[dict[str, Any]]
    next: str = Field(description="Pass as `since` to get the changes after these.")
    more: bool = Field(description="True when more changes may already be waiting.")


class RedeliveredOut(BaseModel):
    redelivered: list[int] = Field(description="Outbox message ids queued again.")


def _out(session: DbSession, subscription: Subscription) -> SubscriptionOut:
    resource = webhooks.resource_of(session, subscription)
    return SubscriptionOut(
        id=subscription.id,
        resource_code=resource.code,
        callback_url=subscription.callback_url,
        last_version=subscription.last_version,
        created_at=subscription.created_at,
        created_by=subscription.created_by,
    )


@router.post("/subscriptions", status_code=201, response_model=SubscriptionCreated)
def create_subscription(
    data: SubscriptionIn, session: DbSession, settings: AppSettings, actor: CurrentPrincipal
) -> SubscriptionCreated:
    """Subscribe to a resource under a grant with mode subscribe.

    The response carries the webhook secret once; it is derived, never stored, and cannot be
    shown again.
    """
    subscription, secret, cursor = webhooks.create_subscription(
        session,
        actor=actor,
        settings=settings,
        code=data.resource_code,
        callback_url=data.callback_url,
    )
    out = _out(session, subscription)
    feed = f"/api/v1/exchange/{out.resource_code}/changes?since={cursor}"
    return SubscriptionCreated(**out.model_dump(), secret=secret, feed=feed)


@router.get("/subscriptions", response_model=list[SubscriptionOut])
def list_subscriptions(session: DbSession, actor: CurrentPrincipal) -> list[SubscriptionOut]:
    """The active subscriptions of the caller's organisation."""
    return [_out(session, s) for s in webhooks.list_subscriptions(session, actor=actor)]


@router.get("/subscriptions/{subscription_id}", response_model=SubscriptionOut)
def get_subscription(
    subscription_id: SubscriptionId, session: DbSession, actor: CurrentPrincipal
) -> SubscriptionOut:
    """One subscription of the caller's organisation."""
    found = webhooks.get_subscription(session, actor=actor, subscription_id=subscription_id)
    return _out(session, found)


@router.delete("/subscriptions/{subscription_id}", status_code=204)
def delete_subscription(
    subscription_id: SubscriptionId, session: DbSession, actor: CurrentPrincipal
) -> Response:
    """End a subscription."""
    webhooks.cancel_subscription(session, actor=actor, subscription_id=subscription_id)
    return Response(status_code=204)


@router.post("/subscriptions/{subscription_id}/redeliver", response_model=RedeliveredOut)
def redeliver(
    subscription_id: SubscriptionId, session: DbSession, actor: CurrentPrincipal
) -> RedeliveredOut:
    """Queue the subscription's dead-lettered webhook events again (after fixing the receiver)."""
    messages = webhooks.redeliver(session, actor=actor, subscription_id=subscription_id)
    return RedeliveredOut(redelivered=[m.id for m in messages])


@router.get("/{code}/changes", response_model=ChangesOut)
def changes(
    code: str,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    actor: CurrentPrincipal,
    since: Annotated[
        str | None,
        Query(
            description="Cursor from a previous page, an event or the subscription; empty "
            "means changes loaded from now on."
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=feeds.MAX_LIMIT, description="Changes per page.")] = 100,
) -> ChangesOut:
    """The rows added, changed and removed by each version loaded after the cursor.

    Granted items only, masked as the grant says, within the grant's row scope. Needs a grant
    with mode subscribe.
    """
    page = feeds.read_changes(
        session,
        actor=actor,
        settings=settings,
        code=code,
        since=since,
        limit=limit,
        request_id=request_id_of(request),
    )
    return ChangesOut(
        resource_code=page.resource_code,
        current_version=page.current_version,
        items=page.items,
        masked=page.masked,
        changes=page.changes,
        next=page.next,
        more=page.more,
    )
