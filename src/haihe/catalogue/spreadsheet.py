"""The catalogue in and out of spreadsheets and JSON — 目录导入导出, all or nothing.

A workbook has three sheets: 资源目录 (one row per entry), 信息项 (one row per data item) and
说明 (what each column means and allows). An import reads every cell first; a row with a code
updates that entry through the service, a row without one describes a new entry. If anything is
wrong — a cell, a rule the service enforces, a permission — the report names every problem with
its cell and nothing is changed. ``restore=True`` lets the platform admin load an export into an
installation that does not have those entries yet, keeping their codes, status and dates.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import column_index_from_string, get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.datavalidation import DataValidation
from pydantic import ValidationError
from sqlalchemy.orm import Session

from haihe.catalogue import repository as repo
from haihe.catalogue import service
from haihe.catalogue.catalogue_json import (
    ENTRY_FIELDS,
    ITEM_FIELDS,
    ITEM_KEYS,
    Draft,
    Field,
    ImportProblem,
    ImportRejected,
    ImportReport,
    Locate,
    Part,
    export_json,
    problem,
    read_json,
    read_part,
    read_position,
    records,
    records_of,
    visible_ids,
)
from haihe.catalogue.models import Resource, ResourceStatus
from haihe.catalogue.schemas import ResourceIn, ResourceUpdate
from haihe.catalogue.topics import BASE_LIBRARIES, TOPICS
from haihe.core.auth import Principal
from haihe.core.errors import HaiheError
from haihe.orgs import repository as orgs_repo

__all__ = [
    "ImportProblem",
    "ImportRejected",
    "ImportReport",
    "export_json",
    "export_xlsx",
    "import_json",
    "import_xlsx",
]

ENTRIES, ITEMS, GUIDE = "资源目录", "信息项", "说明"
ITEM_COLUMNS: tuple[Field, ...] = (
    Field("resource_code", "资源代码", "所属资源的代码；新资源填资源名称 / the entry's code "
          "(a new entry's name_zh)", required=True),
    Field("position", "序号", "在资源中的顺序，从 1 起 / order within the entry, from 1",
          read_position, width=8),
    *ITEM_FIELDS,
)  # fmt: skip
LAST_ROW = 1_048_576

# ---------------------------------------------------------------- export


def export_xlsx(session: Session, *, actor: Principal, codes: Sequence[str] | None = None) -> bytes:
    """The catalogue as an xlsx workbook, streamed: every entry the actor may see, or ``codes``."""
    chosen = records(session, actor=actor, codes=codes)  # NotFound before a sheet is begun
    book = Workbook(write_only=True)
    entries, items = _sheet(book, ENTRIES, ENTRY_FIELDS), _sheet(book, ITEMS, ITEM_COLUMNS)
    for record in chosen:
        entries.append([_cell(entries, f.show(record[f.key])) for f in ENTRY_FIELDS])
        for n, item in enumerate(record["items"], start=1):
            shown = [_cell(items, f.show(item[f.key])) for f in ITEM_FIELDS]
            items.append([record["code"], n, *shown])
    _guide(book)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _sheet(book: Any, title: str, fields: Sequence[Field]) -> Any:
    sheet = book.create_sheet(title)
    for n, f in enumerate(fields, start=1):
        letter = get_column_letter(n)
        sheet.column_dimensions[letter].width = f.width
        if f.choices and f.key != "sharing_modes":  # a drop-down picks one value only
            check = DataValidation(
                type="list",
                formula1='"' + ",".join(f.choices) + '"',
                allow_blank=True,
                showErrorMessage=True,
                errorStyle="warning",
                errorTitle="不是可选值 / not an allowed value",
                error=f"可选：{'、'.join(f.choices)}（也可填英文值 / or the English value）",
            )
            check.add(f"{letter}2:{letter}{LAST_ROW}")
            sheet.data_validations.append(check)
    sheet.freeze_panes = "A2"
    sheet.append([_heading(sheet, f.header) for f in fields])
    return sheet


def _heading(sheet: Any, text: str) -> Any:
    cell = WriteOnlyCell(sheet, value=text)
    cell.font = Font(bold=True)
    cell.fill = PatternFill("solid", fgColor="DDEBF7")
    cell.alignment = Alignment(vertical="center")
    return cell


def _cell(sheet: Any, value: Any) -> Any:
    """The value, kept as text where Excel would read it as a formula or an error code."""
    if isinstance(value, str) and (value.startswith("=") or value in ERROR_CODES):
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"
        return cell
    return value


def _guide(book: Any) -> None:
    sheet = book.create_sheet(GUIDE)
    for letter, width in zip("ABCDE", (10, 28, 60, 8, 60), strict=True):
        sheet.column_dimensions[letter].width = width
    for line in (
        "海河政务信息资源目录 — 导入导出说明 / Haihe catalogue workbook",
        "资源目录：每行一个资源；资源代码为空表示新资源，导入时分配代码。"
        " / One row per entry; leave the code blank for a new entry.",
        "信息项：每行一个信息项，用资源代码（新资源用资源名称）对应到资源。"
        " / One row per data item, linked by the entry's code (a new entry's name).",
        "导入要么全部成功，要么不做任何改动，并列出每个有问题的单元格。"
        " / An import applies everything or nothing, listing every bad cell.",
        "状态、发布日期仅供参考：发布和停用由平台管理员操作。"
        " / Status and publication date are informational: the platform admin publishes.",
        "可选值列可填中文或英文值。 / Columns with choices take the Chinese or the English value.",
        "",
    ):
        sheet.append([line])
    sheet.append(
        [_heading(sheet, h) for h in ("工作表", "列 column", "说明 note", "必填", "可选值")]
    )
    for title, fields in ((ENTRIES, ENTRY_FIELDS), (ITEMS, ITEM_COLUMNS)):
        for f in fields:
            choices = _GUIDE_VALUES.get(f.key) or "、".join(f.choices)
            sheet.append([title, f.header, f.note, "是" if f.required else "", choices])


_GUIDE_VALUES = {"topic": "、".join(f"{code} {zh}" for code, (zh, _) in TOPICS.items())}

# ---------------------------------------------------------------- reading a workbook


def import_xlsx(
    session: Session,
    *,
    actor: Principal,
    data: bytes,
    dry_run: bool = False,
    restore: bool = False,
) -> ImportReport:
    """The report of importing a workbook (ImportRejected listing every problem, if any)."""
    problems: list[ImportProblem] = []
    drafts = _read_workbook(data, problems)
    return _import(session, actor, drafts, problems, "xlsx", dry_run=dry_run, restore=restore)


def import_json(
    session: Session,
    *,
    actor: Principal,
    data: dict[str, Any] | bytes,
    dry_run: bool = False,
    restore: bool = False,
) -> ImportReport:
    """The report of importing an exchange document (ImportRejected listing every problem)."""
    problems: list[ImportProblem] = []
    drafts = read_json(data, problems)
    return _import(session, actor, drafts, problems, "json", dry_run=dry_run, restore=restore)


def _read_workbook(data: bytes, problems: list[ImportProblem]) -> list[Draft]:
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError):
        en = "the file is not an xlsx workbook; save it from Excel or WPS as .xlsx"
        problems.append(
            problem({}, None, en, "文件不是 xlsx 工作簿，请用 Excel 或 WPS 另存为 .xlsx")
        )
        return []
    try:
        drafts = _read_entries(book, problems)
        _read_items(book, drafts, problems)
    finally:
        book.close()
    return drafts


Rows = Iterator[tuple[int, dict[str, Any]]]


def _table(
    book: Any, title: str, fields: Sequence[Field], problems: list[ImportProblem]
) -> tuple[dict[str, int], Rows] | None:
    """The columns found in a sheet's header and its non-blank rows; None if there is no sheet."""
    if title not in book.sheetnames:
        en = f"the workbook has no sheet {title!r}; keep the sheets of the exported workbook"
        problems.append(problem({"sheet": title}, None, en, f"缺少工作表“{title}”"))
        return None
    rows = book[title].iter_rows(values_only=True)
    names = {_squash(n): f.key for f in fields for n in (f.header, f.key, f.zh)}
    columns: dict[str, int] = {}
    unknown: list[tuple[int, str]] = []
    for index, text in enumerate(next(rows, ())):
        key = names.get(_squash(str(text))) if text is not None else None
        if key is not None and key not in columns:
            columns[key] = index
        elif text is not None and str(text).strip():
            unknown.append((index, str(text)))
    for index, text in unknown:
        at = {"sheet": title, "row": 1, "cell": f"{get_column_letter(index + 1)}1"}
        expected = fields[index] if index < len(fields) else None
        if expected is not None and expected.key not in columns:
            columns[expected.key] = index  # read on as that column, to check its cells too
            en, zh = f"the header should be {expected.header!r}", f"列标题应为“{expected.header}”"
            problems.append(problem(at | {"column": expected.key}, text, en, zh))
        else:
            en = f"unknown or repeated column; the columns are {', '.join(f.key for f in fields)}"
            problems.append(problem(at, text, en, "未知或重复的列"))
    for f in fields:
        if f.key not in columns:
            en, zh = f"column {f.header!r} is missing", f"缺少列“{f.header}”"
            problems.append(problem({"sheet": title, "row": 1, "column": f.key}, None, en, zh))

    def body() -> Rows:
        for number, row in enumerate(rows, start=2):
            if any(v is not None and str(v).strip() for v in row):
                yield number, {k: row[i] if i < len(row) else None for k, i in columns.items()}

    return columns, body()


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _cells(title: str, number: int, columns: dict[str, int]) -> Locate:
    def where(key: str) -> dict[str, Any]:
        at: dict[str, Any] = {"sheet": title, "row": number, "column": key}
        if key in columns:
            at["cell"] = f"{get_column_letter(columns[key] + 1)}{number}"
        return at

    return where


def _read_entries(book: Any, problems: list[ImportProblem]) -> list[Draft]:
    table = _table(book, ENTRIES, ENTRY_FIELDS, problems)
    if table is None:
        return []
    columns, rows = table
    missing = {f.key for f in ENTRY_FIELDS} - columns.keys()
    drafts = []
    for number, raw in rows:
        part = read_part(raw, ENTRY_FIELDS, _cells(ENTRIES, number, columns), problems)
        drafts.append(Draft(part.values, part.where, part.unreadable | missing))
    return drafts


def _read_items(book: Any, drafts: list[Draft], problems: list[ImportProblem]) -> None:
    table = _table(book, ITEMS, ITEM_COLUMNS, problems)
    if table is None:
        for draft in drafts:
            draft.unreadable.add("items")
        return
    columns, rows = table
    missing = {f.key for f in ITEM_COLUMNS} - columns.keys()
    by_code = {d.values["code"]: d for d in drafts if d.values.get("code")}
    by_name: dict[str, list[Draft]] = {}
    for d in drafts:
        if not d.values.get("code") and d.values.get("name_zh"):
            by_name.setdefault(d.values["name_zh"].strip(), []).append(d)
    found: dict[int, list[tuple[int, Part]]] = {}
    for number, raw in rows:
        part = read_part(raw, ITEM_COLUMNS, _cells(ITEMS, number, columns), problems)
        part.unreadable |= missing
        ref = part.values["resource_code"]
        if "resource_code" in part.unreadable:
            continue
        owners = [by_code[ref]] if ref in by_code else by_name.get((ref or "").strip(), [])
        if len(owners) == 1:
            position = part.values["position"]
            found.setdefault(id(owners[0]), []).append((position or LAST_ROW + number, part))
            continue
        en = (
            "several new entries have this name; give them different names"
            if owners
            else f"required: the code of an entry in sheet {ENTRIES} (a new entry's name)"
            if ref is None
            else f"no entry in sheet {ENTRIES} has this code (or, if new, this name)"
        )
        zh = "对应不到唯一的资源：请填写资源目录中的资源代码（新资源填资源名称）"
        problems.append(problem(part.where("resource_code"), ref, en, zh))
    for draft in drafts:
        ordered = sorted(found.get(id(draft), []), key=lambda pair: pair[0])
        for (before, _), (position, part) in zip(ordered, ordered[1:], strict=False):
            if position == before:
                en, zh = "this position is used twice in the entry", "同一资源中序号重复"
                problems.append(problem(part.where("position"), position, en, zh))
        draft.items = [
            Part({k: p.values[k] for k in ITEM_KEYS}, p.where, p.unreadable) for _, p in ordered
        ]


# ---------------------------------------------------------------- importing, all or nothing


Action = Literal["create", "restore", "update", "unchanged"]


@dataclass
class _Step:
    """What importing one entry does: create, restore or update it."""

    draft: Draft
    action: Action
    data: ResourceIn
    code: str | None


def _import(
    session: Session,
    actor: Principal,
    drafts: list[Draft],
    problems: list[ImportProblem],
    source: Literal["xlsx", "json"],
    *,
    dry_run: bool,
    restore: bool,
) -> ImportReport:
    steps, unchanged = _plan(session, actor, drafts, problems, restore=restore)
    report = ImportReport(source=source, dry_run=dry_run, unchanged=unchanged)
    # Every step is tried once inside a savepoint that is always rolled back, so the service's own
    # rules are checked for every row. Releasing the outermost savepoint would commit on SQLite,
    # so a clean import is then applied a second time, directly in the caller's transaction.
    savepoint = session.begin_nested()
    try:
        _apply(session, actor, steps, report, problems)
    finally:
        savepoint.rollback()
    report.problems = sorted(problems, key=_reading_order)
    if problems:
        raise ImportRejected(report)
    if dry_run:
        return report
    final = ImportReport(source=source, unchanged=unchanged)
    _apply(session, actor, steps, final, None)
    return final


def _plan(
    session: Session,
    actor: Principal,
    drafts: list[Draft],
    problems: list[ImportProblem],
    *,
    restore: bool,
) -> tuple[list[_Step], int]:
    """What to do with each entry, and how many are unchanged; each fault found is a problem."""
    seen: set[str] = set()
    steps, unchanged = [], 0
    for start in range(0, len(drafts), 500):  # the entries as they are, a chunk at a time
        chunk = drafts[start : start + 500]
        codes = [d.values["code"] for d in chunk if d.values.get("code")]
        ids = visible_ids(session, actor=actor, codes=codes)
        current = {record["code"]: record for record in records_of(session, ids)}
        for draft in chunk:
            data = _validate(draft, problems)
            values = draft.values
            code: str | None = values.get("code")
            if code is not None and code in seen:
                faults = [("code", "this code appears twice in the file", "文件中资源代码重复")]
            elif code is not None and code in current:
                faults = _check_existing(current[code], values)
            else:
                faults = _check_new(session, actor, values, restore=restore)
            if code is not None:
                seen.add(code)
            for key, en, zh in faults:
                problems.append(problem(draft.where(key), values.get(key), en, zh))
            if faults or data is None:
                continue
            action = _action(data, code, current)
            if action == "unchanged":
                unchanged += 1
            elif action == "update" and not _can_edit(session, actor, str(code)):
                en = (
                    f"only the admin of {values['provider_code']} or the platform admin may "
                    "change this entry; remove the row or leave it as exported"
                )
                zh = "只有提供单位的管理员或平台管理员可以修改该资源：请删除该行或保持原样"
                problems.append(problem(draft.where("code"), code, en, zh))
            else:
                steps.append(_Step(draft, action, data, code))
    return steps, unchanged


def _can_edit(session: Session, actor: Principal, code: str) -> bool:
    resource = repo.resource_by_code(session, code)
    return resource is not None and service.can_edit(actor, resource)


def _action(data: ResourceIn, code: str | None, current: dict[str, dict[str, Any]]) -> Action:
    if code is None:
        return "create"
    if code not in current:
        return "restore"
    mine = data.model_dump(mode="json") | {"related": sorted(data.related)}
    theirs = {k: v for k, v in current[code].items() if k not in ("code", "status", "published_on")}
    return "unchanged" if mine == theirs else "update"


Fault = tuple[str, str, str]  # the field at fault, what to fix in English and in Chinese


def _check_existing(record: dict[str, Any], values: dict[str, Any]) -> list[Fault]:
    faults = []
    for key, label in (("status", "状态"), ("published_on", "发布日期")):
        if values.get(key) not in (None, record[key]):
            was = record[key] or "empty"
            en = (
                f"the entry's {key} is {was}: it changes only when the platform admin publishes "
                "or retires the entry, so keep the exported value"
            )
            zh = f"{label}与目录不一致（{record[key] or '空'}）：由平台管理员发布、停用，请保留原值"
            faults.append((key, en, zh))
    provider = values.get("provider_code")
    if provider is not None and provider != record["provider_code"]:
        en = f"an entry keeps its provider ({record['provider_code']}); describe a new entry"
        faults.append(("provider_code", en, "资源的提供单位不能修改，请登记新资源"))
    return faults


def _check_new(
    session: Session, actor: Principal, values: dict[str, Any], *, restore: bool
) -> list[Fault]:
    code, provider_code = values.get("code"), values.get("provider_code")
    if code is not None and not (restore and actor.is_platform_admin):
        en = "no entry has this code; leave the code blank to describe a new entry"
        if restore:
            en += " (only the platform admin restores entries with their codes)"
        return [("code", en, "目录中没有该资源代码：新资源请将资源代码留空")]
    faults = []
    provider = orgs_repo.org_by_code(session, provider_code) if provider_code else None
    if provider_code is not None and provider is None:
        en = f"no member organisation has the code {provider_code!r}"
        faults.append(("provider_code", en, "没有该代码的成员单位"))
    elif provider is not None and not actor.admin_of(provider.id):
        en = "you may describe only your own organisation's entries"
        faults.append(("provider_code", en, "只能登记本单位的资源"))
    if code is not None and provider_code is not None and not _well_formed(code, provider_code):
        en = "a code is a classification code and a six-digit sequence, e.g. 101-000001"
        faults.append(("code", en, "资源代码应为分类代码-六位序号，如 101-000001"))
    for key, label in (("status", "状态"), ("published_on", "发布日期")):
        if code is None and values.get(key) not in (None, ResourceStatus.DRAFT.value):
            en = f"a new entry is a draft; leave {key} blank (the platform admin publishes)"
            faults.append((key, en, f"新资源为草稿：{label}请留空"))
    return faults


def _well_formed(code: str, provider_code: str) -> bool:
    classification, _, sequence = code.rpartition("-")
    prefixes = {"1" + c for c, _, _ in BASE_LIBRARIES.values()} | {"2" + t for t in TOPICS}
    return (classification in prefixes or classification == "3" + provider_code) and bool(
        re.fullmatch(r"\d{6}", sequence)
    )


_ZH = {
    "missing": "必填，不能为空",
    "string_too_long": "内容过长",
    "string_pattern_mismatch": "只能用小写字母、数字和下划线，并以字母开头",
    "too_short": "每个资源至少要有一个信息项（见信息项工作表）",
}


def _validate(draft: Draft, problems: list[ImportProblem]) -> ResourceIn | None:
    """The entry as the service takes it; each value the schema refuses is a problem."""
    fields = {k: v for k, v in draft.values.items() if v is not None}
    for key in ("code", "status", "published_on"):
        fields.pop(key, None)
    fields["items"] = [{k: v for k, v in p.values.items() if v is not None} for p in draft.items]
    try:
        data = ResourceIn(**fields)
    except ValidationError as exc:
        for error in exc.errors():
            loc = error["loc"]
            part: Part = draft
            if loc[0] == "items" and len(loc) > 2:
                part, loc = draft.items[int(loc[1])], loc[2:]
            key = str(loc[0])
            if key in part.unreadable:
                continue
            en = error["msg"].removeprefix("Value error, ")
            if error["type"] == "too_short":
                en = f"an entry needs at least one data item in sheet {ITEMS}"
            zh = _ZH.get(error["type"], "取值不符合要求：" + en)
            problems.append(problem(part.where(key), part.values.get(key), en, zh))
        return None
    unreadable = draft.unreadable or any(p.unreadable for p in draft.items)
    return None if unreadable else data


def _apply(
    session: Session,
    actor: Principal,
    steps: list[_Step],
    report: ImportReport,
    problems: list[ImportProblem] | None,
) -> None:
    """Carry out the steps; given ``problems``, each in its own savepoint, collecting what the
    service refuses rather than stopping at it."""
    restored: dict[int, Resource] = {}

    def attempt(step: _Step, work: Callable[[_Step], None]) -> None:
        if problems is None:
            return work(step)
        savepoint = session.begin_nested()
        try:
            work(step)
            session.flush()
        except HaiheError as exc:
            savepoint.rollback()
            problems.extend(_blame(step.draft, exc))
        else:
            savepoint.commit()

    def restore(step: _Step) -> None:
        restored[id(step)] = _restore(session, actor, step)

    def create(step: _Step) -> None:
        report.created.append(service.create_resource(session, actor=actor, data=step.data).code)

    def update(step: _Step) -> None:
        change = ResourceUpdate(**step.data.model_dump(exclude={"provider_code"}))
        service.update_resource(session, actor=actor, code=str(step.code), data=change)
        report.updated.append(str(step.code))

    def relate(step: _Step) -> None:
        _relate(session, actor, restored[id(step)], step.data.related)
        report.created.append(str(step.code))

    # restored entries exist before any relation to them is made
    for step in steps:
        if step.action == "restore":
            attempt(step, restore)
    for step in steps:
        if step.action in ("create", "update"):
            attempt(step, create if step.action == "create" else update)
    for step in steps:
        if id(step) in restored:
            attempt(step, relate)
    report.created.sort()
    report.updated.sort()


def _restore(session: Session, actor: Principal, step: _Step) -> Resource:
    """A new entry keeping the code, status and publication date it had where it was exported."""
    values = step.draft.values
    published = values.get("published_on")
    return service.restore_resource(
        session,
        actor=actor,
        data=step.data,
        code=str(step.code),
        status=ResourceStatus(values.get("status") or ResourceStatus.DRAFT),
        published_on=dt.date.fromisoformat(published) if published else None,
    )


def _relate(session: Session, actor: Principal, resource: Resource, related: list[str]) -> None:
    service.finish_restore(session, actor=actor, resource=resource, related=related)


_ITEM_BLAME = (
    ("twice", "name"),
    ("ID numbers", "type"),
    ("personal", "sensitivity"),
    ("is a key", "nullable"),
)
_ENTRY_BLAME = (
    ("sharing_conditions", "sharing_conditions"),
    ("legal_basis", "legal_basis"),
    ("open_conditions", "open_conditions"),
    ("sharing mode", "sharing_modes"),
    ("related", "related"),
    ("organisation", "provider_code"),
    ("retired", "status"),
)


def _blame(draft: Draft, exc: HaiheError) -> list[ImportProblem]:
    """The service's refusal, pinned to the cells it names that are blank (else the first it
    names, else the row)."""
    message = exc.message
    named = re.search(r"data item '([^']*)'", message)
    part: Part = draft
    keys = [key for needle, key in _ENTRY_BLAME if needle in message]
    if named is not None:
        parts = [p for p in draft.items if p.values.get("name") == named.group(1)]
        part = parts[-1] if parts else draft
        keys = [key for needle, key in _ITEM_BLAME if needle in message] or ["name"]
    blank = [k for k in keys if not part.values.get(k)]
    zh = "不符合目录规则：" + message
    return [
        problem(part.where(key), part.values.get(key), message, zh)
        for key in (blank or keys[:1] or ["row"])
    ]


_SHEETS = {None: 0, ENTRIES: 1, ITEMS: 2}


def _reading_order(p: ImportProblem) -> tuple[Any, ...]:
    column = re.match(r"[A-Z]+", p.cell or "")
    numbers = tuple(int(n) for n in re.findall(r"\[(\d+)\]", p.path or ""))
    return (
        _SHEETS.get(p.sheet, 3),
        p.row or 0,
        column_index_from_string(column.group()) if column else 0,
        numbers,
    )
