"""Social assistance and pensions: disability certificates (CL), minimum living security (MZ) and
pension recipients (RS), with the ground truth of the pension scenarios.

Pensions are where the death registers matter: a pensioner whose death reached a register is
usually stopped (发放状态 终止发放, paid through the month of death or a little later); one whose
death reached no register — or whose stop was missed — is still paid, and ``truth/pensions`` gives
the overpaid months and amount. Some pensioners live in other provinces (异地居住) and certify
remotely.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

from haihe.synth.arrays import (
    Bools,
    Ints,
    categorical,
    dates,
    day_number,
    digits,
    fixed_strings,
    money,
    month_end,
    months_between,
    padded_strings,
    with_nulls,
)
from haihe.synth.context import Context
from haihe.synth.dirt import Dirt, blank_out, duplicate, id_column, name_column
from haihe.synth.people import MALE, RELATIONS

DISABILITY_CATEGORIES = (
    "视力残疾",
    "听力残疾",
    "言语残疾",
    "肢体残疾",
    "智力残疾",
    "精神残疾",
    "多重残疾",
)
DISABILITY_GRADES = ("一级", "二级", "三级", "四级")
PENSION_TYPES = ("企业职工基本养老金", "机关事业单位基本养老金", "城乡居民基础养老金")
PENSION_STATUSES = ("正常发放", "暂停发放", "终止发放")
DIBAO_STANDARD_CENTS = 101_000  # 1,010 yuan per person per month
EARLIEST_PENSION = day_number(date(1995, 1, 1))

DISABILITY_DIRT = Dirt(id_typo=0.002, id_format=0.002, name_typo=0.002)
DIBAO_DIRT = Dirt(duplicate=0.002, id_legacy=0.003, id_typo=0.003, id_format=0.002, name_typo=0.003)
PENSION_DIRT = Dirt(
    duplicate=0.0005, id_legacy=0.005, id_typo=0.001, id_format=0.001, name_typo=0.002, missing=0.05
)


def write_disability(ctx: Context) -> None:
    """Write disability certificates (CL) of registered residents; decide who is disabled."""
    pop, rng, dataset = ctx.pop, ctx.rng("disability"), "CL.disability_certificates"
    n = len(pop)
    p = np.select([pop.age < 18, pop.age < 60, pop.age < 80], [0.008, 0.022, 0.06], 0.13)
    disabled = pop.hukou & (rng.random(n) < p)
    ctx.facts.disabled = disabled
    rows = np.flatnonzero(disabled)
    category = rng.integers(0, len(DISABILITY_CATEGORIES), rows.size)
    grade = rng.integers(0, len(DISABILITY_GRADES), rows.size)
    # Second-generation certificate number: ID number + category digit + grade digit.
    number = np.hstack(
        [
            pop.id_bytes[rows],
            (category[:, None] + 49).astype(np.uint8),
            (grade[:, None] + 49).astype(np.uint8),
        ]
    )
    end = np.where(pop.dead[rows], pop.death[rows], ctx.today)
    issued = np.maximum(pop.birth[rows] + 30, end - rng.integers(30, 12 * 365, rows.size))
    cancelled = pop.dead[rows] & (rng.random(rows.size) < 0.6)
    ctx.emit(
        dataset,
        {
            "certificate_no": fixed_strings(number),
            "id_number": id_column(rng, pop, rows, DISABILITY_DIRT, ctx.log, dataset),
            "name": name_column(rng, pop, rows, DISABILITY_DIRT.name_typo, ctx.log, dataset),
            "sex": ctx.sex_column(rows),
            "birth_date": dates(pop.birth[rows]),
            "category": categorical(category, DISABILITY_CATEGORIES),
            "grade": categorical(grade, DISABILITY_GRADES),
            "issued_on": dates(issued),
            "district_code": ctx.code_column("districts", ctx.district_of(rows)),
            "status": categorical(cancelled.astype(np.int64), ("有效", "注销")),
        },
    )


def household_index(household: Ints) -> tuple[Ints, Ints]:
    """Return (first row, size) of every household (rows are stored household by household)."""
    first = np.flatnonzero(np.r_[True, np.diff(household) != 0])
    return first, np.diff(np.r_[first, household.size])


def write_minimum_living_security(ctx: Context) -> None:
    """Write the minimum living security (低保) roster (MZ) and decide who is low-income."""
    pop, rng, dataset = ctx.pop, ctx.rng("dibao"), "MZ.minimum_living_security"
    first, size = household_index(pop.household)
    h = first.size
    has_disabled = np.add.reduceat(ctx.facts.disabled.astype(np.int64), first) > 0
    old_head = pop.age[first] >= 60
    p = 0.011 * np.where(has_disabled, 2.5, 1.0) * np.where(old_head, 1.6, 1.0)
    chosen = pop.hukou[first] & (rng.random(h) < p)
    approved = ctx.today - rng.integers(30, 6 * 365, h)
    stopped = chosen & (rng.random(h) < 0.06)
    member_h = pop.household
    listed = chosen[member_h] & ~pop.moved_out
    died_before = pop.dead & (pop.death < approved[member_h])
    stale = pop.dead & ~died_before & (rng.random(len(pop)) < 0.5)
    listed &= ~died_before & (~pop.dead | stale)
    ctx.facts.low_income_listed = listed
    ctx.facts.low_income = listed & ~stopped[member_h] & ~pop.dead

    persons = np.flatnonzero(listed)
    take, copies, originals = duplicate(rng, persons.size, DIBAO_DIRT.duplicate)
    rows = persons[take]
    ctx.log.add(dataset, copies, "*", "duplicate", rows[copies] + 1, originals)
    hh = member_h[rows]
    listed_size = np.bincount(member_h[persons], minlength=h)
    amount = np.rint(DIBAO_STANDARD_CENTS * listed_size * rng.uniform(0.5, 1.0, h) / 100) * 100
    community = pop.community[rows]
    street = ctx.city.communities.parent[community]
    ctx.emit(
        dataset,
        {
            "member_no": padded_strings(np.arange(1, rows.size + 1), 10, "DBM"),
            "case_no": padded_strings(hh, 10, "DB"),
            "id_number": id_column(rng, pop, rows, DIBAO_DIRT, ctx.log, dataset),
            "name": name_column(rng, pop, rows, DIBAO_DIRT.name_typo, ctx.log, dataset),
            "relation": categorical(pop.relation[rows], RELATIONS),
            "household_size": pa.array(listed_size[hh].astype(np.int32)),
            "district_code": ctx.code_column("districts", ctx.city.streets.parent[street]),
            "street_code": ctx.code_column("streets", street),
            "community_code": ctx.code_column("communities", community),
            "monthly_amount": money(amount[hh]),
            "approved_on": dates(approved[hh]),
            "status": categorical(stopped[hh].astype(np.int64), ("在保", "停保")),
        },
    )


def _pension_terms(ctx: Context, rng: np.random.Generator) -> tuple[Bools, Ints, Ints, Ints]:
    """Return (pensioner, type, start day, monthly cents) for everyone."""
    pop = ctx.pop
    n = len(pop)
    kind = np.searchsorted(np.cumsum([0.68, 0.1, 0.22]), rng.random(n), side="right")
    kind = np.minimum(kind, 2)
    female = pop.sex != MALE
    early_woman = female & (kind == 0) & (rng.random(n) < 0.65)
    ret_age = np.where(kind == 2, 60, np.where(female, np.where(early_woman, 50, 55), 60))
    ret_age = np.where((kind == 0) & ~female & (rng.random(n) < 0.08), 55, ret_age)
    start = pop.birth + np.rint(ret_age * 365.2425).astype(np.int64)
    start = np.maximum(start, EARLIEST_PENSION)
    end = np.where(pop.dead, pop.death, ctx.today)
    entitled = rng.random(n) < np.where(pop.hukou, 0.9, 0.25)
    pensioner = entitled & (start < end - 31)
    mean = np.array([390_000, 620_000, 38_000])[kind]
    spread = np.array([90_000, 150_000, 8_000])[kind]
    cents = np.maximum(np.rint(rng.normal(mean, spread) / 100) * 100, 20_000).astype(np.int64)
    return pensioner, kind, start, cents


def write_pensions(ctx: Context) -> None:
    """Write pension recipients (RS) and ``truth/pensions`` (alive, overpaid months and amount)."""
    pop, rng, dataset = ctx.pop, ctx.rng("pensions"), "RS.pension_recipients"
    facts = ctx.facts
    pensioner, kind, start, cents = _pension_terms(ctx, rng)
    facts.pensioner = pensioner
    persons = np.flatnonzero(pensioner)
    k = persons.size
    dead = pop.dead[persons]
    death = pop.death[persons]
    last_month = int(month_end(np.array([ctx.today - 1]))[0])  # the latest month paid
    paid_through = np.full(k, last_month, np.int64)
    status = np.zeros(k, np.int64)
    # Alive but suspended: failed to certify, paid up to a few months ago.
    suspended = ~dead & (rng.random(k) < 0.01)
    paid_through[suspended] = month_end(ctx.today - rng.integers(60, 240, int(suspended.sum())))
    status[suspended] = 1
    known = facts.in_certificates[persons] | facts.in_cremations[persons]
    known |= facts.hukou_status[persons] == 3
    stopped = dead & known & (rng.random(k) < 0.88)
    lag_days = np.where(rng.random(k) < 0.7, 0, rng.integers(25, 100, k))
    paid_through[stopped] = np.minimum(month_end(death + lag_days)[stopped], last_month)
    status[stopped] = 2
    overpaid = np.where(dead, np.maximum(months_between(death, paid_through), 0), 0)
    away = pop.away[persons]
    region = pop.residence_region[persons]
    certified = np.where(dead, death, ctx.today) - rng.integers(1, 365, k)
    certified_mask = ~away | (dead & (rng.random(k) < 0.3))

    take, copies, originals = duplicate(rng, k, PENSION_DIRT.duplicate)
    rows = persons[take]
    ctx.log.add(dataset, copies, "*", "duplicate", rows[copies] + 1, originals)
    ctx.emit(
        dataset,
        {
            "pension_no": padded_strings(take + 1, 11, "YL"),
            "id_number": id_column(rng, pop, rows, PENSION_DIRT, ctx.log, dataset),
            "name": name_column(rng, pop, rows, PENSION_DIRT.name_typo, ctx.log, dataset),
            "sex": ctx.sex_column(rows),
            "birth_date": dates(pop.birth[rows]),
            "pension_type": categorical(kind[rows], PENSION_TYPES),
            "started_on": dates(start[rows]),
            "monthly_amount": money(cents[rows]),
            "paid_through": dates(paid_through[take]),
            "status": categorical(status[take], PENSION_STATUSES),
            "residence_region": with_nulls(
                fixed_strings(digits(np.maximum(region[take], 0), 6)), ~away[take]
            ),
            "certified_on": dates(certified[take], certified_mask[take]),
            "district_code": ctx.code_column("districts", ctx.district_of(rows)),
            "phone": blank_out(
                rng, pop.phones(rows), PENSION_DIRT.missing, ctx.log, dataset, "phone", rows
            ),
        },
    )
    overpayment = overpaid * cents[persons]
    ctx.writer.truth(
        "pensions",
        pa.table(
            {
                "pension_no": padded_strings(np.arange(1, k + 1), 11, "YL"),
                "person_id": pa.array(persons + 1),
                "alive": pa.array(~dead),
                "death_date": dates(np.maximum(death, 0), ~dead),
                "lives_elsewhere": pa.array(away),
                "residence_region": with_nulls(
                    fixed_strings(digits(np.maximum(region, 0), 6)), ~away
                ),
                "status": categorical(status, PENSION_STATUSES),
                "paid_through": dates(paid_through),
                "monthly_amount": money(cents[persons]),
                "still_paid_after_death": pa.array(overpaid > 0),
                "overpaid_months": pa.array(overpaid.astype(np.int32)),
                "overpayment": money(overpayment, 16),
                "eligible": pa.array(~dead),
            }
        ),
        "Every pensioner (by pension_no): alive or not, lives elsewhere, paid through, overpaid "
        "months and amount after death; eligible = alive.",
    )
