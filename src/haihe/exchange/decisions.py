"""Decisions on requests and grants — 审批: approve, refuse, withdraw, legal basis, revoke.

The provider's org admins (and the platform admin) approve a pending 有条件共享 request, possibly
narrowed, or refuse it with a reason; the requester may withdraw it while it is pending; the
platform admin alone allows a 不予共享 request by recording a legal basis; the provider revokes
a grant in force with a reason. Each decision is audited.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from haihe.catalogue.models import Resource, SharingType
from haihe.core.auth import Principal
from haihe.core.db import utcnow
from haihe.core.errors import Conflict, Forbidden, InvalidInput
from haihe.exchange import service
from haihe.exchange.models import AccessRequest, Grant, GrantBasis, GrantStatus, RequestStatus
from haihe.exchange.schemas import ApproveIn, LegalBasisIn


def approve(
    session: Session,
    *,
    actor: Principal,
    request_id: int,
    data: ApproveIn,
    now: dt.datetime | None = None,
) -> Grant:
    """Approve a pending request — 同意 — possibly narrowed; returns the new grant."""
    now = now or utcnow()
    req, resource = _deciding(session, actor, request_id)
    items = _narrowed("item", data.items, req.items)
    modes = _narrowed("mode", [m.value for m in data.modes] if data.modes else None, req.modes)
    duration = data.duration_days or req.duration_days
    if duration > req.duration_days:
        raise InvalidInput(
            f"approval may shorten the grant, not lengthen it: {req.duration_days} days were asked"
        )
    return service.make_grant(
        session,
        actor=actor,
        req=req,
        resource=resource,
        basis=GrantBasis.APPROVED,
        items=items,
        modes=modes,
        scope=req.scope + service.checked_scope(resource, data.scope),
        duration_days=duration,
        unmasked=data.unmasked_items,
        quotas=(data.calls_per_day, data.rows_per_day),
        note=data.note,
        now=now,
    )


def refuse(
    session: Session,
    *,
    actor: Principal,
    request_id: int,
    reason: str,
    now: dt.datetime | None = None,
) -> AccessRequest:
    """Refuse a pending request — 不同意 — with a reason the consumer sees."""
    if not reason.strip():
        raise InvalidInput("give a reason for the refusal; the consumer sees it")
    req, resource = _deciding(session, actor, request_id)
    service.close(
        req, RequestStatus.REFUSED, service.actor_label(actor), now or utcnow(), reason.strip()
    )
    detail = {"reason": reason.strip()}
    service.audit_request(
        session, actor, "exchange.request.refuse", req, resource, "refused", detail
    )
    session.flush()
    return req


def withdraw(
    session: Session, *, actor: Principal, request_id: int, now: dt.datetime | None = None
) -> AccessRequest:
    """Withdraw a pending request — 撤回 — (its consumer's admins and operators)."""
    req = service.get_request(session, actor=actor, request_id=request_id)
    if not service.may_request_for(actor, req.consumer_org_id):
        raise Forbidden("only the requesting organisation's admins and operators withdraw it")
    service.still_pending(req)
    service.close(req, RequestStatus.WITHDRAWN, service.actor_label(actor), now or utcnow(), None)
    service.audit_request(
        session,
        actor,
        "exchange.request.withdraw",
        req,
        service.resource_of(session, req.resource_id),
    )
    session.flush()
    return req


def decide_legal_basis(
    session: Session,
    *,
    actor: Principal,
    request_id: int,
    data: LegalBasisIn,
    now: dt.datetime | None = None,
) -> Grant:
    """Allow a 不予共享 request on a legal basis the platform admin records; returns the grant."""
    req = service.get_request(session, actor=actor, request_id=request_id)
    if not actor.is_platform_admin:
        raise Forbidden("only the platform admin records a legal basis for 不予共享 data")
    resource = service.resource_of(session, req.resource_id)
    if resource.sharing_type is not SharingType.NOT_SHARED:
        raise Conflict(
            f"{resource.code} is {resource.sharing_type.value}, not 不予共享; "
            "approve or refuse the request instead"
        )
    if req.status is not RequestStatus.REFUSED or req.decided_by != service.RULE:
        raise Conflict(f"request {request_id} is already decided ({req.status.value})")
    if not data.legal_basis.strip():
        raise InvalidInput("give the legal basis (law, article or decision) that allows this use")
    duration = data.duration_days or req.duration_days
    req.legal_basis = data.legal_basis.strip()
    return service.make_grant(
        session,
        actor=actor,
        req=req,
        resource=resource,
        basis=GrantBasis.LEGAL_BASIS,
        items=req.items,
        modes=req.modes,
        scope=req.scope,
        duration_days=duration,
        unmasked=data.unmasked_items,
        now=now or utcnow(),
    )


def revoke(
    session: Session,
    *,
    actor: Principal,
    grant_id: int,
    reason: str,
    now: dt.datetime | None = None,
) -> Grant:
    """Revoke a grant in force — 撤销授权 — (the provider's admins or the platform admin)."""
    grant = service.get_grant(session, actor=actor, grant_id=grant_id)
    resource = service.resource_of(session, grant.resource_id)
    if not service.may_decide(actor, resource):
        raise Forbidden("only the provider's org admins or the platform admin revoke a grant")
    if grant.status is not GrantStatus.ACTIVE:
        raise Conflict(f"grant {grant_id} is already {grant.status.value}")
    if not reason.strip():
        raise InvalidInput("give a reason for revoking the grant; the consumer sees it")
    grant.status = GrantStatus.REVOKED
    grant.revoked_at, grant.revoked_by = now or utcnow(), service.actor_label(actor)
    grant.revoke_reason = reason.strip()
    service.audit_grant(
        session, actor, "exchange.grant.revoke", grant, resource, reason=reason.strip()
    )
    session.flush()
    return grant


# ---------------------------------------------------------------- inside


def _deciding(
    session: Session, actor: Principal, request_id: int
) -> tuple[AccessRequest, Resource]:
    req = service.get_request(session, actor=actor, request_id=request_id)
    resource = service.resource_of(session, req.resource_id)
    if not service.may_decide(actor, resource):
        raise Forbidden("only the provider's org admins or the platform admin decide this request")
    service.still_pending(req)
    return req, resource


def _narrowed(what: str, chosen: list[str] | None, asked: list[str]) -> list[str]:
    if chosen is None:
        return list(asked)
    chosen = list(dict.fromkeys(chosen))
    extra = [c for c in chosen if c not in asked]
    if extra:
        raise InvalidInput(
            f"approval may only narrow the request: {what} {', '.join(extra)} was not asked for "
            f"(asked: {', '.join(asked)})"
        )
    if not chosen:
        raise InvalidInput(f"approve at least one {what}, or refuse the request")
    return chosen
