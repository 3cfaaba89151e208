"""Statistics of grid governance — 统计分析: by status, category, area, source and day; on-time
rate, average handling time, satisfaction, trend, and the heat map of events per cell.

Every figure counts the events reported in the period (China dates), as they stand now, read by
DuckDB from the statistics snapshot (``snapshot.py``: Parquet parts plus what changed since, from
the database) — ten million events in well under two seconds (``benchmarks/governance_stats.py``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from haihe.core import calendar
from haihe.core.auth import Principal, Role
from haihe.core.errors import Forbidden, InvalidInput
from haihe.core.settings import Settings
from haihe.governance import categories, grids, snapshot
from haihe.governance import repository as repo
from haihe.governance.models import AreaLevel, EventStatus

MAX_DAYS = 3 * 366


def _scope(
    session: Session, actor: Principal, area_code: str | None
) -> tuple[int | None, int | None]:
    """(district id, street id) the figures are limited to; an area's staff see their own."""
    if not (actor.is_platform_admin or actor.has(Role.AUDITOR)):
        if (
            actor.kind != "user"
            or actor.org_id is None
            or not actor.has(Role.ORG_ADMIN, Role.OPERATOR, Role.OFFICER)
        ):
            raise Forbidden("statistics are for the staff of member organisations")
        own = [
            a
            for a in repo.areas_of_org(session, actor.org_id)
            if a.level in (AreaLevel.DISTRICT, AreaLevel.STREET)
        ]
        if own and area_code is None:
            area_code = own[0].code
        if own and area_code not in {a.code for a in own}:
            area = grids.get_area(session, code=area_code or "")
            if not any(a.id in (area.district_id, area.id) for a in own):
                raise Forbidden("your organisation sees the statistics of its own area")
    if area_code is None:
        return None, None
    area = grids.get_area(session, code=area_code)
    if area.level is AreaLevel.DISTRICT:
        return area.id, None
    if area.level is AreaLevel.STREET:
        return area.district_id, area.id
    raise InvalidInput("statistics are by district or street; give a district or street code")


def _rates(row: dict[str, Any]) -> dict[str, Any]:
    resolved = int(row["resolved"] or 0)
    rated = int(row["ratings"] or 0)
    return {
        "reported": int(row["reported"] or 0),
        "resolved": resolved,
        "on_time": int(row["on_time"] or 0),
        "overdue": int(row["overdue"] or 0),
        "on_time_rate": round(int(row["on_time"] or 0) / resolved, 4) if resolved else None,
        "avg_handling_hours": (
            round(float(row["handling_seconds"] or 0) / resolved / 3600, 2) if resolved else None
        ),
        "satisfaction": round(int(row["rating_sum"] or 0) / rated, 2) if rated else None,
        "ratings": rated,
    }


def _bounds(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The instants the period starts and ends (China days, the last one included)."""
    start = dt.datetime.combine(first, dt.time(), calendar.CHINA_TIME)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), calendar.CHINA_TIME)
    return start, end


def _check_period(first: dt.date, last: dt.date) -> None:
    if last < first:
        raise InvalidInput("the period ends before it starts")
    if (last - first).days > MAX_DAYS:
        raise InvalidInput(f"a period is at most {MAX_DAYS} days")


def summary(
    session: Session,
    *,
    actor: Principal,
    settings: Settings,
    first: dt.date,
    last: dt.date,
    area_code: str | None = None,
    lang: str = "zh",
) -> dict[str, Any]:
    """The figures for events reported from ``first`` to ``last`` (China dates) in an area."""
    _check_period(first, last)
    district_id, street_id = _scope(session, actor, area_code)
    start, end = _bounds(first, last)
    # by street inside a district (or street), by district city-wide
    area, area_g = ("street_id", 14) if district_id is not None else ("district_id", 15)
    sums = ", ".join(f"sum({c}) AS {c}" for c in snapshot.SUMS)
    query = f"""
        SELECT 'total' AS kind, NULL AS key, {sums} FROM cube WHERE g = 15
        UNION ALL SELECT 'day', CAST(day AS VARCHAR), {sums} FROM cube WHERE g = 15 GROUP BY 2
        UNION ALL SELECT 'area', CAST({area} AS VARCHAR), {sums} FROM cube
            WHERE g = {area_g} GROUP BY 2
        UNION ALL SELECT 'status', status, {sums} FROM cube WHERE g = 7 GROUP BY 2
        UNION ALL SELECT 'category', category_code, {sums} FROM cube WHERE g = 11 GROUP BY 2
        UNION ALL SELECT 'source', source, {sums} FROM cube WHERE g = 13 GROUP BY 2
    """
    with snapshot.cube(
        session,
        settings=settings,
        start=start,
        end=end,
        district_id=district_id,
        street_id=street_id,
    ) as con:
        cursor = con.execute(query)
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    by: dict[str, list[dict[str, Any]]] = {k: [] for k in ("day", "area", "status")}
    by |= {"category": [], "source": []}
    total: dict[str, Any] = dict.fromkeys(snapshot.SUMS, 0)
    for row in rows:
        if row["kind"] == "total":
            total = row
        elif row["reported"]:
            by[row["kind"]].append(row)
    names_of = {
        c.code: categories.name_of(c, lang)
        for c in categories.list_categories(session, active_only=False)
    }
    area_ids = {int(r["key"]): r for r in by["area"] if r["key"] is not None}
    area_rows = repo.areas_by_ids(session, area_ids)
    statuses = {r["key"]: int(r["reported"]) for r in by["status"]}
    return {
        "first": first.isoformat(),
        "last": last.isoformat(),
        "area_code": area_code,
        "totals": _rates(total),
        "by_status": {s.value: statuses.get(s.value, 0) for s in EventStatus},
        "by_category": [
            {"code": r["key"], "name": names_of.get(r["key"], r["key"]), **_rates(r)}
            for r in _biggest(by["category"])
        ],
        "by_source": [{"source": r["key"], **_rates(r)} for r in _biggest(by["source"])],
        "by_area": [
            {
                "code": area_rows[i].code if i in area_rows else str(i),
                "name": _name(area_rows.get(i), lang),
                **_rates(r),
            }
            for i, r in sorted(area_ids.items(), key=lambda kv: -int(kv[1]["reported"]))
        ],
        "trend": _every_day(first, last, by["day"]),
    }


def _every_day(first: dt.date, last: dt.date, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reported and resolved per day of the period, days without events included (as 0)."""
    found = {str(r["key"]): r for r in rows}
    out = []
    for n in range((last - first).days + 1):
        day = (first + dt.timedelta(days=n)).isoformat()
        row = found.get(day)
        reported, resolved = (int(row["reported"]), int(row["resolved"])) if row else (0, 0)
        out.append({"day": day, "reported": reported, "resolved": resolved})
    return out


def _biggest(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (-int(r["reported"]), str(r["key"])))


def _name(area: Any, lang: str) -> str:
    if area is None:
        return "—"
    return str((area.name_en or area.name_zh) if lang == "en" else area.name_zh)


def heatmap(
    session: Session,
    *,
    actor: Principal,
    settings: Settings,
    first: dt.date,
    last: dt.date,
    area_code: str | None = None,
) -> list[dict[str, Any]]:
    """Events per grid cell reported from ``first`` to ``last``: cell code, centre (lng, lat)
    and count — the heat map's points."""
    _check_period(first, last)
    district_id, street_id = _scope(session, actor, area_code)
    start, end = _bounds(first, last)
    where = "created_at >= ? AND created_at < ?"
    params: list[Any] = [start.astimezone(dt.UTC).replace(tzinfo=None)]
    params.append(end.astimezone(dt.UTC).replace(tzinfo=None))
    for column, value in (("district_id", district_id), ("street_id", street_id)):
        if value is not None:
            where += f" AND {column} = ?"
            params.append(value)
    with snapshot.events(session, settings=settings) as con:
        counts = con.execute(
            f"SELECT cell_id, count(*) FROM events WHERE {where} GROUP BY cell_id", params
        ).fetchall()
    centres = _centres(session)
    out = []
    for cell_id, n in counts:
        found = centres.get(int(cell_id))
        if found is not None:
            code, lng, lat = found
            out.append({"cell": code, "lng": round(lng, 6), "lat": round(lat, 6), "count": int(n)})
    return sorted(out, key=lambda c: -int(c["count"]))


_CENTRES: dict[str, tuple[str, dict[int, tuple[str, float, float]]]] = {}


def _centres(session: Session) -> dict[int, tuple[str, float, float]]:
    """Cell id → (code, centre lng, centre lat), kept per process until the grids change."""
    key = session.get_bind().engine.url.render_as_string(hide_password=True)
    revision = repo.grid_revision(session)
    held = _CENTRES.get(key)
    if held is None or held[0] != revision:
        rows = repo.cell_centres(session)
        held = (revision, {r.id: (r.code, r.centre_lng, r.centre_lat) for r in rows})
        _CENTRES[key] = held
    return held[1]
