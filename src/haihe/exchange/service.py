"""Access requests, approvals and grants — the rules of who may use which data (共享申请与授权).

A consumer organisation asks for named items of a published resource, for a purpose, in some
modes, under a row scope, for some days. What happens next follows the resource's sharing type
(DESIGN.md): 无条件共享 is granted at once; 有条件共享 waits for the provider's admins, who have
10 working days before the request escalates to the platform; 不予共享 is refused at once unless
the platform admin records a legal basis. Every step is written to the audit ledger.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from haihe.audit import service as audit
from haihe.catalogue import service as catalogue
from haihe.catalogue.models import Resource, ResourceStatus, SharingMode, SharingType
from haihe.core.auth import Principal, Role, system_principal
from haihe.core.calendar import add_working_days, city_today, working_days_between
from haihe.core.db import utcnow
from haihe.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from haihe.exchange import repository
from haihe.exchange.models import AccessRequest, Grant, GrantBasis, GrantStatus, RequestStatus
from haihe.exchange.schemas import Describer, GrantOut, RenewIn, RequestIn, RequestOut
from haihe.exchange.scope import check_conditions
from haihe.orgs import repository as orgs_repo
from haihe.orgs import service as orgs
from haihe.orgs.models import Organisation

DUE_WORKING_DAYS = 10  # 有条件共享: the provider answers within 10 working days
RULE = "rule"  # ``decided_by`` of decisions the sharing type made by itself
SCHEDULER = system_principal("scheduler")


def actor_label(actor: Principal) -> str:
    return catalogue.actor_label(actor)


# ---------------------------------------------------------------- who may


def may_request_for(actor: Principal, org_id: int) -> bool:
    """Org admins and operators request for their own organisation; the platform admin for any."""
    if actor.is_platform_admin:
        return True
    return (
        actor.kind == "user" and actor.org_id == org_id and actor.has(Role.ORG_ADMIN, Role.OPERATOR)
    )


def may_decide(actor: Principal, resource: Resource) -> bool:
    """The provider's org admins and the platform admin approve, refuse and revoke."""
    return actor.kind != "client" and actor.admin_of(resource.provider_id)


def may_see(actor: Principal, *, consumer_org_id: int, resource: Resource) -> bool:
    """The consumer's and the provider's people, the platform admin and auditors."""
    if actor.is_platform_admin or actor.has(Role.AUDITOR):
        return True
    return actor.org_id is not None and actor.org_id in (consumer_org_id, resource.provider_id)


def resource_of(session: Session, resource_id: int) -> Resource:
    resource = session.get(Resource, resource_id)
    assert resource is not None  # a foreign key guarantees it
    return resource


# ---------------------------------------------------------------- reading


def get_request(session: Session, *, actor: Principal, request_id: int) -> AccessRequest:
    """Request ``request_id`` if the actor may see it (otherwise it reads as not found)."""
    req = repository.request_by_id(session, request_id)
    if req is None or not may_see(
        actor, consumer_org_id=req.consumer_org_id, resource=resource_of(session, req.resource_id)
    ):
        raise NotFound(f"access request {request_id} does not exist")
    return req


def get_grant(session: Session, *, actor: Principal, grant_id: int) -> Grant:
    grant = repository.grant_by_id(session, grant_id)
    if grant is None or not may_see(
        actor,
        consumer_org_id=grant.consumer_org_id,
        resource=resource_of(session, grant.resource_id),
    ):
        raise NotFound(f"grant {grant_id} does not exist")
    return grant


def list_requests(
    session: Session, *, actor: Principal, inbox: bool = False, limit: int = 200
) -> list[AccessRequest]:
    """The caller's organisation's requests as consumer, or (``inbox``) those awaiting it.

    The inbox of an org admin holds the pending requests for its organisation's resources; the
    platform admin's holds the escalated ones (overdue at the provider). Inboxes list the
    earliest deadline first, so overdue requests come first.
    """
    if inbox:
        if actor.is_platform_admin:
            found = repository.list_requests(
                session, status=RequestStatus.PENDING, escalated=True, limit=limit
            )
        elif actor.org_id is not None and actor.has(Role.ORG_ADMIN):
            found = repository.list_requests(
                session, provider_org_id=actor.org_id, status=RequestStatus.PENDING, limit=limit
            )
        else:
            raise Forbidden(
                "the approval inbox is for providers' org admins and the platform admin"
            )
        return sorted(found, key=lambda r: (r.due_on or dt.date.max, r.id))
    if actor.is_platform_admin or actor.has(Role.AUDITOR):
        return list(repository.list_requests(session, limit=limit))
    if actor.org_id is None:
        raise Forbidden("only organisations' users see access requests")
    return list(repository.list_requests(session, consumer_org_id=actor.org_id, limit=limit))


def list_grants(
    session: Session,
    *,
    actor: Principal,
    side: Literal["consumer", "provider"] | None = None,
    status: GrantStatus | None = None,
    limit: int = 200,
) -> list[Grant]:
    """Grants the caller's organisation holds (consumer) or gave (provider), or both.

    The platform admin and auditors see every grant (``side`` needs an organisation).
    """
    everyone = actor.is_platform_admin or actor.has(Role.AUDITOR)
    if actor.org_id is None:
        if not everyone:
            raise Forbidden("only organisations' users and API clients see grants")
        if side is not None:
            raise InvalidInput(f"as={side} needs an organisation; leave it out to see all grants")
    org = actor.org_id
    if side == "consumer":
        return list(repository.list_grants(session, consumer_org_id=org, status=status))
    if side == "provider":
        return list(repository.list_grants(session, provider_org_id=org, status=status))
    if everyone:
        return list(repository.list_grants(session, status=status, limit=limit))
    return list(repository.list_grants(session, either_org_id=org, status=status, limit=limit))


# ---------------------------------------------------------------- submitting


def submit_request(
    session: Session, *, actor: Principal, data: RequestIn, now: dt.datetime | None = None
) -> AccessRequest:
    """Record a request and apply the resource's sharing type to it at once (see the module)."""
    now = now or utcnow()
    org = _consumer(session, actor, data.consumer_org_code)
    resource = catalogue.get_resource(session, actor=actor, code=data.resource_code)
    system_id = None
    if data.system_code:
        system_id = orgs.get_system(session, org_code=org.code, code=data.system_code).id
    return _open(
        session,
        actor=actor,
        org=org,
        system_id=system_id,
        resource=resource,
        items=data.items,
        modes=[m.value for m in data.modes],
        scope=data.scope,
        purpose=data.purpose,
        scenario=data.scenario,
        legal_basis=data.legal_basis,
        duration_days=data.duration_days,
        renews=None,
        now=now,
    )


def renew_grant(
    session: Session,
    *,
    actor: Principal,
    grant_id: int,
    data: RenewIn,
    now: dt.datetime | None = None,
) -> AccessRequest:
    """A new request for what the grant gives; once granted it continues from the old expiry."""
    now = now or utcnow()
    grant = get_grant(session, actor=actor, grant_id=grant_id)
    if not may_request_for(actor, grant.consumer_org_id):
        raise Forbidden("only the consumer's org admins and operators renew its grants")
    if grant.status is GrantStatus.REVOKED:
        raise Conflict(f"grant {grant_id} was revoked; submit a new request instead")
    old = repository.request_by_id(session, grant.request_id) if grant.request_id else None
    org = orgs_repo.org_by_id(session, grant.consumer_org_id)
    assert org is not None
    return _open(
        session,
        actor=actor,
        org=org,
        system_id=grant.consumer_system_id,
        resource=resource_of(session, grant.resource_id),
        items=grant.items,
        modes=grant.modes,
        scope=grant.scope,
        purpose=data.purpose or grant.purpose,
        scenario=old.scenario if old else None,
        legal_basis=old.legal_basis if old else grant.legal_basis,
        duration_days=data.duration_days or (old.duration_days if old else 365),
        renews=grant,
        now=now,
    )


def _consumer(session: Session, actor: Principal, code: str | None) -> Organisation:
    if code is not None:
        org = orgs.get_org(session, code=code)
    elif actor.org_id is not None and actor.org_code is not None:
        org = orgs.get_org(session, code=actor.org_code)
    else:
        raise InvalidInput("say which organisation requests the data: consumer_org_code")
    if not may_request_for(actor, org.id):
        raise Forbidden(f"only the org admins and operators of {org.code} request data for it")
    return org


def _open(
    session: Session,
    *,
    actor: Principal,
    org: Organisation,
    system_id: int | None,
    resource: Resource,
    items: Sequence[str],
    modes: Sequence[str],
    scope: Sequence[dict[str, Any]],
    purpose: str,
    scenario: str | None,
    legal_basis: str | None,
    duration_days: int,
    renews: Grant | None,
    now: dt.datetime,
) -> AccessRequest:
    if resource.status is not ResourceStatus.PUBLISHED:
        raise InvalidInput(
            f"{resource.code} is {resource.status.value}; only published entries can be requested"
        )
    if resource.provider_id == org.id:
        raise InvalidInput(f"{org.code} provides {resource.code} itself; it needs no grant")
    items = _known_items(resource, items)
    modes = _offered_modes(resource, modes)
    duplicate = repository.pending_request(
        session, resource_id=resource.id, org_id=org.id, system_id=system_id
    )
    if duplicate is not None:
        raise Conflict(
            f"{org.code} already has request {duplicate.id} for {resource.code} pending; "
            "withdraw it or wait for the decision"
        )
    req = AccessRequest(
        resource_id=resource.id,
        consumer_org_id=org.id,
        consumer_system_id=system_id,
        requested_by=actor_label(actor),
        items=items,
        purpose=purpose,
        scenario=scenario,
        legal_basis=legal_basis,
        modes=modes,
        scope=checked_scope(resource, scope),
        duration_days=duration_days,
        status=RequestStatus.PENDING,
        submitted_at=now,
        renews_grant_id=renews.id if renews else None,
    )
    session.add(req)
    session.flush()
    action = "exchange.grant.renew" if renews else "exchange.request.submit"
    audit_request(
        session, actor, action, req, resource, detail={"grant_id": renews.id} if renews else None
    )
    if resource.sharing_type is SharingType.UNCONDITIONAL:
        make_grant(
            session,
            actor=actor,
            req=req,
            resource=resource,
            basis=GrantBasis.UNCONDITIONAL,
            items=items,
            modes=modes,
            scope=req.scope,
            duration_days=duration_days,
            decided_by=RULE,
            now=now,
        )
    elif resource.sharing_type is SharingType.CONDITIONAL:
        req.due_on = add_working_days(session, city_today(now), DUE_WORKING_DAYS)
    else:
        close(req, RequestStatus.REFUSED, RULE, now, NOT_SHARED_NOTE)
        detail = {"basis": "not_shared"}
        audit_request(session, actor, "exchange.request.refuse", req, resource, "refused", detail)
    session.flush()
    return req


NOT_SHARED_NOTE = (
    "不予共享: this resource is not shared; only the platform admin can allow it by recording "
    "a legal basis (POST /api/v1/exchange/requests/{id}/decide-legal-basis)"
)


def _known_items(resource: Resource, items: Sequence[str]) -> list[str]:
    wanted = list(dict.fromkeys(i.strip() for i in items if i.strip()))
    if not wanted:
        raise InvalidInput("name at least one data item")
    names = [i.name for i in resource.items]
    unknown = [i for i in wanted if i not in names]
    if unknown:
        raise InvalidInput(
            f"{resource.code} has no data item {', '.join(unknown)}; its items are "
            + ", ".join(names),
            details={"unknown": unknown},
        )
    return wanted


def _offered_modes(resource: Resource, modes: Sequence[str]) -> list[str]:
    wanted = list(dict.fromkeys(SharingMode(m).value for m in modes))
    if not wanted:
        raise InvalidInput("name at least one mode: " + ", ".join(m.value for m in SharingMode))
    # A 不予共享 entry offers no modes; the legal basis, not the catalogue, decides them.
    if resource.sharing_type is SharingType.NOT_SHARED:
        return wanted
    offered = list(resource.sharing_modes or [])
    missing = [m for m in wanted if m not in offered]
    if missing:
        raise InvalidInput(
            f"{resource.code} is not offered by {', '.join(missing)}; it offers "
            + (", ".join(offered) or "no mode"),
            details={"not_offered": missing},
        )
    return wanted


def checked_scope(resource: Resource, scope: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The row scope checked against the resource's items, values on the items' types."""
    return [
        c.model_dump(mode="json", exclude_none=True)
        for c in check_conditions(scope, resource.items)
    ]


# ---------------------------------------------------------------- scheduled


def expire_grants(session: Session, *, now: dt.datetime) -> list[int]:
    """Mark active grants past their expiry as expired; returns their ids (the scheduler's job)."""
    expired = []
    for grant in repository.grants_past_expiry(session, now=now):
        grant.status = GrantStatus.EXPIRED
        resource = resource_of(session, grant.resource_id)
        audit_grant(session, SCHEDULER, "exchange.grant.expire", grant, resource)
        expired.append(grant.id)
    session.flush()
    return expired


def escalate_overdue(session: Session, *, today: dt.date) -> list[int]:
    """Escalate pending requests past their due day to the platform admin; returns their ids."""
    escalated = []
    for req in repository.overdue_requests(session, today=today):
        req.escalated_at = utcnow()
        resource = resource_of(session, req.resource_id)
        due = {"due_on": req.due_on.isoformat() if req.due_on else None}
        audit_request(session, SCHEDULER, "exchange.request.escalate", req, resource, detail=due)
        escalated.append(req.id)
    session.flush()
    return escalated


# ---------------------------------------------------------------- inside


def still_pending(req: AccessRequest) -> None:
    if req.status is not RequestStatus.PENDING:
        raise Conflict(f"request {req.id} is already {req.status.value}; it cannot change now")


def close(
    req: AccessRequest, status: RequestStatus, by: str, now: dt.datetime, note: str | None
) -> None:
    req.status, req.decided_at, req.decided_by, req.decision_note = status, now, by, note


def make_grant(
    session: Session,
    *,
    actor: Principal,
    req: AccessRequest,
    resource: Resource,
    basis: GrantBasis,
    items: list[str],
    modes: list[str],
    scope: list[dict[str, Any]],
    duration_days: int,
    now: dt.datetime,
    decided_by: str | None = None,
    unmasked: Sequence[str] = (),
    quotas: tuple[int | None, int | None] = (None, None),
    note: str | None = None,
) -> Grant:
    """The grant a decision creates, the request closed as approved, both audited."""
    unmasked_items = list(dict.fromkeys(unmasked))
    stray = [i for i in unmasked_items if i not in items]
    if stray:
        raise InvalidInput(f"unmasked items must be granted items: {', '.join(stray)} is not")
    starts = now
    if req.renews_grant_id is not None:
        old = repository.grant_by_id(session, req.renews_grant_id)
        if old is not None and old.status is GrantStatus.ACTIVE and old.expires_at > now:
            starts = old.expires_at
    grant = Grant(
        request_id=req.id,
        resource_id=resource.id,
        consumer_org_id=req.consumer_org_id,
        consumer_system_id=req.consumer_system_id,
        items=items,
        unmasked_items=unmasked_items,
        scope=scope,
        modes=modes,
        purpose=req.purpose,
        calls_per_day=quotas[0],
        rows_per_day=quotas[1],
        basis=basis,
        legal_basis=req.legal_basis if basis is GrantBasis.LEGAL_BASIS else None,
        status=GrantStatus.ACTIVE,
        starts_at=starts,
        expires_at=starts + dt.timedelta(days=duration_days),
        created_at=now,
        created_by=actor_label(actor),
    )
    session.add(grant)
    close(req, RequestStatus.APPROVED, decided_by or actor_label(actor), now, note)
    session.flush()
    audit_grant(session, actor, "exchange.grant.approve", grant, resource, request_id=req.id)
    return grant


def audit_request(
    session: Session,
    actor: Principal,
    action: str,
    req: AccessRequest,
    resource: Resource,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    provider = orgs_repo.org_by_id(session, resource.provider_id)
    audit.record(
        session,
        actor=actor,
        action=action,
        outcome=outcome,
        resource_code=resource.code,
        provider_code=provider.code if provider else None,
        items=req.items,
        purpose=req.purpose,
        mode=",".join(req.modes),
        detail={"request_id": req.id, "sharing_type": resource.sharing_type.value} | (detail or {}),
    )


def audit_grant(
    session: Session,
    actor: Principal,
    action: str,
    grant: Grant,
    resource: Resource,
    **detail: Any,
) -> None:
    provider = orgs_repo.org_by_id(session, resource.provider_id)
    audit.record(
        session,
        actor=actor,
        action=action,
        resource_code=resource.code,
        provider_code=provider.code if provider else None,
        items=grant.items,
        purpose=grant.purpose,
        mode=",".join(grant.modes),
        detail={"grant_id": grant.id, "basis": grant.basis.value}
        | {k: v for k, v in detail.items() if v is not None},
    )


def grant_for(
    session: Session, *, actor: Principal, resource: Resource, mode: SharingMode
) -> Grant:
    """The grant under which ``actor`` may use ``resource`` in ``mode`` now.

    Forbidden, naming what is missing, when the actor belongs to no organisation or holds no
    active grant with that mode. With several, the newest holds.
    """
    if actor.org_id is None:
        raise Forbidden("only an organisation's users and API clients use shared data")
    grants = repository.grants_in_force(
        session,
        resource_id=resource.id,
        org_id=actor.org_id,
        system_id=actor.system_id,
        now=utcnow(),
    )
    for grant in grants:
        if mode.value in grant.modes:
            return grant
    raise Forbidden(
        f"{actor.org_code} holds no grant in force to use {resource.code} by {mode.value}; "
        "request access first (POST /api/v1/exchange/requests)"
    )


@dataclass(frozen=True)
class GrantTerms:
    """What the gateway enforces of a grant, read without loading the ORM object."""

    id: int
    items: list[str]
    unmasked_items: list[str]
    scope: list[dict[str, Any]]
    modes: list[str]
    purpose: str
    calls_per_day: int | None
    rows_per_day: int | None
    used_calls: int | None = None  # used on the day asked for, when one was
    used_rows: int | None = None


def grant_terms_for(
    session: Session,
    *,
    actor: Principal,
    resource_id: int,
    resource_code: str,
    mode: SharingMode,
    day: dt.date | None = None,
) -> GrantTerms:
    """``grant_for`` for the gateway's hot path: the same choice, as plain terms; with ``day``,
    the terms carry what the grant has used that day."""
    if actor.org_id is None:
        raise Forbidden("only an organisation's users and API clients use shared data")
    rows = repository.grant_terms_in_force(
        session,
        resource_id=resource_id,
        org_id=actor.org_id,
        system_id=actor.system_id,
        now=utcnow(),
        day=day,
    )
    for row in rows:
        if mode.value in row.modes:
            return GrantTerms(**row._asdict())
    raise Forbidden(
        f"{actor.org_code} holds no grant in force to use {resource_code} by {mode.value}; "
        "request access first (POST /api/v1/exchange/requests)"
    )


def describe_requests(
    session: Session, requests: Sequence[AccessRequest], *, today: dt.date | None = None
) -> list[RequestOut]:
    """API views of requests; pending ones with the working days left before their due day."""
    today = today or city_today(utcnow())
    describer = Describer(session, today=today)
    out = []
    for req in requests:
        left = None
        if req.status is RequestStatus.PENDING and req.due_on is not None:
            left = working_days_between(session, today, req.due_on)
        out.append(describer.request(req, days_left=left))
    return out


def describe_grants(session: Session, grants: Sequence[Grant]) -> list[GrantOut]:
    describer = Describer(session)
    return [describer.grant(g) for g in grants]
