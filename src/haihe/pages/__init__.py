"""The console shell (login, navigation, language) — installed on the app by ``install``.

A domain adds console pages with a ``pages.py`` holding an ``APIRouter`` whose routes call
``haihe.core.templating.render``, templates in ``haihe/<domain>/templates/<domain>/`` and messages
in ``haihe/<domain>/locales/{zh,en}.toml``; then its router is added to ``PAGE_ROUTERS`` below. If
its path is one of the home page's parts (``/catalogue``, ``/exchange``, …), the card turns into a
link and the part joins the menu by itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from haihe.audit import pages as audit_pages
from haihe.catalogue import pages as catalogue_pages
from haihe.core.auth import Principal
from haihe.core.errors import Forbidden, HaiheError, NotAuthenticated, NotFound
from haihe.core.templating import RenderedError, local_path, render
from haihe.exchange import pages as exchange_pages
from haihe.governance import pages as governance_pages
from haihe.orgs import pages as orgs_pages
from haihe.pages import routes
from haihe.portal import pages as portal_pages
from haihe.verification import pages as verification_pages

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Paths that are never console pages: their errors keep the JSON (or their standard's) shape.
NON_CONSOLE_PREFIXES = ("/api/", "/healthz", "/open311/", "/static/")

PAGE_ROUTERS: tuple[APIRouter, ...] = (
    routes.router,
    orgs_pages.router,
    catalogue_pages.router,
    exchange_pages.router,
    audit_pages.router,
    portal_pages.router,
    verification_pages.router,
    governance_pages.router,
)

Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def install(app: FastAPI) -> None:
    """Mount the console's routes and static files on ``app``, after its own error handlers."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.state.console_nav = routes.ConsoleMenu(app)
    _install_error_pages(app)


def is_console_page(request: Request) -> bool:
    """True when ``request`` is a browser asking for a console page (not an API or a file)."""
    if request.url.path.startswith(NON_CONSOLE_PREFIXES):
        return False
    return "text/html" in request.headers.get("accept", "")


def _install_error_pages(app: FastAPI) -> None:
    """Show errors on console pages as HTML; everything else goes to the app's own handlers."""
    json_http: Handler = app.exception_handlers[StarletteHTTPException]
    json_haihe: Handler | None = app.exception_handlers.get(HaiheError)

    async def http_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, StarletteHTTPException) or not is_console_page(request):
            return await _delegate(json_http, request, exc)
        return await _error_page(request, exc.status_code, None)

    async def haihe_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, NotAuthenticated) and _from_htmx(request):
            return _htmx_sign_in(request)
        if isinstance(exc, NotAuthenticated) or not is_console_page(request):
            if json_haihe is None:
                raise exc
            return await _delegate(json_haihe, request, exc)
        assert isinstance(exc, HaiheError)
        return await _error_page(request, exc.status, exc.message)

    async def rendered_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RenderedError)
        return exc.response

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(HaiheError, haihe_error)
    app.add_exception_handler(RenderedError, rendered_error)

    json_crash: Handler | None = app.exception_handlers.get(Exception)
    if json_crash is not None:

        async def crash(request: Request, exc: Exception) -> Response:
            assert json_crash is not None
            response = await _delegate(json_crash, request, exc)  # logs the error
            if not is_console_page(request):
                return response
            try:
                return await _error_page(request, 500, None)
            except Exception:  # the page itself may be what is broken: keep the plain answer
                return response

        app.add_exception_handler(Exception, crash)


def _from_htmx(request: Request) -> bool:
    """True for a request htmx made from a console page."""
    return request.headers.get("hx-request") == "true" and not request.url.path.startswith(
        NON_CONSOLE_PREFIXES
    )


def _htmx_sign_in(request: Request) -> Response:
    """Send the whole browser page (not the fragment htmx asked for) to the sign-in form."""
    current = urlsplit(request.headers.get("hx-current-url", ""))
    back = local_path(current.path + (f"?{current.query}" if current.query else ""))
    target = "/login?" + urlencode({"next": back})
    return Response(status_code=401, headers={"HX-Redirect": target})


async def _delegate(handler: Handler, request: Request, exc: Exception) -> Response:
    """The response of the app's own handler, sync or async."""
    response = handler(request, exc)
    return await response if inspect.isawaitable(response) else response


async def _error_page(request: Request, status: int, detail: str | None) -> Response:
    """The console's error page for ``status``, inside the layout when the caller is signed in."""
    if not hasattr(request.state, "principal"):
        request.state.principal = await run_in_threadpool(_caller, request)
    if status == NotFound.status:
        heading, text = "pages.error.not_found", "pages.error.not_found_text"
    elif status == Forbidden.status:
        heading, text = "pages.error.forbidden", "pages.error.forbidden_text"
    else:
        heading, text = "pages.error.other", "pages.error.other_text"
    context = {"status": status, "heading": heading, "text": text, "detail": detail}
    return render(request, "error.html", context, status=status)


def _caller(request: Request) -> Principal | None:
    """The signed-in caller of a request that failed before any route resolved it, or None."""
    try:
        with request.app.state.session_factory() as session:
            principal: Principal | None = request.app.state.authenticator(request, session)
            return principal
    except HaiheError:
        return None
