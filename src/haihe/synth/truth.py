"""Ground truth — what really is, for scoring: ``truth/persons``, ``truth/households`` and
``truth/dirty_rows``. (``pensions``, ``bus_cards``, ``trips`` and ``housing_fund_applications`` are
written by the steps that decide them.)

Departmental datasets never carry ``person_id``; the truth files do, so a test can join a result
back to the person it should have found.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from haihe.synth.arrays import Bools, categorical, dates, digits, fixed_strings, with_nulls
from haihe.synth.context import ACTIVE, HUKOU_STATUS, Context
from haihe.synth.insurance import hardship
from haihe.synth.people import RELATIONS
from haihe.synth.welfare import household_index


def needs_outreach(ctx: Context) -> Bools:
    """Return who the social-security outreach should reach: alive registered residents aged
    16-59 in a hardship household, not in basic pension insurance and not drawing a pension."""
    pop, facts = ctx.pop, ctx.facts
    return (
        pop.resident
        & (facts.hukou_status == ACTIVE)
        & (pop.age >= 16)
        & (pop.age < 60)
        & hardship(ctx)
        & ~facts.pension_insured
        & ~facts.pensioner
    )


def household_numbers(ctx: Context, households: np.ndarray, district: np.ndarray) -> pa.Array:
    """Return household numbers (户号) as on the household register: district code + sequence."""
    codes = np.array([int(c) for c in ctx.city.districts.codes])
    return fixed_strings(digits(codes[district] * 10**9 + households, 15))


def write_truth(ctx: Context) -> None:
    """Write the persons, households and dirty-rows truth files."""
    pop, facts, city = ctx.pop, ctx.facts, ctx.city
    everyone = np.arange(len(pop))
    street = city.communities.parent[pop.community]
    district = city.streets.parent[street]
    employed = (facts.employer >= 0) | (facts.public_employer >= 0)
    outreach = needs_outreach(ctx)
    poor = hardship(ctx)
    away = pop.away
    ctx.writer.truth(
        "persons",
        pa.table(
            {
                "person_id": pa.array(pop.person_id),
                "id_number": pop.ids(everyone),
                "id_body": pa.array(pop.body),
                "name": pop.name,
                "sex": ctx.sex_column(everyone),
                "birth_date": dates(pop.birth),
                "age": pa.array(pop.age.astype(np.int16)),
                "alive": pa.array(pop.alive),
                "death_date": dates(np.maximum(pop.death, 0), ~pop.dead),
                "died_in_city": pa.array(pop.died_here),
                "in_death_certificates": pa.array(facts.in_certificates),
                "in_cremations": pa.array(facts.in_cremations),
                "hukou_status": categorical(facts.hukou_status, HUKOU_STATUS),
                "registered_resident": pa.array(facts.hukou_status == ACTIVE),
                "lives_elsewhere": pa.array(away),
                "residence_region": with_nulls(
                    fixed_strings(digits(np.maximum(pop.residence_region, 0), 6)), ~away
                ),
                "district_code": ctx.code_column("districts", district),
                "street_code": ctx.code_column("streets", street),
                "community_code": ctx.code_column("communities", pop.community),
                "household_id": pa.array(pop.household),
                "relation": categorical(pop.relation, RELATIONS),
                "phone": pop.phones(everyone),
                "employed": pa.array(employed),
                "pensioner": pa.array(facts.pensioner),
                "low_income": pa.array(facts.low_income),
                "disabled": pa.array(facts.disabled),
                "hardship": pa.array(poor),
                "pension_insured": pa.array(facts.pension_insured),
                "medical_insured": pa.array(facts.medical_insured),
                "bus_card_holder": pa.array(facts.bus_card >= 0),
                "bus_card_eligible": pa.array(
                    pop.alive & (pop.age >= 65) & (facts.hukou_status == ACTIVE)
                ),
                "housing_fund_account": pa.array(facts.housing_fund >= 0),
                "needs_outreach": pa.array(outreach),
            }
        ),
        "Every person (person_id): clean ID and name, true death status and date, which death "
        "registers hold them, registration, residence, household and the eligibility flags the "
        "scenarios score against.",
    )
    first, size = household_index(pop.household)
    resident = pop.resident.astype(np.int64)
    ctx.writer.truth(
        "households",
        pa.table(
            {
                "household_id": pa.array(pop.household[first]),
                "household_no": household_numbers(ctx, pop.household[first], district[first]),
                "community_code": ctx.code_column("communities", pop.community[first]),
                "head_person_id": pa.array(first + 1),
                "members": pa.array(size.astype(np.int32)),
                "residents": pa.array(np.add.reduceat(resident, first).astype(np.int32)),
                "registered": pa.array(pop.hukou[first]),
                "low_income": pa.array(
                    np.add.reduceat(facts.low_income.astype(np.int64), first) > 0
                ),
                "hardship": pa.array(poor[first]),
                "members_needing_outreach": pa.array(
                    np.add.reduceat(outreach.astype(np.int64), first).astype(np.int32)
                ),
            }
        ),
        "Every household: number, community, head, members, residents, low-income (active 低保) "
        "and hardship flags, members the social-security outreach should reach.",
    )
    ctx.writer.truth(
        "dirty_rows",
        ctx.log.table(),
        "Every defect injected into a departmental dataset: dataset, row (0-based), column, kind "
        "(duplicate, id_legacy, id_typo, id_lower_x, id_fullwidth, id_spaces, id_missing, "
        "name_typo, missing), the true person_id (0: none) and, for duplicates, the original row.",
    )
