"""The console shell in a real browser: sign-in, home, language switch, sign-out, phone menu."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from browser_support import Account, LiveServer
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

OpenPage = Callable[..., Page]


def sign_in(page: Page, account: Account, *, next_path: str = "/") -> None:
    """Sign in through the form, from the page that asked for it."""
    page.goto(next_path)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label(re.compile("用户名|Username")).fill(account.username)
    page.get_by_label(re.compile("密码|Password")).fill(account.password)
    page.get_by_role("button", name=re.compile("^(登录|Sign in)$")).click()


def test_sign_in_wrong_password_then_right(
    open_page: OpenPage, account: Account, live_server: LiveServer, screenshots: Path
) -> None:
    page = open_page()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    expect(page.get_by_role("heading", name="登录海河")).to_be_visible()

    page.get_by_label("用户名").fill(account.username)
    page.get_by_label("密码").fill("not the password")
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("用户名或密码错误。")
    expect(page.get_by_label("用户名")).to_have_value(account.username)
    expect(page.get_by_label("密码")).to_have_value("")
    expect(page.get_by_label("密码")).to_be_focused()
    page.screenshot(path=screenshots / "desktop-zh-login-error.png", full_page=True)

    page.get_by_label("密码").fill(account.password)
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page).to_have_url(live_server.url + "/")
    expect(page).to_have_title("工作台 · 海河")
    expect(page.get_by_role("heading", name=f"您好，{account.display_name}")).to_be_visible()
    expect(page.get_by_test_id("who")).to_have_text(account.username)
    expect(page.get_by_test_id("org")).to_have_text(live_server.home_org)
    expect(page.get_by_test_id("roles").locator(".chip")).to_have_text(["单位管理员", "业务操作员"])
    members = page.locator('[data-part="orgs"]')
    expect(members.get_by_role("link")).to_be_visible()
    expect(page.locator('[data-part="supervision"]')).to_contain_text("即将上线")
    expect(page.locator('[data-part="supervision"]').get_by_role("link")).to_have_count(0)
    page.screenshot(path=screenshots / "desktop-zh-home.png", full_page=True)


def test_switch_to_english_is_remembered(
    open_page: OpenPage, account: Account, screenshots: Path
) -> None:
    page = open_page()
    sign_in(page, account)
    expect(page.get_by_role("button", name="退出登录")).to_be_visible()

    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name=f"Hello, {account.display_name}")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("navigation").get_by_role("link", name="Members")).to_be_visible()
    expect(page.get_by_test_id("org")).to_have_text("Tianjin Municipal Data Bureau")
    expect(page.get_by_test_id("roles").locator(".chip")).to_have_text(
        ["Organisation admin", "Operator"]
    )
    expect(page.locator('[data-part="supervision"]')).to_contain_text("Coming soon")
    page.screenshot(path=screenshots / "desktop-en-home.png", full_page=True)

    # A new browser (no language cookie) gets the language the user saved.
    other = open_page()
    sign_in(other, account)
    expect(other.get_by_role("button", name="Sign out")).to_be_visible()


def test_sign_out(open_page: OpenPage, account: Account, live_server: LiveServer) -> None:
    page = open_page()
    sign_in(page, account)
    page.get_by_role("button", name="退出登录").click()
    expect(page).to_have_url(live_server.url + "/login")
    expect(page.get_by_role("heading", name="登录海河")).to_be_visible()
    page.goto("/orgs")
    expect(page).to_have_url(re.compile(r"/login\?next=/orgs$"))


def test_members_search_refreshes_the_table(
    open_page: OpenPage, account: Account, live_server: LiveServer, screenshots: Path
) -> None:
    page = open_page()
    sign_in(page, account, next_path="/orgs")
    expect(page).to_have_url(live_server.url + "/orgs")
    expect(page.get_by_role("heading", name="成员单位")).to_be_visible()
    rows = page.get_by_test_id("org-table").locator("tbody tr")
    expect(rows).to_have_count(9)
    page.screenshot(path=screenshots / "desktop-zh-members.png", full_page=True)

    page.get_by_role("searchbox").fill("区")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("和平区")
    expect(page).to_have_url(re.compile(r"/orgs\?q=%E5%8C%BA"))
    expect(page.get_by_role("heading", name="成员单位")).to_have_count(1)

    page.screenshot(path=screenshots / "desktop-zh-members-search.png", full_page=True)

    page.get_by_role("searchbox").fill("no such organisation")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_text("没有符合条件的单位。")

    # Signed out in another tab: the next search takes the whole page to the login form.
    other_tab = page.context.new_page()
    other_tab.goto("/")
    other_tab.get_by_role("button", name="退出登录").click()
    expect(other_tab).to_have_url(live_server.url + "/login")
    page.get_by_role("searchbox").fill("天津")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Forgs%3Fq%3Dno"))
    expect(page.get_by_role("heading", name="登录海河")).to_be_visible()


def test_phone_menu_collapses_and_opens(
    open_page: OpenPage, account: Account, live_server: LiveServer, screenshots: Path
) -> None:
    page = open_page(phone=True)
    sign_in(page, account)
    expect(page.get_by_role("heading", name=f"您好，{account.display_name}")).to_be_visible()
    toggle = page.get_by_role("button", name="菜单")
    sign_out = page.get_by_role("button", name="退出登录")
    expect(toggle).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(sign_out).to_be_hidden()
    expect(page.locator("nav.nav")).to_be_hidden()
    page.screenshot(path=screenshots / "phone-zh-home.png", full_page=True)

    toggle.tap()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.locator("nav.nav")).to_be_visible()
    expect(sign_out).to_be_visible()
    page.screenshot(path=screenshots / "phone-zh-menu-open.png")

    page.locator("nav.nav").get_by_role("link", name="成员单位").tap()
    expect(page).to_have_url(live_server.url + "/orgs")
    expect(page.locator("nav.nav")).to_be_hidden()
    expect(page.get_by_role("heading", name="成员单位")).to_be_visible()
    page.screenshot(path=screenshots / "phone-zh-members.png", full_page=True)

    page.get_by_role("button", name="菜单").tap()
    page.get_by_role("button", name="English").tap()
    expect(page.get_by_role("heading", name="Members")).to_be_visible()
    expect(page.get_by_role("button", name="Menu")).to_be_visible()
    page.get_by_role("button", name="Menu").tap()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.screenshot(path=screenshots / "phone-en-menu-open.png")
    page.goto("/")
    page.screenshot(path=screenshots / "phone-en-home.png", full_page=True)


def test_login_and_missing_page_on_phone(open_page: OpenPage, screenshots: Path) -> None:
    page = open_page(phone=True)
    page.goto("/login")
    expect(page.get_by_role("heading", name="登录海河")).to_be_visible()
    expect(page.get_by_role("button", name="菜单")).to_have_count(0)
    page.screenshot(path=screenshots / "phone-zh-login.png", full_page=True)
    page.get_by_role("button", name="English").tap()
    expect(page.get_by_role("heading", name="Sign in to Haihe")).to_be_visible()
    page.screenshot(path=screenshots / "phone-en-login.png", full_page=True)

    response = page.goto("/no-such-page")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.get_by_role("link", name="Back to home")).to_be_visible()
    page.screenshot(path=screenshots / "phone-en-404.png", full_page=True)
