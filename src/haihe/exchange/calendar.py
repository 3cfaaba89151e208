"""Moved to ``haihe.core.calendar``; these names stay importable until the portal is moved over."""

from haihe.core.calendar import (  # noqa: F401
    CalendarDay,
    DayEntry,
    DayKind,
    add_working_days,
    city_today,
    is_working_day,
    list_year,
    read_file,
    remove_day,
    set_days,
    working_days_between,
)
