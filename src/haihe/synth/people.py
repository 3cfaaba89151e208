"""The synthetic population — 人口: who lives in the city, who is registered, who has died.

Every person is a row index into the arrays of ``Population`` (``person_id`` = index + 1). Ages
follow a Tianjin-like pyramid (about 22-23% of the living aged 60+), deaths follow a Gompertz hazard
over the five years before ``as_of``, most people hold a Tianjin household registration (户籍) and
the rest are migrants with IDs from other provinces. IDs are valid GB 11643 numbers whose birth date
and sex parity match the person.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from haihe.core.identity import check_chars_np
from haihe.synth import reference
from haihe.synth.arrays import (
    Bools,
    Bytes,
    Ints,
    civil_from_days,
    day_number,
    digits,
    fixed_strings,
    join,
    make_distinct,
    padded_strings,
    pick,
    stream,
    unique_ints,
    vocab,
    weighted_choice,
    with_nulls,
)
from haihe.synth.geo import CityMap

DEATH_WINDOW_YEARS = 5
ETHNICITIES = ("汉族", "回族", "满族", "蒙古族", "朝鲜族", "土家族", "壮族")
ETHNICITY_WEIGHTS = (97.3, 1.6, 0.6, 0.2, 0.1, 0.1, 0.1)
RELATIONS = ("户主", "配偶", "子女", "父母", "孙子女", "其他")
# Mobile number prefixes (号段) of the three carriers.
PHONE_PREFIXES = (*range(130, 140), *range(150, 160), 166, 176, 177, 178, *range(180, 190), 191,
                  198, 199)  # fmt: skip
HOUSEHOLD_SIZES = (1, 2, 3, 4, 5, 6)
HOUSEHOLD_WEIGHTS = (0.24, 0.31, 0.24, 0.12, 0.07, 0.02)
MALE, FEMALE = 1, 2


@dataclass
class Population:
    """Column arrays of every person, indexed by row; see the module docstring."""

    as_of: int
    sex: npt.NDArray[np.int8]
    birth: Ints
    age: Ints
    dead: Bools
    death: Ints
    died_here: Bools
    hukou: Bools
    moved_out: Bools
    away: Bools
    residence_region: Ints
    community: Ints
    household: Ints
    relation: npt.NDArray[np.int8]
    body: Ints
    id_bytes: Bytes
    surname: Ints
    given: Ints  # (rows, 2) indices into the given-name vocabulary; the last entry is ""
    name: pa.Array
    phone: Ints
    ethnicity: npt.NDArray[np.int8]
    employer: Ints = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.sex.size)

    @property
    def person_id(self) -> Ints:
        """Return the stable person_id of every row (row + 1)."""
        return np.arange(1, len(self) + 1, dtype=np.int64)

    @property
    def alive(self) -> Bools:
        """Return who is alive on ``as_of``."""
        return ~self.dead

    @property
    def resident(self) -> Bools:
        """Return who is alive and lives in the city (migrants included, people living away not)."""
        return ~self.dead & ~self.away

    def id_matrix(self, rows: Ints) -> Bytes:
        """Return the clean ID numbers of ``rows`` as a (rows, 18) byte matrix (a copy)."""
        records = self.id_bytes.view("V18").reshape(-1)
        return records[rows].view(np.uint8).reshape(-1, 18)

    def ids(self, rows: Ints) -> pa.Array:
        """Return the clean 18-character ID numbers of ``rows``."""
        return fixed_strings(self.id_matrix(rows))

    def legacy_ids(self, rows: Ints) -> pa.Array:
        """Return the 15-digit legacy ID numbers of ``rows`` (meaningful for births in 19xx)."""
        b = self.id_matrix(rows)
        return fixed_strings(np.hstack([b[:, :6], b[:, 8:17]]))

    def names(self, rows: Ints) -> pa.Array:
        """Return the names of ``rows``."""
        return pick(self.name, rows)

    def phones(self, rows: Ints) -> pa.Array:
        """Return the phone numbers of ``rows`` (null where the person has none)."""
        phone = self.phone[rows]
        return with_nulls(padded_strings(np.maximum(phone, 0), 11), phone <= 0)


def name_vocabulary() -> tuple[pa.Array, pa.Array]:
    """Return (surnames, given-name characters + "") as Arrow vocabularies."""
    given = reference.column("given_chars", "char") + [""]
    return vocab(reference.column("surnames", "surname")), vocab(given)


def _band_weights(hukou_share: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], ...]:
    """Return the age-band weights of (migrants, registered) so their mixture is the pyramid."""
    weight = reference.numbers("age_bands", "weight")
    registered = weight * hukou_share
    return weight - registered, registered


def _hukou_share() -> npt.NDArray[np.float64]:
    """Return the share of each age band holding a Tianjin household registration (户籍)."""
    low = reference.numbers("age_bands", "age_from")
    return np.select([low < 20, low < 40, low < 60], [0.86, 0.74, 0.86], 0.95)


def _ages(
    rng: np.random.Generator, hukou: Bools, slot: npt.NDArray[np.int8]
) -> tuple[Ints, npt.NDArray[np.int8]]:
    """Return (age, sex): heads and spouses are adults, the rest make up the pyramid."""
    bands = reference.rows("age_bands")
    low = np.array([int(b["age_from"]) for b in bands])
    width = np.array([int(b["age_to"]) for b in bands]) - low + 1
    adult = low >= 20
    band = np.zeros(hukou.size, np.int64)
    for registered, weights in enumerate(_band_weights(_hukou_share())):
        group = hukou == bool(registered)
        fixed = group & (slot < 2)
        share = fixed.sum() / max(int(group.sum()), 1)
        dist = weights / weights.sum()
        adult_dist = np.where(adult, dist, 0) / dist[adult].sum()
        rest = np.maximum(dist - share * adult_dist, 0) / max(1 - share, 1e-9)
        band[fixed] = weighted_choice(rng, adult_dist, int(fixed.sum()))
        free = group & (slot >= 2)
        band[free] = weighted_choice(rng, rest, int(free.sum()))
    age = low[band] + (rng.random(hukou.size) * width[band]).astype(np.int64)
    male = rng.random(hukou.size) < reference.numbers("age_bands", "male_share")[band]
    return age, np.where(male, MALE, FEMALE).astype(np.int8)


def _annual_death_rate(age: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return a Gompertz-like probability of dying within a year at ``age``."""
    return np.minimum(0.45, 0.0003 + np.exp(-10.1 + 0.092 * age))


def _given_names(rng: np.random.Generator, sex: npt.NDArray[np.int8], birth_year: Ints) -> Ints:
    chars = reference.rows("given_chars")
    era = np.select([birth_year < 1970, birth_year < 2000], [0, 1], 2)
    given = np.full((sex.size, 2), len(chars), np.int64)
    char_sex = np.array([c["sex"] for c in chars])
    for s, letter in ((MALE, "M"), (FEMALE, "F")):
        pool = np.flatnonzero((char_sex == letter) | (char_sex == "U"))
        for e, col in enumerate(("w_old", "w_mid", "w_young")):
            rows = np.flatnonzero((sex == s) & (era == e))
            weights = reference.numbers("given_chars", col)[pool]
            for k in range(2):
                given[rows, k] = pool[weighted_choice(rng, weights, rows.size)]
    single = rng.random(sex.size) < np.array([0.22, 0.3, 0.15])[era]
    given[single, 1] = len(chars)
    return given


def _region_codes(
    rng: np.random.Generator, pop_district: Ints, hukou: Bools, birth_year: Ints
) -> Ints:
    """Return the 6-digit region code of each ID: registration district, old county, elsewhere."""
    n = hukou.size
    codes = np.array([int(c) for c in reference.column("districts", "region_code")])
    region = codes[pop_district].copy()
    moved_within = hukou & (rng.random(n) < 0.15)
    region[moved_within] = codes[rng.integers(0, codes.size, int(moved_within.sum()))]
    for row in reference.rows("legacy_codes"):
        legacy = (region == int(row["district_code"])) & (birth_year <= int(row["until_year"]))
        legacy &= rng.random(n) < 0.6
        region[legacy] = int(row["legacy_code"])
    other = ~hukou | (rng.random(n) < 0.08)
    origin = np.array([int(c) for c in reference.column("other_regions", "region_code")])
    weights = reference.numbers("other_regions", "origin_weight")
    region[other] = origin[weighted_choice(rng, weights, int(other.sum()))]
    return region


def _bodies(rng: np.random.Generator, region: Ints, birth: Ints, sex: npt.NDArray[np.int8]) -> Ints:
    """Return distinct 17-digit ID bodies: region, birth date, sequence with sex parity."""
    year, month, day = civil_from_days(birth)
    stem = (region * 100_000_000 + year * 10_000 + month * 100 + day) * 1000
    parity = (sex == MALE).astype(np.int64)
    body = stem + 2 * rng.integers(1, 500, sex.size) + parity
    return make_distinct(
        body, lambda rows: stem[rows] + 2 * rng.integers(1, 500, rows.size) + parity[rows]
    )


def _households(rng: np.random.Generator, groups: Ints) -> tuple[Ints, npt.NDArray[np.int8]]:
    """Return (household, slot) per person; ``groups`` (sorted) never share a household.

    Slot 0 is the head (户主), slot 1 the second member; households never cross a group.
    """
    n = groups.size
    sizes = np.asarray(HOUSEHOLD_SIZES)[weighted_choice(rng, HOUSEHOLD_WEIGHTS, n)]
    starts = np.cumsum(sizes) - sizes
    boundary = np.zeros(n, np.bool_)
    boundary[starts[starts < n]] = True
    boundary[0] = True
    boundary[1:] |= groups[1:] != groups[:-1]
    household = np.cumsum(boundary) - 1
    first = np.maximum.accumulate(np.where(boundary, np.arange(n), 0))
    slot = np.minimum(np.arange(n) - first, 2).astype(np.int8)
    return household, slot


def _relations(
    household_first: Ints, age: Ints, sex: npt.NDArray[np.int8], slot: npt.NDArray[np.int8]
) -> npt.NDArray[np.int8]:
    """Return each member's relation to the household head (slot 0)."""
    head = household_first
    gap = age[head] - age
    rel = np.full(age.size, 5, np.int8)
    rel[gap >= 18] = 2
    rel[gap >= 45] = 4
    rel[gap <= -18] = 3
    rel[(slot == 1) & (np.abs(gap) <= 10) & (sex != sex[head])] = 1
    rel[slot == 0] = 0
    return rel


def build_population(seed: int, persons: int, as_of: date, city: CityMap) -> Population:
    """Return ``persons`` people living in ``city`` on ``as_of``, stored household by household."""
    rng = stream(seed, "people")
    today = day_number(as_of)
    n = persons
    # Community and registration first, as sorted runs, so households need no sort.
    share = float(np.dot(reference.numbers("age_bands", "weight"), _hukou_share()))
    share /= reference.numbers("age_bands", "weight").sum()
    cw = city.communities.weight
    group_p = np.column_stack([cw * (1 - share), cw * share]).ravel()
    counts = rng.multinomial(n, group_p / group_p.sum())
    groups = np.repeat(np.arange(group_p.size), counts)
    community, hukou = groups // 2, (groups % 2).astype(bool)
    household, slot = _households(rng, groups)
    first = np.maximum.accumulate(np.where(slot == 0, np.arange(n), 0))

    age, sex = _ages(rng, hukou, slot)
    spouse = (slot == 1) & (rng.random(n) < 0.72)
    age[spouse] = np.maximum(age[first[spouse]] + np.rint(rng.normal(0, 3, int(spouse.sum()))), 20)
    sex[spouse] = np.where(sex[first[spouse]] == MALE, FEMALE, MALE)
    birth = today - (age * 365.2425 + rng.random(n) * 365.2425).astype(np.int64) - 1

    window = int(DEATH_WINDOW_YEARS * 365.25)
    p_dead = 1 - (1 - _annual_death_rate(np.maximum(age - 2.5, 0))) ** DEATH_WINDOW_YEARS
    dead = rng.random(n) < p_dead
    death = np.where(dead, np.maximum(today - 1 - rng.integers(0, window, n), birth + 1), -1)
    dead &= death < today
    death[~dead] = -1
    moved_out = hukou & (rng.random(n) < 0.006)
    away = moved_out | (hukou & (rng.random(n) < np.where(age >= 60, 0.04, 0.015)))
    died_here = dead & (rng.random(n) < np.where(away, 0.15, 0.97))
    residence_region = np.zeros(n, np.int64)
    codes = np.array([int(c) for c in reference.column("other_regions", "region_code")])
    weights = reference.numbers("other_regions", "residence_weight")
    residence_region[away] = codes[weighted_choice(rng, weights, int(away.sum()))]

    birth_year = civil_from_days(birth)[0]
    district = city.community_district()[community]
    region = _region_codes(rng, district, hukou, birth_year)
    body = _bodies(rng, region, birth, sex)
    id_bytes = np.empty((n, 18), np.uint8)
    id_bytes[:, :17] = digits(body, 17)
    id_bytes[:, 17] = check_chars_np(body).view(np.uint32).astype(np.uint8)

    surname = weighted_choice(rng, reference.numbers("surnames", "weight"), n)
    # Children mostly carry the head's surname.
    inherit = (slot > 0) & (age[first] - age >= 18) & (rng.random(n) < 0.85)
    surname[inherit] = surname[first[inherit]]
    given = _given_names(rng, sex, birth_year)
    surnames, chars = name_vocabulary()
    name = join(pick(surnames, surname), pick(chars, given[:, 0]), pick(chars, given[:, 1]))

    has_phone = (age >= 12) & (rng.random(n) < np.where(age >= 80, 0.7, 0.96))
    prefix = np.asarray(PHONE_PREFIXES)[rng.integers(0, len(PHONE_PREFIXES), n)]
    phone = np.where(has_phone, prefix * 10**8 + unique_ints(rng, 0, 10**8, n), -1)
    ethnicity = weighted_choice(rng, ETHNICITY_WEIGHTS, n).astype(np.int8)
    return Population(
        as_of=today,
        sex=sex,
        birth=birth,
        age=_completed_years(birth, as_of),
        dead=dead,
        death=death,
        died_here=died_here,
        hukou=hukou,
        moved_out=moved_out,
        away=away,
        residence_region=residence_region,
        community=community,
        household=household,
        relation=_relations(first, age, sex, slot),
        body=body,
        id_bytes=id_bytes,
        surname=surname,
        given=given,
        name=name,
        phone=phone,
        ethnicity=ethnicity,
    )


def _completed_years(birth: Ints, on: date) -> Ints:
    year, month, day = civil_from_days(birth)
    before = (on.month < month) | ((on.month == month) & (on.day < day))
    return on.year - year - before.astype(np.int64)
