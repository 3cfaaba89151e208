"""Social insurance enrolment: basic pension insurance (RS) and basic medical insurance (YB).

Workers are enrolled through their employer; others may enrol in the residents' schemes.
Members of hardship households (低保 or with a disabled member) enrol less often — the
social-security outreach scenario (社保扩面) looks for them.
"""

from __future__ import annotations

import numpy as np

from haihe.synth.arrays import (
    Bools,
    Ints,
    categorical,
    civil_from_days,
    dates,
    days_from_civil,
    padded_strings,
)
from haihe.synth.context import Context
from haihe.synth.dirt import Dirt, duplicate, id_column, name_column
from haihe.synth.economy import employer_uscc
from haihe.synth.welfare import household_index

PENSION_SCHEMES = ("城镇职工基本养老保险", "城乡居民基本养老保险")
MEDICAL_SCHEMES = ("职工基本医疗保险", "城乡居民基本医疗保险")
ENROLMENT_STATUSES = ("参保缴费", "暂停缴费", "终止参保")
INSURANCE_DIRT = Dirt(
    duplicate=0.0005, id_legacy=0.002, id_typo=0.001, id_format=0.001, name_typo=0.002
)


def hardship(ctx: Context) -> Bools:
    """Return who lives in a hardship household: on the 低保 roster, or with a disabled member."""
    pop = ctx.pop
    first, _ = household_index(pop.household)
    disabled_home = np.add.reduceat(ctx.facts.disabled.astype(np.int64), first) > 0
    return ctx.facts.low_income_listed | disabled_home[pop.household]


def first_of_month(days: Ints) -> Ints:
    """Return the first day of each day's month."""
    year, month, _ = civil_from_days(days)
    return days_from_civil(year, month, np.ones_like(month))


def write_pension_insurance(ctx: Context) -> None:
    """Write basic pension insurance enrolment (RS); decide who is enrolled."""
    pop, rng, dataset = ctx.pop, ctx.rng("pension_insurance"), "RS.pension_insurance"
    n = len(pop)
    facts = ctx.facts
    working = (facts.employer >= 0) | (facts.public_employer >= 0)
    employee = working & (rng.random(n) < np.where(pop.hukou, 0.93, 0.75))
    poor = hardship(ctx)
    adult = (pop.age >= 18) & (pop.age < 60)
    resident = (
        pop.hukou
        & adult
        & ~working
        & ~facts.pensioner
        & (rng.random(n) < np.where(poor, 0.25, 0.55))
    )
    enrolled = employee | resident
    facts.pension_insured = enrolled
    src = np.flatnonzero(enrolled)
    k = src.size
    dead = pop.dead[src]
    end = np.where(dead, pop.death[src], ctx.today - 1)
    is_employee = employee[src]
    span = np.maximum((pop.age[src] - 17) * 365, 30)
    enrolled_on = np.maximum(end - rng.integers(0, span), pop.birth[src] + 18 * 365)
    enrolled_on = np.minimum(enrolled_on, end)
    paused = ~is_employee & (rng.random(k) < 0.15)
    status = np.where(paused, 1, 0)
    status = np.where(dead & (rng.random(k) < 0.7), 2, status)
    lapsed = end - rng.integers(400, 1100, k)
    last_paid = np.where(is_employee, end, np.where(paused, lapsed, end - rng.integers(0, 330, k)))
    last_paid = np.maximum(last_paid, enrolled_on)
    take, copies, originals = duplicate(rng, k, INSURANCE_DIRT.duplicate)
    rows = src[take]
    ctx.log.add(dataset, copies, "*", "duplicate", rows[copies] + 1, originals)
    ctx.emit(
        dataset,
        {
            "insured_no": padded_strings(take + 1, 12, "SB"),
            "id_number": id_column(rng, pop, rows, INSURANCE_DIRT, ctx.log, dataset),
            "name": name_column(rng, pop, rows, INSURANCE_DIRT.name_typo, ctx.log, dataset),
            "scheme": categorical((~is_employee[take]).astype(np.int64), PENSION_SCHEMES),
            "employer_uscc": employer_uscc(ctx, rows, is_employee[take]),
            "enrolled_on": dates(enrolled_on[take]),
            "status": categorical(status[take], ENROLMENT_STATUSES),
            "last_paid_month": dates(first_of_month(last_paid[take])),
        },
    )


def write_medical_insurance(ctx: Context) -> None:
    """Write basic medical insurance enrolment (YB); decide who is insured."""
    pop, rng, dataset = ctx.pop, ctx.rng("medical_insurance"), "YB.medical_insurance"
    n = len(pop)
    facts = ctx.facts
    working = (facts.employer >= 0) | (facts.public_employer >= 0)
    p = np.where(pop.hukou, np.where(pop.away, 0.6, 0.96), np.where(working, 0.85, 0.25))
    p = np.where(facts.low_income_listed, 0.98, p)
    insured = rng.random(n) < p
    facts.medical_insured = insured
    src = np.flatnonzero(insured)
    k = src.size
    dead = pop.dead[src]
    end = np.where(dead, pop.death[src], ctx.today - 1)
    employee_scheme = working[src] | (facts.pensioner[src] & (rng.random(k) < 0.75))
    retired = facts.pensioner[src] & employee_scheme
    start = np.maximum(pop.birth[src], end - rng.integers(0, 20 * 365, k))
    status = np.where(dead & (rng.random(k) < 0.65), 2, 0)
    annual = end - rng.integers(0, 365, k)
    last_paid = np.maximum(np.where(employee_scheme, first_of_month(end), annual), start)
    take, copies, originals = duplicate(rng, k, INSURANCE_DIRT.duplicate)
    rows = src[take]
    ctx.log.add(dataset, copies, "*", "duplicate", rows[copies] + 1, originals)
    ctx.emit(
        dataset,
        {
            "insured_no": padded_strings(take + 1, 12, "YB"),
            "id_number": id_column(rng, pop, rows, INSURANCE_DIRT, ctx.log, dataset),
            "name": name_column(rng, pop, rows, INSURANCE_DIRT.name_typo, ctx.log, dataset),
            "scheme": categorical((~employee_scheme[take]).astype(np.int64), MEDICAL_SCHEMES),
            "enrolled_on": dates(np.minimum(start, end)[take]),
            "status": categorical(status[take], ENROLMENT_STATUSES),
            "last_paid_on": dates(last_paid[take], retired[take]),
        },
    )
