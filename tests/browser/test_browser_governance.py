"""Grid governance in a real browser: a grid worker reports with a photo on a phone, a street's
command centre works its queue and blows the whistle, the map and the charts draw."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from browser_support import Account, LiveServer
from playwright.sync_api import Page, expect

from factories import ROOT
from governance.governance_world import INSIDE, build, png
from haihe.core.settings import Settings
from haihe.governance import intake, workflow
from haihe.governance.models import EventSource
from haihe.governance.schemas import ActionIn, EventIn
from haihe.governance.transitions import Action

pytestmark = pytest.mark.browser

OpenPage = Callable[..., Page]


@pytest.fixture(scope="module")
def city(live_server: LiveServer) -> dict[str, int]:
    """The governance test city on the live server, with a few events to show."""
    build(live_server.sessions)
    settings = Settings(data_dir=Path("/nonexistent"))  # no photos are stored here
    ids = {}
    with live_server.sessions() as s:
        shown = [("ZDJY", "路口早市占道经营，影响通行"), ("HJWS", "小区门口垃圾满溢")]
        for n, (code, text) in enumerate([*shown, ("DLPS", "人行道砖破损")]):
            body = EventIn(
                category_code=code, description=text, lng=INSIDE[0] + 0.01 * n, lat=INSIDE[1]
            )
            event = intake.report_event(
                s, actor=ROOT, settings=settings, data=body, source=EventSource.HOTLINE_12345
            )
            ids[code] = event.id
        workflow.act(s, actor=ROOT, event_id=ids["ZDJY"], action=Action.ACCEPT, data=ActionIn())
        s.commit()
    return ids


def _sign_in(page: Page, username: str, path: str) -> None:
    account = Account(username=username, display_name=username)
    page.goto(path)
    page.get_by_label(re.compile("用户名|Username")).fill(account.username)
    page.get_by_label(re.compile("密码|Password")).fill(account.password)
    page.get_by_role("button", name=re.compile("^(登录|Sign in)$")).click()


def test_a_grid_worker_reports_an_event_with_a_photo_on_a_phone(
    open_page: OpenPage, city: dict[str, int], screenshots: Path, tmp_path: Path
) -> None:
    page = open_page(phone=True)
    _sign_in(page, "worker", "/governance")
    expect(page).to_have_url(re.compile(r"/governance/tasks$"))
    expect(page.get_by_role("heading", name="我的任务")).to_be_visible()
    page.screenshot(path=screenshots / "phone-zh-governance-tasks.png", full_page=True)
    page.get_by_test_id("report-link").click()
    expect(page.get_by_role("heading", name="上报事件")).to_be_visible()
    page.get_by_label("事件类别").select_option("HJWS")
    page.get_by_label("事件描述").fill("单元门口堆放装修垃圾")
    page.get_by_label("经度").fill(str(INSIDE[0]))
    page.get_by_label("纬度").fill(str(INSIDE[1]))
    photo = tmp_path / "scene.png"
    photo.write_bytes(png((64, 48)))
    file_input = page.get_by_label("现场照片")
    assert file_input.get_attribute("accept") == "image/*"
    assert file_input.get_attribute("capture") == "environment"
    file_input.set_input_files(photo)
    page.screenshot(path=screenshots / "phone-zh-governance-report.png", full_page=True)
    page.get_by_role("button", name="上报", exact=True).click()
    expect(page.get_by_test_id("notice")).to_contain_text("事件已上报")
    expect(page.get_by_test_id("photos").locator("img")).to_have_count(1)
    expect(page.get_by_test_id("history")).to_contain_text("上报")
    # nothing is wider than the phone
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    page.screenshot(path=screenshots / "phone-zh-governance-event.png", full_page=True)


def test_a_street_works_its_queue_and_blows_the_whistle(
    open_page: OpenPage, city: dict[str, int], screenshots: Path
) -> None:
    page = open_page(locale="en-GB")
    _sign_in(page, "street_op", "/governance")
    expect(page).to_have_url(re.compile(r"/governance/queue$"))
    queue = page.get_by_test_id("queue")
    expect(queue).to_contain_text("Street vending on the roadway")
    page.screenshot(path=screenshots / "desktop-en-governance-queue.png", full_page=True)
    queue.get_by_role("link", name="Street vending on the roadway").click()
    form = page.get_by_test_id("whistle-form")
    form.locator('input[name="departments"][value="CGW"]').check()
    form.locator('input[name="departments"][value="JT"]').check()
    form.get_by_label("Reason").fill("Joint enforcement with city management and traffic")
    form.get_by_role("button", name="Blow the whistle").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Whistle blown")
    expect(page.get_by_test_id("summons")).to_contain_text("CGW")
    page.screenshot(path=screenshots / "desktop-en-governance-whistle.png", full_page=True)


@pytest.mark.parametrize("phone", [False, True])
def test_the_map_and_the_charts_draw(
    open_page: OpenPage, city: dict[str, int], screenshots: Path, phone: bool
) -> None:
    page = open_page(phone=phone)
    _sign_in(page, "district_op", "/governance/map?level=cell")
    expect(page.get_by_role("heading", name="事件地图")).to_be_visible()
    expect(page.locator("#gv-map canvas")).to_have_count(1)
    size = "phone" if phone else "desktop"
    page.screenshot(path=screenshots / f"{size}-zh-governance-map.png", full_page=True)
    page.goto("/governance/statistics")
    expect(page.get_by_test_id("kpis")).to_contain_text("上报")
    expect(page.locator("[data-chart] canvas")).to_have_count(4)
    page.screenshot(path=screenshots / f"{size}-zh-governance-statistics.png", full_page=True)
