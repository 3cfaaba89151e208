"""Finding entries: Chinese and English words, synonyms, ranking, filters, facets, visibility."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy.orm import Session

from factories import ROOT, make_org, make_resource, make_user
from haihe.catalogue import service
from haihe.catalogue.models import Resource
from haihe.catalogue.schemas import ResourceIn, ResourceUpdate
from haihe.catalogue.search import Filters, Hits, reindex, search
from haihe.catalogue.tokens import Synonyms, fold, parse, synonyms, tokens
from haihe.core.auth import Principal, Role
from haihe.core.errors import InvalidInput
from haihe.orgs.auth import principal_of_user
from haihe.orgs.models import Organisation
from haihe.synth.catalogue import catalogue_entries

ITEM = {"name": "record_no", "name_zh": "业务编号", "is_key": True, "nullable": False}


def entry(session: Session, provider: Organisation, name_zh: str, **fields: Any) -> Resource:
    """A published entry with only the given text (English and items left out unless given)."""
    values: dict[str, Any] = {
        "name_en": None,
        "summary_zh": "",
        "summary_en": None,
        "base_library": None,
        "topic": None,
        "sharing_type": "unconditional",
        "sharing_conditions": None,
        "legal_basis": None,
        "items": [ITEM],
    }
    values.update(fields)
    resource = make_resource(session, provider, name_zh=name_zh, **values)
    return service.publish(session, actor=ROOT, code=resource.code)


def find(session: Session, q: str | None = None, actor: Principal = ROOT, **filters: Any) -> Hits:
    return search(session, actor=actor, q=q, filters=Filters(**filters), limit=50, offset=0)


def names(hits: Hits) -> list[str]:
    return [h.name_zh for h in hits.items]


def facet(hits: Hits, name: str) -> dict[str, int]:
    return {f.value: f.count for f in hits.facets[name]}


def as_user(session: Session, *roles: Role, org: Organisation | None = None) -> Principal:
    principal = principal_of_user(make_user(session, *roles, org=org))
    assert principal is not None
    return principal


# ---------------------------------------------------------------- text


def test_folding_widths_case_accents_and_punctuation() -> None:
    assert fold("Ｄｅａｔｈ，死亡（ＡＢＣ１２３） Café") == "death 死亡 abc123 cafe"
    assert tokens("最低生活 id") == ["最低", "低生", "生活", "活", "id"]


def test_query_words_and_their_canonical_forms() -> None:
    words = parse("低保  ride-hailing Ride Hailing 低保")
    assert [w.text for w in words] == ["低保", "ride hailing"]
    assert words[0].alternatives == (
        (("低保", False),),
        (("最低", False), ("低生", False), ("生活", False), ("活保", False), ("保障", False)),
    )
    assert len(parse(" ".join(f"w{n}" for n in range(50)))) == 8


def test_synonym_groups_are_checked() -> None:
    assert synonyms().canonical["身份证"] == "居民身份证"
    assert synonyms().rewrite("城市低保 居民身份证 death") == "城市最低生活保障 居民身份证 死亡"
    with pytest.raises(ValueError, match="in the groups of"):
        Synonyms.from_groups([["医疗保障", "医保"], ["医保", "健康保险"]])
    with pytest.raises(ValueError, match="all Han or all Latin"):
        Synonyms.from_groups([["身份证", "ID卡"]])


# ---------------------------------------------------------------- the examples


def test_abbreviation_finds_the_full_name(session: Session) -> None:
    mz = make_org(session, code="MZ")
    entry(session, mz, "最低生活保障人员名单")
    entry(session, mz, "城市低保对象台账")
    entry(session, mz, "婚姻登记信息")
    both = ["城市低保对象台账", "最低生活保障人员名单"]
    assert sorted(names(find(session, "低保"))) == both
    assert sorted(names(find(session, "最低生活保障"))) == both


@pytest.mark.parametrize("q", ["death", "Death", "ＤＥＡＴＨ", "deaths"])
def test_english_finds_an_entry_written_only_in_chinese(session: Session, q: str) -> None:
    wjw = make_org(session, code="WJW", name_en=None)
    entry(session, wjw, "死亡医学证明", summary_zh="医疗机构出具的死亡医学证明信息。")
    entry(session, wjw, "出生医学证明")
    assert names(find(session, q)) == ["死亡医学证明"]


def test_identity_card_through_synonyms(session: Session) -> None:
    ga = make_org(session, code="GA")
    entry(session, ga, "居民身份证签发信息")
    entry(session, ga, "流动人口登记", items=[{**ITEM, "name": "id_no", "name_zh": "公民身份号码"}])
    entry(session, ga, "机动车登记")
    assert names(find(session, "身份证")) == ["居民身份证签发信息"]
    assert names(find(session, "身份证号")) == ["流动人口登记"]


def test_english_phrases_and_mixed_queries(session: Session) -> None:
    jt = make_org(session, code="JT")
    entry(session, jt, "网络预约出租汽车驾驶员证")
    entry(session, jt, "出租汽车驾驶员证")
    assert names(find(session, "ride hailing")) == ["网络预约出租汽车驾驶员证"]
    assert names(find(session, "网约车 driver")) == []
    assert names(find(session, "网约车 驾驶员")) == ["网络预约出租汽车驾驶员证"]


def test_mixed_chinese_and_english_words(session: Session) -> None:
    wjw = make_org(session, code="WJW")
    entry(session, wjw, "死亡医学证明", name_en="Medical certificates of death")
    entry(session, wjw, "死亡病例统计")
    entry(session, wjw, "出生医学证明")
    assert names(find(session, "death 证明")) == ["死亡医学证明"]
    assert names(find(session, "Medical 死亡")) == ["死亡医学证明"]


# ---------------------------------------------------------------- words


def test_every_word_must_match(session: Session) -> None:
    gjj = make_org(session, code="GJJ")
    entry(session, gjj, "住房公积金提取明细")
    entry(session, gjj, "住房公积金缴存明细")
    entry(session, gjj, "公租房保障名单")
    assert names(find(session, "公积金 提取")) == ["住房公积金提取明细"]
    details = ["住房公积金提取明细", "住房公积金缴存明细"]
    assert sorted(names(find(session, "公积金 明细"))) == details
    assert find(session, "公积金 不存在的词").total == 0


def test_chinese_is_found_anywhere_in_a_word(session: Session) -> None:
    mz = make_org(session, code="MZ")
    entry(session, mz, "养老机构床位统计")
    assert names(find(session, "机构床")) == ["养老机构床位统计"]
    assert names(find(session, "计")) == ["养老机构床位统计"]
    assert names(find(session, "构位")) == []


def test_english_words_match_by_prefix_and_ignore_case(session: Session) -> None:
    scjg = make_org(session, code="SCJG")
    entry(session, scjg, "企业登记", name_en="Enterprise REGISTRATIONS")
    assert names(find(session, "regis")) == ["企业登记"]
    assert names(find(session, "istrations")) == []


def test_punctuation_alone_is_not_a_word(session: Session) -> None:
    mz = make_org(session, code="MZ")
    entry(session, mz, "婚姻登记信息")
    entry(session, mz, "殡葬服务机构")
    assert find(session, "，！").total == 2
    assert names(find(session, "婚姻，")) == ["婚姻登记信息"]


def test_data_items_and_provider_are_searched(session: Session) -> None:
    gjj = make_org(session, code="GJJ", name_zh="住房公积金管理中心")
    item = {**ITEM, "name": "loan_term", "name_zh": "贷款期限", "name_en": "Loan term"}
    entry(session, gjj, "个人贷款台账", items=[ITEM, item])
    assert names(find(session, "贷款期限")) == ["个人贷款台账"]
    assert names(find(session, "loan term")) == ["个人贷款台账"]
    assert names(find(session, "管理中心")) == ["个人贷款台账"]


def test_an_update_is_found_by_its_new_words(session: Session) -> None:
    mz = make_org(session, code="MZ")
    resource = entry(session, mz, "临时救助名单")
    service.update_resource(
        session, actor=ROOT, code=resource.code, data=ResourceUpdate(name_zh="高龄津贴发放名单")
    )
    session.flush()
    assert names(find(session, "高龄津贴")) == ["高龄津贴发放名单"]
    assert find(session, "临时救助").total == 0


# ---------------------------------------------------------------- ranking and paging


def test_names_rank_above_summaries_above_items_then_by_code(session: Session) -> None:
    mz = make_org(session, code="MZ")
    item = {**ITEM, "name": "funeral_home", "name_zh": "殡仪馆"}
    in_items = entry(session, mz, "火化记录甲", items=[ITEM, item])
    in_summary = entry(session, mz, "火化记录乙", summary_zh="各区殡仪馆的服务情况。")
    second = entry(session, mz, "殡仪馆名录二")
    first = entry(session, mz, "殡仪馆名录一")
    found = find(session, "殡仪馆")
    assert [h.code for h in found.items] == [
        min(first.code, second.code),
        max(first.code, second.code),
        in_summary.code,
        in_items.code,
    ]


def test_every_word_in_the_names_ranks_first(session: Session) -> None:
    gjj = make_org(session, code="GJJ")
    split = entry(session, gjj, "住房公积金台账", summary_zh="提取业务的记录。")
    both = entry(session, gjj, "住房公积金提取台账")
    assert [h.code for h in find(session, "公积金 提取").items] == [both.code, split.code]


def test_paging(session: Session) -> None:
    mz = make_org(session, code="MZ")
    for n in range(7):
        entry(session, mz, f"婚姻登记信息{n}")
    whole = [h.code for h in find(session, "婚姻").items]
    pages = [
        search(session, actor=ROOT, q="婚姻", filters=Filters(), limit=3, offset=start)
        for start in (0, 3, 6)
    ]
    assert [h.code for page in pages for h in page.items] == whole
    assert [page.total for page in pages] == [7, 7, 7]
    assert [len(page.items) for page in pages] == [3, 3, 1]
    with pytest.raises(InvalidInput):
        search(session, actor=ROOT, q="婚姻", filters=Filters(), limit=-1, offset=0)


def test_pages_across_the_ranks(session: Session) -> None:
    """Pages are cut from the whole ranking, also where one rank ends and the next begins."""
    mz = make_org(session, code="MZ")
    item = {**ITEM, "name": "funeral_home", "name_zh": "殡仪馆"}
    for n in range(3):
        entry(session, mz, f"殡仪馆名录{n}")
        entry(session, mz, f"火化记录{n}", summary_zh="各区殡仪馆的服务情况。")
        entry(session, mz, f"骨灰存放{n}", items=[ITEM, item])
    whole = [h.code for h in find(session, "殡仪馆").items]
    assert len(whole) == 9
    for size in (1, 2, 4):
        pages = [
            search(session, actor=ROOT, q="殡仪馆", filters=Filters(), limit=size, offset=start)
            for start in range(0, 10, size)
        ]
        assert [h.code for page in pages for h in page.items] == whole, size
    empty = search(session, actor=ROOT, q="殡仪馆", filters=Filters(), limit=0, offset=2)
    assert empty.items == []
    assert empty.total == 9


def test_no_words_lists_everything_by_code(session: Session) -> None:
    mz = make_org(session, code="MZ")
    codes = sorted(entry(session, mz, f"条目{n}").code for n in range(4))
    found = find(session, "  ")
    assert [h.code for h in found.items] == codes
    assert found.total == 4


# ---------------------------------------------------------------- filters and facets


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("provider", "GJJ"),
        ("base_library", "population"),
        ("topic", "05"),
        ("sharing_type", "conditional"),
        ("open_type", "unconditional"),
        ("status", "draft"),
    ],
)
def test_each_filter(session: Session, name: str, value: str) -> None:
    gjj, mz = make_org(session, code="GJJ"), make_org(session, code="MZ")
    entry(session, mz, "住房保障名单", topic="01")
    wanted = make_resource(
        session,
        gjj,
        name_zh="住房公积金缴存",
        base_library="population",
        topic="05",
        open_type="unconditional",
    )  # a conditionally shared draft
    hits = find(session, "住房", **{name: value})
    assert [h.code for h in hits.items] == [wanted.code]
    assert hits.total == 1


def test_facets_count_with_every_other_filter(session: Session) -> None:
    gjj, mz = make_org(session, code="GJJ"), make_org(session, code="MZ")
    entry(session, gjj, "公积金缴存甲", topic="05")
    entry(session, gjj, "公积金缴存乙", topic="05", sharing_type="not_shared", legal_basis="法")
    entry(session, mz, "公积金提取核验", topic="01")
    entry(session, mz, "低保名单", topic="01")
    hits = find(session, "公积金", topic="05")
    assert hits.total == 2
    assert facet(hits, "topic") == {"05": 2, "01": 1}  # not narrowed by its own filter
    assert facet(hits, "provider") == {"GJJ": 2}
    assert facet(hits, "sharing_type") == {"unconditional": 1, "not_shared": 1}
    assert facet(hits, "status") == {"published": 2}
    both = find(session, "公积金", topic="05", sharing_type="unconditional")
    assert both.total == 1
    assert facet(both, "topic") == {"05": 1, "01": 1}
    assert facet(both, "sharing_type") == {"unconditional": 1, "not_shared": 1}
    assert [f.value for f in find(session).facets["provider"]] == ["GJJ", "MZ"]


def test_unknown_filter_values_find_nothing(session: Session) -> None:
    mz = make_org(session, code="MZ")
    entry(session, mz, "婚姻登记信息")
    assert find(session, provider="NOPE").total == 0
    assert find(session, sharing_type="sometimes").total == 0


# ---------------------------------------------------------------- who sees drafts


def test_drafts_only_for_their_provider_and_the_platform(session: Session) -> None:
    a, b = make_org(session, code="ORGA"), make_org(session, code="ORGB")
    make_resource(session, a, name_zh="残疾人证核发草稿")
    entry(session, b, "残疾人证发放名单")
    seen_by = {
        "B": find(session, "残疾证", actor=as_user(session, Role.ORG_ADMIN, org=b)),
        "A": find(session, "残疾证", actor=as_user(session, Role.OPERATOR, org=a)),
        "admin": find(session, "残疾证", actor=as_user(session, Role.PLATFORM_ADMIN)),
        "auditor": find(session, "残疾证", actor=as_user(session, Role.AUDITOR)),
    }
    assert names(seen_by["B"]) == ["残疾人证发放名单"]
    assert facet(seen_by["B"], "status") == {"published": 1}
    for who in ("A", "admin", "auditor"):
        assert sorted(names(seen_by[who])) == ["残疾人证发放名单", "残疾人证核发草稿"], who


# ---------------------------------------------------------------- against the definition


def test_results_follow_the_token_definition(session: Session) -> None:
    """Many generated entries, many queries: the database answers as the definition says."""
    departments = [
        {"code": "GJJ", "name_zh": "天津市住房公积金管理中心", "name_en": "Housing Fund Centre"},
        {"code": "MZ", "name_zh": "天津市民政局", "name_en": "Civil Affairs Bureau"},
        {"code": "WJW", "name_zh": "天津市卫生健康委员会", "name_en": "Health Commission"},
    ]
    for dept in departments:
        make_org(session, **dept)
    for data in catalogue_entries(45, seed=11, departments=departments):
        service.create_resource(session, actor=ROOT, data=ResourceIn(**data))
    session.flush()
    docs = {r.code: r.search_text for r in session.query(Resource)}
    for q in ["低保", "death", "公积金 提取", "医疗 机构", "残疾", "河西区", "养老金", "天津 l"]:
        expected = sorted(
            (-_tier(docs[code], q), code) for code in docs if _tier(docs[code], q) > 0
        )
        assert [h.code for h in find(session, q).items] == [code for _, code in expected], q


def _tier(search_text: str, q: str) -> int:
    """3 when the names hold every word, 2 the names and summary, 1 the whole text, else 0."""
    lines = search_text.split("\n")
    for tier, text in ((3, lines[0]), (2, " ".join(lines[:2])), (1, " ".join(lines))):
        held = set(text.split())
        if all(
            any(all(_has(held, t, p) for t, p in alt) for alt in word.alternatives)
            for word in parse(q)
        ):
            return tier
    return 0


def _has(held: set[str], token: str, prefix: bool) -> bool:
    return any(h.startswith(token) for h in held) if prefix else token in held


def test_reindex_rewrites_stale_search_text(session: Session) -> None:
    mz = make_org(session, code="MZ")
    kept = entry(session, mz, "婚姻登记信息")
    stale = entry(session, mz, "低保对象名单")
    stale.search_text = "旧 文本"
    session.flush()
    assert find(session, "低保").total == 0
    assert reindex(session) == 1
    assert [h.code for h in find(session, "最低生活保障").items] == [stale.code]
    assert kept.search_text.startswith("婚姻")


def test_front_page_counts_follow_every_change(session: Session) -> None:
    """With no words, counts come from catalogue_facet_counts, kept by triggers: check them."""
    a, b = make_org(session, code="ORGA"), make_org(session, code="ORGB")
    drafts = [make_resource(session, a, name_zh=f"草稿{n}") for n in range(3)]
    entry(session, b, "已发布")
    service.publish(session, actor=ROOT, code=drafts[0].code)
    service.publish(session, actor=ROOT, code=drafts[1].code)
    service.retire(session, actor=ROOT, code=drafts[1].code)
    service.update_resource(
        session, actor=ROOT, code=drafts[2].code, data=ResourceUpdate(topic="05")
    )
    session.flush()
    everything = session.query(Resource).all()
    assert facet(find(session), "status") == {"draft": 1, "published": 2, "retired": 1}
    assert facet(find(session), "topic") == dict(
        Counter(r.topic for r in everything if r.topic).most_common()
    )
    outsider = as_user(session, Role.OPERATOR, org=b)
    assert facet(find(session, actor=outsider), "provider") == {"ORGA": 2, "ORGB": 1}
    assert find(session, actor=outsider).total == 3


def test_word_counts_follow_every_change(session: Session) -> None:
    """With words, each match's facet values come from catalogue_fts_cells: check them."""
    a, b = make_org(session, code="ORGA"), make_org(session, code="ORGB")
    drafts = [make_resource(session, a, name_zh=f"草稿{n}", topic="01") for n in range(3)]
    entry(session, b, "已发布草稿", topic="01")
    service.publish(session, actor=ROOT, code=drafts[0].code)
    service.publish(session, actor=ROOT, code=drafts[1].code)
    service.retire(session, actor=ROOT, code=drafts[1].code)
    service.update_resource(
        session, actor=ROOT, code=drafts[2].code, data=ResourceUpdate(topic="05")
    )
    session.flush()
    found = find(session, "草稿")
    assert found.total == 4
    assert facet(found, "status") == {"draft": 1, "published": 2, "retired": 1}
    assert facet(found, "topic") == {"01": 3, "05": 1}
    assert facet(find(session, "草稿", status="published"), "provider") == {"ORGA": 1, "ORGB": 1}
    outsider = as_user(session, Role.OPERATOR, org=b)
    assert facet(find(session, "草稿", actor=outsider), "status") == {"published": 2, "retired": 1}
