"""The catalogue's exchange format — 目录交换格式: its fields, their values, entries as records.

One shape serves the JSON file and the workbook. ``export_json`` returns::

    {"format": "haihe-catalogue", "version": 1, "resources": [ENTRY, ...]}

ENTRY has the keys of ``ENTRY_FIELDS``, in that order, and ``items``: a list of objects with the
keys of ``ITEM_FIELDS``, in the entry's order. Enumerations are their English values
(``"conditional"``), topics their two-digit codes, dates ISO (``"2024-05-01"``), lists arrays.
On import every value may also be written the way the workbook writes it (``有条件共享``, ``是``).
The Chinese labels here are part of the file format, so they stay fixed whatever the console says.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, computed_field
from sqlalchemy import Enum, String, select, type_coerce
from sqlalchemy.orm import Session

from haihe.catalogue import repository as repo
from haihe.catalogue import service
from haihe.catalogue.models import (
    DataItem,
    ItemKind,
    OpenType,
    Resource,
    ResourceRelation,
    ResourceStatus,
    Sensitivity,
    SharingMode,
    SharingType,
    UpdateCycle,
)
from haihe.catalogue.schemas import FORMATS
from haihe.catalogue.topics import BASE_LIBRARIES, TOPICS
from haihe.core.auth import Principal
from haihe.core.errors import InvalidInput
from haihe.orgs.models import Organisation

FORMAT = "haihe-catalogue"
VERSION = 1

# ---------------------------------------------------------------- values


class BadValue(ValueError):
    """A value that cannot be read, saying what to write instead, in English and Chinese."""

    def __init__(self, en: str, zh: str) -> None:
        super().__init__(en)
        self.en = en
        self.zh = zh


Reader = Callable[[Any], Any]


def read_text(raw: Any) -> str | None:
    """The text of a cell or JSON value; None when it is blank."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | dt.date):
        raise BadValue("expected text", "应填写文本")
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    text = raw.isoformat() if isinstance(raw, dt.date) else str(raw).replace("\r\n", "\n")
    return text if text.strip() else None


def _choice(labels: dict[str, str], aliases: dict[str, str] | None = None) -> Reader:
    lookup = {alias.lower(): value for alias, value in (aliases or {}).items()}
    for value, label in labels.items():
        lookup[value.lower()] = value
        lookup[label.lower()] = value
    shown, values = "、".join(labels.values()), ", ".join(labels)

    def read(raw: Any) -> str | None:
        text = read_text(raw)
        if text is None:
            return None
        found = lookup.get(text.strip().lower())
        if found is None:
            raise BadValue(
                f"{text!r} is not allowed; write one of {shown} (or {values})",
                f"“{text}”不是可选值，请填写：{shown}",
            )
        return found

    return read


def read_bool(raw: Any) -> bool | None:
    """True for 是/yes/true/1, False for 否/no/false/0, None when blank."""
    if raw is None or isinstance(raw, bool):
        return raw
    text = read_text(raw)
    if text is None:
        return None
    key = text.strip().lower()
    if key in ("是", "true", "yes", "y", "1"):
        return True
    if key in ("否", "false", "no", "n", "0"):
        return False
    raise BadValue(
        f"{text!r} is not yes or no; write 是 or 否", f"“{text}”不是是/否，请填写：是、否"
    )


def read_date(raw: Any) -> str | None:
    """An ISO date (``2024-05-01``) from a date cell or text; None when blank."""
    if isinstance(raw, dt.datetime):
        return raw.date().isoformat()
    text = read_text(raw)
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text.strip().replace("/", "-")).isoformat()
    except ValueError:
        raise BadValue(
            f"{text!r} is not a date; write it as 2024-05-01",
            f"“{text}”不是日期，格式如 2024-05-01",
        ) from None


def read_position(raw: Any) -> int | None:
    """A whole number from 1; None when blank."""
    text = read_text(raw)
    if text is None:
        return None
    if not text.strip().isdigit() or int(text) < 1:
        raise BadValue(f"{text!r} is not a number from 1", f"“{text}”不是从 1 开始的序号")
    return int(text)


def _listed(read_one: Reader, separators: str) -> Reader:
    def read(raw: Any) -> list[Any]:
        if isinstance(raw, list):
            parts = raw
        else:
            text = read_text(raw)
            parts = re.split(separators, text) if text else []
        values = (read_one(p.strip() if isinstance(p, str) else p) for p in parts)
        return [v for v in values if v is not None]

    return read


def _labels(enum: type[StrEnum], zh: Sequence[str]) -> dict[str, str]:
    return {member.value: label for member, label in zip(enum, zh, strict=True)}


SHARING = _labels(SharingType, ["无条件共享", "有条件共享", "不予共享"])
OPENING = _labels(OpenType, ["无条件开放", "有条件开放", "不予开放"])
MODES = _labels(SharingMode, ["查询", "核验", "批量交换", "订阅"])
CYCLES = _labels(UpdateCycle, ["实时", "每日", "每周", "每月", "每季度", "每年", "不定期"])
STATUSES = _labels(ResourceStatus, ["草稿", "已发布", "已停用"])
KINDS = _labels(ItemKind, ["身份证号", "姓名", "电话", "地址", "统一社会信用代码", "号牌", "通用"])
LEVELS = {s.value: s.value for s in Sensitivity}
FORMAT_LABELS = dict(
    zip(FORMATS, ["数据表", "电子表格", "文档", "图像", "空间数据", "数据流", "接口"], strict=True)
)
LIBRARIES = {lib.value: zh for lib, (_, zh, _) in BASE_LIBRARIES.items()}
TOPIC_LABELS = {code: zh for code, (zh, _) in TOPICS.items()}


def _show_label(labels: dict[str, str]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else labels[value]


def _show_list(joiner: str, labels: dict[str, str] | None = None) -> Callable[[Any], Any]:
    return lambda values: joiner.join(labels[v] if labels else v for v in values) or None


def _show_date(value: Any) -> Any:
    return None if value is None else dt.date.fromisoformat(value)


def _show_bool(value: Any) -> Any:
    return None if value is None else ("是" if value else "否")


# ---------------------------------------------------------------- fields


@dataclass(frozen=True)
class Field:
    """One value of an entry or item: key, Chinese label, how it is read and shown in a sheet."""

    key: str
    zh: str
    note: str
    read: Reader = read_text
    show: Callable[[Any], Any] = lambda value: value
    choices: tuple[str, ...] = ()
    required: bool = False
    width: int = 14

    @property
    def header(self) -> str:
        return f"{self.zh} {self.key}"


def _enum_field(
    key: str,
    zh: str,
    note: str,
    labels: dict[str, str],
    *,
    aliases: dict[str, str] | None = None,
    required: bool = False,
    width: int = 14,
) -> Field:
    read, show = _choice(labels, aliases), _show_label(labels)
    return Field(key, zh, note, read, show, tuple(labels.values()), required, width)


def _bool_field(key: str, zh: str, note: str) -> Field:
    return Field(key, zh, note, read_bool, _show_bool, ("是", "否"), width=8)


_CODES = r"[\s,，、;；]+"
# fmt: off
ENTRY_FIELDS: tuple[Field, ...] = (
    Field("code", "资源代码", "空白表示新资源，导入时分配代码 / blank for a new entry"),
    Field("name_zh", "资源名称", "必填 / required", required=True, width=28),
    Field("name_en", "英文名称", "English name", width=28),
    Field("summary_zh", "资源摘要", "必填，可多行 / required; may span lines", required=True,
          width=40),
    Field("summary_en", "英文摘要", "English summary", width=40),
    Field("provider_code", "提供单位代码", "必填：成员单位代码 / required: a member's code",
          required=True),
    _enum_field("base_library", "基础库", "可空 / optional", LIBRARIES,
                aliases={en.lower(): lib.value for lib, (_, _, en) in BASE_LIBRARIES.items()}),
    _enum_field("topic", "主题", "可空；也可填代码 01-21 / optional; or its code", TOPIC_LABELS,
                aliases={en.lower(): code for code, (_, en) in TOPICS.items()}),
    _enum_field("format", "资源格式", "空白为数据表 / blank means table", FORMAT_LABELS),
    _enum_field("sharing_type", "共享类型", "必填 / required", SHARING, required=True),
    Field("sharing_conditions", "共享条件", "有条件共享必填 / required when conditional",
          width=30),
    Field("legal_basis", "共享依据", "有条件共享、不予共享必填 / required unless unconditional",
          width=30),
    Field("sharing_modes", "共享方式", "可填多个，用顿号分隔 / several, separated by 、",
          _listed(_choice(MODES), _CODES), _show_list("、", MODES), tuple(MODES.values()),
          width=20),
    _enum_field("open_type", "开放类型", "空白为不予开放 / blank means not open", OPENING),
    Field("open_conditions", "开放条件", "有条件开放必填 / required when conditionally open",
          width=30),
    _enum_field("update_cycle", "更新周期", "空白为不定期 / blank means irregular", CYCLES),
    _enum_field("status", "状态", "仅供参考：由平台管理员发布、停用 / informational", STATUSES),
    Field("published_on", "发布日期", "仅供参考 / informational", read_date, _show_date,
          width=12),
    Field("steward_name", "资源管理员", "姓名 / name"),
    Field("steward_contact", "联系方式", "电话或邮箱 / phone or e-mail", width=20),
    Field("tags", "标签", "每行一个（单元格内 Alt+Enter 换行）/ one per line",
          _listed(read_text, r"\n"), _show_list("\n"), width=20),
    Field("related", "关联资源", "资源代码，用顿号分隔 / codes, separated by 、",
          _listed(read_text, _CODES), _show_list("、"), width=20),
)
ITEM_FIELDS: tuple[Field, ...] = (
    Field("name", "字段名", "必填：小写字母、数字、下划线 / required: a-z, 0-9, _", required=True),
    Field("name_zh", "中文名称", "必填 / required", required=True, width=20),
    Field("name_en", "英文名称", "English name", width=20),
    Field("type", "数据类型", "string、int64、float64、bool、date32、timestamp[us]、decimal(p,s)"),
    _bool_field("is_key", "主键", "是/否，空白为否 / blank means no"),
    _bool_field("nullable", "可空", "是/否，空白为是 / blank means yes"),
    _enum_field("sensitivity", "敏感级别", "L1-L4，空白为 L1；个人信息为 L2-L4", LEVELS, width=10),
    _bool_field("personal", "个人信息", "是/否，空白为否 / blank means no"),
    _enum_field("kind", "信息类别", "空白为通用 / blank means generic", KINDS),
    Field("description", "说明", "可空 / optional", width=30),
)
# fmt: on
ENTRY_KEYS = tuple(f.key for f in ENTRY_FIELDS)
ITEM_KEYS = tuple(f.key for f in ITEM_FIELDS)

# ---------------------------------------------------------------- entries as records


def export_json(
    session: Session, *, actor: Principal, codes: Sequence[str] | None = None
) -> dict[str, Any]:
    """The catalogue in the exchange shape: every entry the actor may see, or the given codes."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "resources": list(records(session, actor=actor, codes=codes)),
    }


def records(
    session: Session, *, actor: Principal, codes: Sequence[str] | None = None, chunk: int = 500
) -> Iterator[dict[str, Any]]:
    """Entries as records in code order, read a chunk at a time (NotFound for a hidden code)."""
    if codes is None:
        ids = visible_ids(session, actor=actor)
    else:
        found = [service.get_resource(session, actor=actor, code=c) for c in dict.fromkeys(codes)]
        ids = [r.id for r in sorted(found, key=lambda r: r.code)]
    return (
        record
        for start in range(0, len(ids), chunk)
        for record in records_of(session, ids[start : start + chunk])
    )


def visible_ids(
    session: Session, *, actor: Principal, codes: Sequence[str] | None = None
) -> list[int]:
    """Ids of the entries the actor may see (all, or those among ``codes``) in code order."""
    stmt = select(Resource.id).order_by(Resource.code)
    visible = repo.visible_to(actor)
    if visible is not None:
        stmt = stmt.where(visible)
    if codes is None:
        return list(session.scalars(stmt))
    return [
        i
        for start in range(0, len(codes), 500)
        for i in session.scalars(stmt.where(Resource.code.in_(codes[start : start + 500])))
    ]


def records_of(session: Session, ids: Sequence[int]) -> list[dict[str, Any]]:
    """The records of the entries ``ids``, in code order, read with three queries."""
    keys = [k for k in ENTRY_KEYS if k not in ("provider_code", "related")]
    rows = session.execute(
        select(Resource.id, Organisation.code, *_as_stored(Resource, keys))
        .join(Organisation, Organisation.id == Resource.provider_id)
        .where(Resource.id.in_(ids))
        .order_by(Resource.code)
    )
    entries = {}
    for id_, provider, *values in rows:
        record = dict(zip(keys, values, strict=True))
        published = record["published_on"]
        record |= {"provider_code": provider, "related": [], "items": []}
        record["published_on"] = published and published.isoformat()
        entries[id_] = {k: record[k] for k in (*ENTRY_KEYS, "items")}
    for owner, *values in session.execute(
        select(DataItem.resource_id, *_as_stored(DataItem, ITEM_KEYS))
        .where(DataItem.resource_id.in_(ids))
        .order_by(DataItem.resource_id, DataItem.position)
    ):
        entries[owner]["items"].append(dict(zip(ITEM_KEYS, values, strict=True)))
    for owner, code in session.execute(
        select(ResourceRelation.resource_id, Resource.code)
        .join(Resource, Resource.id == ResourceRelation.related_id)
        .where(ResourceRelation.resource_id.in_(ids))
        .order_by(Resource.code)
    ):
        entries[owner]["related"].append(code)
    return list(entries.values())


def _as_stored(table: type[Resource] | type[DataItem], keys: Sequence[str]) -> list[Any]:
    """The columns ``keys``, enumerations read as their stored text rather than as members."""
    columns = [getattr(table, k) for k in keys]
    return [type_coerce(c, String) if isinstance(c.type, Enum) else c for c in columns]


# ---------------------------------------------------------------- the import report


class ImportProblem(BaseModel):
    """One thing wrong in an import — 导入问题: where it is, what was there, how to fix it."""

    sheet: str | None = None
    cell: str | None = None
    row: int | None = None
    path: str | None = None
    column: str | None = None
    value: str | None = None
    message: str
    message_zh: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def where(self) -> str:
        """``资源目录!E12``, ``资源目录 row 12``, ``resources[3].topic`` or ``file``."""
        if self.sheet and self.cell:
            return f"{self.sheet}!{self.cell}"
        if self.sheet:
            return f"{self.sheet} row {self.row}" if self.row else self.sheet
        return self.path or "file"

    def line(self) -> str:
        """One printable line: where, the value found, then what to fix in Chinese and English."""
        found = f" “{self.value}”" if self.value is not None else ""
        column = f" ({self.column})" if self.column else ""
        return f"{self.where}{column}{found}: {self.message_zh} / {self.message}"


class ImportReport(BaseModel):
    """What an import did, or would do in a dry run — 导入报告."""

    source: Literal["xlsx", "json"]
    dry_run: bool = False
    created: list[str] = []
    updated: list[str] = []
    unchanged: int = 0
    problems: list[ImportProblem] = []

    def summary(self) -> str:
        """One line: counts, or the number of problems and that nothing was changed."""
        if self.problems:
            return (
                f"导入未执行：{len(self.problems)} 处问题，目录未作任何改动 / import refused: "
                f"{len(self.problems)} problem(s) found, nothing was changed"
            )
        counts = f"{len(self.created)} / {len(self.updated)} / {self.unchanged}"
        if self.dry_run:
            return (
                f"试导入，未保存：新建/更新/未变 {counts} / "
                f"dry run, nothing saved: created/updated/unchanged {counts}"
            )
        return f"导入完成：新建/更新/未变 {counts} / imported: created/updated/unchanged {counts}"

    def lines(self) -> list[str]:
        """The summary and one line per problem, for a terminal."""
        return [self.summary(), *(p.line() for p in self.problems)]


class ImportRejected(InvalidInput):
    """The import had problems and changed nothing; ``report`` lists every one (HTTP 422)."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(report.summary(), details=report.model_dump(mode="json"))
        self.report = report


# ---------------------------------------------------------------- what was read

Locate = Callable[[str], dict[str, Any]]


@dataclass
class Part:
    """An entry or data item as read from a file, and where each of its values came from."""

    values: dict[str, Any]
    where: Locate
    unreadable: set[str] = field(default_factory=set)


@dataclass
class Draft(Part):
    """One entry to import — 待导入条目 — with its data items in order."""

    items: list[Part] = field(default_factory=list)


def read_part(
    raw: dict[str, Any], fields: Sequence[Field], where: Locate, problems: list[ImportProblem]
) -> Part:
    """The values of ``raw`` read by ``fields``; each value that cannot be read is a problem."""
    part = Part({}, where)
    for f in fields:
        try:
            part.values[f.key] = f.read(raw.get(f.key))
        except BadValue as bad:
            part.unreadable.add(f.key)
            problems.append(problem(where(f.key), raw.get(f.key), bad.en, bad.zh))
    return part


def problem(where: dict[str, Any], value: Any, en: str, zh: str) -> ImportProblem:
    """A problem at ``where`` (see ``ImportProblem``), showing the value as a cell would."""
    if isinstance(value, list):
        value = "、".join(map(str, value)) or None
    shown = None if value is None else str(value)
    return ImportProblem(**where, value=shown, message=en, message_zh=zh)


def read_json(data: dict[str, Any] | bytes, problems: list[ImportProblem]) -> list[Draft]:
    """The entries of an exchange document; a wrong shape is a problem at its path."""
    if isinstance(data, bytes | bytearray):
        try:
            data = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(problem({}, None, f"not a JSON document: {exc}", "文件不是 JSON 文档"))
            return []
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
        en = f'not a catalogue export: expected {{"format": "{FORMAT}", "version": {VERSION}}}'
        problems.append(problem({}, None, en, "文件不是海河目录导出文件（format/version 不符）"))
        return []
    resources = data.get("resources")
    if not isinstance(resources, list):
        problems.append(problem({"path": "resources"}, None, "expected a list", "应为列表"))
        return []
    drafts = []
    for n, raw in enumerate(resources):
        at = f"resources[{n}]"
        if not _object(raw, at, ENTRY_KEYS + ("items",), problems):
            continue
        part = read_part(raw, ENTRY_FIELDS, _at(at), problems)
        draft = Draft(part.values, part.where, part.unreadable)
        raw_items = raw.get("items") or []
        if not isinstance(raw_items, list):
            problems.append(problem(_at(at)("items"), None, "expected a list", "应为列表"))
            raw_items = []
        for i, item in enumerate(raw_items):
            if _object(item, f"{at}.items[{i}]", ITEM_KEYS, problems):
                draft.items.append(read_part(item, ITEM_FIELDS, _at(f"{at}.items[{i}]"), problems))
        drafts.append(draft)
    return drafts


def _at(base: str) -> Locate:
    return lambda key: {"path": f"{base}.{key}", "column": key}


def _object(raw: Any, at: str, keys: Sequence[str], problems: list[ImportProblem]) -> bool:
    if not isinstance(raw, dict):
        problems.append(problem({"path": at}, None, "expected an object", "应为对象"))
        return False
    for key in raw.keys() - set(keys):
        en = f"unknown field {key!r}; the fields are {', '.join(keys)}"
        problems.append(problem({"path": f"{at}.{key}"}, None, en, f"未知字段“{key}”"))
    return True
