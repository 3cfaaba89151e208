"""The public portal in a real browser: home, search with facets, a dataset's page with its
preview and chart, and applying for a 有条件开放 dataset — desktop and phone, Chinese and English,
without signing in."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from browser_support import LiveServer
from playwright.sync_api import Page, expect

from factories import ROOT
from haihe.core.settings import Settings
from haihe.orgs.models import Organisation
from haihe.portal import service
from haihe.portal.models import Dataset
from portal.portal_world import PEOPLE, dataset_in, loaded_resource

pytestmark = pytest.mark.browser

OpenPage = Callable[..., Page]


@pytest.fixture(scope="module")
def portal(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Three datasets of the civil-affairs bureau published on the live server (once)."""
    with live_server.sessions() as session:
        found = {d.name: d.name for d in session.query(Dataset)}
        if found:
            return found
        bind = session.get_bind()
        db_path = Path(str(bind.url.database))
        # the live server keeps its data beside its database (DATA_DIR/haihe.db)
        settings = Settings(data_dir=db_path.parent, secret_key="browser-test-secret-key")
        mz = session.query(Organisation).filter_by(code="TJ-MZJ").one()
        tmp = tmp_path_factory.mktemp("portal-browser")
        open_code = loaded_resource(session, settings, mz, tmp)
        conditional = loaded_resource(
            session, settings, mz, tmp, open_type="conditional",
            open_conditions="仅用于养老服务研究，不得再识别个人。",
        )  # fmt: skip
        specs = [
            (open_code, {"name": "care-subsidies", "title_zh": "居家养老补贴发放记录",
                         "title_en": "Home-care subsidy payments"}),
            (open_code, {
                "name": "care-subsidies-by-district", "title_zh": "居家养老补贴按区统计",
                "title_en": "Home-care subsidies by district", "tags": ["养老", "统计"],
                "view": {"aggregate": {"group_by": ["district"], "measures": [
                    {"name": "people", "fn": "count"},
                    {"name": "total", "fn": "sum", "item": "amount"}]}},
            }),
            (conditional, {"name": "care-subsidies-detail", "title_zh": "居家养老补贴明细",
                           "title_en": "Home-care subsidy details", "topic": "health"}),
        ]  # fmt: skip
        names = {}
        for code, extra in specs:
            ds = service.publish(
                session, actor=ROOT, settings=settings, data=dataset_in(code, **extra)
            )
            names[ds.name] = ds.name
        session.commit()
        return names


def _no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size
    assert viewport is not None
    assert width <= viewport["width"] + 1, f"the page scrolls sideways: {width}px"


def test_a_visitor_finds_and_reads_a_dataset_on_the_desktop(
    open_page: OpenPage, portal: dict[str, str], screenshots: Path
) -> None:
    page = open_page()
    page.goto("/portal")
    expect(page.get_by_role("heading", name="公共数据开放平台")).to_be_visible()
    expect(page.get_by_test_id("topics").locator("li")).to_have_count(21)
    expect(page.get_by_test_id("newest").get_by_test_id("dataset-item")).to_have_count(3)
    page.screenshot(path=screenshots / "desktop-zh-portal-home.png", full_page=True)

    page.get_by_test_id("topics").get_by_role("link", name=re.compile("社会救助")).click()
    expect(page).to_have_url(re.compile(r"/portal/search\?groups=social-assistance$"))
    expect(page.get_by_test_id("found")).to_have_text("共 2 个数据集")
    page.get_by_test_id("facets").locator('[data-facet="tags"]').get_by_role(
        "link", name=re.compile("统计")
    ).click()
    expect(page.get_by_test_id("found")).to_have_text("共 1 个数据集")
    expect(page.get_by_test_id("chips").locator("li")).to_have_count(2)
    page.screenshot(path=screenshots / "desktop-zh-portal-search.png", full_page=True)

    page.get_by_role("link", name=re.compile("居家养老补贴按区统计")).first.click()
    expect(page.get_by_test_id("title")).to_contain_text("居家养老补贴按区统计")
    expect(page.locator("#portal-chart canvas")).to_have_count(1)
    expect(page.get_by_test_id("preview").locator("tbody tr")).to_have_count(4)
    expect(page.get_by_test_id("downloads").get_by_role("link")).to_have_count(4)
    expect(page.get_by_test_id("usage").locator("dd").first).to_have_text("1")
    page.screenshot(path=screenshots / "desktop-zh-portal-dataset.png", full_page=True)


def test_a_phone_in_english_filters_and_previews(
    open_page: OpenPage, portal: dict[str, str], screenshots: Path
) -> None:
    page = open_page(phone=True, locale="en-GB")
    page.goto("/portal")
    expect(page.get_by_role("heading", name="Open Data Portal")).to_be_visible()
    _no_sideways_scroll(page)
    page.screenshot(path=screenshots / "phone-en-portal-home.png", full_page=True)

    page.get_by_label("Search datasets").fill("home-care")
    page.get_by_label("Search datasets").press("Enter")
    expect(page.get_by_test_id("found")).to_have_text("Datasets found: 3")
    facets = page.get_by_test_id("facets")
    expect(facets).to_be_hidden()  # folded away on a phone until asked for
    page.get_by_text(re.compile("^Filters")).click()
    expect(facets).to_be_visible()
    facets.locator('[data-facet="open_type"]').get_by_role(
        "link", name=re.compile("on conditions")
    ).click()
    expect(page.get_by_test_id("found")).to_have_text("Datasets found: 1")
    _no_sideways_scroll(page)
    page.screenshot(path=screenshots / "phone-en-portal-search.png", full_page=True)

    page.goto("/portal/dataset/care-subsidies")
    expect(page.get_by_test_id("title")).to_contain_text("Home-care subsidy payments")
    expect(page.locator("#portal-chart canvas")).to_have_count(1)
    expect(page.get_by_test_id("preview").locator("tbody tr")).to_have_count(10)
    _no_sideways_scroll(page)
    page.screenshot(path=screenshots / "phone-en-portal-dataset.png", full_page=True)
    assert PEOPLE > 10


def test_a_conditional_dataset_asks_a_visitor_to_sign_in_and_apply(
    open_page: OpenPage, portal: dict[str, str], screenshots: Path
) -> None:
    page = open_page(phone=True)
    page.goto("/portal/dataset/care-subsidies-detail")
    apply = page.get_by_test_id("apply")
    expect(apply).to_contain_text("仅用于养老服务研究")
    expect(page.get_by_test_id("preview")).to_have_count(0)
    expect(page.get_by_test_id("downloads")).to_contain_text("申请通过后")
    _no_sideways_scroll(page)
    page.screenshot(path=screenshots / "phone-zh-portal-conditional.png", full_page=True)
    apply.get_by_role("link", name="登录后申请").click()
    expect(page).to_have_url(re.compile(r"/login\?next=/portal/dataset/care-subsidies-detail"))
