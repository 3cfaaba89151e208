"""The catalogue's console pages over HTTP: the list, an entry, editing, publishing, loading."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session, sessionmaker

from factories import PASSWORD, ROOT, make_org, make_resource, make_user
from haihe.catalogue import pages, service
from haihe.catalogue.models import (
    LoadStatus,
    OpenType,
    ResourceStatus,
    Sensitivity,
    SharingMode,
    SharingType,
    UpdateCycle,
)
from haihe.catalogue.schemas import FORMATS, ResourceOut
from haihe.catalogue.search import FACETS
from haihe.core import i18n
from haihe.core.auth import Role
from haihe.core.identity import compose_id
from haihe.orgs.models import OrgKind

HTML = {"accept": "text/html"}
HTMX = {**HTML, "hx-request": "true"}


def text_of(html: str) -> str:
    """The visible text of a page, tags dropped and spaces squeezed."""
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def part(html: str, testid: str) -> str:
    """The visible text of the element marked ``data-testid=testid``."""
    start = re.search(rf'<([a-z0-9]+)[^>]*data-testid="{testid}"', html)
    assert start is not None, f"no {testid} on the page"
    tag, depth = start.group(1), 0
    for found in re.finditer(rf"<(/?){tag}[\s>]", html[start.start() :]):
        depth += -1 if found.group(1) else 1
        if depth == 0:
            return text_of(html[start.start() : start.start() + found.end()])
    raise AssertionError(f"{testid} is not closed")


class Catalogue:
    """Codes of the seeded entries."""

    death = ""
    subsidy = ""
    homes = ""
    births = ""


@pytest.fixture
def seeded(session_factory: sessionmaker[Session]) -> Catalogue:
    """Three departments, their people, two published entries and two drafts."""
    codes = Catalogue()
    with session_factory() as s:
        city = make_org(s, code="TJ", name_zh="天津市", name_en="Tianjin", kind=OrgKind.CITY)
        health = make_org(
            s,
            code="TJ-WJW",
            name_zh="天津市卫生健康委员会",
            name_en="Health Commission",
            parent_code=city.code,
        )
        civil = make_org(
            s,
            code="TJ-MZJ",
            name_zh="天津市民政局",
            name_en="Civil Affairs Bureau",
            parent_code=city.code,
        )
        make_user(s, Role.PLATFORM_ADMIN, username="admin")
        make_user(s, Role.ORG_ADMIN, org=health, username="wjw_admin")
        make_user(s, Role.OPERATOR, org=health, username="wjw_op")
        make_user(s, Role.ORG_ADMIN, org=civil, username="mzj_admin")
        make_user(s, Role.OPERATOR, org=civil, username="mzj_op")
        death = make_resource(
            s,
            health,
            name_zh="死亡医学证明",
            name_en="Medical certificates of death",
            tags=["死亡", "殡葬"],
        )
        subsidy = make_resource(
            s,
            civil,
            name_zh="城乡低保对象名单",
            name_en="Minimum living allowance recipients",
            summary_zh="享受最低生活保障的家庭和人员。",
            summary_en="Households on the allowance.",
            base_library=None,
            topic="03",
            sharing_type="unconditional",
            sharing_conditions=None,
            legal_basis=None,
            open_type="conditional",
            open_conditions="仅开放统计数据",
        )
        homes = make_resource(
            s,
            civil,
            name_zh="养老机构名录",
            name_en="Elderly care homes",
            base_library=None,
            topic="14",
            sharing_type="unconditional",
            sharing_conditions=None,
            legal_basis=None,
        )
        births = make_resource(s, health, name_zh="出生医学证明", name_en="Birth certificates")
        codes.death, codes.subsidy, codes.homes, codes.births = (
            death.code,
            subsidy.code,
            homes.code,
            births.code,
        )
        service.publish(s, actor=ROOT, code=death.code)
        service.publish(s, actor=ROOT, code=subsidy.code)
        s.commit()
    return codes


def sign_in(client: TestClient, username: str) -> TestClient:
    client.cookies.clear()
    r = client.post(
        "/login", data={"username": username, "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 303
    return client


# ---------------------------------------------------------------- the list


def test_the_list_needs_a_signed_in_user(client: TestClient) -> None:
    r = client.get("/catalogue", headers=HTML, follow_redirects=False)
    assert r.headers["location"] == "/login?next=/catalogue"


def test_the_list_shows_published_entries_and_facet_counts(
    client: TestClient, seeded: Catalogue
) -> None:
    page = sign_in(client, "mzj_op").get("/catalogue", headers=HTML).text
    results = part(page, "results")
    assert "死亡医学证明 Medical certificates of death" in results
    assert seeded.death in results
    assert "天津市卫生健康委员会" in results
    assert "有条件共享 不予开放 已发布" in results
    assert "城乡低保对象名单" in results
    assert "养老机构名录" in results  # the caller's own draft
    assert "出生医学证明" not in page  # another organisation's draft
    facets = part(page, "facets")
    assert "提供单位 天津市民政局 2 天津市卫生健康委员会 1" in facets
    for topic in ("医疗卫生 1", "民政服务 1", "养老服务 1"):
        assert topic in facets
    assert "状态 已发布 2 草稿 1" in facets
    assert "共 3 条" in text_of(page)


def test_search_narrows_in_chinese_and_english(client: TestClient, seeded: Catalogue) -> None:
    sign_in(client, "admin")
    zh = part(client.get("/catalogue?q=殡葬", headers=HTML).text, "results")  # a tag
    assert "死亡医学证明" in zh
    assert "低保" not in zh
    en = part(client.get("/catalogue?q=allowance", headers=HTML).text, "results")
    assert "城乡低保对象名单" in en
    assert "死亡" not in en


def test_a_facet_filters_and_shows_as_a_removable_chip(
    client: TestClient, seeded: Catalogue
) -> None:
    sign_in(client, "admin")
    page = client.get("/catalogue?provider=TJ-MZJ", headers=HTML).text
    results = part(page, "results")
    assert "城乡低保对象名单" in results
    assert "养老机构名录" in results
    assert "死亡医学证明" not in results
    chips = re.search(r'data-testid="chips".*?</ul>', page, re.S)
    assert chips is not None
    assert "提供单位：天津市民政局" in text_of(chips.group(0))
    assert 'href="/catalogue"' in chips.group(0)  # removing the chip goes back to everything
    facet = re.search(r'data-facet="provider".*?</section>', page, re.S)
    assert facet is not None
    assert re.search(r'aria-current="true">\s*<span class="cat-facet-label">天津市民政局', facet[0])


def test_filters_and_search_combine_and_keep_each_other_in_links(
    client: TestClient, seeded: Catalogue
) -> None:
    sign_in(client, "admin")
    page = client.get("/catalogue?q=天津&status=published", headers=HTML).text
    assert "共 2 条" in text_of(page)
    assert 'name="status" value="published" form="catalogue-search"' in page
    assert 'href="/catalogue?q=%E5%A4%A9%E6%B4%A5"' in page  # the chip keeps the words


def test_htmx_gets_only_the_results_region(client: TestClient, seeded: Catalogue) -> None:
    sign_in(client, "admin")
    r = client.get("/catalogue?topic=03", headers=HTMX)
    assert "<html" not in r.text
    assert "城乡低保对象名单" in part(r.text, "results")
    assert r.headers["vary"].endswith("HX-Request")


def test_no_results_says_what_to_try(client: TestClient, seeded: Catalogue) -> None:
    sign_in(client, "admin")
    none = part(client.get("/catalogue?q=火星", headers=HTML).text, "no-results")
    assert "没有符合条件的资源。" in none
    assert "更少或更短的关键词" in none
    client.cookies.set(i18n.LANG_COOKIE, "en")
    english = client.get("/catalogue?status=retired", headers=HTML).text
    assert "No resources match." in part(english, "no-results")


def test_an_empty_catalogue_says_how_entries_arrive(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as s:
        make_user(s, Role.OPERATOR, org=make_org(s, code="X"), username="newcomer")
        s.commit()
    page = sign_in(client, "newcomer").get("/catalogue", headers=HTML).text
    empty = part(page, "no-results")
    assert "目录中还没有资源。" in empty
    assert "haihe catalogue" in empty
    assert 'data-testid="results"' not in page


def test_the_list_in_english(client: TestClient, seeded: Catalogue) -> None:
    sign_in(client, "admin")
    client.cookies.set(i18n.LANG_COOKIE, "en")
    page = client.get("/catalogue", headers=HTML).text
    results = part(page, "results")
    assert "Medical certificates of death 死亡医学证明" in results
    assert "Health Commission" in results
    assert "Shared on conditions Not open Published" in results
    facets = part(page, "facets")
    assert "Base library Population 2 Topic" in facets
    assert "Topic Health care 2 Civil affairs 1 Elderly care 1" in facets


def test_the_list_pages(
    client: TestClient, session_factory: sessionmaker[Session], seeded: Catalogue
) -> None:
    with session_factory() as s:
        org = make_org(s, code="MANY")
        for _ in range(21):
            make_resource(s, org)
        s.commit()
    sign_in(client, "admin")
    first = text_of(client.get("/catalogue?provider=MANY", headers=HTML).text)
    assert "共 21 条 第 1 / 2 页" in first
    second = client.get("/catalogue?provider=MANY&page=2", headers=HTML).text
    assert "第 2 / 2 页" in text_of(second)
    assert len(re.findall(r'class="cat-item"', second)) == 1


# ---------------------------------------------------------------- one entry


def test_an_entry_shows_its_description_and_items(client: TestClient, seeded: Catalogue) -> None:
    page = sign_in(client, "mzj_op").get(f"/catalogue/{seeded.death}", headers=HTML).text
    assert "死亡医学证明" in part(page, "resource-name")
    facts = part(page, "facts")
    assert f"资源代码 {seeded.death}" in facts
    assert "提供单位 天津市卫生健康委员会" in facts
    assert "基础库 人口" in facts
    assert "主题 医疗卫生" in facts
    assert "更新周期 每日" in facts
    assert "标签 死亡 殡葬" in facts
    sharing = part(page, "sharing")
    assert "共享条件 用于社会保障待遇核查" in sharing
    assert "法律依据 《社会保险法》第十六条" in sharing
    assert "共享方式 查询 核验 批量交换 订阅" in sharing
    items = part(page, "items")
    assert "身份证号 ID number id_number string — 否 L3 敏感 是" in items
    assert "姓名 name string — 是 L2 低敏感 是" in items
    assert "证明编号 certificate_no string 是 否 L1 公开 —" in items
    assert "尚未归集数据，暂无样例。" in text_of(page)


def test_history_names_the_fields_that_changed(client: TestClient, seeded: Catalogue) -> None:
    page = sign_in(client, "admin").get(f"/catalogue/{seeded.death}", headers=HTML).text
    history = part(page, "history")
    assert re.search(r"发布 system:tests 发布日期、状态", history)
    assert "登记 system:tests 首次登记" in history


def test_another_organisations_draft_is_not_found(client: TestClient, seeded: Catalogue) -> None:
    sign_in(client, "mzj_op")
    r = client.get(f"/catalogue/{seeded.births}", headers=HTML)
    assert r.status_code == 404
    assert "页面不存在" in r.text
    assert client.get(f"/catalogue/{seeded.homes}", headers=HTML).status_code == 200


def test_every_label_built_at_run_time_exists() -> None:
    zh = i18n.catalogues()["zh"]
    built = [f"catalogue.field.{name}" for name in ResourceOut.model_fields]
    built += [f"catalogue.facet.{name}" for name in FACETS]
    built += [f"catalogue.action.{name}" for name in pages.ACTIONS]
    built += [f"catalogue.sharing_type.{v.value}" for v in SharingType]
    built += [f"catalogue.open_type.{v.value}" for v in OpenType]
    built += [f"catalogue.status.{v.value}" for v in ResourceStatus]
    built += [f"catalogue.mode.{v.value}" for v in SharingMode]
    built += [f"catalogue.cycle.{v.value}" for v in UpdateCycle]
    built += [f"catalogue.sensitivity.{v.value}" for v in Sensitivity]
    built += [f"catalogue.loads.{v.value}" for v in LoadStatus]
    built += [f"catalogue.format.{name}" for name in FORMATS]
    assert [key for key in built if key not in zh] == []


# ---------------------------------------------------------------- actions by permission


def actions(html: str) -> list[str]:
    """The labels of the action buttons and links in the entry's header."""
    if 'data-testid="actions"' not in html:
        return []
    return part(html, "actions").split()


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("wjw_admin", ["编辑", "归集数据"]),
        ("wjw_op", ["归集数据"]),
        ("mzj_admin", []),
        ("admin", ["编辑", "归集数据", "停用"]),
    ],
)
def test_actions_are_offered_by_permission(
    client: TestClient, seeded: Catalogue, username: str, expected: list[str]
) -> None:
    page = sign_in(client, username).get(f"/catalogue/{seeded.death}", headers=HTML).text
    assert actions(page) == expected


def test_the_platform_admin_publishes_a_draft(client: TestClient, seeded: Catalogue) -> None:
    sign_in(client, "admin")
    assert "发布" in actions(client.get(f"/catalogue/{seeded.births}", headers=HTML).text)
    r = client.post(f"/catalogue/{seeded.births}/publish", headers=HTML, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (
        303,
        f"/catalogue/{seeded.births}?done=published",
    )
    page = client.get(r.headers["location"], headers=HTML).text
    assert "已发布，所有成员单位现在都可以查看该资源。" in part(page, "notice")
    assert actions(page) == ["编辑", "归集数据", "停用"]


@pytest.mark.parametrize("action", ["publish", "retire"])
def test_only_the_platform_admin_publishes_or_retires(
    client: TestClient, seeded: Catalogue, action: str
) -> None:
    sign_in(client, "wjw_admin")
    code = seeded.births if action == "publish" else seeded.death
    r = client.post(f"/catalogue/{code}/{action}", headers=HTML)
    assert r.status_code == 403
    assert "没有权限" in r.text
    status = "草稿" if action == "publish" else "已发布"
    assert status in part(client.get(f"/catalogue/{code}", headers=HTML).text, "badges")


def test_a_post_from_another_site_is_refused(client: TestClient, seeded: Catalogue) -> None:
    sign_in(client, "admin")
    r = client.post(
        f"/catalogue/{seeded.births}/publish",
        headers={**HTML, "origin": "https://evil.example"},
    )
    assert r.status_code == 403
    assert "草稿" in client.get(f"/catalogue/{seeded.births}", headers=HTML).text


def test_the_provider_admin_edits_an_entry(client: TestClient, seeded: Catalogue) -> None:
    sign_in(client, "wjw_admin")
    form = client.get(f"/catalogue/{seeded.death}/edit", headers=HTML).text
    assert 'value="死亡医学证明"' in form
    assert 'value="死亡，殡葬"' in form
    assert "信息项、分类、共享类型与开放类型请通过 REST 接口" in text_of(form)
    r = client.post(
        f"/catalogue/{seeded.death}/edit",
        data=edit_form(name_zh="死亡医学证明信息", steward_name="李明", tags="死亡、殡葬, 社保"),
        headers=HTML,
        follow_redirects=False,
    )
    assert r.headers["location"] == f"/catalogue/{seeded.death}?done=updated"
    page = client.get(r.headers["location"], headers=HTML).text
    assert "修改已保存。" in text_of(page)
    assert "死亡医学证明信息" in part(page, "resource-name")
    facts = part(page, "facts")
    assert "资源管理员 李明" in facts
    assert "标签 死亡 殡葬 社保" in facts
    assert "修改 user" in part(page, "history")
    assert "中文名称、资源管理员、标签" in part(page, "history")


def edit_form(**changes: str) -> dict[str, str]:
    """The edit form of the seeded death-certificate entry as first shown, with ``changes``."""
    fields = {
        "name_zh": "死亡医学证明",
        "name_en": "Medical certificates of death",
        "summary_zh": "医疗机构出具的死亡医学证明（推断）书信息。",
        "summary_en": "Medical certificates of death issued by hospitals.",
        "sharing_conditions": "用于社会保障待遇核查",
        "legal_basis": "《社会保险法》第十六条",
        "open_conditions": "",
        "steward_name": "",
        "steward_contact": "",
        "tags": "死亡，殡葬",
    }
    return fields | changes


def test_an_unchanged_form_changes_nothing(client: TestClient, seeded: Catalogue) -> None:
    sign_in(client, "wjw_admin")
    r = client.post(f"/catalogue/{seeded.death}/edit", data=edit_form(), follow_redirects=False)
    assert r.headers["location"].endswith("?done=unchanged")
    history = part(client.get(f"/catalogue/{seeded.death}", headers=HTML).text, "history")
    assert "修改" not in history


def test_an_invalid_edit_shows_the_form_again_and_changes_nothing(
    client: TestClient, seeded: Catalogue
) -> None:
    sign_in(client, "wjw_admin")
    r = client.post(
        f"/catalogue/{seeded.death}/edit",
        data=edit_form(steward_name="李明", legal_basis=""),  # conditional sharing needs it
        headers=HTML,
    )
    assert r.status_code == 422
    assert "未能保存，未作任何修改" in part(r.text, "form-error")
    assert "legal_basis" in part(r.text, "form-error")
    assert 'value="李明"' in r.text  # what was typed is kept
    facts = part(client.get(f"/catalogue/{seeded.death}", headers=HTML).text, "facts")
    assert "资源管理员 —" in facts


@pytest.mark.parametrize("username", ["wjw_op", "mzj_admin"])
def test_only_the_provider_admin_edits(
    client: TestClient, seeded: Catalogue, username: str
) -> None:
    sign_in(client, username)
    assert client.get(f"/catalogue/{seeded.death}/edit", headers=HTML).status_code == 403
    r = client.post(f"/catalogue/{seeded.death}/edit", data=edit_form(name_zh="改名"), headers=HTML)
    assert r.status_code == 403
    assert "改名" not in client.get(f"/catalogue/{seeded.death}", headers=HTML).text


# ---------------------------------------------------------------- loading data, versions, samples


def deaths_csv(*rows: tuple[str, int, str, str]) -> bytes:
    """A CSV for the death-certificate entry: (number, ID body or 0 for a bad ID, name, date)."""
    lines = ["certificate_no,id_number,name,death_date,age"]
    for number, body, name, date in rows:
        lines.append(f"{number},{compose_id(body) if body else 'not-an-id'},{name},{date},80")
    return ("\n".join(lines) + "\n").encode()


FIRST = deaths_csv(
    ("D001", 12010119400101001, "张三丰", "2024-03-01"),
    ("D002", 12010119420202002, "李四", "2024-03-02"),
    ("D003", 0, "王五", "2024-03-03"),
)


def upload(client: TestClient, code: str, data: bytes, name: str = "deaths.csv") -> Response:
    return client.post(
        f"/catalogue/{code}/load",
        files={"file": (name, data, "text/csv")},
        data={"format": "", "encoding": ""},
        headers=HTML,
        follow_redirects=False,
    )


def test_an_operator_loads_a_file_and_sees_the_summary(
    client: TestClient, seeded: Catalogue
) -> None:
    sign_in(client, "wjw_op")
    form = client.get(f"/catalogue/{seeded.death}/load", headers=HTML).text
    assert 'enctype="multipart/form-data"' in form
    r = upload(client, seeded.death, FIRST)
    assert r.status_code == 303
    assert r.headers["location"].startswith(f"/catalogue/{seeded.death}/load?result=")
    result = part(client.get(r.headers["location"], headers=HTML).text, "load-result")
    assert "归集完成，已生成版本 1。" in result
    assert "读取 3 入库 2 拒绝 1" in result
    assert "下载被拒记录" in result


def test_the_entry_shows_masked_samples_versions_and_loads(
    client: TestClient, seeded: Catalogue
) -> None:
    sign_in(client, "wjw_op")
    upload(client, seeded.death, FIRST)
    page = client.get(f"/catalogue/{seeded.death}", headers=HTML).text
    sample = part(page, "sample")
    assert "D001 *** 张** 2024-03-01 80" in sample
    assert "D002 *** 李* 2024-03-02 80" in sample
    assert "120101" not in sample  # an L3 item is hidden whole
    assert "L1 原样显示" in part(page, "masking-note")
    assert "v1 当前版本 2" in part(page, "versions")
    loads = part(page, "loads")
    assert "成功 1 3 2 1 user:wjw_op 下载被拒记录" in loads
    rejects = re.search(r'href="(/api/v1/catalogue/resources/[^"]+/rejects)"', page)
    assert rejects is not None
    assert "数据量 版本 1 · 2 条记录" in part(page, "facts")
    assert "归集数据 user:wjw_op 生成版本 1（2 条记录）" in part(page, "history")

    sign_in(client, "mzj_op")  # another organisation sees the masked sample, not the rejects
    other = client.get(f"/catalogue/{seeded.death}", headers=HTML).text
    assert "D001 *** 张** 2024-03-01 80" in part(other, "sample")
    assert "下载被拒记录" not in other


def test_two_versions_are_compared(client: TestClient, seeded: Catalogue) -> None:
    sign_in(client, "wjw_op")
    upload(client, seeded.death, FIRST)
    second = deaths_csv(
        ("D001", 12010119400101001, "张三丰", "2024-03-05"),  # changed
        ("D004", 12010119500505005, "赵六", "2024-04-01"),  # added; D002 removed
    )
    upload(client, seeded.death, second)
    page = client.get(f"/catalogue/{seeded.death}", headers=HTML).text
    assert "v2 当前版本 2" in part(page, "versions")
    assert 'hx-get="/catalogue/' in page
    compared = client.get(f"/catalogue/{seeded.death}?from=1&to=2", headers=HTML).text
    result = part(compared, "compare")
    assert "版本 1 → 2，按 certificate_no 匹配记录" in result
    assert "新增 1 删除 1 变更 1 未变 0" in result
    missing = client.get(f"/catalogue/{seeded.death}?from=1&to=9", headers=HTML).text
    assert "无法比较" in missing


def test_a_failed_load_changes_nothing_and_says_why(client: TestClient, seeded: Catalogue) -> None:
    sign_in(client, "wjw_admin")
    r = upload(client, seeded.death, b"who,when\nx,y\n")
    assert r.status_code == 422
    error = part(r.text, "form-error")
    assert "归集失败，数据未作任何改动" in error
    assert "certificate_no" in error
    page = client.get(f"/catalogue/{seeded.death}", headers=HTML).text
    assert "尚未归集数据，暂无样例。" in text_of(page)
    assert "尚未归集数据，暂无版本。" in text_of(page)
    assert "失败" in part(page, "loads")  # the failed attempt is on record


def test_a_load_without_a_file_asks_for_one(client: TestClient, seeded: Catalogue) -> None:
    sign_in(client, "wjw_op")
    r = client.post(f"/catalogue/{seeded.death}/load", data={"format": ""}, headers=HTML)
    assert r.status_code == 422
    assert "请选择要上传的文件。" in part(r.text, "form-error")


@pytest.mark.parametrize("username", ["mzj_op", "mzj_admin"])
def test_only_the_provider_loads(client: TestClient, seeded: Catalogue, username: str) -> None:
    sign_in(client, username)
    assert client.get(f"/catalogue/{seeded.death}/load", headers=HTML).status_code == 403
    assert upload(client, seeded.death, FIRST).status_code == 403
    assert "尚未归集数据，暂无版本。" in text_of(
        client.get(f"/catalogue/{seeded.death}", headers=HTML).text
    )
