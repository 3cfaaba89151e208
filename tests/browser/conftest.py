"""A live Haihe server and Debian's Chromium, driven through Playwright, for the browser tests.

The server is uvicorn running ``create_app`` in a background thread on a free 127.0.0.1 port, over
a SQLite data directory built by the real migrations. Chromium is ``/usr/bin/chromium`` (install it
with ``scripts/ensure-chromium``); Playwright's own browser downloads are never used. Where Chromium
is missing the tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from browser_support import Account, LiveServer
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Response,
    ViewportSize,
    sync_playwright,
)
from sqlalchemy.orm import Session

from factories import make_org, make_user
from haihe.core.auth import Role
from haihe.core.db import make_engine, make_session_factory
from haihe.core.settings import Settings
from haihe.migrations import upgrade
from haihe.orgs.models import Organisation, OrgKind

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IN_CI = os.environ.get("CI", "").lower() == "true"
SCREENSHOTS = Path(__file__).parent / "screenshots"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
_accounts = itertools.count(1)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium binary, or a skip (a failure under CI) saying how to install it."""
    if not CHROMIUM.exists():
        message = (
            f"Chromium not found at {CHROMIUM}: run scripts/ensure-chromium "
            "(or apt-get install chromium)"
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def _seed(session: Session) -> Organisation:
    """A small city: the city, two districts, a street, departments; returns the data bureau."""
    city = make_org(
        session,
        code="TJ",
        name_zh="天津市",
        name_en="Tianjin",
        kind=OrgKind.CITY,
        region_code="120000",
    )
    for code, zh, en in [
        ("TJ-HP", "和平区", "Heping District"),
        ("TJ-HX", "河西区", "Hexi District"),
    ]:
        make_org(
            session,
            code=code,
            name_zh=zh,
            name_en=en,
            kind=OrgKind.DISTRICT,
            parent_code=city.code,
        )
    make_org(
        session,
        code="TJ-HP-QYC",
        name_zh="劝业场街道",
        name_en="Quanyechang Street",
        kind=OrgKind.STREET,
        parent_code="TJ-HP",
    )
    bureau = make_org(
        session,
        code="TJ-SJJ",
        name_zh="天津市数据局",
        name_en="Tianjin Municipal Data Bureau",
        parent_code=city.code,
    )
    for code, zh, en in [
        ("TJ-RSJ", "天津市人力资源和社会保障局", "Human Resources and Social Security Bureau"),
        ("TJ-MZJ", "天津市民政局", "Civil Affairs Bureau"),
        ("TJ-GAJ", "天津市公安局", "Public Security Bureau"),
        ("TJ-GJJ", "天津市住房公积金管理中心", "Housing Provident Fund Centre"),
    ]:
        make_org(session, code=code, name_zh=zh, name_en=en, parent_code=city.code)
    return bureau


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A Haihe server on a free local port over a freshly migrated SQLite database — one per
    test module, so that one part's test data (its members, entries, grants) never changes
    what another part's pages show."""
    from haihe.app import create_app

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("browser-data"),
        secret_key="browser-test-secret-key",
    )
    engine = make_engine(settings)
    upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions() as session:
        bureau = _seed(session)
        session.commit()
        home_org = bureau.name_zh

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live Haihe server did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", sessions=sessions, home_org=home_org)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        engine.dispose()


@pytest.fixture
def account(live_server: LiveServer) -> Account:
    """A fresh org admin and operator of the data bureau (fresh, so no saved language)."""
    n = next(_accounts)
    with live_server.sessions() as session:
        bureau = session.query(Organisation).filter_by(code="TJ-SJJ").one()
        user = make_user(
            session,
            Role.ORG_ADMIN,
            Role.OPERATOR,
            org=bureau,
            username=f"wangfang{n}",
            display_name="王芳",
        )
        session.commit()
        return Account(username=user.username, display_name=user.display_name)


@pytest.fixture(scope="session")
def browser(chromium: Path) -> Iterator[Browser]:
    """Headless Chromium from Debian, launched once per test session."""
    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()


@pytest.fixture
def open_page(browser: Browser, live_server: LiveServer) -> Iterator[Callable[..., Page]]:
    """Open a page in a fresh browser context (desktop or ``phone=True``); fails on JS errors."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def opener(*, phone: bool = False, locale: str = "zh-CN") -> Page:
        context = browser.new_context(
            base_url=live_server.url,
            viewport=PHONE if phone else DESKTOP,
            device_scale_factor=2 if phone else 1,
            is_mobile=phone,
            has_touch=phone,
            locale=locale,
        )
        contexts.append(context)
        page = context.new_page()

        def on_console(message: ConsoleMessage) -> None:
            # Pages answered 401 or 404 on purpose are logged by Chromium as failed loads; failed
            # sub-resources are caught by on_response instead.
            if message.type == "error" and not message.text.startswith("Failed to load resource"):
                errors.append(f"console: {message.text}")

        def on_response(response: Response) -> None:
            intended = response.request.resource_type == "document" or (
                "hx-redirect" in response.headers  # htmx told to sign in again
            )
            if response.status >= 400 and not intended:
                errors.append(f"{response.status} for {response.request.method} {response.url}")

        page.on("console", on_console)
        page.on("response", on_response)
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        return page

    yield opener
    for context in contexts:
        context.close()
    assert not errors, "the browser reported errors:\n" + "\n".join(errors)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where the browser tests leave their screenshots (for people to look at)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
