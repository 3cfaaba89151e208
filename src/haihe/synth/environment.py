"""Air-quality monitoring — 环境空气质量监测 (STHJ, the ecology and environment bureau): hourly
readings of every monitoring station for the year before ``as_of``.

The data are about the air, not about people: no item is personal and the bureau opens them to
everyone (无条件开放), as cities publish their real-time air quality. The network grows with the
city — one station per ``PERSONS_PER_STATION`` residents, at least ``MIN_STATIONS`` — so the
table holds about 2.2 rows per resident: 35,000 rows for a test city of 3,000, 7 million for
3.2 million residents.

Concentrations follow one city-wide weather series (episodes lasting days, worse in the heating
season), each pollutant's daily cycle (ozone peaks in summer afternoons, PM and NO2 at the rush
hours), a factor per station and noise per reading. The air-quality index is computed from the
concentrations as published, as HJ 633-2012 says (the highest individual index; the primary
pollutant named above 50), so an index and its level always agree with the concentrations beside
them. A station misses about one hour in 200 (maintenance): that row's figures are null.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from haihe.synth.arrays import Bools, Floats, Ints, categorical, coords, dates
from haihe.synth.context import ACTIVITY_DAYS, Context
from haihe.synth.geo import Level, random_points

DATASET = "STHJ.air_quality_hourly"
PERSONS_PER_STATION = 4_000
MIN_STATIONS = 4
MISSING = 0.005
STATION_TYPES = ("国控点", "市控点", "微型站")
LEVELS = ("优", "良", "轻度污染", "中度污染", "重度污染", "严重污染")
LEVEL_TOPS = (50, 100, 150, 200, 300)
# HJ 633-2012: individual index (IAQI) breakpoints; hourly SO2, NO2, CO and O3, the 24-hour
# PM2.5 and PM10 breakpoints applied to the hour as real-time publication does.
IAQI = (0, 50, 100, 150, 200, 300, 400, 500)
BREAKPOINTS: dict[str, tuple[float, ...]] = {
    "PM2.5": (0, 35, 75, 115, 150, 250, 350, 500),
    "PM10": (0, 50, 150, 250, 350, 420, 500, 600),
    "O3": (0, 160, 200, 300, 400, 800, 1000, 1200),
    "NO2": (0, 100, 200, 700, 1200, 2340, 3090, 3840),
    "SO2": (0, 150, 500, 650, 800, 1600, 2100, 2620),
    "CO": (0, 5, 10, 35, 60, 90, 120, 150),
}
POLLUTANTS = tuple(BREAKPOINTS)
Singles = npt.NDArray[np.float32]


def station_count(persons: int) -> int:
    """Return how many monitoring stations a city of ``persons`` runs."""
    return max(MIN_STATIONS, round(persons / PERSONS_PER_STATION))


def write_air_quality(ctx: Context) -> None:
    """Write a year of hourly air-quality readings of every station."""
    rng = ctx.rng(DATASET)
    streets = ctx.city.streets
    n = station_count(len(ctx.pop))
    street = np.sort(rng.choice(len(streets), size=n, p=streets.weight))
    number = np.arange(n)
    kind = np.where(number % 20 == 0, 0, np.where(number % 5 == 0, 1, 2))
    lat, lng = random_points(rng, streets.bbox, street)
    hours = ACTIVITY_DAYS * 24
    first_hour = (ctx.today - ACTIVITY_DAYS) * 24
    k = n * hours
    # rows in time order, the stations of one hour together
    at = np.repeat(np.arange(hours, dtype=np.int64), n)
    station = pa.array(np.tile(np.arange(n, dtype=np.int32), hours))
    figures = _published(
        _concentrations(rng, first_hour, hours, site=rng.lognormal(0.0, 0.18, n), at=at)
    )
    index, primary = _index(figures)
    missing = rng.random(k) < MISSING

    def per_station(values: pa.Array) -> pa.Array:
        return values.take(station)

    def measured(values: Singles) -> pa.Array:
        return pa.array(values.astype(np.int32), mask=missing)

    ctx.emit(
        DATASET,
        {
            "reading_no": pa.array(np.arange(1, k + 1, dtype=np.int64)),
            "station_code": per_station(categorical(number, _station_codes(streets.codes, street))),
            "station_name": per_station(categorical(number, _station_names(streets, street, kind))),
            "station_type": per_station(categorical(kind, STATION_TYPES)),
            "district_code": per_station(ctx.code_column("districts", streets.parent[street])),
            "street_code": per_station(ctx.code_column("streets", street)),
            "station_lat": per_station(coords(lat, 5)),
            "station_lng": per_station(coords(lng, 5)),
            "observed_on": dates((first_hour + at) // 24),
            "hour": pa.array(((first_hour + at) % 24).astype(np.int8)),
            "aqi": pa.array(index.astype(np.int32), mask=missing),
            "pm25": measured(figures["PM2.5"]),
            "pm10": measured(figures["PM10"]),
            "o3": measured(figures["O3"]),
            "no2": measured(figures["NO2"]),
            "so2": measured(figures["SO2"]),
            "co": pa.array(np.round(figures["CO"].astype(np.float64), 1), mask=missing),
            "primary_pollutant": _dictionary(primary, POLLUTANTS, missing | (primary < 0)),
            "quality_level": _dictionary(
                np.searchsorted(np.array(LEVEL_TOPS), index), LEVELS, missing
            ),
        },
    )


def _dictionary(codes: Ints, words: tuple[str, ...], null: Bools) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int32), mask=null), pa.array(list(words), pa.string())
    )


def _weather(rng: np.random.Generator, hours: int) -> Floats:
    """The city-wide dispersion factor per hour: lognormal around 1, slowly wandering."""
    shocks = rng.normal(0.0, 0.09, hours)
    walk = np.empty(hours)
    level = 0.0
    for i in range(hours):  # AR(1), phi = 0.97 an hour: episodes of two to four days
        level = 0.97 * level + shocks[i]
        walk[i] = level
    return np.exp(walk - walk.var() / 2)


def _concentrations(
    rng: np.random.Generator, first_hour: int, hours: int, *, site: Floats, at: Ints
) -> dict[str, Singles]:
    """Each pollutant's concentration per row (µg/m³; CO in mg/m³), as float32."""
    n = site.size
    k = at.size
    weather = _weather(rng, hours)
    absolute = first_hour + np.arange(hours)
    hour_of_day = absolute % 24
    day_of_year = (absolute / 24) % 365.25  # from 1 January, within a quarter of a day
    season = np.cos(2 * np.pi * (day_of_year - 15) / 365.25)  # 1 mid-January, -1 mid-July
    dust = np.abs(day_of_year - 105) < 45  # spring, March to May
    rush = (
        1
        + 0.18 * np.cos(2 * np.pi * (hour_of_day - 8) / 24)
        + 0.12 * np.cos(2 * np.pi * (hour_of_day - 21) / 12)
    )
    sun = np.clip(np.cos(2 * np.pi * (hour_of_day - 15) / 24), 0, None)
    at_site = np.tile(site.astype(np.float32), k // n)

    def hourly(values: npt.ArrayLike) -> Singles:
        return np.asarray(values, np.float32)[at]

    def noise(sigma: float) -> Singles:
        return rng.lognormal(-sigma * sigma / 2, sigma, k).astype(np.float32)

    pm25 = 36 * hourly(weather * (1 + 0.45 * season) * rush) * at_site * noise(0.25)
    pm10 = pm25 * (hourly(1.3 + 0.35 * dust) + 0.3 * noise(0.3))
    no2 = 34 * hourly((1 + 0.3 * season) * rush * np.sqrt(weather)) * at_site * noise(0.3)
    so2 = 7 * hourly((1 + 0.8 * np.clip(season, 0, None)) * np.sqrt(weather)) * noise(0.35)
    co = 0.7 * hourly((1 + 0.5 * season) * np.sqrt(weather)) * noise(0.25)
    o3 = (20 + 140 * hourly((1 - 0.6 * season) * sun)) * noise(0.3)
    return {"PM2.5": pm25, "PM10": pm10, "O3": o3, "NO2": no2, "SO2": so2, "CO": co}


def _published(figures: dict[str, Singles]) -> dict[str, Singles]:
    """The concentrations as published: whole µg/m³, CO to 0.1 mg/m³ (the index is computed from
    these, so anyone can recompute it from a row)."""
    return {
        name: np.round(values, 1 if name == "CO" else 0).astype(np.float32)
        for name, values in figures.items()
    }


def _index(figures: dict[str, Singles]) -> tuple[Ints, Ints]:
    """Return (AQI, primary pollutant's position in POLLUTANTS, or -1 at 50 and below)."""
    best = np.zeros(next(iter(figures.values())).size)
    primary = np.zeros(best.size, np.int64)
    for i, name in enumerate(POLLUTANTS):
        individual = np.interp(figures[name], BREAKPOINTS[name], IAQI, right=500)
        higher = individual > best
        best = np.where(higher, individual, best)
        primary = np.where(higher, i, primary)
    aqi = np.ceil(best).astype(np.int64)
    return aqi, np.where(aqi > 50, primary, -1)


def _station_codes(street_codes: list[str], street: Ints) -> list[str]:
    """A code per station: its street's 9-digit code and its 3-digit number in the street."""
    within = np.arange(street.size) - np.searchsorted(street, street)
    return [
        f"{street_codes[s]}{i + 1:03d}"
        for s, i in zip(street.tolist(), within.tolist(), strict=True)
    ]


def _station_names(streets: Level, street: Ints, kind: Ints) -> list[str]:
    """A name per station: its street, its number in the street and its type."""
    within = np.arange(street.size) - np.searchsorted(street, street)
    return [
        f"{streets.name_zh[s]}{i + 1}号{STATION_TYPES[t]}"
        for s, i, t in zip(street.tolist(), within.tolist(), kind.tolist(), strict=True)
    ]
