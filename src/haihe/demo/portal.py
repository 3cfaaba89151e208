"""Demo step: the city's open-data portal — 公共数据开放平台.

Every catalogue entry the departments marked 无条件开放 or 有条件开放 is published, as itself and
as the views a bureau would open beside it (counts and sums by district, street, category,
industry; personal items masked or left out). 不予开放 entries are never published. The largest
is the ecology and environment bureau's hourly air-quality readings (7 million rows at 3.2
million residents), beside its daily means by district and its list of stations. One demo
resident applies for a 有条件开放 dataset, its department approves, and the resident gets an API
key, so the conditional path can be tried at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.progress import Progress
from sqlalchemy.orm import Session

from haihe.core.auth import Principal
from haihe.core.settings import Settings
from haihe.orgs import auth as orgs_auth
from haihe.orgs import service as orgs
from haihe.portal import service as portal
from haihe.portal.schemas import ApiKeyIn, ApplicationIn, DatasetIn

APPLIED_FOR = "enterprises"  # the 有条件开放 dataset the demo resident applies for


@dataclass
class Published:
    """What the step published."""

    datasets: list[str] = field(default_factory=list)
    conditional: int = 0
    views: int = 0
    rows: int = 0
    topics: set[str] = field(default_factory=set)
    applicant: str | None = None
    api_key: str | None = None


def _count(name: str) -> dict[str, Any]:
    return {"name": name, "fn": "count"}


def _sum(name: str, item: str) -> dict[str, Any]:
    return {"name": name, "fn": "sum", "item": item}


def _avg(name: str, item: str) -> dict[str, Any]:
    return {"name": name, "fn": "avg", "item": item}


def _max(name: str, item: str) -> dict[str, Any]:
    return {"name": name, "fn": "max", "item": item}


# synthetic dataset id → the datasets opened from it: (name, zh, en, topic, tags, view)
Spec = tuple[str, str, str, str, list[str], dict[str, Any]]
SPECS: dict[str, list[Spec]] = {
    "MZ.districts": [
        ("districts", "行政区划（区）", "Districts", "housing", ["行政区划", "区"],
         {"indexed": ["region_code"]}),
        ("district-population", "各区常住人口与街道社区数", "Population, streets and communities "
         "by district", "social-development", ["人口", "统计"],
         {"items": ["region_code", "name_zh", "name_en", "streets", "communities", "residents"]}),
    ],
    "MZ.streets": [
        ("streets", "街道（乡镇）名录", "Streets and towns", "housing", ["行政区划", "街道"],
         {"indexed": ["district_code"]}),
        ("streets-by-district", "各区街道数量与人口", "Streets and residents by district",
         "social-development", ["统计", "街道"],
         {"aggregate": {"group_by": ["district_code"],
                        "measures": [_count("streets"), _sum("residents", "residents")]},
          "indexed": ["district_code"]}),
        ("streets-by-kind", "街道与乡镇数量（按类型）", "Streets by kind", "social-development",
         ["统计"], {"aggregate": {"group_by": ["kind"], "measures": [_count("streets")]}}),
    ],
    "MZ.communities": [
        ("communities", "社区（村）名录", "Communities and villages", "housing",
         ["行政区划", "社区"], {"indexed": ["district_code", "street_code"]}),
        ("communities-by-district", "各区社区户数与人口", "Households and residents by district",
         "social-development", ["统计", "社区", "人口"],
         {"aggregate": {"group_by": ["district_code"], "measures": [
             _count("communities"), _sum("households", "households"),
             _sum("residents", "residents")]}, "indexed": ["district_code"]}),
        ("communities-by-street", "各街道社区数与人口", "Communities and residents by street",
         "social-development", ["统计", "社区"],
         {"aggregate": {"group_by": ["street_code"], "measures": [
             _count("communities"), _sum("residents", "residents")]},
          "indexed": ["street_code"]}),
        ("communities-by-kind", "社区与村数量（按类型）", "Communities by kind",
         "social-development", ["统计"],
         {"aggregate": {"group_by": ["kind"], "measures": [_count("communities")]}}),
    ],
    "BB.departments": [
        ("departments", "市级部门名录", "Municipal departments", "organisations",
         ["政府机构"], {}),
        ("departments-by-category", "市级部门数量（按类别）", "Municipal departments by category",
         "organisations", ["政府机构", "统计"],
         {"aggregate": {"group_by": ["category_zh"], "measures": [_count("departments")]}}),
    ],
    "DSJ.institutions": [
        ("institutions", "公共服务机构名录", "Public-service institutions", "life-services",
         ["公共服务"], {}),
    ],
    "ZFW.grid_cells": [
        ("grid-cells", "社会治理网格", "Governance grid cells", "public-safety",
         ["网格", "社会治理"], {"indexed": ["district_code", "street_code"]}),
        ("grid-cells-by-district", "各区网格数量与面积", "Grid cells and area by district",
         "public-safety", ["网格", "统计"],
         {"aggregate": {"group_by": ["district_code"], "measures": [
             _count("cells"), _sum("area_km2", "area_km2")]}}),
        ("grid-cells-by-street", "各街道网格数量", "Grid cells by street", "public-safety",
         ["网格", "统计"],
         {"aggregate": {"group_by": ["street_code"], "measures": [_count("cells")]},
          "indexed": ["street_code"]}),
    ],
    "SCJG.enterprises": [
        (APPLIED_FOR, "市场主体登记信息", "Registered enterprises", "market-regulation",
         ["企业", "登记"],
         {"items": ["uscc", "name", "legal_rep_name", "registered_capital", "established_on",
                    "status", "industry", "district_code", "address"],
          "masked": ["legal_rep_name"], "indexed": ["uscc", "district_code"]}),
        ("enterprises-since-2020", "2020年以来新设市场主体", "Enterprises established since 2020",
         "economy", ["企业", "新设"],
         {"items": ["uscc", "name", "established_on", "industry", "district_code", "status"],
          "where": [{"item": "established_on", "op": "ge", "value": "2020-01-01"}],
          "indexed": ["district_code"]}),
        ("enterprises-by-industry", "市场主体数量与注册资本（按行业）",
         "Enterprises and registered capital by industry", "economy", ["企业", "统计"],
         {"aggregate": {"group_by": ["industry"], "measures": [
             _count("enterprises"), _sum("registered_capital", "registered_capital")]}}),
        ("enterprises-by-district", "各区市场主体数量", "Enterprises by district", "economy",
         ["企业", "统计"],
         {"aggregate": {"group_by": ["district_code"], "measures": [_count("enterprises")]}}),
        ("enterprises-by-status", "市场主体数量（按登记状态）", "Enterprises by status",
         "market-regulation", ["企业", "统计"],
         {"aggregate": {"group_by": ["status"], "measures": [_count("enterprises")]}}),
    ],
    "SCJG.administrative_penalties": [
        ("administrative-penalties", "行政处罚信息公示", "Administrative penalties", "credit",
         ["信用", "行政处罚"], {"indexed": ["uscc"]}),
        ("penalties-by-kind", "行政处罚数量与罚没金额（按处罚种类）",
         "Administrative penalties and amounts by kind", "market-regulation",
         ["信用", "统计"],
         {"aggregate": {"group_by": ["penalty"], "measures": [
             _count("decisions"), _sum("amount", "amount")]}}),
    ],
    "STHJ.air_quality_hourly": [
        ("air-quality-hourly", "环境空气质量小时监测数据", "Hourly air-quality readings",
         "environment", ["空气质量", "环境监测", "AQI"],
         {"indexed": ["station_code", "district_code", "observed_on"]}),
        ("air-quality-daily-by-district", "各区环境空气质量日均值",
         "Daily air quality by district", "environment", ["空气质量", "统计"],
         {"aggregate": {"group_by": ["district_code", "observed_on"], "measures": [
             _count("readings"), _avg("aqi", "aqi"), _max("aqi_max", "aqi"),
             _avg("pm25", "pm25"), _avg("pm10", "pm10"), _avg("o3", "o3"),
             _avg("no2", "no2")]}, "indexed": ["district_code", "observed_on"]}),
        ("air-quality-stations", "环境空气质量监测站点", "Air-quality monitoring stations",
         "environment", ["空气质量", "监测站点"],
         {"aggregate": {"group_by": ["station_code", "station_name", "station_type",
                                     "district_code", "street_code", "station_lat",
                                     "station_lng"],
                        "measures": [_count("readings"), _avg("aqi", "aqi")]},
          "indexed": ["district_code"]}),
    ],
}  # fmt: skip


def publish_open_catalogue(
    session_scope: Callable[[], Any],
    *,
    settings: Settings,
    actor: Principal,
    codes: dict[str, str],
    applicant: str | None,
    progress: Progress,
) -> Published:
    """Publish the open catalogue (a transaction per resource); approve one application."""
    done = Published()
    task = progress.add_task("open-data portal", total=sum(len(v) for v in SPECS.values()))
    for dataset_id, specs in SPECS.items():
        code = codes.get(dataset_id)
        if code is None:
            continue
        with session_scope() as session:
            for name, zh, en, topic, tags, view in specs:
                ds = portal.publish(
                    session,
                    actor=actor,
                    settings=settings,
                    data=DatasetIn.model_validate({
                        "resource_code": code, "name": name, "title_zh": zh, "title_en": en,
                        "notes_zh": _notes(zh, view), "topic": topic, "tags": tags, "view": view,
                    }),
                )  # fmt: skip
                done.datasets.append(ds.name)
                done.conditional += ds.open_type.value == "conditional"
                done.views += bool(view.get("aggregate") or view.get("items") or view.get("where"))
                done.rows += ds.row_count or 0
                done.topics.add(topic)
                progress.advance(task)
    if applicant is not None and APPLIED_FOR in done.datasets:
        with session_scope() as session:
            done.applicant, done.api_key = _approved_application(session, actor, applicant)
    return done


def _notes(title: str, view: dict[str, Any]) -> str:
    if view.get("aggregate"):
        return f"{title}：由原始数据汇总生成，不含个人信息。"
    if view.get("masked"):
        return f"{title}：个人信息已脱敏，身份证号等敏感数据项不予开放。"
    return f"{title}。"


def _approved_application(
    session: Session, actor: Principal, username: str
) -> tuple[str | None, str | None]:
    """The resident applies for the enterprises dataset, the platform approves, a key is made."""
    principal = orgs_auth.principal_of_user(orgs.get_user(session, username=username))
    if principal is None:
        return None, None
    app = portal.apply(
        session,
        actor=principal,
        data=ApplicationIn(
            dataset=APPLIED_FOR, purpose="研究本市营商环境，按行业统计新设企业。",
            accept_terms=True,
        ),
    )  # fmt: skip
    portal.decide(session, actor=actor, app_id=app.id, approve=True, reason="用途明确")
    _key, secret = portal.create_api_key(session, actor=principal, data=ApiKeyIn(name="demo"))
    return username, secret
