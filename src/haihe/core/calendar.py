"""The city's working-day calendar — 工作日: Monday to Friday, less holidays, plus 调休 weekends.

Every deadline the platform counts in working days is counted here: approvals of 有条件共享
requests (10 working days), reviews of 有条件开放 applications (2), governance deadlines. The
exceptions live in one table (``CalendarDay``); the city loads the State Council General Office's
notice on public holidays (国务院办公厅关于部分节假日安排的通知) each year from a TOML or CSV file
(``haihe exchange calendar import``) or through REST. It sits in the kit because every domain that
keeps deadlines needs it and none of them owns it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Date, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from haihe.core.db import Base, str_enum
from haihe.core.errors import InvalidInput


class DayKind(StrEnum):
    """A calendar exception: a holiday on a weekday, or a working weekend day (调休)."""

    HOLIDAY = "holiday"  # 法定节假日
    WORKDAY = "workday"  # 调休上班


class CalendarDay(Base):
    """An exception to Monday-Friday working days — 节假日安排 (holidays and 调休 workdays)."""

    __tablename__ = "calendar_days"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    kind: Mapped[DayKind] = mapped_column(str_enum(DayKind, "day_kind"))
    name: Mapped[str] = mapped_column(String(100))


# The city's clock: China Standard Time, no daylight saving.
CHINA_TIME = dt.timezone(dt.timedelta(hours=8))
# No run of holidays is longer than this; a window this wide always holds the answer.
_SPAN_PER_DAY = 3
_SLACK = 40


@dataclass(frozen=True)
class DayEntry:
    """One exception as read from a file or a form."""

    day: dt.date
    kind: DayKind
    name: str


def city_today(now: dt.datetime) -> dt.date:
    """The date in the city (Asia/Shanghai) at the instant ``now``."""
    return now.astimezone(CHINA_TIME).date()


def calendar_days(session: Session, start: dt.date, end: dt.date) -> Sequence[CalendarDay]:
    """Calendar exceptions from ``start`` to ``end``, both included, in order."""
    return session.scalars(
        select(CalendarDay)
        .where(CalendarDay.day >= start, CalendarDay.day <= end)
        .order_by(CalendarDay.day)
    ).all()


def _exceptions(session: Session, start: dt.date, end: dt.date) -> dict[dt.date, DayKind]:
    return {d.day: d.kind for d in calendar_days(session, start, end)}


def _working(day: dt.date, exceptions: dict[dt.date, DayKind]) -> bool:
    kind = exceptions.get(day)
    if kind is DayKind.HOLIDAY:
        return False
    if kind is DayKind.WORKDAY:
        return True
    return day.weekday() < 5


def is_working_day(session: Session, day: dt.date) -> bool:
    return _working(day, _exceptions(session, day, day))


def add_working_days(session: Session, start: dt.date, n: int) -> dt.date:
    """The ``n``-th working day after ``start`` (``start`` itself is not counted; n ≥ 0).

    With n = 0, ``start`` if it is a working day, else the next working day.
    """
    if n < 0:
        raise InvalidInput("count working days forward only (n ≥ 0)")
    end = start + dt.timedelta(days=n * _SPAN_PER_DAY + _SLACK)
    exceptions = _exceptions(session, start, end)
    day, counted = start, 0
    if n == 0:
        while not _working(day, exceptions):
            day += dt.timedelta(days=1)
        return day
    while counted < n:
        day += dt.timedelta(days=1)
        if day > end:  # a year of holidays in a row: widen the window and go on
            end = day + dt.timedelta(days=n * _SPAN_PER_DAY + _SLACK)
            exceptions |= _exceptions(session, day, end)
        if _working(day, exceptions):
            counted += 1
    return day


def working_days_between(session: Session, start: dt.date, end: dt.date) -> int:
    """Working days after ``start`` up to and including ``end``; negative when ``end`` is earlier.

    ``working_days_between(s, today, due_on)`` is how many working days are left before a
    deadline: 0 on the due day itself, below 0 once it has passed.
    """
    if end == start:
        return 0
    low, high, sign = (start, end, 1) if end > start else (end, start, -1)
    exceptions = _exceptions(session, low, high)
    count = 0
    day = low
    while day < high:
        day += dt.timedelta(days=1)
        if _working(day, exceptions):
            count += 1
    return sign * count


# ---------------------------------------------------------------- keeping the calendar


def set_days(session: Session, entries: Iterable[DayEntry]) -> int:
    """Add or replace exceptions; returns how many days were written."""
    n = 0
    for entry in entries:
        row = session.get(CalendarDay, entry.day)
        if row is None:
            session.add(CalendarDay(day=entry.day, kind=entry.kind, name=entry.name))
        else:
            row.kind, row.name = entry.kind, entry.name
        n += 1
    session.flush()
    return n


def remove_day(session: Session, day: dt.date) -> bool:
    """Remove the exception on ``day``; False when there was none."""
    row = session.get(CalendarDay, day)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def list_year(session: Session, year: int) -> Sequence[CalendarDay]:
    return calendar_days(session, dt.date(year, 1, 1), dt.date(year, 12, 31))


def read_file(path: Path) -> list[DayEntry]:
    """The exceptions in a TOML or CSV calendar file (see docs/holidays-example.toml)."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InvalidInput(f"{path} does not exist")
    if suffix == ".toml":
        try:
            return parse_toml(tomllib.loads(path.read_text(encoding="utf-8")))
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInput(f"{path.name} is not valid TOML: {exc}") from None
    if suffix == ".csv":
        return parse_csv(path.read_text(encoding="utf-8-sig"))
    raise InvalidInput(f"{path.name}: give a .toml or .csv calendar file")


def parse_toml(doc: dict[str, Any]) -> list[DayEntry]:
    """``[[holiday]] name, from, to`` (a range, both ends included, or ``date`` for one day) and
    ``[[workday]] name, date`` (a 调休 working weekend day)."""
    unknown = set(doc) - {"holiday", "workday", "year", "source"}
    if unknown:
        raise InvalidInput(
            f"unknown table(s) {', '.join(sorted(unknown))}; use [[holiday]] and [[workday]]"
        )
    out: list[DayEntry] = []
    for kind, key in ((DayKind.HOLIDAY, "holiday"), (DayKind.WORKDAY, "workday")):
        for n, block in enumerate(doc.get(key, []), start=1):
            where = f"[[{key}]] #{n}"
            name = str(block.get("name", "")).strip()
            if not name:
                raise InvalidInput(f"{where}: give the day a name (e.g. 春节)")
            first = block.get("from", block.get("date"))
            last = block.get("to", first)
            if not isinstance(first, dt.date) or not isinstance(last, dt.date):
                raise InvalidInput(f"{where}: give date = YYYY-MM-DD, or from and to")
            if last < first:
                raise InvalidInput(f"{where}: 'to' ({last}) is before 'from' ({first})")
            day = first
            while day <= last:
                out.append(DayEntry(day, kind, name))
                day += dt.timedelta(days=1)
    return _no_clash(out)


def parse_csv(text: str) -> list[DayEntry]:
    """Rows of ``date,kind,name`` with kind ``holiday`` or ``workday``."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"date", "kind", "name"} <= set(reader.fieldnames):
        raise InvalidInput("the CSV needs the columns date,kind,name")
    out = []
    for line, row in enumerate(reader, start=2):
        try:
            day = dt.date.fromisoformat((row["date"] or "").strip())
        except ValueError:
            raise InvalidInput(f"line {line}: date {row['date']!r} is not YYYY-MM-DD") from None
        kind = (row["kind"] or "").strip()
        if kind not in {k.value for k in DayKind}:
            raise InvalidInput(f"line {line}: kind {kind!r} is neither holiday nor workday")
        name = (row["name"] or "").strip()
        if not name:
            raise InvalidInput(f"line {line}: give the day a name")
        out.append(DayEntry(day, DayKind(kind), name))
    return _no_clash(out)


def _no_clash(entries: list[DayEntry]) -> list[DayEntry]:
    seen: dict[dt.date, DayKind] = {}
    for entry in entries:
        if seen.get(entry.day, entry.kind) is not entry.kind:
            raise InvalidInput(f"{entry.day} is listed both as a holiday and as a workday")
        seen[entry.day] = entry.kind
    return entries
