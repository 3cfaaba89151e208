"""Console languages: complete catalogues, negotiation, and the language switch."""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from factories import PASSWORD, make_user
from haihe.app import create_app
from haihe.core import i18n
from haihe.core.auth import Role
from haihe.core.settings import Settings
from haihe.core.templating import template_dirs
from haihe.orgs import service
from haihe.orgs.models import OrgKind
from haihe.pages.routes import PARTS

HTML = {"accept": "text/html"}
SRC = i18n.PACKAGE_ROOT
NAMESPACES = sorted({package for package, _, _ in i18n.catalogue_files()})
# A literal catalogue key in a template or a page module: "<namespace>.<name>[.<name>…]".
KEY = re.compile(r"""["']((?:""" + "|".join(NAMESPACES) + r""")(?:\.[a-z0-9_]+)+)["']""")


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def used_keys() -> dict[str, set[Path]]:
    """Every literal key in the templates and the console's Python modules, with where."""
    files = [p for d in template_dirs() for p in d.rglob("*.html")]
    files += [SRC / "core" / "templating.py", *SRC.glob("*/pages.py"), *SRC.glob("pages/*.py")]
    found: dict[str, set[Path]] = {}
    for path in files:
        for key in KEY.findall(path.read_text(encoding="utf-8")):
            found.setdefault(key, set()).add(path.relative_to(SRC))
    return found


# ---------------------------------------------------------------- catalogues


def test_every_package_has_a_catalogue_per_language() -> None:
    files = list(i18n.catalogue_files())
    assert {"core", "pages", "orgs"} <= set(NAMESPACES)
    for package in NAMESPACES:
        langs = sorted(lang for pkg, lang, _ in files if pkg == package)
        assert langs == sorted(i18n.LANGUAGES), f"{package}/locales has {langs}"


def test_both_languages_have_the_same_keys() -> None:
    zh, en = (set(i18n.catalogues()[lang]) for lang in ("zh", "en"))
    assert sorted(zh - en) == [], "keys missing in en"
    assert sorted(en - zh) == [], "keys missing in zh"


def test_both_languages_use_the_same_placeholders() -> None:
    zh, en = i18n.catalogues()["zh"], i18n.catalogues()["en"]
    differ = {k: (zh[k], en[k]) for k in zh if placeholders(zh[k]) != placeholders(en[k])}
    assert differ == {}


def test_no_message_is_empty() -> None:
    empty = [
        (lang, key) for lang, cat in i18n.catalogues().items() for key, v in cat.items() if not v
    ]
    assert empty == []


def test_every_key_the_pages_use_exists() -> None:
    used = used_keys()
    assert len(used) > 40, "the scan found too few keys to be working"
    missing = {
        k: sorted(map(str, where)) for k, where in used.items() if k not in i18n.catalogues()["zh"]
    }
    assert missing == {}


def test_every_key_built_at_run_time_exists() -> None:
    zh = i18n.catalogues()["zh"]
    built = [f"core.role.{role.value}" for role in Role]
    built += [f"orgs.kind.{kind.value}" for kind in OrgKind]
    built += [f"pages.part.{p.key}.{field}" for p in PARTS for field in ("title", "summary")]
    assert [key for key in built if key not in zh] == []


def test_domain_templates_live_in_a_folder_named_after_the_domain() -> None:
    for directory in template_dirs():
        package = directory.parent.name
        if package == "pages":
            continue
        strays = [
            str(p.relative_to(directory))
            for p in directory.rglob("*")
            if p.is_file() and p.relative_to(directory).parts[0] != package
        ]
        assert strays == [], f"{directory} must keep its templates under {package}/"


def test_translate_fills_values_and_falls_back_to_the_key() -> None:
    assert i18n.translate("zh", "core.common.total", total=3) == "共 3 条"
    assert i18n.translate("en", "core.common.page_of", page=2, pages=5) == "Page 2 of 5"
    assert i18n.translate("en", "core.no_such_key") == "core.no_such_key"
    assert i18n.translate("fr", "core.common.search") == "搜索"


# ---------------------------------------------------------------- negotiation


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("fr-FR, en;q=0.5", "en"),
        ("en;q=0.2, zh-Hans;q=0.7", "zh"),
        ("zh;q=0, en;q=0.1", "en"),
        ("zh_TW", "zh"),
        ("en;q=abc, zh;q=0.5", "zh"),
        ("fr, de", None),
        ("*", None),
        ("", None),
        (None, None),
    ],
)
def test_accept_language(header: str | None, expected: str | None) -> None:
    assert i18n.from_accept_language(header) == expected


@pytest.mark.parametrize(
    ("cookie", "saved", "accept", "default", "expected"),
    [
        ("en", "zh", "zh-CN", "zh", "en"),  # an explicit choice wins
        (None, "en", "zh-CN", "zh", "en"),  # then the user's saved language
        ("xx", "en", "zh-CN", "zh", "en"),  # an unknown cookie counts for nothing
        (None, None, "en-GB", "zh", "en"),  # then the browser's
        (None, None, "fr", "zh", "zh"),  # then the installation's default
        (None, None, None, "en", "en"),
    ],
)
def test_negotiation_order(
    cookie: str | None, saved: str | None, accept: str | None, default: str, expected: str
) -> None:
    negotiated = i18n.negotiate(cookie=cookie, saved=saved, accept_language=accept, default=default)
    assert negotiated == expected


@pytest.fixture
def user(session_factory: sessionmaker[Session]) -> str:
    with session_factory() as s:
        make_user(s, Role.RESIDENT, username="lijun", display_name="李军")
        s.commit()
    return "lijun"


def sign_in(client: TestClient, username: str) -> None:
    r = client.post(
        "/login", data={"username": username, "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 303


def saved_language(session_factory: sessionmaker[Session], username: str) -> str | None:
    with session_factory() as s:
        return service.get_user(s, username=username).language


def test_chinese_by_default(client: TestClient) -> None:
    page = client.get("/login", headers=HTML)
    assert '<html lang="zh-CN">' in page.text
    assert "登录海河" in page.text


def test_the_browser_language_is_used(client: TestClient) -> None:
    page = client.get("/login", headers={**HTML, "accept-language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in page.text
    assert "Sign in to Haihe" in page.text


def test_the_chosen_language_beats_the_browser(client: TestClient) -> None:
    client.cookies.set(i18n.LANG_COOKIE, "zh")
    page = client.get("/login", headers={**HTML, "accept-language": "en"})
    assert "登录海河" in page.text


@pytest.fixture
def english_default_app(settings: Settings) -> Iterator[FastAPI]:
    application = create_app(settings.model_copy(update={"default_language": "en"}))
    yield application
    application.state.engine.dispose()


def test_the_installation_default_applies_last(english_default_app: FastAPI) -> None:
    with TestClient(english_default_app) as c:
        assert "Sign in to Haihe" in c.get("/login", headers=HTML).text
        assert "登录海河" in c.get("/login", headers={**HTML, "accept-language": "zh"}).text


def test_switching_sets_a_cookie_and_goes_back(client: TestClient) -> None:
    r = client.post("/lang/en", data={"next": "/login?next=/orgs"}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/login?next=/orgs")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("haihe_lang=en;")
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    assert "Sign in to Haihe" in client.get("/login", headers=HTML).text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/\\evil.example"])
def test_switching_never_goes_off_site(client: TestClient, target: str) -> None:
    r = client.post("/lang/en", data={"next": target}, follow_redirects=False)
    assert r.headers["location"] == "/"


def test_switching_to_an_unknown_language_is_a_404_page(client: TestClient) -> None:
    r = client.post("/lang/fr", headers=HTML, follow_redirects=False)
    assert r.status_code == 404
    assert "页面不存在" in r.text
    assert "set-cookie" not in r.headers


def test_switching_is_saved_for_a_signed_in_user(
    client: TestClient, app: FastAPI, user: str, session_factory: sessionmaker[Session]
) -> None:
    sign_in(client, user)
    assert "您好，李军" in client.get("/", headers=HTML).text
    client.post("/lang/en", data={"next": "/"})
    assert saved_language(session_factory, user) == "en"

    with TestClient(app) as other_browser:  # no language cookie: the saved language applies
        sign_in(other_browser, user)
        page = other_browser.get("/", headers={**HTML, "accept-language": "zh-CN"})
        assert "Hello, 李军" in page.text

    client.post("/lang/zh", data={"next": "/"})
    assert saved_language(session_factory, user) == "zh"
