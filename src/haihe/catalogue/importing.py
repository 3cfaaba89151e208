"""Importing the catalogue, all or nothing — 目录导入: plan every entry, try every step, apply.

The readers (of a workbook or an exchange document) turn a file into drafts and problems; here each
draft is checked against the catalogue as it is, every step is tried once inside a savepoint that is
always rolled back, and only a clean import is applied, in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from openpyxl.utils import column_index_from_string
from pydantic import ValidationError
from sqlalchemy.orm import Session

from haihe.catalogue import repository as repo
from haihe.catalogue import service
from haihe.catalogue.catalogue_json import (
    Draft,
    ImportProblem,
    ImportRejected,
    ImportReport,
    Part,
    problem,
    records_of,
    visible_ids,
)
from haihe.catalogue.models import Resource, ResourceStatus
from haihe.catalogue.schemas import ResourceIn, ResourceUpdate
from haihe.catalogue.topics import BASE_LIBRARIES, TOPICS
from haihe.core.auth import Principal
from haihe.core.errors import HaiheError
from haihe.orgs import service as orgs

__all__ = ["ENTRIES", "ITEMS", "import_drafts"]

ENTRIES, ITEMS = "资源目录", "信息项"  # the workbook's sheets that problems are reported against

Action = Literal["create", "restore", "update", "unchanged"]


@dataclass
class _Step:
    """What importing one entry does: create, restore or update it."""

    draft: Draft
    action: Action
    data: ResourceIn
    code: str | None


def import_drafts(
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
    provider = orgs.find_org(session, code=provider_code) if provider_code else None
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
