"""Legal entities — 法人单位: enterprises (SCJG), their penalties, and who works where.

Enterprise codes are valid unified social credit codes (GB 32100-2015) from
``haihe.core.identity.compose_uscc``. The first few enterprises are the ride-hailing platforms and
car-leasing companies the supervision scenario needs.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from haihe.core.identity import USCC_ALPHABET, compose_uscc
from haihe.synth import reference
from haihe.synth.arrays import (
    Bools,
    Ints,
    categorical,
    civil_from_days,
    dates,
    int_strings,
    join,
    money,
    padded_strings,
    pick,
    unique_ints,
    vocab,
    weighted_choice,
)
from haihe.synth.context import Context
from haihe.synth.dirt import Dirt, blank_out, id_column, name_column

ENTERPRISES_PER_PERSON = 0.03
PLATFORMS = (
    "天津海河出行科技有限公司",
    "津城约车网络科技有限公司",
    "渤海快车信息技术有限公司",
    "天津享途出行服务有限公司",
    "津门智行网络科技有限公司",
)
PLATFORM_SHORT = ("海河出行", "津城约车", "渤海快车", "享途出行", "津门智行")
LEASING = ("天津通达汽车租赁有限公司", "天津顺程汽车服务有限公司", "天津安驰汽车租赁有限公司")
FORMS = ("有限公司", "有限责任公司", "股份有限公司")
STATUSES = ("存续", "注销", "吊销")
PENALTY_REASONS = (
    "虚假广告",
    "产品质量不合格",
    "无照经营",
    "价格违法",
    "食品安全违法",
    "未按规定公示年度报告",
    "侵犯注册商标专用权",
    "计量违法",
)
PENALTIES = ("警告", "罚款", "没收违法所得、罚款", "责令停产停业")
LEGAL_REP_DIRT = Dirt(id_legacy=0.002, id_typo=0.001, id_format=0.001, name_typo=0.001)


def enterprise_count(persons: int) -> int:
    """Return the number of enterprises in a city of ``persons``."""
    return max(len(PLATFORMS) + len(LEASING) + 20, round(persons * ENTERPRISES_PER_PERSON))


def _org_bodies(rng: np.random.Generator, count: int) -> list[str]:
    """Return distinct 8-character organisation-code bodies, most in the new "MA" form."""
    new_form = rng.random(count) < 0.75
    n_new = int(new_form.sum())
    out = np.empty(count, object)
    tails = unique_ints(rng, 0, 31**6, n_new)
    chars = []
    for _ in range(6):
        tails, rest = np.divmod(tails, 31)
        chars.append(np.asarray(list(USCC_ALPHABET))[rest])
    out[new_form] = ["MA" + "".join(c) for c in zip(*chars, strict=True)]
    out[~new_form] = [f"{v:08d}" for v in unique_ints(rng, 0, 10**8, count - n_new).tolist()]
    return [str(body) for body in out]


def write_enterprises(ctx: Context) -> None:
    """Write enterprises and penalties (SCJG) and decide every worker's employer."""
    pop, rng, dataset = ctx.pop, ctx.rng("enterprises"), "SCJG.enterprises"
    e = enterprise_count(len(pop))
    words = reference.rows("enterprise_words")
    brands = [w["zh"] for w in words if w["kind"] == "brand"]
    industries = [w for w in words if w["kind"] == "industry"]
    nb, ni = len(brands), len(industries)
    codes = unique_ints(rng, 0, nb * nb * (nb + 1) * ni, e)
    b1, rest = np.divmod(codes, nb * (nb + 1) * ni)
    b2, rest = np.divmod(rest, (nb + 1) * ni)
    b3, industry = np.divmod(rest, ni)
    b3 = np.where(rng.random(e) < 0.6, nb, b3)  # most trade names have two characters
    brand_vocab = vocab([*brands, ""])
    form = weighted_choice(rng, (0.85, 0.1, 0.05), e)
    names = join(
        "天津",
        pick(brand_vocab, b1),
        pick(brand_vocab, b2),
        pick(brand_vocab, b3),
        pick(vocab([w["zh"] for w in industries]), industry),
        pick(vocab(FORMS), form),
    )
    fixed = [*PLATFORMS, *LEASING]
    names = pa.concat_arrays([pa.array(fixed, pa.string()), names.slice(len(fixed))])
    # Two generated names can still coincide (the third character is dropped); number them.
    dup = np.zeros(e, np.bool_)
    seen: dict[str, int] = {}
    for i, name in enumerate(names.to_pylist()):
        dup[i] = name in seen
        seen[name] = i
    if dup.any():
        names = join(names, pa.array(np.where(dup, "（分公司）", ""), pa.string()))
    district = weighted_choice(rng, ctx.city.districts.weight, e)
    district[: len(PLATFORMS)] = 12  # Binhai New Area hosts the platforms
    region = [ctx.city.districts.codes[d] for d in district.tolist()]
    bodies = _org_bodies(rng, e)
    uscc = pa.array([compose_uscc("9", "1", r, b) for r, b in zip(region, bodies, strict=True)])
    status = weighted_choice(rng, (0.85, 0.1, 0.05), e)
    status[: len(fixed)] = 0
    ctx.enterprise_uscc, ctx.enterprise_name = uscc, names

    adults = np.flatnonzero(pop.resident & (pop.age >= 25) & (pop.age <= 70))
    rep = adults[rng.integers(0, adults.size, e)]
    established = ctx.today - (rng.exponential(2500, e)).astype(np.int64).clip(30, 35 * 365)
    capital_wan = np.exp(rng.normal(5.0, 1.5, e)).clip(1, 500_000)
    streets = ctx.city.streets
    street_of_district = np.array(
        [np.flatnonzero(streets.parent == d)[0] for d in range(len(ctx.city.districts))]
    )
    street = street_of_district[district] + rng.integers(0, 3, e)
    street = np.where(
        streets.parent[np.minimum(street, len(streets) - 1)] == district,
        street,
        street_of_district[district],
    )
    address = join(
        "天津市",
        pick(vocab(ctx.city.districts.name_zh), district),
        pick(vocab(streets.name_zh), street),
        pick(vocab([p["zh"] for p in reference.rows("place_parts")]), rng.integers(0, 100, e)),
        "路",
        int_strings(rng.integers(1, 999, e)),
        "号",
    )
    phone = padded_strings(rng.integers(20_000_000, 89_999_999, e), 8, "022-")
    ctx.emit(
        dataset,
        {
            "uscc": uscc,
            "name": names,
            "legal_rep_name": name_column(
                rng, pop, rep, LEGAL_REP_DIRT.name_typo, ctx.log, dataset, "legal_rep_name"
            ),
            "legal_rep_id_number": id_column(
                rng, pop, rep, LEGAL_REP_DIRT, ctx.log, dataset, "legal_rep_id_number"
            ),
            "registered_capital": money(np.rint(capital_wan * 100)),
            "established_on": dates(established),
            "status": categorical(status, STATUSES),
            "industry": categorical(industry, [w["section"] for w in industries]),
            "district_code": ctx.code_column("districts", district),
            "address": address,
            "phone": blank_out(rng, phone, 0.05, ctx.log, dataset, "phone"),
        },
    )
    _penalties(ctx, status)
    _employment(ctx, status)


def _penalties(ctx: Context, status: Ints) -> None:
    rng = ctx.rng("penalties")
    e = len(ctx.enterprise_uscc)
    count = max(5, round(e * 0.03))
    who = np.sort(rng.choice(e, count, replace=True))
    decided = ctx.today - rng.integers(1, 3 * 365, count)
    year = civil_from_days(decided)[0]
    penalty = weighted_choice(rng, (0.15, 0.6, 0.2, 0.05), count)
    amount = np.where(penalty == 0, -1, np.rint(np.exp(rng.normal(9, 1.2, count))) * 100)
    number = join("津市监罚〔", int_strings(year), "〕", int_strings(np.arange(1, count + 1)), "号")
    ctx.emit(
        "SCJG.administrative_penalties",
        {
            "decision_no": number,
            "uscc": pick(ctx.enterprise_uscc, who),
            "party_name": pick(ctx.enterprise_name, who),
            "reason": categorical(
                weighted_choice(rng, np.ones(len(PENALTY_REASONS)), count), PENALTY_REASONS
            ),
            "penalty": categorical(penalty, PENALTIES),
            "amount": money(np.maximum(amount, 0), null_mask=amount < 0),
            "decided_on": dates(decided),
        },
    )


def _employment(ctx: Context, status: Ints) -> None:
    """Decide employers: most workers in enterprises, some in the public sector (机关事业单位)."""
    pop, rng = ctx.pop, ctx.rng("employment")
    n = len(pop)
    retire = np.where(pop.sex == 1, 60, 55)
    working = ~pop.away & (pop.age >= 18) & (pop.age < retire)
    employed = working & (rng.random(n) < np.where(pop.hukou, 0.74, 0.8))
    public = employed & (rng.random(n) < 0.09)
    private = employed & ~public
    active = np.flatnonzero(status == 0)
    size = rng.lognormal(0, 1.6, active.size)
    employer = np.full(n, -1, np.int64)
    employer[private] = active[weighted_choice(rng, size, int(private.sum()))]
    departments = len(ctx.department_uscc)
    public_employer = np.full(n, -1, np.int64)
    public_employer[public] = rng.integers(0, departments, int(public.sum()))
    ctx.facts.employer, ctx.facts.public_employer = employer, public_employer


def employer_uscc(ctx: Context, persons: Ints, keep: Bools | None = None) -> pa.Array:
    """Return each person's employer's code (enterprise or department); null when not employed
    or where ``keep`` is False."""
    enterprise = ctx.facts.employer[persons]
    public = ctx.facts.public_employer[persons]
    codes = pa.concat_arrays([ctx.enterprise_uscc, ctx.department_uscc])
    index = np.where(enterprise >= 0, enterprise, len(ctx.enterprise_uscc) + public)
    none = (enterprise < 0) & (public < 0)
    if keep is not None:
        none |= ~keep
    return codes.take(pa.array(np.where(none, 0, index), mask=none))
