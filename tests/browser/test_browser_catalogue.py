"""The catalogue in a real browser: search, facets and chips, an entry's page, the phone layout."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from browser_support import Account, LiveServer
from playwright.sync_api import Page, expect

from factories import ROOT, make_resource
from haihe.catalogue import service
from haihe.catalogue.models import Resource
from haihe.core.identity import compose_id
from haihe.orgs.models import Organisation

pytestmark = pytest.mark.browser

OpenPage = Callable[..., Page]

# provider | name_zh | name_en | topic | base library | sharing type | open type | published
ENTRIES = [
    "TJ-MZJ|城乡低保对象名单|Minimum living allowance recipients|03||unconditional|conditional|yes",
    "TJ-MZJ|养老机构名录|Elderly care homes|14||unconditional|unconditional|yes",
    "TJ-MZJ|婚姻登记信息|Marriage registrations|03|population|conditional|not_open|yes",
    "TJ-RSJ|养老保险参保信息|Pension insurance enrolment|01|population|conditional|not_open|yes",
    "TJ-RSJ|就业登记信息|Employment registrations|07||unconditional|not_open|yes",
    "TJ-GAJ|户籍人口基本信息|Registered residents|12|population|conditional|not_open|yes",
    "TJ-GJJ|住房公积金缴存信息|Housing fund contributions|05||conditional|not_open|yes",
    "TJ-SJJ|全市死亡人员信息|Deaths in the city|13|population|conditional|not_open|no",
]


@pytest.fixture(scope="module")
def catalogue(live_server: LiveServer) -> dict[str, str]:
    """The seeded entries' codes by Chinese name (seeded once per server)."""
    with live_server.sessions() as session:
        codes = {r.name_zh: r.code for r in session.query(Resource)}
        if codes:
            return codes
        for line in ENTRIES:
            provider, zh, en, topic, library, sharing, open_type, published = line.split("|")
            org = session.query(Organisation).filter_by(code=provider).one()
            conditional = sharing == "conditional"
            resource = make_resource(
                session,
                org,
                name_zh=zh,
                name_en=en,
                summary_zh=f"{org.name_zh}提供的{zh}。",
                summary_en=f"{en}, from the {org.name_en}.",
                topic=topic,
                base_library=library or None,
                sharing_type=sharing,
                sharing_conditions="用于社会保障待遇核查" if conditional else None,
                legal_basis="《社会保险法》第十六条" if conditional else None,
                open_type=open_type,
                open_conditions="仅开放统计数据" if open_type == "conditional" else None,
            )
            if published == "yes":
                service.publish(session, actor=ROOT, code=resource.code)
            codes[zh] = resource.code
        session.commit()
        return codes


def sign_in(page: Page, account: Account, path: str) -> None:
    page.goto(path)
    page.get_by_label(re.compile("用户名|Username")).fill(account.username)
    page.get_by_label(re.compile("密码|Password")).fill(account.password)
    page.get_by_role("button", name=re.compile("^(登录|Sign in)$")).click()


def results(page: Page) -> list[str]:
    """The names of the entries listed, in order."""
    titles = page.get_by_test_id("results").locator(".cat-item-title")
    return [re.split(r"\s*\n\s*", t.strip())[0] for t in titles.all_inner_texts()]


def test_search_facet_and_chip(
    open_page: OpenPage, account: Account, catalogue: dict[str, str], screenshots: Path
) -> None:
    page = open_page()
    sign_in(page, account, "/catalogue")
    expect(page).to_have_title("资源目录 · 海河")
    expect(page.get_by_test_id("results").locator(".cat-item")).to_have_count(8)
    page.screenshot(path=screenshots / "desktop-zh-catalogue.png", full_page=True)

    page.get_by_role("searchbox").fill("养老")
    expect(page.get_by_test_id("results").locator(".cat-item")).to_have_count(2)
    expect(page).to_have_url(re.compile(r"/catalogue\?q=%E5%85%BB%E8%80%81$"))
    assert sorted(results(page)) == ["养老保险参保信息", "养老机构名录"]

    facets = page.get_by_test_id("facets")
    provider = facets.locator('[data-facet="provider"]')
    expect(provider).to_contain_text("天津市民政局1")
    provider.get_by_role("link", name=re.compile("天津市民政局")).click()
    expect(page.get_by_test_id("results").locator(".cat-item")).to_have_count(1)
    assert results(page) == ["养老机构名录"]
    expect(page).to_have_url(re.compile(r"provider=TJ-MZJ"))
    chip = page.get_by_test_id("chips").get_by_role("link", name=re.compile("天津市民政局"))
    expect(chip).to_be_visible()
    page.screenshot(path=screenshots / "desktop-zh-catalogue-filtered.png", full_page=True)

    page.go_back()  # the URL was kept in step: back is the search before the facet
    expect(page).to_have_url(re.compile(r"/catalogue\?q=%E5%85%BB%E8%80%81$"))
    expect(page.get_by_test_id("results").locator(".cat-item")).to_have_count(2)
    page.go_forward()
    expect(page.get_by_test_id("results").locator(".cat-item")).to_have_count(1)

    page.get_by_test_id("chips").get_by_role("link", name=re.compile("天津市民政局")).click()
    expect(page.get_by_test_id("chips")).to_have_count(0)
    expect(page.get_by_test_id("results").locator(".cat-item")).to_have_count(2)
    expect(page.get_by_role("searchbox")).to_have_value("养老")

    page.get_by_role("searchbox").fill("火星")
    expect(page.get_by_test_id("no-results")).to_contain_text("没有符合条件的资源。")


def test_open_an_entry_in_english(
    open_page: OpenPage, account: Account, catalogue: dict[str, str], screenshots: Path
) -> None:
    page = open_page(locale="en-GB")
    sign_in(page, account, "/catalogue")
    expect(page.get_by_test_id("facets")).to_contain_text("Public Security Bureau")
    page.screenshot(path=screenshots / "desktop-en-catalogue.png", full_page=True)
    page.get_by_role("link", name=re.compile("Registered residents")).click()
    expect(page).to_have_url(re.compile(rf"/catalogue/{catalogue['户籍人口基本信息']}$"))
    expect(page.get_by_test_id("resource-name")).to_contain_text("Registered residents")
    expect(page.get_by_test_id("facts")).to_contain_text("Public Security Bureau")
    items = page.get_by_test_id("items")
    expect(items.get_by_role("row").filter(has_text="id_number")).to_contain_text("L3 sensitive")
    expect(page.get_by_test_id("actions")).to_have_count(0)  # not the provider
    page.screenshot(path=screenshots / "desktop-en-catalogue-entry.png", full_page=True)


def test_phone_filters_are_behind_a_button(
    open_page: OpenPage, account: Account, catalogue: dict[str, str], screenshots: Path
) -> None:
    page = open_page(phone=True)
    sign_in(page, account, "/catalogue")
    facets = page.get_by_test_id("facets")
    expect(facets).to_be_hidden()
    expect(page.get_by_test_id("results").locator(".cat-item")).to_have_count(8)
    page.screenshot(path=screenshots / "phone-zh-catalogue.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    page.get_by_text("筛选", exact=True).click()
    expect(facets).to_be_visible()
    page.screenshot(path=screenshots / "phone-zh-catalogue-filters.png", full_page=True)
    facets.locator('[data-facet="topic"]').get_by_role("link", name=re.compile("民政服务")).click()
    expect(page.get_by_test_id("results").locator(".cat-item")).to_have_count(2)
    expect(page.get_by_text("筛选 (1)")).to_be_visible()

    page.get_by_role("link", name=re.compile("婚姻登记信息")).click()
    expect(page.get_by_test_id("resource-name")).to_contain_text("婚姻登记信息")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=screenshots / "phone-zh-catalogue-entry.png", full_page=True)


def test_load_a_file_then_see_masked_rows(
    open_page: OpenPage,
    account: Account,
    catalogue: dict[str, str],
    screenshots: Path,
    tmp_path: Path,
) -> None:
    code = catalogue["全市死亡人员信息"]
    csv = tmp_path / "deaths.csv"
    csv.write_text(
        "certificate_no,id_number,name,death_date,age\n"
        f"D001,{compose_id(12010119400101001)},张三丰,2024-03-01,84\n"
        f"D002,{compose_id(12010119420202002)},李四,2024-03-02,82\n"
        "D003,12010119420202,王五,2024-03-03,80\n",
        encoding="utf-8",
    )
    page = open_page()
    sign_in(page, account, f"/catalogue/{code}")
    expect(page.get_by_test_id("badges")).to_contain_text("草稿")
    page.get_by_role("link", name="归集数据").click()
    expect(page.get_by_role("heading", name="归集数据", exact=True)).to_be_visible()
    page.get_by_label("数据文件", exact=True).set_input_files(csv)
    page.get_by_label("字符编码").select_option("utf-8")
    page.get_by_role("button", name="开始归集").click()

    result = page.get_by_test_id("load-result")
    expect(result).to_contain_text("归集完成，已生成版本 1。")
    expect(result.locator("dd")).to_have_text(["3", "2", "1"])
    expect(result.get_by_role("link", name="下载被拒记录")).to_be_visible()
    page.screenshot(path=screenshots / "desktop-zh-catalogue-loaded.png", full_page=True)

    result.get_by_role("link", name="返回资源页").click()
    sample = page.get_by_test_id("sample")
    expect(sample.locator("tbody tr")).to_have_count(2)
    expect(sample.locator("tbody tr").first).to_have_text(
        re.compile(r"D001\s+\*\*\*\s+张\*\*\s+2024-03-01\s+84")
    )
    expect(page.get_by_test_id("masking-note")).to_contain_text("L3、L4 完全隐藏")
    expect(page.get_by_test_id("versions")).to_contain_text("当前版本")
    expect(page.get_by_test_id("loads")).to_contain_text("成功")
    page.screenshot(path=screenshots / "desktop-zh-catalogue-entry.png", full_page=True)


def test_phone_entry_in_english(
    open_page: OpenPage, account: Account, catalogue: dict[str, str], screenshots: Path
) -> None:
    page = open_page(phone=True, locale="en-GB")
    sign_in(page, account, f"/catalogue/{catalogue['全市死亡人员信息']}")
    expect(page.get_by_test_id("resource-name")).to_contain_text("Deaths in the city")
    expect(page.get_by_test_id("actions").get_by_role("link")).to_have_text(["Edit", "Load data"])
    items = page.get_by_test_id("items")
    expect(items.locator("thead")).to_be_hidden()  # one card per item on a phone
    expect(items.get_by_role("row").filter(has_text="id_number")).to_contain_text("L3 sensitive")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=screenshots / "phone-en-catalogue-entry.png", full_page=True)


def test_edit_an_entry(
    open_page: OpenPage, account: Account, catalogue: dict[str, str], screenshots: Path
) -> None:
    page = open_page()
    sign_in(page, account, f"/catalogue/{catalogue['全市死亡人员信息']}")
    page.get_by_test_id("actions").get_by_role("link", name="编辑").click()
    expect(page.get_by_role("heading", name="编辑资源")).to_be_visible()
    page.get_by_label("资源管理员", exact=True).fill("李明")
    page.get_by_label("标签").fill("死亡、殡葬")
    page.screenshot(path=screenshots / "desktop-zh-catalogue-edit.png", full_page=True)
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_test_id("notice")).to_have_text("修改已保存。")
    expect(page.get_by_test_id("facts")).to_contain_text("李明")
    expect(page.get_by_test_id("facts").locator(".chip")).to_have_text(["死亡", "殡葬"])
    expect(page.get_by_test_id("history").get_by_role("row").nth(1)).to_contain_text(
        "资源管理员、标签"
    )
