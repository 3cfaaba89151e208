"""Working-day arithmetic over the calendar table, and loading the calendar from files."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from haihe.cli import main
from haihe.core.calendar import (
    DayEntry,
    DayKind,
    add_working_days,
    parse_csv,
    read_file,
    set_days,
    working_days_between,
)
from haihe.core.errors import InvalidInput
from haihe.core.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "holidays-example.toml"
FRI, SAT, MON = dt.date(2026, 9, 18), dt.date(2026, 9, 19), dt.date(2026, 9, 21)


def test_plain_weeks_skip_weekends(session: Session) -> None:
    assert add_working_days(session, FRI, 1) == MON
    assert add_working_days(session, FRI, 10) == dt.date(2026, 10, 2)
    assert add_working_days(session, SAT, 0) == MON
    assert working_days_between(session, FRI, MON) == 1
    assert working_days_between(session, MON, FRI) == -1
    assert working_days_between(session, MON, MON) == 0


def test_holidays_are_skipped_and_tiaoxiu_weekends_count(session: Session) -> None:
    set_days(
        session,
        [
            DayEntry(MON, DayKind.HOLIDAY, "假日"),
            DayEntry(SAT, DayKind.WORKDAY, "调休"),
        ],
    )
    assert add_working_days(session, FRI, 1) == SAT
    assert add_working_days(session, FRI, 2) == dt.date(2026, 9, 22)
    assert working_days_between(session, FRI, dt.date(2026, 9, 22)) == 2


def test_a_long_run_of_holidays_still_ends(session: Session) -> None:
    start = dt.date(2027, 1, 1)
    set_days(
        session,
        [DayEntry(start + dt.timedelta(days=d), DayKind.HOLIDAY, "长假") for d in range(120)],
    )
    due = add_working_days(session, start, 2)
    assert due == dt.date(2027, 5, 4)  # May 1 is a Saturday: Mon 3rd, Tue 4th


def test_the_example_file_reads(session: Session) -> None:
    entries = read_file(EXAMPLE)
    assert {e.kind for e in entries} == {DayKind.HOLIDAY, DayKind.WORKDAY}
    assert all(e.name for e in entries)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("day,kind\n", "date,kind,name"),
        ("date,kind,name\n2026-13-01,holiday,x\n", "line 2: date"),
        ("date,kind,name\n2026-10-01,rest,x\n", "neither holiday nor workday"),
        ("date,kind,name\n2026-10-01,holiday,a\n2026-10-01,workday,b\n", "both"),
    ],
)
def test_bad_csv_says_where(text: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        parse_csv(text)


def _haihe(monkeypatch: pytest.MonkeyPatch, settings: Settings, *args: str) -> int:
    monkeypatch.setenv("HAIHE_DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("HAIHE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setattr(sys, "argv", ["haihe", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_the_cli_imports_and_lists_a_year(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    assert _haihe(monkeypatch, settings, "exchange", "calendar", "import", str(EXAMPLE)) == 0
    assert "holidays" in capsys.readouterr().out
    args = ("exchange", "calendar", "list", "--year", "2026", "--json")
    assert _haihe(monkeypatch, settings, *args) == 0
    assert '"kind": "workday"' in capsys.readouterr().out


def test_cli_errors_are_one_line_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    args = ("exchange", "approve", "999")
    assert _haihe(monkeypatch, settings, "db", "upgrade") == 0
    assert _haihe(monkeypatch, settings, *args) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: access request 999 does not exist"
    )
