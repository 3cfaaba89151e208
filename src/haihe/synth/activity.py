"""Evidence of life from health and transport: medical visits and health check-ups (WJW), transit
taps (JT). All cover the year before ``as_of``; nobody visits a doctor after their death, but a
dead holder's elderly bus card may still be tapped by someone else (``truth/bus_cards``).

The large tables are generated person by person (rows grouped by person, in date order within a
person), which keeps every gather sequential and the writes fast.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from haihe.synth import reference
from haihe.synth.arrays import (
    DAY_SECONDS,
    Ints,
    categorical,
    coords,
    dates,
    padded_strings,
    timestamps,
    weighted_choice,
    with_nulls,
)
from haihe.synth.benefits import card_numbers
from haihe.synth.context import ACTIVITY_DAYS, Context, active_span
from haihe.synth.dirt import Dirt, id_column, name_column
from haihe.synth.geo import random_points
from haihe.synth.registry import hospital_vocabulary

VISIT_TYPES = ("门诊", "急诊", "住院")
CARD_TYPES = ("老年卡", "二维码", "普通卡")
HOURLY = (1, 0.5, 0.3, 0.3, 0.5, 2, 6, 12, 14, 8, 6, 6, 7, 6, 6, 7, 9, 13, 12, 7, 5, 4, 3, 2)
BUS_LINES, METRO_LINES = 900, 11
ACTIVITY_DIRT = Dirt(
    id_legacy=0.002, id_typo=0.001, id_format=0.001, id_missing=0.003, name_typo=0.002, missing=0.01
)
TAP_DIRT = Dirt(id_typo=0.0005, id_format=0.0005)


def spread(
    rng: np.random.Generator, persons: Ints, rate_per_year: np.ndarray, start: Ints, end: Ints
) -> tuple[Ints, Ints]:
    """Return (person per event, day per event): Poisson counts over each [start, end) span."""
    span = np.maximum(end - start, 0)
    counts = rng.poisson(rate_per_year * span / 365.0)
    rows = np.repeat(persons, counts)
    first = np.repeat(start, counts)
    width = np.repeat(span, counts)
    days = first + (rng.random(rows.size) * width).astype(np.int64)
    return by_person_day(rows, days)


def by_person_day(rows: Ints, days: Ints) -> tuple[Ints, Ints]:
    """Return (rows, days) sorted by person then day, with one packed-integer sort."""
    if not rows.size:
        return rows, days
    base = int(days.min())
    if int(days.max()) - base >= 1 << 16:
        order = np.lexsort((days, rows))
        return rows[order], days[order]
    packed = np.sort((rows << 16) | (days - base))
    return packed >> 16, (packed & 0xFFFF) + base


def write_medical_visits(ctx: Context) -> None:
    """Write medical visits (WJW) for everyone living in the city, up to their death."""
    pop, rng, dataset = ctx.pop, ctx.rng("medical_visits"), "WJW.medical_visits"
    persons = np.flatnonzero(~pop.away)
    start, end = active_span(ctx, persons)
    rate = 0.8 + 0.08 * np.maximum(pop.age[persons] - 30, 0)
    rows, days = spread(rng, persons, rate, start, end)
    k = rows.size
    street = ctx.city.communities.parent[pop.community[rows]]
    district = ctx.city.streets.parent[street]
    n_hosp = len(reference.rows("hospitals"))
    n_dist = len(ctx.city.districts)
    where = weighted_choice(rng, (0.4, 0.35, 0.25), k)
    city = weighted_choice(rng, reference.numbers("hospitals", "weight"), k)
    facility = np.select(
        [where == 0, where == 1], [n_hosp + n_dist + street, n_hosp + district], city
    )
    old = pop.age[rows] >= 50
    diagnosis = np.where(
        old,
        weighted_choice(rng, reference.numbers("diagnoses", "w_old"), k),
        weighted_choice(rng, reference.numbers("diagnoses", "w_young"), k),
    )
    no_diagnosis = rng.random(k) < ACTIVITY_DIRT.missing
    ctx.log.add(
        dataset, np.flatnonzero(no_diagnosis), "diagnosis_code", "missing", rows[no_diagnosis] + 1
    )
    ctx.emit(
        dataset,
        {
            "visit_no": pa.array(np.arange(1, k + 1, dtype=np.int64)),
            "id_number": id_column(rng, pop, rows, ACTIVITY_DIRT, ctx.log, dataset),
            "name": name_column(rng, pop, rows, ACTIVITY_DIRT.name_typo, ctx.log, dataset),
            "visit_date": dates(days),
            "visit_type": categorical(weighted_choice(rng, (0.88, 0.08, 0.04), k), VISIT_TYPES),
            "facility": categorical(facility, hospital_vocabulary(ctx)),
            "diagnosis_code": with_nulls(
                categorical(diagnosis, reference.column("diagnoses", "code")), no_diagnosis
            ),
            "diagnosis_name": with_nulls(
                categorical(diagnosis, reference.column("diagnoses", "name_zh")), no_diagnosis
            ),
        },
    )


def write_health_checkups(ctx: Context) -> None:
    """Write annual health check-ups (WJW) of people aged 65+ at their community health centre."""
    pop, rng, dataset = ctx.pop, ctx.rng("checkups"), "WJW.health_checkups"
    n = len(pop)
    persons = np.flatnonzero(~pop.away & (pop.age >= 65) & (rng.random(n) < 0.62))
    start, end = active_span(ctx, persons)
    keep = end > start
    persons, start, end = persons[keep], start[keep], end[keep]
    k = persons.size
    day = start + (rng.random(k) * (end - start)).astype(np.int64)
    street = ctx.city.communities.parent[pop.community[persons]]
    offset = len(reference.rows("hospitals")) + len(ctx.city.districts)
    systolic = np.rint(rng.normal(136, 16, k)).astype(np.int64)
    diastolic = np.rint(rng.normal(80, 10, k)).astype(np.int64)
    abnormal = (systolic >= 140) | (diastolic >= 90) | (rng.random(k) < 0.15)
    unmeasured = rng.random(k) < 0.01
    ctx.emit(
        dataset,
        {
            "checkup_no": padded_strings(np.arange(1, k + 1), 10, "TJ"),
            "id_number": id_column(rng, pop, persons, ACTIVITY_DIRT, ctx.log, dataset),
            "name": name_column(rng, pop, persons, ACTIVITY_DIRT.name_typo, ctx.log, dataset),
            "checkup_date": dates(day),
            "facility": categorical(offset + street, hospital_vocabulary(ctx)),
            "systolic": pa.array(systolic.astype(np.int16), mask=unmeasured),
            "diastolic": pa.array(diastolic.astype(np.int16), mask=unmeasured),
            "result": categorical(abnormal.astype(np.int64), ("未见异常", "异常")),
        },
    )


def _tap_times(rng: np.random.Generator, days: Ints) -> Ints:
    hour = weighted_choice(rng, HOURLY, days.size)
    return days * DAY_SECONDS + hour * 3600 + rng.integers(0, 3600, days.size)


def write_transit_taps(ctx: Context) -> None:
    """Write a year of transit taps (JT): elderly cards, real-name QR rides and anonymous cards."""
    pop, rng, dataset = ctx.pop, ctx.rng("transit"), "JT.transit_taps"
    n = len(pop)
    facts = ctx.facts
    card = facts.bus_card
    holders = np.flatnonzero((card >= 0) & ~pop.away & (rng.random(n) < 0.65))
    start, end = active_span(ctx, holders)
    e_rows, e_days = spread(rng, holders, np.full(holders.size, 24.0), start, end)
    # Someone else goes on using a dead holder's card: taps after the death.
    misused = np.flatnonzero(facts.bus_card_fraud)
    f_start = np.maximum(pop.death[misused], ctx.today - ACTIVITY_DAYS)
    f_rows, f_days = spread(
        rng, misused, np.full(misused.size, 30.0), f_start, np.full(misused.size, ctx.today)
    )
    riders = np.flatnonzero(~pop.away & (pop.age >= 12) & (pop.age < 65) & (rng.random(n) < 0.12))
    start, end = active_span(ctx, riders)
    q_rows, q_days = spread(rng, riders, np.full(riders.size, 16.0), start, end)
    anon = int((e_rows.size + q_rows.size) * 0.08)
    a_rows = np.sort(rng.integers(0, n, anon))
    a_days = ctx.today - rng.integers(1, ACTIVITY_DAYS + 1, anon)

    elderly, elderly_days = by_person_day(
        np.concatenate([e_rows, f_rows]), np.concatenate([e_days, f_days])
    )
    rows = np.concatenate([elderly, q_rows, a_rows])
    days = np.concatenate([elderly_days, q_days, a_days])
    kind = np.repeat([0, 1, 2], [elderly.size, q_rows.size, anon])
    k = rows.size
    linked = np.concatenate([elderly, q_rows])
    ids = id_column(rng, pop, linked, TAP_DIRT, ctx.log, dataset)
    card_no = pa.concat_arrays(
        [
            card_numbers(card[elderly]),
            padded_strings(q_rows + 1, 12, "QR"),
            padded_strings(rng.integers(10**9, 10**10, anon), 10, "PT"),
        ]
    )
    metro = rng.random(k) < 0.25
    line = np.where(
        metro, BUS_LINES + rng.integers(0, METRO_LINES, k), rng.integers(0, BUS_LINES, k)
    )
    lines = [f"公交{i + 1}路" for i in range(BUS_LINES)] + [
        f"地铁{i + 1}号线" for i in range(METRO_LINES)
    ]
    street = ctx.city.communities.parent[pop.community[rows]]
    lat, lng = random_points(rng, ctx.city.streets.bbox, street)
    ctx.emit(
        dataset,
        {
            "tap_no": pa.array(np.arange(1, k + 1, dtype=np.int64)),
            "card_no": card_no,
            "card_type": categorical(kind, CARD_TYPES),
            "id_number": pa.concat_arrays([ids, pa.nulls(anon, pa.string())]),
            "tapped_at": timestamps(_tap_times(rng, days)),
            "mode": categorical(metro.astype(np.int64), ("公交", "地铁")),
            "line": categorical(line, lines),
            "stop_lat": coords(lat, 5),
            "stop_lng": coords(lng, 5),
        },
    )
