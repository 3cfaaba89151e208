"""Hourly air-quality readings (STHJ): a large open dataset with nothing personal in it, whose
index agrees with its concentrations as HJ 633-2012 computes it."""

from __future__ import annotations

import math

import duckdb
import pyarrow.parquet as pq
from synth_city import AS_OF, PERSONS

from haihe.synth import CityManifest
from haihe.synth.arrays import day_number
from haihe.synth.environment import DATASET, station_count

# HJ 633-2012, written out again here: concentration breakpoints per individual index
IAQI = [0, 50, 100, 150, 200, 300, 400, 500]
LIMITS = {
    "pm25": [0, 35, 75, 115, 150, 250, 350, 500],
    "pm10": [0, 50, 150, 250, 350, 420, 500, 600],
    "o3": [0, 160, 200, 300, 400, 800, 1000, 1200],
    "no2": [0, 100, 200, 700, 1200, 2340, 3090, 3840],
    "so2": [0, 150, 500, 650, 800, 1600, 2100, 2620],
    "co": [0, 5, 10, 35, 60, 90, 120, 150],
}
NAMES = {"pm25": "PM2.5", "pm10": "PM10", "o3": "O3", "no2": "NO2", "so2": "SO2", "co": "CO"}
LEVELS = [(50, "优"), (100, "良"), (150, "轻度污染"), (200, "中度污染"), (300, "重度污染")]


def _iaqi(name: str, value: float) -> float:
    limits = LIMITS[name]
    for i in range(1, len(limits)):
        if value <= limits[i]:
            low, high = limits[i - 1], limits[i]
            return IAQI[i - 1] + (IAQI[i] - IAQI[i - 1]) * (value - low) / (high - low)
    return 500.0


def test_one_reading_per_station_and_hour_for_a_year(sql: duckdb.DuckDBPyConnection) -> None:
    rows, stations, hours, first, last = sql.execute(
        "SELECT count(*), count(DISTINCT station_code), "
        "count(DISTINCT (station_code, observed_on, hour)), min(observed_on), max(observed_on) "
        "FROM STHJ_air_quality_hourly"
    ).fetchone()
    assert stations == station_count(PERSONS) == 4
    assert rows == hours == stations * 365 * 24
    assert (day_number(first), day_number(last)) == (day_number(AS_OF) - 365, day_number(AS_OF) - 1)
    per_station = sql.execute(
        "SELECT DISTINCT station_name, station_type, district_code, street_code, station_lat "
        "FROM STHJ_air_quality_hourly"
    ).fetchall()
    assert len(per_station) == stations  # a station's description never changes
    assert all(street.startswith(district) for _n, _t, district, street, _l in per_station)


def test_the_index_level_and_primary_pollutant_follow_the_concentrations(
    sql: duckdb.DuckDBPyConnection,
) -> None:
    rows = sql.execute(
        "SELECT aqi, pm25, pm10, o3, no2, so2, co, primary_pollutant, quality_level "
        "FROM STHJ_air_quality_hourly WHERE aqi IS NOT NULL AND reading_no % 11 = 0"
    ).fetchall()
    assert len(rows) > 2900
    for aqi, *values, primary, level in rows:
        individual = {n: _iaqi(n, float(v)) for n, v in zip(LIMITS, values, strict=True)}
        top = max(individual.values())
        assert aqi == math.ceil(top)
        assert level == next((w for limit, w in LEVELS if aqi <= limit), "严重污染")
        if aqi <= 50:
            assert primary is None
        else:
            assert individual[next(n for n in LIMITS if NAMES[n] == primary)] == top
    levels = dict(
        sql.execute(
            "SELECT quality_level, count(*) FROM STHJ_air_quality_hourly GROUP BY 1"
        ).fetchall()
    )
    assert {"优", "良", "轻度污染", "中度污染"} <= set(levels)


def test_missed_hours_are_empty_together(sql: duckdb.DuckDBPyConnection) -> None:
    missed, partly, total = sql.execute(
        "SELECT count(*) FILTER (WHERE aqi IS NULL), "
        "count(*) FILTER (WHERE (aqi IS NULL) <> (pm25 IS NULL) OR (aqi IS NULL) <> (co IS NULL) "
        "  OR (aqi IS NULL) <> (quality_level IS NULL)), count(*) FROM STHJ_air_quality_hourly"
    ).fetchone()
    assert partly == 0
    assert 0.002 < missed / total < 0.01


def test_the_air_follows_the_seasons_and_the_day(sql: duckdb.DuckDBPyConnection) -> None:
    winter, summer = sql.execute(
        "SELECT avg(pm25) FILTER (WHERE month(observed_on) IN (12, 1, 2)), "
        "avg(pm25) FILTER (WHERE month(observed_on) IN (6, 7, 8)) FROM STHJ_air_quality_hourly"
    ).fetchone()
    afternoon, night = sql.execute(
        "SELECT avg(o3) FILTER (WHERE hour BETWEEN 13 AND 16), "
        "avg(o3) FILTER (WHERE hour BETWEEN 0 AND 4) FROM STHJ_air_quality_hourly"
    ).fetchone()
    assert winter > 1.6 * summer
    assert afternoon > 3 * night
    mean = sql.execute("SELECT avg(pm25), avg(pm10) FROM STHJ_air_quality_hourly").fetchone()
    assert 25 < mean[0] < 60
    assert mean[0] < mean[1] < 2.2 * mean[0]


def test_it_is_described_as_open_and_holds_nothing_personal(
    manifest: CityManifest, city_dir: object
) -> None:
    info = next(d for d in manifest.datasets if d.id == DATASET)
    assert (info.provider, info.open_type, info.share_type) == (
        "STHJ",
        "unconditional",
        "unconditional",
    )
    assert not any(c.personal for c in info.columns)
    assert {c.sensitivity for c in info.columns} == {"L1"}
    assert [c.name for c in info.columns if c.is_key] == ["reading_no"]
    schema = pq.read_schema(f"{city_dir}/{info.path}")
    assert str(schema.field("observed_on").type) == "date32[day]"
    assert info.rows == station_count(PERSONS) * 365 * 24
