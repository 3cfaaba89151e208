"""The console shell's own pages: the home page and the language switch."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from haihe.core import i18n
from haihe.core.auth import Principal, Role
from haihe.core.templating import NavItem, local_path, render
from haihe.core.web import CurrentPrincipal, DbSession, OptionalPrincipal
from haihe.orgs import service as orgs_service
from haihe.orgs.schemas import UserUpdate

router = APIRouter(include_in_schema=False)

LANG_COOKIE_MAX_AGE = 365 * 24 * 3600


@dataclass(frozen=True)
class Part:
    """A part of the platform shown on the home page; ``live`` once its console page exists.

    ``roles`` are those whose work the part serves (None: every signed-in caller); the home page
    and the menu show a caller only the parts of their roles. Pages still check rights themselves.
    """

    key: str
    href: str
    roles: frozenset[Role] | None = None
    live: bool = False

    def shown_to(self, principal: Principal) -> bool:
        return self.roles is None or principal.has(*self.roles)


_R = Role
_STAFF = frozenset(set(Role) - {Role.RESIDENT})
# The parts of the platform in the order of DESIGN.md, with the roles they serve. A part becomes a
# link (and joins the menu) when the app has a GET route at its ``href``: including a domain's
# pages router turns it on.
PARTS: tuple[Part, ...] = (
    Part("orgs", "/orgs", frozenset({_R.PLATFORM_ADMIN, _R.ORG_ADMIN, _R.AUDITOR})),
    Part("catalogue", "/catalogue", _STAFF),
    Part(
        "exchange",
        "/exchange",
        frozenset({_R.PLATFORM_ADMIN, _R.ORG_ADMIN, _R.OPERATOR, _R.AUDITOR}),
    ),
    Part("audit", "/audit", frozenset({_R.PLATFORM_ADMIN, _R.ORG_ADMIN, _R.AUDITOR})),
    Part("mydata", "/audit/me", frozenset({_R.RESIDENT})),
    Part(
        "verification",
        "/verification",
        frozenset({_R.PLATFORM_ADMIN, _R.ORG_ADMIN, _R.OPERATOR, _R.OFFICER}),
    ),
    Part("portal", "/portal"),
    Part("supervision", "/supervision", frozenset({_R.PLATFORM_ADMIN, _R.ORG_ADMIN, _R.OFFICER})),
    Part(
        "governance",
        "/governance",
        frozenset({_R.PLATFORM_ADMIN, _R.ORG_ADMIN, _R.OPERATOR, _R.GRID_WORKER, _R.OFFICER}),
    ),
    Part("care", "/care", frozenset({_R.PLATFORM_ADMIN, _R.ORG_ADMIN, _R.CARE_OPERATOR})),
    Part("onestop", "/onestop"),
    Part(
        "dashboard",
        "/dashboard",
        frozenset({_R.PLATFORM_ADMIN, _R.ORG_ADMIN, _R.OFFICER, _R.AUDITOR}),
    ),
)


def has_page(app: Starlette, path: str) -> bool:
    """True when ``app`` answers ``GET path`` with one of its routes."""
    scope = {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": []}
    return any(route.matches(scope)[0] is Match.FULL for route in app.routes)


class ConsoleMenu:
    """The parts of the platform and the menu of one app, worked out on first use.

    First use comes after every router is included, whoever includes it, so a domain's pages
    appear on the home page and in the menu without being registered here.
    """

    def __init__(self, app: Starlette) -> None:
        self._app = app

    @functools.cached_property
    def parts(self) -> tuple[Part, ...]:
        """``PARTS``, with ``live`` set for those the app has a page for."""
        return tuple(Part(p.key, p.href, p.roles, live=has_page(self._app, p.href)) for p in PARTS)

    @functools.cached_property
    def items(self) -> tuple[NavItem, ...]:
        """The menu: home, then every live part."""
        items = [NavItem("home", "/", "pages.nav.home")]
        items += [
            NavItem(p.key, p.href, f"pages.part.{p.key}.title", p.roles)
            for p in self.parts
            if p.live
        ]
        return tuple(items)

    def __iter__(self) -> Iterator[NavItem]:
        return iter(self.items)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: DbSession, principal: CurrentPrincipal) -> HTMLResponse:
    """The signed-in landing page: who you are and the parts of the platform."""
    menu: ConsoleMenu = request.app.state.console_nav
    account = _account(session, principal, i18n.request_language(request))
    parts = [p for p in menu.parts if p.shown_to(principal)]
    return render(request, "home.html", {"account": account, "parts": parts})


@router.post("/lang/{code}")
def switch_language(
    code: str,
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    next: Annotated[str, Form()] = "/",
) -> RedirectResponse:
    """Choose the console language: remember it in a cookie (and for a signed-in user), go back."""
    if code not in i18n.LANGUAGES:
        raise StarletteHTTPException(status_code=404)
    if principal is not None and principal.kind == "user" and principal.language != code:
        orgs_service.update_user(
            session, actor=principal, username=principal.name, data=UserUpdate(language=code)
        )
    response = RedirectResponse(local_path(next), status_code=303)
    response.set_cookie(
        i18n.LANG_COOKIE,
        code,
        max_age=LANG_COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


def _account(session: DbSession, principal: Principal, lang: str) -> dict[str, Any]:
    """What the home page shows about the caller: names, organisation and roles."""
    roles = [role.value for role in Role if role in principal.roles]
    if principal.kind != "user":
        return {
            "display_name": principal.name,
            "username": principal.name,
            "org": principal.org_code,
            "roles": roles,
        }
    user = orgs_service.get_user(session, username=principal.name)
    org = None
    if user.org is not None:
        org = user.org.name_en if lang == "en" and user.org.name_en else user.org.name_zh
    return {
        "display_name": user.display_name,
        "username": user.username,
        "org": org,
        "roles": roles,
    }
