"""Console pages of the exchange: request, approve (inbox), grants."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from haihe.catalogue import service as catalogue
from haihe.catalogue.models import Resource, SharingMode, SharingType
from haihe.core.auth import Principal, Role
from haihe.core.calendar import city_today
from haihe.core.db import utcnow
from haihe.core.errors import HaiheError
from haihe.core.templating import RenderedError, render
from haihe.core.web import CurrentPrincipal, DbSession
from haihe.exchange import decisions, service
from haihe.exchange.models import GrantStatus, RequestStatus
from haihe.exchange.schemas import ApproveIn, LegalBasisIn, RenewIn, RequestIn
from haihe.orgs import service as orgs

router = APIRouter(include_in_schema=False)

Items = Annotated[list[str], Form()]
# What a request's or grant's page says after an action redirects to it with ``?done=…``.
DONE = ("submitted", "approved", "refused", "withdrawn", "legal_basis", "revoked", "renewed")


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return exc.message if isinstance(exc, HaiheError) else str(exc)


# ---------------------------------------------------------------- lists


@router.get("/exchange", response_class=HTMLResponse)
def my_requests(request: Request, session: DbSession, principal: CurrentPrincipal) -> Response:
    """The caller's organisation's requests (all of them for the platform admin and auditors)."""
    sees = principal.org_id is not None or principal.is_platform_admin
    found = service.list_requests(session, actor=principal) if sees or _all(principal) else []
    rows = service.describe_requests(session, found)
    return render(request, "exchange/requests.html", {"rows": rows, "tab": "requests"})


@router.get("/exchange/inbox", response_class=HTMLResponse)
def inbox(request: Request, session: DbSession, principal: CurrentPrincipal) -> Response:
    """Pending requests awaiting the caller's decision, earliest deadline first."""
    found = service.list_requests(session, actor=principal, inbox=True)
    rows = service.describe_requests(session, found, today=city_today(utcnow()))
    return render(request, "exchange/inbox.html", {"rows": rows, "tab": "inbox"})


@router.get("/exchange/grants", response_class=HTMLResponse)
def grants(request: Request, session: DbSession, principal: CurrentPrincipal) -> Response:
    found = service.list_grants(session, actor=principal)
    rows = service.describe_grants(session, found)
    return render(request, "exchange/grants.html", {"rows": rows, "tab": "grants"})


def _all(principal: Principal) -> bool:
    return principal.is_platform_admin or principal.has(Role.AUDITOR)


# ---------------------------------------------------------------- the request form


@router.get("/exchange/request", response_class=HTMLResponse)
def request_form(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    resource: Annotated[str, Query(max_length=64)],
) -> Response:
    """The form for requesting an entry, from its catalogue page."""
    entry = catalogue.get_resource(session, actor=principal, code=resource)
    values = {"items": [], "modes": [], "purpose": "", "scenario": "", "legal_basis": ""}
    return _form_page(request, session, principal, entry, values | {"days": 365})


@router.post("/exchange/request", response_class=HTMLResponse)
def submit(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    resource: Annotated[str, Form()],
    purpose: Annotated[str, Form()] = "",
    scenario: Annotated[str, Form()] = "",
    legal_basis: Annotated[str, Form()] = "",
    system: Annotated[str, Form()] = "",
    days: Annotated[int, Form()] = 365,
    items: Items = [],  # noqa: B006 - FastAPI copies defaults
    modes: Items = [],  # noqa: B006
) -> Response:
    """Submit the request; on an error show the form again with what to fix."""
    entry = catalogue.get_resource(session, actor=principal, code=resource)
    values: dict[str, Any] = {
        "items": items,
        "modes": modes,
        "purpose": purpose,
        "scenario": scenario,
        "legal_basis": legal_basis,
        "days": days,
    }
    try:
        data = RequestIn.model_validate(
            {
                "resource_code": resource,
                "system_code": system or None,
                "items": items,
                "modes": modes,
                "purpose": purpose,
                "scenario": scenario or None,
                "legal_basis": legal_basis or None,
                "duration_days": days,
            }
        )
        req = service.submit_request(session, actor=principal, data=data)
    except (ValidationError, HaiheError) as exc:
        page = _form_page(request, session, principal, entry, values, error=_reason(exc))
        raise RenderedError(page) from exc
    return RedirectResponse(f"/exchange/requests/{req.id}?done=submitted", status_code=303)


def _form_page(
    request: Request,
    session: DbSession,
    principal: Principal,
    entry: Resource,
    values: dict[str, Any],
    *,
    error: str | None = None,
) -> HTMLResponse:
    offered = (
        list(entry.sharing_modes)
        if entry.sharing_type is not SharingType.NOT_SHARED
        else [m.value for m in SharingMode]
    )
    systems = orgs.list_systems(session, org_code=principal.org_code) if principal.org_code else []
    context = {
        "entry": entry,
        "offered": offered,
        "systems": systems,
        "values": values,
        "error": error,
        "may": principal.org_id is not None
        and service.may_request_for(principal, principal.org_id),
    }
    return render(request, "exchange/request_form.html", context, status=422 if error else 200)


# ---------------------------------------------------------------- one request


@router.get("/exchange/requests/{request_id}", response_class=HTMLResponse)
def request_page(
    request_id: int,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    done: str = "",
) -> Response:
    req = service.get_request(session, actor=principal, request_id=request_id)
    view = service.describe_requests(session, [req], today=city_today(utcnow()))[0]
    resource = service.resource_of(session, req.resource_id)
    pending = req.status is RequestStatus.PENDING
    may = {
        "decide": pending and service.may_decide(principal, resource),
        "withdraw": pending and service.may_request_for(principal, req.consumer_org_id),
        "legal_basis": (
            principal.is_platform_admin
            and resource.sharing_type is SharingType.NOT_SHARED
            and req.status is RequestStatus.REFUSED
            and req.decided_by == service.RULE
        ),
    }
    context = {"r": view, "may": may, "done": done if done in DONE else None}
    return render(request, "exchange/request.html", context)


@router.post("/exchange/requests/{request_id}/approve")
def approve(
    request_id: int,
    session: DbSession,
    principal: CurrentPrincipal,
    days: Annotated[int | None, Form()] = None,
    calls_per_day: Annotated[str, Form()] = "",
    rows_per_day: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    items: Items = [],  # noqa: B006
    modes: Items = [],  # noqa: B006
    unmasked: Items = [],  # noqa: B006
) -> RedirectResponse:
    data = ApproveIn.model_validate(
        {
            "items": items,
            "modes": modes,
            "duration_days": days,
            "calls_per_day": calls_per_day or None,
            "rows_per_day": rows_per_day or None,
            "unmasked_items": unmasked,
            "note": note or None,
        }
    )
    decisions.approve(session, actor=principal, request_id=request_id, data=data)
    return _back_to_request(request_id, "approved")


@router.post("/exchange/requests/{request_id}/refuse")
def refuse(
    request_id: int,
    session: DbSession,
    principal: CurrentPrincipal,
    reason: Annotated[str, Form()] = "",
) -> RedirectResponse:
    decisions.refuse(session, actor=principal, request_id=request_id, reason=reason)
    return _back_to_request(request_id, "refused")


@router.post("/exchange/requests/{request_id}/withdraw")
def withdraw(request_id: int, session: DbSession, principal: CurrentPrincipal) -> RedirectResponse:
    decisions.withdraw(session, actor=principal, request_id=request_id)
    return _back_to_request(request_id, "withdrawn")


@router.post("/exchange/requests/{request_id}/legal-basis")
def legal_basis(
    request_id: int,
    session: DbSession,
    principal: CurrentPrincipal,
    basis: Annotated[str, Form()] = "",
) -> RedirectResponse:
    data = LegalBasisIn(legal_basis=basis)
    decisions.decide_legal_basis(session, actor=principal, request_id=request_id, data=data)
    return _back_to_request(request_id, "legal_basis")


def _back_to_request(request_id: int, done: str) -> RedirectResponse:
    return RedirectResponse(f"/exchange/requests/{request_id}?done={done}", status_code=303)


# ---------------------------------------------------------------- one grant


@router.get("/exchange/grants/{grant_id}", response_class=HTMLResponse)
def grant_page(
    grant_id: int,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    done: str = "",
) -> Response:
    grant = service.get_grant(session, actor=principal, grant_id=grant_id)
    view = service.describe_grants(session, [grant])[0]
    resource = service.resource_of(session, grant.resource_id)
    active = grant.status is GrantStatus.ACTIVE
    may = {
        "revoke": active and service.may_decide(principal, resource),
        "renew": grant.status is not GrantStatus.REVOKED
        and service.may_request_for(principal, grant.consumer_org_id),
    }
    context = {"g": view, "may": may, "done": done if done in DONE else None}
    return render(request, "exchange/grant.html", context)


@router.post("/exchange/grants/{grant_id}/revoke")
def revoke(
    grant_id: int,
    session: DbSession,
    principal: CurrentPrincipal,
    reason: Annotated[str, Form()] = "",
) -> RedirectResponse:
    decisions.revoke(session, actor=principal, grant_id=grant_id, reason=reason)
    return RedirectResponse(f"/exchange/grants/{grant_id}?done=revoked", status_code=303)


@router.post("/exchange/grants/{grant_id}/renew")
def renew(grant_id: int, session: DbSession, principal: CurrentPrincipal) -> RedirectResponse:
    req = service.renew_grant(session, actor=principal, grant_id=grant_id, data=RenewIn())
    return _back_to_request(req.id, "renewed")
