"""Console sign-in and sign-out over HTTP: messages, cookie flags, redirects, open redirects."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session, sessionmaker

from factories import PASSWORD, ROOT, make_org, make_user
from haihe.core.auth import Role
from haihe.core.settings import Settings
from haihe.core.templating import local_path
from haihe.orgs import service
from haihe.orgs.auth import MAX_FAILED_LOGINS, SESSION_COOKIE
from haihe.orgs.schemas import UserUpdate

HTML = {"accept": "text/html"}


@pytest.fixture
def user(session_factory: sessionmaker[Session]) -> str:
    with session_factory() as s:
        org = make_org(s, code="SJJ", name_zh="天津市数据局", name_en="Tianjin Data Bureau")
        make_user(s, Role.ORG_ADMIN, org=org, username="wangfang", display_name="王芳")
        s.commit()
    return "wangfang"


def sign_in(
    client: TestClient, username: str, password: str = PASSWORD, next_path: str = "/", **kw: str
) -> Response:
    return client.post(
        "/login",
        data={"username": username, "password": password, "next": next_path},
        headers={**HTML, **kw},
        follow_redirects=False,
    )


def cookie_attributes(response: Response, name: str) -> dict[str, str]:
    """The attributes of the Set-Cookie header for ``name``, lower-cased keys."""
    for header in response.headers.get_list("set-cookie"):
        first, *attrs = [part.strip() for part in header.split(";")]
        key, _, value = first.partition("=")
        if key == name:
            out = {"": value}
            for attr in attrs:
                k, _, v = attr.partition("=")
                out[k.lower()] = v
            return out
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers.get_list('set-cookie')}")


def test_signed_out_visitor_is_sent_to_the_login_form(client: TestClient) -> None:
    r = client.get("/", headers=HTML, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/"

    page = client.get("/login?next=/", headers=HTML)
    assert page.status_code == 200
    assert "<h1>登录海河</h1>" in page.text
    assert 'name="next" value="/"' in page.text
    assert page.headers["content-language"] == "zh-CN"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_wrong_password_shows_the_error_and_keeps_only_the_username(
    client: TestClient, user: str
) -> None:
    r = sign_in(client, user, password="typed-Secret-42")
    assert r.status_code == 401
    assert "用户名或密码错误。" in r.text
    assert 'value="wangfang"' in r.text
    assert "typed-Secret-42" not in r.text
    assert SESSION_COOKIE not in r.headers.get("set-cookie", "")


def test_unknown_user_gets_the_same_message(client: TestClient, user: str) -> None:
    r = sign_in(client, "nobody")
    assert r.status_code == 401
    assert "用户名或密码错误。" in r.text


def test_the_error_is_in_the_chosen_language(client: TestClient, user: str) -> None:
    client.cookies.set("haihe_lang", "en")
    r = sign_in(client, user, password="wrong")
    assert "Wrong username or password." in r.text
    assert "用户名或密码错误" not in r.text


def test_the_typed_username_is_escaped(client: TestClient, user: str) -> None:
    r = sign_in(client, '"><script>alert(1)</script>', password="x")
    assert "<script>alert(1)</script>" not in r.text
    assert "&lt;script&gt;" in r.text


def test_failed_sign_ins_are_counted_and_lock_the_account(client: TestClient, user: str) -> None:
    for _ in range(MAX_FAILED_LOGINS):
        assert sign_in(client, user, password="wrong").status_code == 401
    r = sign_in(client, user)
    assert r.status_code == 401
    assert "账号已暂时锁定" in r.text


def test_a_disabled_account_is_told_so(
    client: TestClient, user: str, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as s:
        service.update_user(s, actor=ROOT, username=user, data=UserUpdate(active=False))
        s.commit()
    r = sign_in(client, user)
    assert r.status_code == 401
    assert "该账号已停用" in r.text


def test_sign_in_sets_a_session_cookie_and_goes_home(
    client: TestClient, user: str, settings: Settings
) -> None:
    r = sign_in(client, user)
    assert r.status_code == 303
    assert r.headers["location"] == "/"
    cookie = cookie_attributes(r, SESSION_COOKIE)
    assert cookie[""].startswith("hh_ss_")
    assert "httponly" in cookie
    assert cookie["samesite"].lower() == "lax"
    assert cookie["max-age"] == str(settings.session_ttl_seconds)
    assert cookie["path"] == "/"
    assert "secure" not in cookie

    home = client.get("/", headers=HTML)
    assert home.status_code == 200
    assert "您好，王芳" in home.text


def test_the_session_cookie_is_secure_over_https(app: FastAPI, user: str) -> None:
    with TestClient(app, base_url="https://testserver") as https:
        r = sign_in(https, user)
    assert r.status_code == 303
    assert "secure" in cookie_attributes(r, SESSION_COOKIE)


def test_sign_in_goes_on_to_a_local_next(client: TestClient, user: str) -> None:
    r = sign_in(client, user, next_path="/orgs?q=%E5%8C%BA&page=2")
    assert r.headers["location"] == "/orgs?q=%E5%8C%BA&page=2"


OFF_SITE = [
    "https://evil.example",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "https:/evil.example",
    "javascript:alert(1)",
    "evil.example",
    "",
]


@pytest.mark.parametrize("target", OFF_SITE)
def test_sign_in_never_redirects_off_site(client: TestClient, user: str, target: str) -> None:
    r = sign_in(client, user, next_path=target)
    assert r.status_code == 303
    assert r.headers["location"] == "/"


@pytest.mark.parametrize("target", OFF_SITE)
def test_local_path_refuses_other_sites(target: str) -> None:
    assert local_path(target) == "/"


def test_the_login_form_drops_an_off_site_next(client: TestClient) -> None:
    page = client.get("/login", params={"next": "//evil.example/x"}, headers=HTML)
    assert 'name="next" value="/"' in page.text
    assert "evil.example" not in page.text


def test_a_signed_in_visitor_skips_the_login_form(client: TestClient, user: str) -> None:
    sign_in(client, user)
    r = client.get("/login?next=/orgs", headers=HTML, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/orgs")
    r = client.get("/login?next=https://evil.example", headers=HTML, follow_redirects=False)
    assert r.headers["location"] == "/"


def test_sign_out_revokes_the_session(client: TestClient, user: str) -> None:
    token = cookie_attributes(sign_in(client, user), SESSION_COOKIE)[""]
    r = client.post("/logout", headers=HTML, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    cleared = cookie_attributes(r, SESSION_COOKIE)
    assert cleared["max-age"] == "0"
    assert "httponly" in cleared

    client.cookies.set(SESSION_COOKIE, token)  # a copy of the old cookie no longer works
    r = client.get("/", headers=HTML, follow_redirects=False)
    assert r.headers["location"] == "/login?next=/"


def test_signing_in_again_revokes_the_previous_session(client: TestClient, user: str) -> None:
    first = cookie_attributes(sign_in(client, user), SESSION_COOKIE)[""]
    second = cookie_attributes(sign_in(client, user), SESSION_COOKIE)[""]
    assert first != second
    client.cookies.set(SESSION_COOKIE, first)
    assert client.get("/", headers=HTML, follow_redirects=False).status_code == 303


def test_cross_site_sign_in_is_refused(client: TestClient, user: str) -> None:
    r = sign_in(client, user, origin="https://evil.example")
    assert r.status_code == 403
    assert "已拒绝" in r.text
    assert SESSION_COOKIE not in r.headers.get("set-cookie", "")


def test_cross_site_sign_out_is_refused(client: TestClient, user: str) -> None:
    sign_in(client, user)
    r = client.post(
        "/logout", headers={**HTML, "origin": "https://evil.example"}, follow_redirects=False
    )
    assert r.status_code == 403
    assert "没有权限" in r.text
    assert client.get("/", headers=HTML, follow_redirects=False).status_code == 200


@pytest.fixture
def same_origin_client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://haihe.example") as c:
        yield c


def test_same_origin_sign_in_is_accepted(same_origin_client: TestClient, user: str) -> None:
    r = sign_in(same_origin_client, user, origin="http://haihe.example")
    assert r.status_code == 303
