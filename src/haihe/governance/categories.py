"""Event categories — 事件类别: the taxonomy, each with its default command level, handling
department and deadline. Haihe ships a set (``data/categories.toml``); a city loads its own
file in the same shape (``haihe governance categories import FILE``) or edits one over REST.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from haihe.audit import service as audit
from haihe.core import calendar
from haihe.core.auth import Principal
from haihe.core.db import utcnow
from haihe.core.errors import Forbidden, InvalidInput, NotFound
from haihe.governance import repository as repo
from haihe.governance.models import Category
from haihe.governance.schemas import CategoryIn

BUILT_IN = Path(__file__).resolve().parent / "data" / "categories.toml"
CODE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def parse_toml(text: str) -> dict[str, CategoryIn]:
    """The categories of a TOML text (one table per code); InvalidInput naming the bad one."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"the categories file is not TOML: {exc}") from None
    out: dict[str, CategoryIn] = {}
    for code, body in doc.items():
        check_code(code)
        if not isinstance(body, dict):
            raise InvalidInput(f"category {code}: expected a table of fields")
        try:
            out[code] = CategoryIn.model_validate(body)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise InvalidInput(f"category {code}: {where}: {err['msg']}") from None
    if not out:
        raise InvalidInput("the categories file defines no category")
    return out


def check_code(code: str) -> None:
    if not code or len(code) > 32 or not set(code) <= CODE_CHARS:
        raise InvalidInput(
            f"category code {code!r}: use 1-32 upper-case letters, digits, '_' or '-'"
        )


def import_categories(
    session: Session, *, actor: Principal, text: str | None = None
) -> tuple[int, int]:
    """Create or update the categories of ``text`` (None: the built-in set); (created, updated)."""
    if not actor.is_platform_admin:
        raise Forbidden("only the platform admin may change event categories")
    parsed = parse_toml(text if text is not None else BUILT_IN.read_text(encoding="utf-8"))
    created = updated = 0
    for code, data in parsed.items():
        if _apply(session, code, data):
            created += 1
        else:
            updated += 1
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="governance.categories.import",
        detail={"created": created, "updated": updated},
    )
    return created, updated


def put_category(session: Session, *, actor: Principal, code: str, data: CategoryIn) -> Category:
    """Create or replace the category ``code``."""
    if not actor.is_platform_admin:
        raise Forbidden("only the platform admin may change event categories")
    check_code(code)
    _apply(session, code, data)
    session.flush()
    audit.record(session, actor=actor, action="governance.categories.put", detail={"code": code})
    found = repo.category(session, code)
    assert found is not None
    return found


def _apply(session: Session, code: str, data: CategoryIn) -> bool:
    row = repo.category(session, code)
    created = row is None
    if row is None:
        row = Category(code=code)
        session.add(row)
    fields: dict[str, Any] = data.model_dump()
    for name, value in fields.items():
        setattr(row, name, value)
    row.updated_at = utcnow()
    return created


def get_category(session: Session, *, code: str, active_only: bool = True) -> Category:
    """The category ``code``; InvalidInput naming the known codes when there is none."""
    row = repo.category(session, code)
    if row is None or (active_only and not row.active):
        known = ", ".join(c.code for c in repo.categories(session, active_only=True))
        raise InvalidInput(
            f"unknown event category {code!r}; known: {known or 'none (import categories first)'}"
        )
    return row


def find_category(session: Session, *, code: str) -> Category:
    row = repo.category(session, code)
    if row is None:
        raise NotFound(f"category {code!r} does not exist")
    return row


def list_categories(session: Session, *, active_only: bool = True) -> Sequence[Category]:
    return repo.categories(session, active_only=active_only)


def name_of(category: Category, lang: str) -> str:
    return category.name_en if lang == "en" else category.name_zh


def due_at(session: Session, category: Category, start: dt.datetime) -> dt.datetime:
    """When an event of ``category`` reported (or reopened) at ``start`` is due.

    Hours are counted on the clock; working days on the city's calendar (holidays and 调休
    working weekends from ``haihe.core.calendar``), the event falling due at the end of the
    n-th working day after the report day, China time — the 12345 hotline's practice.
    """
    if category.deadline_working_days is None:
        return start + dt.timedelta(hours=category.deadline_hours or 24)
    day = calendar.add_working_days(
        session, calendar.city_today(start), category.deadline_working_days
    )
    end = dt.datetime.combine(day, dt.time(23, 59, 59), calendar.CHINA_TIME)
    return end.astimezone(dt.UTC)


def due_at_many(
    session: Session,
    category: Category,
    start: dt.datetime,
    cache: dict[tuple[str, dt.date], dt.datetime],
) -> dt.datetime:
    """``due_at`` for many events at once: a working-day deadline is worked out once per
    category and report day (China time) and kept in ``cache``."""
    if category.deadline_working_days is None:
        return due_at(session, category, start)
    key = (category.code, calendar.city_today(start))
    if key not in cache:
        cache[key] = due_at(session, category, start)
    return cache[key]


def deadline_label(category: Category, lang: str = "zh") -> str:
    """The deadline in words: "2 个工作日" / "4 小时" (or in English)."""
    if category.deadline_working_days is not None:
        n = category.deadline_working_days
        return f"{n} working day{'s' * (n != 1)}" if lang == "en" else f"{n} 个工作日"
    n = category.deadline_hours or 0
    return f"{n} hour{'s' * (n != 1)}" if lang == "en" else f"{n} 小时"
