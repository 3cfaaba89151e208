"""The audit pages in a real browser: a resident's 'my data' on a phone, the statistics chart."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from browser_support import Account, LiveServer
from playwright.sync_api import Page, expect

from factories import ROOT, make_user
from haihe.audit import service as audit
from haihe.core.auth import Principal, Role
from haihe.core.identity import compose_id
from haihe.core.masking import pseudonymise
from haihe.orgs import service as orgs
from haihe.orgs.models import Organisation

pytestmark = pytest.mark.browser

OpenPage = Callable[..., Page]
SECRET = b"browser-test-secret-key"  # the live server's secret key (tests/browser/conftest.py)
_n = itertools.count(1)


def _sign_in(page: Page, account: Account, path: str) -> None:
    page.goto(path)
    page.get_by_label(re.compile("用户名|Username")).fill(account.username)
    page.get_by_label(re.compile("密码|Password")).fill(account.password)
    page.get_by_role("button", name=re.compile("^(登录|Sign in)$")).click()


@pytest.fixture
def resident(live_server: LiveServer) -> Account:
    """A resident linked to an ID number that the civil-affairs bureau's client used twice."""
    n = next(_n)
    id_number = compose_id(int(f"12010119500101{20 + n:03d}"))
    with live_server.sessions() as session:
        user = make_user(session, Role.RESIDENT, username=f"jumin{n}", display_name="居民")
        orgs.link_identity(
            session, actor=ROOT, username=user.username, id_number=id_number, key=SECRET
        )
        mz = session.query(Organisation).filter_by(code="TJ-MZJ").one()
        caller = Principal(kind="client", id=1, name="mz-system", org_id=mz.id, org_code=mz.code)
        for purpose in ("城乡低保资格复核", "高龄津贴发放核对"):
            audit.record(
                session,
                actor=caller,
                action="exchange.query",
                resource_code="103-000001",
                provider_code="TJ-GAJ",
                items=["id_number", "name"],
                purpose=purpose,
                mode="query",
                rows=1,
                subjects=[pseudonymise(SECRET, id_number)],
            )
        session.commit()
        return Account(username=user.username, display_name=user.display_name)


@pytest.fixture
def auditor(live_server: LiveServer) -> Account:
    n = next(_n)
    with live_server.sessions() as session:
        user = make_user(session, Role.AUDITOR, username=f"shenji{n}", display_name="审计员")
        session.commit()
        return Account(username=user.username, display_name=user.display_name)


def test_a_resident_sees_who_used_their_data_on_a_phone(
    open_page: OpenPage, resident: Account, screenshots: Path
) -> None:
    page = open_page(phone=True)
    _sign_in(page, resident, "/audit/me")
    expect(page).to_have_url(re.compile(r"/audit/me$"))
    table = page.get_by_test_id("me-table")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table).to_contain_text("天津市民政局")
    expect(table).to_contain_text("城乡低保资格复核")
    # stacked for the phone: no cell is squeezed narrower than a department's name
    width = table.locator("tbody tr").first.locator(".col-name").bounding_box()
    assert width is not None
    assert width["width"] > 150
    page.screenshot(path=screenshots / "phone-zh-audit-me.png", full_page=True)


def test_the_statistics_page_draws_its_chart(
    open_page: OpenPage, auditor: Account, resident: Account, screenshots: Path
) -> None:
    page = open_page(locale="en-GB")
    _sign_in(page, auditor, "/audit/statistics?group_by=org")
    expect(page.get_by_role("heading", name="Sharing statistics")).to_be_visible()
    # ECharts draws into a canvas inside the holder; the page fails on any script error
    expect(page.locator("#audit-chart canvas")).to_have_count(1)
    page.screenshot(path=screenshots / "desktop-en-audit-statistics.png", full_page=True)
