"""Console pages of the members domain: sign-in, sign-out and the members directory."""

from __future__ import annotations

import math
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from haihe.core.errors import NotAuthenticated
from haihe.core.templating import RenderedError, local_path, render
from haihe.core.web import AppSettings, CurrentPrincipal, DbSession, OptionalPrincipal
from haihe.orgs import auth, service

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, principal: OptionalPrincipal, next: str = "/") -> Response:
    """The sign-in form; a caller who is already signed in goes straight on to ``next``."""
    target = local_path(next)
    if principal is not None:
        return RedirectResponse(target, status_code=303)
    return _login_page(request, next=target)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Sign in: set the session cookie and go on to ``next`` (a path on this site only)."""
    target = local_path(next)
    if not _same_origin(request):
        raise RenderedError(
            _login_page(
                request, next=target, username=username, error="orgs.login.cross_site", status=403
            )
        )
    try:
        _user, token = auth.login(session, settings=settings, username=username, password=password)
    except NotAuthenticated as exc:
        # Raised, not returned: the request rolls back, which is when the failure is counted.
        page = _login_page(
            request, next=target, username=username, error=_reason(exc.message), status=401
        )
        raise RenderedError(page) from exc
    old = request.cookies.get(auth.SESSION_COOKIE)
    if old:
        auth.revoke(session, token=old)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        auth.SESSION_COOKIE,
        token,
        max_age=settings.session_ttl_seconds,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout(request: Request, session: DbSession, principal: OptionalPrincipal) -> Response:
    """Sign out: revoke the session, clear its cookie and show the sign-in form."""
    # ``principal`` is resolved only so that the authenticator refuses a cross-site sign-out.
    token = request.cookies.get(auth.SESSION_COOKIE)
    if token:
        auth.revoke(session, token=token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        auth.SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/orgs", response_class=HTMLResponse)
def members(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    q: Annotated[str, Query(max_length=100)] = "",
    page: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    """The members directory; an HTMX request gets only the table, for the search box."""
    query = q.strip()
    offset = (page - 1) * PAGE_SIZE
    orgs, total = service.list_orgs(session, q=query or None, limit=PAGE_SIZE, offset=offset)
    context = {
        "orgs": orgs,
        "q": query,
        "query": urlencode({"q": query}) if query else "",
        "page": page,
        "pages": max(1, math.ceil(total / PAGE_SIZE)),
        "total": total,
    }
    partial = request.headers.get("hx-request") == "true" and not request.headers.get(
        "hx-history-restore-request"
    )
    return render(request, "orgs/_table.html" if partial else "orgs/members.html", context)


def _login_page(
    request: Request,
    *,
    next: str,
    username: str = "",
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The sign-in form, keeping what was typed except the password."""
    back = "/login" + ("?" + urlencode({"next": next}) if next != "/" else "")
    context = {"next": next, "username": username, "error": error, "switch_next": back}
    return render(request, "orgs/login.html", context, status=status)


def _reason(message: str) -> str:
    """The catalogue key explaining why ``auth.login`` refused, from its message."""
    if message.startswith("too many failed sign-ins"):
        return "orgs.login.locked"
    if message == "this account is disabled":
        return "orgs.login.disabled"
    return "orgs.login.wrong"


def _same_origin(request: Request) -> bool:
    """False when the browser says the form was posted from another site (login CSRF)."""
    origin = request.headers.get("origin")
    return origin is None or origin.rstrip("/") == str(request.base_url).rstrip("/")
