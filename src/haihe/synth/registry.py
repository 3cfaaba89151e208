"""Who exists and who has died, as three departments record it — and never quite agree.

- 市卫生健康委员会 (WJW) issues medical death certificates (死亡医学证明) for deaths in the city;
- 市民政局 (MZ) records cremations (火化) at funeral homes;
- 市公安局 (GA) keeps household registration (户籍), cancelling a dead person's only sometimes and
  late, and residence permits (居住证) for people registered elsewhere.

Deaths in the city mostly reach both registers, some only one; deaths in other provinces mostly
reach neither. Ground truth (``truth/persons``) says who really died.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from haihe.synth import reference
from haihe.synth.arrays import (
    Ints,
    categorical,
    civil_from_days,
    dates,
    digits,
    fixed_strings,
    padded_strings,
    vocab,
    weighted_choice,
    with_nulls,
)
from haihe.synth.context import ACTIVE, CANCELLED, MOVED_OUT, NO_HUKOU, Context
from haihe.synth.dirt import Dirt, blank_out, duplicate, id_column, name_column
from haihe.synth.people import ETHNICITIES, RELATIONS

FUNERAL_HOMES = (
    "天津市第一殡仪馆",
    "天津市第二殡仪馆",
    "天津市第三殡仪馆",
    "滨海新区殡仪馆",
    "武清区殡仪馆",
    "宝坻区殡仪馆",
    "蓟州区殡仪馆",
    "静海区殡仪馆",
    "宁河区殡仪馆",
)
# Funeral home serving each district (index into FUNERAL_HOMES), in districts.csv order.
DISTRICT_FUNERAL_HOME = (0, 1, 2, 0, 0, 0, 1, 2, 1, 0, 4, 5, 3, 8, 7, 6)
DEATH_PLACES = ("医疗卫生机构", "家中", "养老服务机构", "其他场所")

CERTIFICATE_DIRT = Dirt(
    duplicate=0.003,
    id_legacy=0.005,
    id_typo=0.005,
    id_format=0.003,
    id_missing=0.015,
    name_typo=0.005,
    missing=0.01,
)
CREMATION_DIRT = Dirt(
    duplicate=0.003,
    id_legacy=0.01,
    id_typo=0.01,
    id_format=0.005,
    id_missing=0.03,
    name_typo=0.01,
    missing=0.02,
)
HUKOU_DIRT = Dirt(
    duplicate=0.001, id_legacy=0.003, id_typo=0.001, id_format=0.001, name_typo=0.002, missing=0.003
)
PERMIT_DIRT = Dirt(duplicate=0.001, id_typo=0.002, id_format=0.002, name_typo=0.003, missing=0.02)


def document_numbers(district: Ints, year: Ints, seq: Ints) -> pa.Array:
    """Return 17-character document numbers: district code, year, 7-digit sequence."""
    codes = np.array([int(c) for c in reference.column("districts", "region_code")])
    return padded_strings((codes[district] * 10_000 + year) * 10_000_000 + seq, 17)


def _by_date(persons: Ints, day: Ints) -> Ints:
    """Return ``persons`` ordered by ``day`` then person (a register is kept in date order)."""
    return persons[np.lexsort((persons, day[persons]))]


def write_deaths(ctx: Context) -> None:
    """Write death certificates (WJW) and cremations (MZ); decide who appears in which."""
    pop, rng = ctx.pop, ctx.rng("deaths")
    n = len(pop)
    here = pop.died_here
    ctx.facts.in_certificates = pop.dead & (rng.random(n) < np.where(here, 0.96, 0.02))
    ctx.facts.in_cremations = pop.dead & (rng.random(n) < np.where(here, 0.93, 0.08))
    _certificates(ctx, _by_date(np.flatnonzero(ctx.facts.in_certificates), pop.death))
    _cremations(ctx, _by_date(np.flatnonzero(ctx.facts.in_cremations), pop.death))


def _certificates(ctx: Context, persons: Ints) -> None:
    pop, rng, dataset = ctx.pop, ctx.rng("deaths.certificates"), "WJW.death_certificates"
    k = persons.size
    causes = reference.rows("death_causes")
    cause = weighted_choice(rng, reference.numbers("death_causes", "weight"), k)
    place = weighted_choice(rng, (0.62, 0.3, 0.06, 0.02), k)
    hospitals = reference.column("hospitals", "name_zh")
    institution = np.where(
        place == 0,
        weighted_choice(rng, reference.numbers("hospitals", "weight"), k),
        len(hospitals) + ctx.district_of(persons),
    )
    take, copies, originals = duplicate(rng, k, CERTIFICATE_DIRT.duplicate)
    seq = np.arange(k)[take] + 1
    rows = persons[take]
    cause, place, institution = cause[take], place[take], institution[take]
    ctx.log.add(dataset, copies, "*", "duplicate", rows[copies] + 1, originals)
    district = ctx.district_of(rows)
    issuers = hospitals + [f"{name}卫生健康委员会" for name in ctx.city.districts.name_zh]
    year = civil_from_days(pop.death[rows])[0]
    cause_code = blank_out(
        rng,
        categorical(cause, [c["code"] for c in causes]),
        CERTIFICATE_DIRT.missing,
        ctx.log,
        dataset,
        "cause_code",
        rows,
    )
    ctx.emit(
        dataset,
        {
            "certificate_no": document_numbers(district, year, seq),
            "name": name_column(rng, pop, rows, CERTIFICATE_DIRT.name_typo, ctx.log, dataset),
            "sex": ctx.sex_column(rows),
            "id_number": id_column(rng, pop, rows, CERTIFICATE_DIRT, ctx.log, dataset),
            "birth_date": blank_out(
                rng, dates(pop.birth[rows]), 0.005, ctx.log, dataset, "birth_date", rows
            ),
            "death_date": dates(pop.death[rows]),
            "death_place": categorical(place, DEATH_PLACES),
            "cause_code": cause_code,
            "cause_name": with_nulls(
                categorical(cause, [c["name_zh"] for c in causes]),
                cause_code.is_null().to_numpy(zero_copy_only=False),
            ),
            "institution": categorical(institution, issuers),
            "district_code": ctx.code_column("districts", district),
        },
    )


def _cremations(ctx: Context, persons: Ints) -> None:
    pop, rng, dataset = ctx.pop, ctx.rng("deaths.cremations"), "MZ.cremations"
    delay = rng.integers(1, 8, persons.size)
    take, copies, originals = duplicate(rng, persons.size, CREMATION_DIRT.duplicate)
    rows = persons[take]
    ctx.log.add(dataset, copies, "*", "duplicate", rows[copies] + 1, originals)
    district = ctx.district_of(rows)
    cremated = np.minimum(pop.death[rows] + delay[take], ctx.today - 1)
    cremated = np.maximum(cremated, pop.death[rows])
    home = np.asarray(DISTRICT_FUNERAL_HOME)[district]
    # The applicant (承办人) is another member of the household where there is one.
    relative = np.minimum(rows + 1, len(pop) - 1)
    same = pop.household[relative] == pop.household[rows]
    relative = np.where(same, relative, np.maximum(rows - 1, 0))
    phone = pop.phones(relative)
    year = civil_from_days(cremated)[0]
    seq = np.arange(persons.size)[take] + 1
    ctx.emit(
        dataset,
        {
            "cremation_no": document_numbers(district, year, seq),
            "name": name_column(rng, pop, rows, CREMATION_DIRT.name_typo, ctx.log, dataset),
            "sex": ctx.sex_column(rows),
            "id_number": id_column(rng, pop, rows, CREMATION_DIRT, ctx.log, dataset),
            "birth_date": blank_out(
                rng,
                dates(pop.birth[rows]),
                CREMATION_DIRT.missing,
                ctx.log,
                dataset,
                "birth_date",
                rows,
            ),
            "death_date": dates(pop.death[rows]),
            "cremated_on": dates(cremated),
            "funeral_home": categorical(home, FUNERAL_HOMES),
            "applicant_phone": phone,
        },
    )


def write_household_registration(ctx: Context) -> None:
    """Write household registration (GA): active, moved out, or cancelled on death (late or not)."""
    pop, rng, dataset = ctx.pop, ctx.rng("hukou"), "GA.household_registration"
    n = len(pop)
    facts = ctx.facts
    status = np.where(pop.hukou, ACTIVE, NO_HUKOU).astype(np.int8)
    status_date = np.full(n, -1, np.int64)
    moved = pop.moved_out
    status[moved] = MOVED_OUT
    status_date[moved] = ctx.today - rng.integers(30, 5 * 365, int(moved.sum()))
    recorded = facts.in_certificates | facts.in_cremations
    cancel_p = np.where(recorded, 0.85, 0.3)
    lag = rng.exponential(25, n).astype(np.int64) + 3
    cancelled = pop.hukou & ~moved & pop.dead & (rng.random(n) < cancel_p)
    cancelled &= pop.death + lag < ctx.today
    status[cancelled] = CANCELLED
    status_date[cancelled] = pop.death[cancelled] + lag[cancelled]
    facts.hukou_status, facts.hukou_status_date = status, status_date

    persons = np.flatnonzero(pop.hukou)
    take, copies, originals = duplicate(rng, persons.size, HUKOU_DIRT.duplicate)
    rows = persons[take]
    ctx.log.add(dataset, copies, "*", "duplicate", rows[copies] + 1, originals)
    community = pop.community[rows]
    street = ctx.city.communities.parent[community]
    district = ctx.city.streets.parent[street]
    codes = np.array([int(c) for c in ctx.city.districts.codes])
    s = status[rows]
    ctx.emit(
        dataset,
        {
            "record_no": padded_strings(np.arange(1, rows.size + 1), 12, "HJ"),
            "household_no": padded_strings(codes[district] * 10**9 + pop.household[rows], 15),
            "id_number": id_column(rng, pop, rows, HUKOU_DIRT, ctx.log, dataset),
            "name": name_column(rng, pop, rows, HUKOU_DIRT.name_typo, ctx.log, dataset),
            "sex": ctx.sex_column(rows),
            "birth_date": dates(pop.birth[rows]),
            "ethnicity": categorical(pop.ethnicity[rows], ETHNICITIES),
            "relation": categorical(pop.relation[rows], RELATIONS),
            "district_code": ctx.code_column("districts", district),
            "street_code": ctx.code_column("streets", street),
            "community_code": ctx.code_column("communities", community),
            "address": blank_out(
                rng, ctx.addresses(rows), HUKOU_DIRT.missing, ctx.log, dataset, "address", rows
            ),
            "status": categorical(s - 1, ("正常", "迁出", "死亡注销")),
            "status_date": dates(status_date[rows], status_date[rows] < 0),
        },
    )


def write_residence_permits(ctx: Context) -> None:
    """Write residence permits (GA) of adults who live here but are registered elsewhere."""
    pop, rng, dataset = ctx.pop, ctx.rng("permits"), "GA.residence_permits"
    n = len(pop)
    holder = ~pop.hukou & (pop.age >= 16) & (rng.random(n) < 0.72)
    holder &= ~pop.dead | (rng.random(n) < 0.5)  # a dead holder's permit simply lapses
    persons = np.flatnonzero(holder)
    end = np.where(pop.dead[persons], pop.death[persons], ctx.today)
    issued = end - rng.integers(1, 3 * 365, persons.size)
    take, copies, originals = duplicate(rng, persons.size, PERMIT_DIRT.duplicate)
    rows = persons[take]
    issued = issued[take]
    ctx.log.add(dataset, copies, "*", "duplicate", rows[copies] + 1, originals)
    community = pop.community[rows]
    district = ctx.district_of(rows)
    permit = digits(np.arange(1, rows.size + 1), 10)
    prefix = digits(np.array([int(c) for c in ctx.city.districts.codes])[district], 6)
    ctx.emit(
        dataset,
        {
            "permit_no": fixed_strings(np.hstack([prefix, permit])),
            "id_number": id_column(rng, pop, rows, PERMIT_DIRT, ctx.log, dataset),
            "name": name_column(rng, pop, rows, PERMIT_DIRT.name_typo, ctx.log, dataset),
            "sex": ctx.sex_column(rows),
            "birth_date": dates(pop.birth[rows]),
            "district_code": ctx.code_column("districts", district),
            "community_code": ctx.code_column("communities", community),
            "address": blank_out(
                rng, ctx.addresses(rows), 0.005, ctx.log, dataset, "address", rows
            ),
            "phone": blank_out(
                rng, pop.phones(rows), PERMIT_DIRT.missing, ctx.log, dataset, "phone", rows
            ),
            "issued_on": dates(issued),
            "expires_on": dates(issued + 365),
        },
    )


def hospital_vocabulary(ctx: Context) -> pa.Array:
    """Return city hospitals, then a people's hospital per district, then a centre per street."""
    names = reference.column("hospitals", "name_zh")
    names += [f"{d}人民医院" for d in ctx.city.districts.name_zh]
    names += [
        (f"{s}卫生院" if kind == "镇" else f"{s}社区卫生服务中心")
        for s, kind in zip(ctx.city.streets.name_zh, ctx.city.streets.kind, strict=True)
    ]
    return vocab(names)
