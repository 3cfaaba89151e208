"""REST routes of the exchange under /api/v1/exchange: requests, approvals, grants, calendar."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter, Query, Response

from haihe.core import calendar
from haihe.core.calendar import DayEntry
from haihe.core.errors import Forbidden, NotFound
from haihe.core.web import CurrentPrincipal, DbSession
from haihe.exchange import decisions, repository, service
from haihe.exchange.models import GrantStatus
from haihe.exchange.schemas import (
    ApproveIn,
    CalendarDayIn,
    CalendarDayOut,
    GrantOut,
    LegalBasisIn,
    RefuseIn,
    RenewIn,
    RequestIn,
    RequestOut,
    RevokeIn,
)

router = APIRouter(prefix="/api/v1/exchange", tags=["exchange"])


def _one(session: DbSession, request_id: int) -> RequestOut:
    req = repository.request_by_id(session, request_id)
    assert req is not None
    return service.describe_requests(session, [req])[0]


def _grant(session: DbSession, grant_id: int) -> GrantOut:
    grant = repository.grant_by_id(session, grant_id)
    assert grant is not None
    return service.describe_grants(session, [grant])[0]


# ---------------------------------------------------------------- requests


@router.post("/requests", status_code=201)
def submit(session: DbSession, principal: CurrentPrincipal, body: RequestIn) -> RequestOut:
    """Request a resource — 共享申请. 无条件共享 is granted at once (see ``grant_id``), 有条件共享
    waits for the provider until ``due_on`` (10 working days), 不予共享 is refused at once."""
    req = service.submit_request(session, actor=principal, data=body)
    return _one(session, req.id)


@router.get("/requests")
def list_requests(
    session: DbSession,
    principal: CurrentPrincipal,
    inbox: bool = Query(False, description="Pending requests awaiting your decision instead."),
    limit: int = Query(200, ge=1, le=1000),
) -> list[RequestOut]:
    """Your organisation's requests as consumer, newest first; or (``inbox=1``) the pending
    ones awaiting you as provider, earliest deadline (overdue) first."""
    found = service.list_requests(session, actor=principal, inbox=inbox, limit=limit)
    return service.describe_requests(session, found)


@router.get("/requests/{request_id}")
def show_request(session: DbSession, principal: CurrentPrincipal, request_id: int) -> RequestOut:
    req = service.get_request(session, actor=principal, request_id=request_id)
    return service.describe_requests(session, [req])[0]


@router.post("/requests/{request_id}/approve")
def approve(
    session: DbSession, principal: CurrentPrincipal, request_id: int, body: ApproveIn
) -> GrantOut:
    """Approve (the provider's org admins): items, modes and duration may only narrow."""
    grant = decisions.approve(session, actor=principal, request_id=request_id, data=body)
    return _grant(session, grant.id)


@router.post("/requests/{request_id}/refuse")
def refuse(
    session: DbSession, principal: CurrentPrincipal, request_id: int, body: RefuseIn
) -> RequestOut:
    """Refuse (the provider's org admins), with a reason the consumer sees."""
    decisions.refuse(session, actor=principal, request_id=request_id, reason=body.reason)
    return _one(session, request_id)


@router.post("/requests/{request_id}/withdraw")
def withdraw(session: DbSession, principal: CurrentPrincipal, request_id: int) -> RequestOut:
    """Withdraw a pending request (the consumer's admins and operators)."""
    decisions.withdraw(session, actor=principal, request_id=request_id)
    return _one(session, request_id)


@router.post("/requests/{request_id}/decide-legal-basis")
def decide_legal_basis(
    session: DbSession, principal: CurrentPrincipal, request_id: int, body: LegalBasisIn
) -> GrantOut:
    """Allow a 不予共享 request on a recorded legal basis (the platform admin)."""
    grant = decisions.decide_legal_basis(session, actor=principal, request_id=request_id, data=body)
    return _grant(session, grant.id)


# ---------------------------------------------------------------- grants


@router.get("/grants")
def list_grants(
    session: DbSession,
    principal: CurrentPrincipal,
    side: Literal["consumer", "provider"] | None = Query(
        None, alias="as", description="Only grants held (consumer) or given (provider)."
    ),
    status: GrantStatus | None = None,
    limit: int = Query(200, ge=1, le=1000),
) -> list[GrantOut]:
    """Grants your organisation holds or gave; the platform admin and auditors see all."""
    found = service.list_grants(session, actor=principal, side=side, status=status, limit=limit)
    return service.describe_grants(session, found)


@router.get("/grants/{grant_id}")
def show_grant(session: DbSession, principal: CurrentPrincipal, grant_id: int) -> GrantOut:
    grant = service.get_grant(session, actor=principal, grant_id=grant_id)
    return service.describe_grants(session, [grant])[0]


@router.post("/grants/{grant_id}/revoke")
def revoke(
    session: DbSession, principal: CurrentPrincipal, grant_id: int, body: RevokeIn
) -> GrantOut:
    """Revoke a grant in force (the provider's org admins or the platform admin)."""
    decisions.revoke(session, actor=principal, grant_id=grant_id, reason=body.reason)
    return _grant(session, grant_id)


@router.post("/grants/{grant_id}/renew", status_code=201)
def renew(
    session: DbSession, principal: CurrentPrincipal, grant_id: int, body: RenewIn
) -> RequestOut:
    """Request a renewal: once granted, the new grant continues from the old one's expiry."""
    req = service.renew_grant(session, actor=principal, grant_id=grant_id, data=body)
    return _one(session, req.id)


# ---------------------------------------------------------------- calendar


@router.get("/calendar")
def list_calendar(
    session: DbSession,
    principal: CurrentPrincipal,
    year: int = Query(..., ge=2000, le=2100),
) -> list[CalendarDayOut]:
    """Holidays and 调休 working days of a year (every other weekday is a working day)."""
    return [
        CalendarDayOut(day=d.day, kind=d.kind, name=d.name)
        for d in calendar.list_year(session, year)
    ]


@router.put("/calendar/{day}")
def set_calendar_day(
    session: DbSession, principal: CurrentPrincipal, day: dt.date, body: CalendarDayIn
) -> CalendarDayOut:
    """Mark a day as a holiday or a 调休 working day (the platform admin)."""
    _calendar_keeper(principal)
    calendar.set_days(session, [DayEntry(day, body.kind, body.name)])
    return CalendarDayOut(day=day, kind=body.kind, name=body.name)


@router.delete("/calendar/{day}", status_code=204)
def delete_calendar_day(session: DbSession, principal: CurrentPrincipal, day: dt.date) -> Response:
    """Make a day ordinary again (the platform admin)."""
    _calendar_keeper(principal)
    if not calendar.remove_day(session, day):
        raise NotFound(f"{day} is not in the calendar; it is an ordinary day already")
    return Response(status_code=204)


def _calendar_keeper(principal: CurrentPrincipal) -> None:
    if not principal.is_platform_admin:
        raise Forbidden("only the platform admin keeps the working-day calendar")
