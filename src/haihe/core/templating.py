"""Console templates — one Jinja2 environment for every domain's pages, and ``render``.

Templates are looked up in every ``haihe/<package>/templates`` directory. The shared shell
(``layout.html``, ``error.html``) lives in ``haihe/pages/templates``; a domain keeps its own pages
in a folder named after itself (``haihe/orgs/templates/orgs/login.html`` is ``orgs/login.html``) so
that names never collide. A domain's ``pages.py`` calls ``render(request, "orgs/x.html", {...})``.

Every template sees ``t(key, **values)`` (translate into the request's language), ``lang``,
``principal`` (the signed-in caller or None), ``nav`` (the console's menu) and ``static(path)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from haihe import __version__
from haihe.core import i18n
from haihe.core.auth import Principal, Role

PACKAGE_ROOT: Final = Path(__file__).resolve().parent.parent

# Sent with every console page: no framing by other sites, scripts and styles from this origin only
# (inline style attributes are allowed because ECharts and htmx set them).
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
        "form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class NavItem:
    """One entry of the console's menu: a path and the catalogue key of its label."""

    key: str
    href: str
    label: str
    roles: frozenset[Role] | None = None

    def shown_to(self, principal: Principal | None) -> bool:
        """True when ``principal`` holds one of the entry's roles (any signed-in caller if None)."""
        if principal is None:
            return False
        return self.roles is None or principal.has(*self.roles)

    def active(self, path: str) -> bool:
        """True when ``path`` is this entry's page or one below it."""
        if self.href == "/":
            return path == "/"
        return path == self.href or path.startswith(self.href.rstrip("/") + "/")


class RenderedError(Exception):
    """An error whose page is already rendered.

    Raising it (rather than returning the page) rolls the request's transaction back, running
    the writes a service asked to keep on rollback (a failed sign-in counted); the console's
    handler then answers with ``response``.
    """

    def __init__(self, response: Response) -> None:
        super().__init__(f"rendered error page, status {response.status_code}")
        self.response = response


def template_dirs(root: Path = PACKAGE_ROOT) -> list[Path]:
    """Every package's ``templates`` directory, the shell's (``pages``) first."""
    dirs = sorted(root.glob("*/templates"), key=lambda p: (p.parent.name != "pages", str(p)))
    return [d for d in dirs if d.is_dir()]


@functools.cache
def environment() -> Environment:
    """The console's Jinja2 environment (built on first use, then shared)."""
    env = Environment(
        loader=FileSystemLoader([str(d) for d in template_dirs()]),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = static_url
    env.globals["version"] = __version__
    env.globals["languages"] = [(code, i18n.LANGUAGE_NAMES[code]) for code in i18n.LANGUAGES]
    return env


def static_url(path: str) -> str:
    """The URL of a file shipped in ``haihe/pages/static``, versioned so upgrades bust caches."""
    return f"/static/{path.lstrip('/')}?v={__version__}"


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **values)`` bound to ``lang``."""

    def t(key: str, /, **values: Any) -> str:
        return i18n.translate(lang, key, **values)

    return t


def page_context(request: Request, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What every console template sees, with ``context`` laid over it."""
    lang = i18n.request_language(request)
    principal: Principal | None = getattr(request.state, "principal", None)
    nav = [i for i in getattr(request.app.state, "console_nav", ()) if i.shown_to(principal)]
    base: dict[str, Any] = {
        "request": request,
        "lang": lang,
        "html_lang": i18n.HTML_LANG[lang],
        "t": translator(lang),
        "principal": principal,
        "nav": nav,
        "path": request.url.path,
        "current_url": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    }
    base.update(context or {})
    return base


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """An HTML response of ``template`` rendered in the request's language."""
    full = page_context(request, context)
    html = environment().get_template(template).render(full)
    response = HTMLResponse(html, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Content-Language"] = full["html_lang"]
    response.headers["Vary"] = "Cookie, Accept-Language, HX-Request"
    if headers:
        response.headers.update(headers)
    return response


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site (safe to redirect to), else ``default``.

    Refuses anything a browser could read as another origin: absolute URLs, ``//host``, and
    backslashes or control characters (browsers turn ``/\\host`` and ``/<tab>/host`` into
    ``//host``).
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target
