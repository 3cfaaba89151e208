"""Catalogue entries for the synthetic city: valid, following the sharing rules, deterministic."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from haihe.catalogue.schemas import ResourceIn
from haihe.synth.catalogue import catalogue_entries


@pytest.fixture(scope="module")
def departments(city_dir: Path) -> list[dict[str, Any]]:
    """The rows of the shared city's city/departments.parquet."""
    return pq.read_table(city_dir / "city" / "departments.parquet").to_pylist()


@pytest.fixture(scope="module")
def entries(departments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return catalogue_entries(3000, seed=5, departments=departments)


def test_every_entry_is_a_valid_description(entries: list[dict[str, Any]]) -> None:
    described = [ResourceIn(**e) for e in entries]
    assert len(described) == 3000
    assert all(8 <= len(d.items) <= 14 for d in described)


def test_same_arguments_same_entries(departments: list[dict[str, Any]]) -> None:
    first = catalogue_entries(200, seed=9, departments=departments)
    assert catalogue_entries(200, seed=9, departments=departments) == first
    assert catalogue_entries(200, seed=10, departments=departments) != first


def test_sharing_rules(entries: list[dict[str, Any]]) -> None:
    kinds = Counter(e["sharing_type"] for e in entries)
    assert set(kinds) == {"unconditional", "conditional", "not_shared"}
    for e in entries:
        if e["sharing_type"] == "conditional":
            assert e["sharing_conditions"], e["name_zh"]
            assert e["legal_basis"], e["name_zh"]
        if e["sharing_type"] == "not_shared":
            assert e["legal_basis"], e["name_zh"]
        else:
            assert e["sharing_modes"], e["name_zh"]
        if e["open_type"] == "conditional":
            assert e["open_conditions"], e["name_zh"]


def test_item_rules(entries: list[dict[str, Any]]) -> None:
    items = [i for e in entries for i in e["items"]]
    assert all(i["sensitivity"] != "L1" for i in items if i["personal"])
    assert all(not i["nullable"] for i in items if i["is_key"])
    assert all(i["type"] == "string" for i in items if i["kind"] == "id_number")
    assert all(sum(i["is_key"] for i in e["items"]) == 1 for e in entries)
    assert all(len({i["name"] for i in e["items"]}) == len(e["items"]) for e in entries)


def test_personal_data_is_never_open(entries: list[dict[str, Any]]) -> None:
    personal = [e for e in entries if any(i["personal"] for i in e["items"])]
    assert personal
    assert {e["open_type"] for e in personal} == {"not_open"}


def test_departments_describe_what_they_hold(entries: list[dict[str, Any]]) -> None:
    def text(code: str) -> str:
        return "".join(e["name_zh"] for e in entries if e["provider_code"] == code)

    for code, words in {
        "GJJ": ("公积金缴存", "公积金提取", "公积金贷款"),
        "GA": ("户籍", "出入境", "机动车"),
        "WJW": ("出生医学证明", "死亡医学证明", "预防接种", "医疗机构"),
        "MZ": ("婚姻登记", "最低生活保障", "火化", "养老机构"),
        "SCJG": ("企业登记", "行政处罚", "食品经营许可"),
    }.items():
        for word in words:
            assert word in text(code), (code, word)


def test_entries_spread_over_all_departments(
    entries: list[dict[str, Any]], departments: list[dict[str, Any]]
) -> None:
    providers = Counter(e["provider_code"] for e in entries)
    assert set(providers) == {d["code"] for d in departments}
    assert providers["GA"] > 3 * providers["DAG"]  # public security holds far more
    assert len({e["name_zh"] for e in entries}) > 1500


def test_no_departments_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one department"):
        catalogue_entries(1, seed=1, departments=[])
