"""Catalogue entries — 目录条目 — as a Tianjin-like city's departments would describe them.

``catalogue_entries(n, seed=S, departments=rows)`` returns ``n`` plain dicts with the fields of the
catalogue's ``ResourceIn``: each department describes the data it really holds
(``data/catalogue_subjects.csv``: the housing fund centre its contributions, withdrawals and
loans; public security households, exit-entry and motor vehicles; …) from a shared list of data
items (``data/catalogue_items.csv``), city-wide or per district, some per year, and follows the
sharing rules (conditional sharing names its conditions and legal basis, not shared its legal
basis, conditional opening its conditions; personal items are L2 or above, keys are not null).
The same arguments always give the same entries.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass, replace
from typing import Any

from haihe.synth import reference

_EXTRA = ("district_code", "updated_at", "remark", "street", "phone", "address", "operator")
_FILLER = ("data_source", "created_at", "record_status", "district_code", "updated_at", "remark")
_FORMATS = ("table",) * 6 + ("api", "spreadsheet")
_SUFFIXES = (("", ""), ("信息", ""), ("明细", " (details)"), ("汇总", " (summary)"))
_CYCLES = (
    ("daily", "每日", "daily"),
    ("monthly", "每月", "monthly"),
    ("realtime", "实时", "in real time"),
    ("quarterly", "每季度", "quarterly"),
    ("yearly", "每年", "yearly"),
)
_USES = (
    "社会保障待遇资格核查",
    "政务服务事项办理",
    "市场主体信用监管",
    "住房保障资格审核",
    "社会救助对象认定",
    "城市运行监测分析",
    "人口统计分析",
    "行政执法办案",
)
_LAWS = (
    "《中华人民共和国个人信息保护法》",
    "《中华人民共和国社会保险法》",
    "《住房公积金管理条例》",
    "《社会救助暂行办法》",
    "《中华人民共和国道路交通安全法》",
    "《企业信息公示暂行条例》",
    "《政务信息资源共享管理暂行办法》",
    "《中华人民共和国统计法》",
)
_TOPICS = {
    "01": "社会保障", "02": "医疗卫生", "03": "民政服务", "04": "交通出行", "05": "住房保障",
    "06": "教育文化", "07": "就业创业", "08": "市场监管", "09": "信用服务", "10": "城乡建设",
    "11": "生态环境", "12": "公共安全", "13": "社会治理", "14": "养老服务", "15": "农业农村",
    "16": "财税金融", "17": "科技创新", "18": "文化旅游", "19": "公共服务", "20": "机构团体",
    "21": "经济发展",
}  # fmt: skip


@dataclass(frozen=True)
class _Subject:
    """One kind of data a department holds (``data/catalogue_subjects.csv``)."""

    zh: str
    en: str
    topic: str
    base: str | None
    items: tuple[str, ...]  # the first is the key
    owner: str = ""  # the department's short name, before a subject every department has


@functools.cache
def _item_table() -> dict[str, dict[str, Any]]:
    """The data items entries are made of (``data/catalogue_items.csv``), by name."""
    return {
        row["name"]: {
            "name": row["name"],
            "name_zh": row["name_zh"],
            "name_en": row["name_en"],
            "type": row["type"],
            "is_key": False,
            "nullable": True,
            "sensitivity": row["sensitivity"],
            "personal": row["personal"] == "1",
            "kind": row["kind"],
        }
        for row in reference.rows("catalogue_items")
    }


@functools.cache
def _subject_table() -> dict[str, list[_Subject]]:
    """The subjects of each department code; ``*`` holds those every department has."""
    table: dict[str, list[_Subject]] = {}
    for row in reference.rows("catalogue_subjects"):
        subject = _Subject(
            row["name_zh"],
            row["name_en"],
            row["topic"],
            row["base_library"] or None,
            tuple(row["items"].split()),
        )
        table.setdefault(row["department"], []).append(subject)
    return table


def catalogue_entries(
    n: int, *, seed: int, departments: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Return ``n`` catalogue entry descriptions (ResourceIn fields) spread over ``departments``.

    A department that holds more kinds of data describes more entries; every department also
    lists its licences, penalties, service cases and statistics.
    """
    rng = random.Random(seed)
    plans: list[tuple[dict[str, Any], list[_Subject]]] = []
    weights: list[float] = []
    table = _subject_table()
    for dept in departments:
        own = table.get(str(dept["code"]), [])
        short = re.sub("^(天津市|中共天津市委|天津)", "", str(dept["name_zh"]))
        generic = [replace(s, owner=short) for s in table["*"][: max(2, 5 - len(own))]]
        plans.append((dept, own + generic))
        weights.append(weights[-1] + 1 + len(own) if weights else 1 + len(own))
    if not plans:
        raise ValueError("catalogue entries need at least one department")
    people = (reference.column("surnames", "surname")[:60], reference.column("given_chars", "char"))
    districts = reference.rows("districts")
    entries = []
    for _ in range(n):
        dept, subjects = rng.choices(plans, cum_weights=weights)[0]
        subject = subjects[int(rng.random() * len(subjects))]
        entries.append(_entry(rng, dept, subject, districts, people))
    return entries


def _entry(
    rng: random.Random,
    dept: dict[str, Any],
    subject: _Subject,
    districts: tuple[dict[str, str], ...],
    people: tuple[list[str], list[str]],
) -> dict[str, Any]:
    scope_zh = scope_en = year_zh = year_en = ""
    tags = [_TOPICS[subject.topic]]
    if rng.random() < 0.45:
        district = districts[int(rng.random() * len(districts))]
        scope_zh, scope_en = district["name_zh"], f", {district['name_en']} district"
        tags.append(scope_zh)
    if rng.random() < 0.3:
        year = 2015 + int(rng.random() * 10)
        year_zh, year_en = f"（{year}年）", f", {year}"
        tags.append(f"{year}年")
    suffix_zh, suffix_en = _SUFFIXES[int(rng.random() * len(_SUFFIXES))]
    items = _pick_items(rng, subject.items)
    personal = max((int(i["sensitivity"][1]) for i in items if i["personal"]), default=0)
    cycle, cycle_zh, cycle_en = _CYCLES[int(rng.random() * len(_CYCLES))]
    use = _USES[int(rng.random() * len(_USES))]
    title_en = subject.en[:1].upper() + subject.en[1:]
    listed_zh = "、".join(i["name_zh"] for i in items[:4])
    listed_en = ", ".join(i["name_en"].lower() for i in items[:3])
    holder = dept.get("name_en") or dept["code"]
    surnames, given = people
    steward = rng.choice(surnames) + "".join(rng.choices(given, k=1 + (rng.random() < 0.6)))
    entry: dict[str, Any] = {
        "name_zh": f"{scope_zh}{subject.owner}{subject.zh}{suffix_zh}{year_zh}",
        "name_en": f"{title_en}{suffix_en}{scope_en}{year_en}",
        "summary_zh": f"{dept['name_zh']}{scope_zh or '全市'}{subject.zh}数据，包括{listed_zh}等"
        f"{len(items)}个信息项，{cycle_zh}更新，可用于{use}。",
        "summary_en": f"{title_en}{scope_en or ' across the city'} held by the {holder}: "
        f"{listed_en} and {len(items) - 3} more items, updated {cycle_en}.",
        "provider_code": dept["code"],
        "base_library": subject.base,
        "topic": subject.topic,
        "format": "geospatial" if subject.base == "geospatial" else rng.choice(_FORMATS),
        "update_cycle": cycle,
        "steward_name": steward,
        "steward_contact": f"022-{rng.randint(23000000, 28999999)}",
        "tags": tags,
        "items": items,
    }
    entry.update(_sharing(rng, personal, use))
    entry.update(_opening(rng, personal))
    return entry


def _pick_items(rng: random.Random, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """The subject's items (most of them) and a few common ones, eight to fourteen in all."""
    chosen = [names[0], *(n for n in names[1:] if rng.random() < 0.9)]
    extra = [e for e in _EXTRA if e not in chosen]
    chosen += rng.sample(extra, k=2 + int(rng.random() * 3))
    chosen += [f for f in _FILLER if f not in chosen][
        : max(0, 8 + int(rng.random() * 3) - len(chosen))
    ]
    table = _item_table()
    items = [dict(table[name]) for name in chosen]
    items[0].update(is_key=True, nullable=False)  # a key is never empty
    for item in items[1:]:
        if item["kind"] == "id_number" and rng.random() < 0.5:
            item["nullable"] = False
    return items


def _sharing(rng: random.Random, personal: int, use: str) -> dict[str, Any]:
    """Sharing type and modes; conditions and legal basis where the rules ask for them."""
    roll = rng.random()
    if personal >= 3:
        kind = "conditional" if roll < 0.75 else "not_shared" if roll < 0.9 else "unconditional"
    else:
        kind = "unconditional" if roll < 0.7 else "conditional" if roll < 0.95 else "not_shared"
    modes = ["query", *(m for m in ("verify", "bulk", "subscribe") if rng.random() < 0.4)]
    out: dict[str, Any] = {"sharing_type": kind, "sharing_modes": modes}
    if kind == "conditional":
        out["sharing_conditions"] = (
            f"仅限用于{use}，使用部门须在共享平台提出申请，经提供部门审核同意。"
        )
        out["legal_basis"] = rng.choice(_LAWS)
    elif kind == "not_shared":
        out["legal_basis"] = f"{rng.choice(_LAWS)}：涉及个人隐私，不予共享。"
        out["sharing_modes"] = []
    return out


def _opening(rng: random.Random, personal: int) -> dict[str, Any]:
    """Open type: never for personal data; otherwise open, open on conditions or not open."""
    roll = rng.random()
    if personal or roll >= 0.75:
        return {"open_type": "not_open"}
    if roll < 0.5:
        return {"open_type": "unconditional"}
    return {
        "open_type": "conditional",
        "open_conditions": "申请人须注册实名账号并签署数据利用协议，仅用于科研和公益。",
    }
