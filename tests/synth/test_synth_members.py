"""The city's members: 16 real districts, 68 departments and 5 public-service institutions."""

from __future__ import annotations

import re

import pyarrow.parquet as pq

from haihe.core.identity import is_valid_uscc

DISTRICTS = {
    "120101": "和平区",
    "120102": "河东区",
    "120103": "河西区",
    "120104": "南开区",
    "120105": "河北区",
    "120106": "红桥区",
    "120110": "东丽区",
    "120111": "西青区",
    "120112": "津南区",
    "120113": "北辰区",
    "120114": "武清区",
    "120115": "宝坻区",
    "120116": "滨海新区",
    "120117": "宁河区",
    "120118": "静海区",
    "120119": "蓟州区",
}
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def test_sixteen_districts_with_their_real_codes(city_dir):
    rows = pq.read_table(city_dir / "city" / "districts.parquet").to_pylist()
    assert {r["region_code"]: r["name_zh"] for r in rows} == DISTRICTS
    assert all(r["name_en"] and r["residents"] > 0 for r in rows)
    binhai = next(r for r in rows if r["region_code"] == "120116")
    assert abs(binhai["centre_lat"] - 39.003) < 1e-9
    assert abs(binhai["centre_lng"] - 117.710) < 1e-9


def test_sixty_eight_departments_with_unique_codes_and_chinese_names(city_dir):
    rows = pq.read_table(city_dir / "city" / "departments.parquet").to_pylist()
    assert len(rows) == 68
    codes = [r["code"] for r in rows]
    assert len(set(codes)) == 68
    assert {"GA", "WJW", "MZ", "RS", "GJJ", "JT", "SCJG", "DSJ", "YB", "CL"} <= set(codes)
    assert all(CHINESE.search(r["name_zh"]) and r["name_en"].isascii() for r in rows)
    assert all(is_valid_uscc(r["uscc"]) for r in rows)
    assert len({r["uscc"] for r in rows}) == 68
    by_code = {r["code"]: r for r in rows}
    assert by_code["GA"]["name_zh"] == "天津市公安局"
    assert by_code["DSJ"]["name_en"] == "Municipal Big Data Management Centre"


def test_five_institutions_cover_the_public_services(city_dir):
    rows = pq.read_table(city_dir / "city" / "institutions.parquet").to_pylist()
    assert len(rows) == 5
    assert {r["service"] for r in rows} == {"water", "electricity", "gas", "heating", "telecom"}
    departments = pq.read_table(city_dir / "city" / "departments.parquet").column("code")
    assert not {r["code"] for r in rows} & set(departments.to_pylist())
    assert all(is_valid_uscc(r["uscc"]) and CHINESE.search(r["name_zh"]) for r in rows)


def test_every_dataset_provider_is_a_department_or_institution(city_dir, manifest):
    members = set(
        pq.read_table(city_dir / "city" / "departments.parquet").column("code").to_pylist()
    )
    members |= set(
        pq.read_table(city_dir / "city" / "institutions.parquet").column("code").to_pylist()
    )
    assert {d.provider for d in manifest.datasets} <= members
    assert len(manifest.datasets) >= 30


def test_enterprise_codes_are_valid_and_unique(sql):
    codes = [r[0] for r in sql.execute("SELECT uscc FROM SCJG_enterprises").fetchall()]
    assert len(codes) == len(set(codes))
    assert all(is_valid_uscc(c) for c in codes)
    names = sql.execute("SELECT count(DISTINCT name), count(*) FROM SCJG_enterprises").fetchone()
    assert names[0] == names[1]
