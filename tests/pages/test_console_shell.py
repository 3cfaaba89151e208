"""The console shell over HTTP: home page, menu, members directory, static files, error pages."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from factories import PASSWORD, make_org, make_user
from haihe.core.auth import Role
from haihe.core.errors import Forbidden
from haihe.core.templating import NavItem, template_dirs
from haihe.orgs.models import OrgKind
from haihe.pages import STATIC_DIR
from haihe.pages.routes import ConsoleMenu

HTML = {"accept": "text/html"}


@pytest.fixture
def signed_in(client: TestClient, session_factory: sessionmaker[Session]) -> TestClient:
    """The client, signed in as 王芳, org admin and operator of the data bureau."""
    with session_factory() as s:
        city = make_org(s, code="TJ", name_zh="天津市", name_en="Tianjin", kind=OrgKind.CITY)
        bureau = make_org(
            s, code="TJ-SJJ", name_zh="天津市数据局", name_en="Data Bureau", parent_code=city.code
        )
        make_user(
            s, Role.OPERATOR, Role.ORG_ADMIN, org=bureau, username="wangfang", display_name="王芳"
        )
        s.commit()
    r = client.post(
        "/login", data={"username": "wangfang", "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 303
    return client


def text_of(html: str) -> str:
    """The visible text of a page, tags dropped and spaces squeezed."""
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# ---------------------------------------------------------------- home and menu


def test_home_shows_who_you_are(signed_in: TestClient) -> None:
    page = signed_in.get("/", headers=HTML)
    text = text_of(page.text)
    assert "您好，王芳" in text
    assert "用户名 wangfang" in text
    assert "所属单位 天津市数据局" in text
    assert "角色 单位管理员 业务操作员" in text  # in the order of the Role enum
    assert "<title>工作台 · 海河</title>" in page.text


def test_home_in_english(signed_in: TestClient) -> None:
    signed_in.cookies.set("haihe_lang", "en")
    text = text_of(signed_in.get("/", headers=HTML).text)
    assert "Hello, 王芳" in text
    assert "Organisation Data Bureau" in text
    assert "Roles Organisation admin Operator" in text


def test_parts_not_built_yet_are_shown_as_coming_not_linked(signed_in: TestClient) -> None:
    page = signed_in.get("/", headers=HTML).text
    assert re.search(r'data-part="orgs">\s*<a class="part-body" href="/orgs"', page)
    for part in ("supervision", "care", "dashboard"):
        card = re.search(rf'data-part="{part}">(.*?)</li>', page, flags=re.S)
        assert card is not None
        assert "<a " not in card.group(1)
        assert "即将上线" in card.group(1)
    assert 'href="/supervision"' not in page


def _menu(page: str) -> list[str]:
    nav = re.search(r'<nav class="nav".*?</nav>', page, flags=re.S)
    assert nav is not None
    return re.findall(r'<a href="([^"]+)"', nav.group(0))


def test_the_menu_lists_home_and_the_built_parts_of_your_roles(signed_in: TestClient) -> None:
    page = signed_in.get("/orgs", headers=HTML).text
    menu = _menu(page)
    live = [p.href for p in ConsoleMenu(signed_in.app).parts if p.live]
    assert menu[:3] == ["/", "/orgs", "/catalogue"]
    assert set(menu[1:]) <= set(live)
    assert "/audit/me" not in menu  # a resident's page, not an org admin's
    assert re.search(r'href="/orgs" aria-current="page"', page)


def test_a_resident_sees_neither_members_nor_catalogue(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as s:
        make_user(s, Role.RESIDENT, username="jumin")
        s.commit()
    client.post("/login", data={"username": "jumin", "password": PASSWORD})
    page = client.get("/", headers=HTML).text
    menu = _menu(page)
    assert "/orgs" not in menu
    assert "/catalogue" not in menu
    assert 'data-part="orgs"' not in page
    assert 'data-part="portal"' in page  # parts for everyone stay


def test_a_domain_page_turns_its_part_on(app: FastAPI) -> None:
    assert not any(p.live for p in ConsoleMenu(app).parts if p.key == "care")
    router = APIRouter()

    @router.get("/care")
    def care() -> str:
        return "care"

    app.include_router(router)
    menu = ConsoleMenu(app)
    assert "care" in [p.key for p in menu.parts if p.live]
    assert [item.href for item in menu][-1] == "/care"


@pytest.mark.parametrize(
    ("href", "path", "active"),
    [
        ("/", "/", True),
        ("/", "/orgs", False),
        ("/orgs", "/orgs", True),
        ("/orgs", "/orgs/TJ", True),
        ("/orgs", "/orgsx", False),
    ],
)
def test_menu_entry_is_active_on_its_pages(href: str, path: str, active: bool) -> None:
    assert NavItem("x", href, "pages.nav.home").active(path) is active


def test_pages_carry_security_headers(signed_in: TestClient) -> None:
    r = signed_in.get("/", headers=HTML)
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "<script>" not in r.text  # every script is a file, as the policy demands


# ---------------------------------------------------------------- members directory


@pytest.fixture
def many_orgs(signed_in: TestClient, session_factory: sessionmaker[Session]) -> TestClient:
    with session_factory() as s:
        for n in range(1, 24):
            make_org(s, code=f"D{n:02d}", name_zh=f"测试部门{n}", name_en=f"Department {n}")
        s.commit()
    return signed_in


def test_members_needs_a_signed_in_user(client: TestClient) -> None:
    r = client.get("/orgs", headers=HTML, follow_redirects=False)
    assert r.headers["location"] == "/login?next=/orgs"


def test_members_lists_organisations_a_page_at_a_time(many_orgs: TestClient) -> None:
    first = text_of(many_orgs.get("/orgs", headers=HTML).text)
    assert "共 25 条 第 1 / 2 页" in first
    assert "D01 测试部门1 Department 1 市级部门 — — 启用" in first
    assert "TJ-SJJ" not in first
    second = many_orgs.get("/orgs?page=2", headers=HTML).text
    assert "第 2 / 2 页" in text_of(second)
    assert "TJ-SJJ" in second
    assert 'href="/orgs?page=1"' in second


def test_members_search_and_the_htmx_table(many_orgs: TestClient) -> None:
    full = many_orgs.get("/orgs?q=数据", headers=HTML)
    assert "<html" in full.text
    assert 'value="数据"' in full.text
    assert "共 1 条" in text_of(full.text)

    partial = many_orgs.get("/orgs?q=Department 2", headers={**HTML, "HX-Request": "true"})
    assert "<html" not in partial.text
    assert partial.text.lstrip().startswith('<div class="table-wrap">')
    assert "Department 2</small>" in partial.text
    assert "Department 20" in partial.text
    assert "Department 3" not in partial.text

    none = many_orgs.get("/orgs?q=nothing-like-this", headers={**HTML, "HX-Request": "true"})
    assert "没有符合条件的单位。" in none.text


def test_members_paging_keeps_the_search(many_orgs: TestClient) -> None:
    page = many_orgs.get("/orgs?q=Department", headers=HTML).text
    assert 'href="/orgs?q=Department&amp;page=2"' in page
    assert 'hx-get="/orgs?q=Department&amp;page=2"' in page


def test_history_restore_gets_the_whole_page(many_orgs: TestClient) -> None:
    headers = {**HTML, "HX-Request": "true", "HX-History-Restore-Request": "true"}
    assert "<html" in many_orgs.get("/orgs", headers=headers).text


def test_an_expired_session_sends_htmx_to_the_login_form(client: TestClient) -> None:
    headers = {"HX-Request": "true", "HX-Current-URL": "http://testserver/orgs?q=%E5%8C%BA"}
    r = client.get("/orgs?q=%E5%8C%BA", headers=headers, follow_redirects=False)
    assert r.status_code == 401
    assert r.headers["hx-redirect"] == "/login?next=%2Forgs%3Fq%3D%25E5%258C%25BA"
    evil = {"HX-Request": "true", "HX-Current-URL": "https://evil.example//evil.example"}
    r = client.get("/orgs", headers=evil, follow_redirects=False)
    assert r.headers["hx-redirect"] == "/login?next=%2F"


# ---------------------------------------------------------------- error pages


def test_unknown_console_path_is_an_html_404(signed_in: TestClient) -> None:
    r = signed_in.get("/no/such/page", headers=HTML)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    text = text_of(r.text)
    assert "页面不存在" in text
    assert "wangfang" in text  # inside the signed-in layout
    assert 'href="/orgs"' in r.text


def test_api_and_non_html_404s_keep_the_json_shape(client: TestClient) -> None:
    api = client.get("/api/v1/no-such", headers=HTML)
    assert api.json()["error"]["code"] == "not_found"
    plain = client.get("/no/such/page")
    assert plain.json()["error"]["code"] == "not_found"


def test_a_forbidden_console_page_explains_itself(app: FastAPI, signed_in: TestClient) -> None:
    router = APIRouter()

    @router.get("/test-forbidden")
    def forbidden() -> None:
        raise Forbidden("this needs one of the roles: auditor")

    app.include_router(router)
    r = signed_in.get("/test-forbidden", headers=HTML)
    assert r.status_code == 403
    assert "没有权限" in r.text
    assert "this needs one of the roles: auditor" in r.text
    api = signed_in.get("/test-forbidden")
    assert api.json()["error"]["code"] == "forbidden"


def test_a_crash_on_a_console_page_is_an_html_500(app: FastAPI) -> None:
    router = APIRouter()

    @router.get("/test-crash")
    def crash() -> None:
        raise RuntimeError("boom")

    app.include_router(router)
    with TestClient(app, raise_server_exceptions=False) as c:
        page = c.get("/test-crash", headers=HTML)
        api = c.get("/test-crash")
    assert page.status_code == 500
    assert "请求未能完成" in page.text
    assert "boom" not in page.text
    assert api.json()["error"]["code"] == "internal_error"


# ---------------------------------------------------------------- static files


def test_static_files_are_served(client: TestClient) -> None:
    for name, kind in [
        ("htmx.min.js", "javascript"),
        ("echarts.min.js", "javascript"),
        ("haihe.js", "javascript"),
        ("haihe.css", "text/css"),
        ("icons.svg", "image/svg+xml"),
    ]:
        r = client.get(f"/static/{name}")
        assert r.status_code == 200, name
        assert kind in r.headers["content-type"], name


def test_vendored_files_match_their_recorded_hashes() -> None:
    notes = (STATIC_DIR / "VENDORED.md").read_text(encoding="utf-8")
    recorded = dict(re.findall(r"\| `([\w.]+\.min\.js)` \|.*\| `([0-9a-f]{64})` \|", notes))
    assert set(recorded) == {"htmx.min.js", "echarts.min.js"}
    for name, digest in recorded.items():
        assert hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest() == digest, name


def test_nothing_is_fetched_from_the_internet() -> None:
    ours = [STATIC_DIR / n for n in ("haihe.css", "haihe.js")]
    ours += [p for d in template_dirs() for p in d.rglob("*.html")]
    remote = re.compile(r"""(?:src|href|url)\s*[=(]\s*["']?(?:https?:)?//""", re.I)
    offenders = [str(p) for p in ours if remote.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_the_layout_loads_only_shipped_files(client: TestClient) -> None:
    page = client.get("/login", headers=HTML).text
    for url in re.findall(r'(?:src|href)="([^"#]+)', page):
        assert url.startswith("/"), url
        if url.startswith("/static/"):
            assert (STATIC_DIR / Path(url.split("?")[0]).name).exists(), url
