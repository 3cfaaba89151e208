"""The catalogue in and out of spreadsheets and JSON — 目录导入导出, all or nothing.

A workbook has three sheets: 资源目录 (one row per entry), 信息项 (one row per data item) and
说明 (what each column means and allows). An import reads every cell first; a row with a code
updates that entry through the service, a row without one describes a new entry. If anything is
wrong — a cell, a rule the service enforces, a permission — the report names every problem with
its cell and nothing is changed. ``restore=True`` lets the platform admin load an export into an
installation that does not have those entries yet, keeping their codes, status and dates.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator, Sequence
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.datavalidation import DataValidation
from sqlalchemy.orm import Session

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
)
from haihe.catalogue.importing import ENTRIES, ITEMS, import_drafts
from haihe.catalogue.topics import TOPICS
from haihe.core.auth import Principal

__all__ = [
    "ImportProblem",
    "ImportRejected",
    "ImportReport",
    "export_json",
    "export_xlsx",
    "import_json",
    "import_xlsx",
]

GUIDE = "说明"
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
    return import_drafts(session, actor, drafts, problems, "xlsx", dry_run=dry_run, restore=restore)


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
    return import_drafts(session, actor, drafts, problems, "json", dry_run=dry_run, restore=restore)


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
