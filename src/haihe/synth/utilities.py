"""Evidence of life from the five public-service institutions (公共服务机构): water (ZLS),
electricity (DL), gas (RQ) and heating (GR) bill payments, and mobile subscriptions (DX).

Utility accounts belong to a household and stand in the head's name (户主). Bills keep being paid
while anyone of the household lives in the city — so a dead head's account can look alive, as in
real data — and stop when nobody is left.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

from haihe.synth.arrays import (
    Ints,
    categorical,
    civil_from_days,
    dates,
    day_number,
    money,
    padded_strings,
    pick,
    weighted_choice,
)
from haihe.synth.context import ACTIVITY_DAYS, Context
from haihe.synth.dirt import Dirt, blank_out, id_column, name_column
from haihe.synth.welfare import household_index

CHANNELS = ("微信", "支付宝", "银行代扣", "营业厅", "津心办")
PLANS = ("5G畅享套餐", "4G基础套餐", "老年关爱套餐", "校园套餐", "融合宽带套餐")
SUBSCRIPTION_STATUSES = ("正常", "停机", "销户")
UTILITY_DIRT = Dirt(
    id_legacy=0.01, id_typo=0.002, id_format=0.002, id_missing=0.04, name_typo=0.003, missing=0.005
)
MOBILE_DIRT = Dirt(id_legacy=0.002, id_typo=0.001, id_format=0.001, name_typo=0.002, missing=0.01)
EARLIEST_MOBILE = day_number(date(2000, 1, 1))
# (dataset, account prefix, payments per year, share of households, unit column, unit range,
#  cents per unit)
UTILITIES = (
    ("ZLS.water_payments", "SW", 4.0, 1.0, "volume_m3", (8, 36), 490),
    ("DL.electricity_payments", "DL", 6.0, 1.0, "kwh", (120, 700), 49),
    ("RQ.gas_payments", "RQ", 4.0, 0.8, "volume_m3", (15, 90), 261),
)


def _household_ends(ctx: Context) -> tuple[Ints, Ints]:
    """Return (head row, last day anyone of the household lived in the city) per household."""
    pop = ctx.pop
    first, _ = household_index(pop.household)
    member_end = np.where(pop.away, -1, np.where(pop.dead, pop.death, ctx.today))
    return first, np.maximum.reduceat(member_end, first)


def _payments(
    ctx: Context, rng: np.random.Generator, heads: Ints, ends: Ints, per_year: float
) -> tuple[Ints, Ints]:
    """Return (household per payment, day per payment) over the year, ordered by household."""
    start = ctx.today - ACTIVITY_DAYS
    span = np.maximum(ends - start, 0)
    counts = rng.poisson(per_year * span / ACTIVITY_DAYS)
    households = np.repeat(np.arange(heads.size), counts)
    first = np.repeat(np.full(heads.size, start), counts)
    days = first + (rng.random(households.size) * np.repeat(span, counts)).astype(np.int64)
    packed = np.sort((households << 16) | (days - start))
    return packed >> 16, (packed & 0xFFFF) + start


def _bill_columns(
    ctx: Context, rng: np.random.Generator, dataset: str, prefix: str, heads: Ints, hh: Ints
) -> dict[str, pa.Array]:
    pop = ctx.pop
    holder = heads[hh]
    k = hh.size
    return {
        "payment_no": pa.array(np.arange(1, k + 1, dtype=np.int64)),
        "account_no": padded_strings(hh + 1, 10, prefix),
        "id_number": id_column(rng, pop, holder, UTILITY_DIRT, ctx.log, dataset),
        "name": name_column(rng, pop, holder, UTILITY_DIRT.name_typo, ctx.log, dataset),
    }


def write_utilities(ctx: Context) -> None:
    """Write water, electricity, gas and heating payments of every household still in the city."""
    heads, ends = _household_ends(ctx)
    h = heads.size
    for dataset, prefix, per_year, share, unit_col, (lo, hi), price in UTILITIES:
        rng = ctx.rng(dataset)
        served = rng.random(h) < share
        hh, days = _payments(ctx, rng, heads, np.where(served, ends, -1), per_year)
        k = hh.size
        units = rng.integers(lo, hi, k)
        columns = _bill_columns(ctx, rng, dataset, prefix, heads, hh)
        columns |= {
            "paid_on": dates(days),
            unit_col: pa.array(units.astype(np.int32)),
            "amount": money(units * price),
            "channel": categorical(weighted_choice(rng, (0.35, 0.3, 0.2, 0.05, 0.1), k), CHANNELS),
        }
        ctx.emit(dataset, columns)
    _heating(ctx, heads, ends)


def _heating(ctx: Context, heads: Ints, ends: Ints) -> None:
    """Heating fees are paid once, in the weeks before the season starts on 15 November."""
    rng, dataset = ctx.rng("GR.heating_payments"), "GR.heating_payments"
    pop = ctx.pop
    urban = np.array([k == "街道" for k in ctx.city.streets.kind])
    street = ctx.city.communities.parent[pop.community[heads]]
    paid_on = ctx.today - rng.integers(5, 75, heads.size)
    payer = (rng.random(heads.size) < np.where(urban[street], 0.85, 0.4)) & (ends > paid_on)
    hh = np.flatnonzero(payer)
    k = hh.size
    year = civil_from_days(paid_on[hh])[0]
    month = civil_from_days(paid_on[hh])[1]
    season_start = np.where(month >= 7, year, year - 1)
    seasons = [f"{y}-{y + 1}" for y in range(int(season_start.min(initial=2000)), 2101)]
    area = rng.integers(45, 140, k)
    columns = _bill_columns(ctx, rng, dataset, "GR", heads, hh)
    columns |= {
        "address": blank_out(
            rng,
            pick(ctx.household_addresses(), hh),
            UTILITY_DIRT.missing,
            ctx.log,
            dataset,
            "address",
            heads[hh],
        ),
        "season": categorical(season_start - int(season_start.min(initial=2000)), seasons),
        "area_m2": pa.array(area.astype(np.int32)),
        "amount": money(area * 2_500),
        "paid_on": dates(paid_on[hh]),
    }
    ctx.emit(dataset, columns)


def write_mobile(ctx: Context) -> None:
    """Write real-name mobile subscriptions (DX) with each number's last activity."""
    pop, rng, dataset = ctx.pop, ctx.rng("mobile"), "DX.mobile_subscriptions"
    n = len(pop)
    persons = np.flatnonzero((pop.phone > 0) & (rng.random(n) < 0.4))
    k = persons.size
    dead = pop.dead[persons]
    death = pop.death[persons]
    still_used = dead & (rng.random(k) < 0.2)  # the family keeps the number
    alive_last = ctx.today - 1 - rng.exponential(2.0, k).astype(np.int64)
    dead_last = death - rng.integers(0, 4, k)
    last = np.where(dead & ~still_used, dead_last, alive_last)
    earliest = np.maximum(pop.birth[persons] + 16 * 365, EARLIEST_MOBILE)
    opened = earliest + (rng.random(k) * np.maximum(last - earliest, 1)).astype(np.int64)
    status = np.where(rng.random(k) < 0.03, 1, 0)
    silent = dead & ~still_used
    status = np.where(silent, np.where(ctx.today - death > 180, 2, 1), status)
    plan = np.where(pop.age[persons] >= 60, 2, weighted_choice(rng, (0.45, 0.3, 0, 0.1, 0.15), k))
    ctx.emit(
        dataset,
        {
            "phone": pop.phones(persons),
            "id_number": id_column(rng, pop, persons, MOBILE_DIRT, ctx.log, dataset),
            "name": name_column(rng, pop, persons, MOBILE_DIRT.name_typo, ctx.log, dataset),
            "opened_on": dates(np.minimum(opened, last)),
            "status": categorical(status, SUBSCRIPTION_STATUSES),
            "plan": categorical(plan, PLANS),
            "last_active_on": blank_out(
                rng, dates(last), MOBILE_DIRT.missing, ctx.log, dataset, "last_active_on", persons
            ),
        },
    )
