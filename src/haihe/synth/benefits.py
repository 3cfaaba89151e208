"""Benefits that need checking: elderly bus cards (JT) and the housing provident fund (GJJ).

- 老年人乘车优待卡: free travel for registered residents aged 65+. Some holders have died (and
  some of those cards are still being used), moved their registration away, or were never
  eligible; ``truth/bus_cards`` says which cards should be revoked and why.
- 住房公积金: accounts, and withdrawal applications citing a minimum-living-security family
  (低保家庭提取); ``truth/housing_fund_applications`` says which applicants really qualify.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

from haihe.synth.arrays import (
    Ints,
    categorical,
    dates,
    day_number,
    money,
    padded_strings,
    pick,
)
from haihe.synth.context import ACTIVE, CANCELLED, MOVED_OUT, Context
from haihe.synth.dirt import Dirt, duplicate, id_column, name_column
from haihe.synth.economy import employer_uscc
from haihe.synth.insurance import first_of_month

CARD_STATUSES = ("正常", "挂失", "注销")
REVOKE_REASONS = ("", "holder_dead", "moved_out", "under_age", "not_registered")
ACCOUNT_STATUSES = ("正常", "封存", "销户")
APPLICATION_REASONS = ("eligible", "not_low_income", "low_income_stopped", "no_active_account")
FIRST_CARD_DAY = day_number(date(2012, 1, 1))
CARD_DIRT = Dirt(id_legacy=0.002, id_typo=0.003, id_format=0.002, name_typo=0.003)
ACCOUNT_DIRT = Dirt(id_legacy=0.002, id_typo=0.001, id_format=0.001, name_typo=0.002)
APPLICATION_DIRT = Dirt(id_typo=0.003, id_format=0.003, name_typo=0.003)


def card_numbers(cards: Ints) -> pa.Array:
    """Return the card numbers of card rows."""
    return padded_strings(cards + 1, 10, "LN")


def write_bus_cards(ctx: Context) -> None:
    """Write elderly bus cards (JT) and ``truth/bus_cards``; decide whose card is misused."""
    pop, rng, dataset = ctx.pop, ctx.rng("bus_cards"), "JT.elderly_bus_cards"
    n = len(pop)
    facts = ctx.facts
    b65 = pop.birth + np.rint(65 * 365.2425).astype(np.int64)
    end = np.where(pop.dead, pop.death, ctx.today)
    moved = facts.hukou_status == MOVED_OUT
    end = np.where(moved, np.minimum(end, facts.hukou_status_date), end)
    start = np.maximum(b65, FIRST_CARD_DAY)
    regular = pop.hukou & (start < end - 7) & (rng.random(n) < 0.8)
    under_age = pop.hukou & ~pop.dead & (pop.age >= 60) & (pop.age < 65) & (rng.random(n) < 0.004)
    unregistered = ~pop.hukou & ~pop.dead & (pop.age >= 65) & (rng.random(n) < 0.01)
    holder = regular | under_age | unregistered
    persons = np.flatnonzero(holder)
    k = persons.size
    lo = np.where(regular[persons], start[persons], ctx.today - 3 * 365)
    hi = np.where(regular[persons], end[persons], ctx.today)
    issued = lo + (rng.random(k) * np.maximum(hi - lo, 1)).astype(np.int64)
    dead = pop.dead[persons]
    known = facts.in_certificates[persons] | facts.in_cremations[persons]
    known |= facts.hukou_status[persons] == CANCELLED
    status = np.where(~dead & (rng.random(k) < 0.01), 1, 0)
    status = np.where(dead & known & (rng.random(k) < 0.6), 2, status)
    reason = np.zeros(k, np.int64)
    reason[unregistered[persons]] = 4
    reason[under_age[persons]] = 3
    reason[moved[persons]] = 2
    reason[dead] = 1
    should_revoke = (status != 2) & (reason > 0)
    fraud = dead & (status != 2) & (rng.random(k) < 0.35)
    card = np.full(n, -1, np.int64)
    card[persons] = np.arange(k)
    facts.bus_card = card
    facts.bus_card_fraud = np.zeros(n, np.bool_)
    facts.bus_card_fraud[persons[fraud]] = True

    ctx.emit(
        dataset,
        {
            "card_no": card_numbers(np.arange(k)),
            "id_number": id_column(rng, pop, persons, CARD_DIRT, ctx.log, dataset),
            "name": name_column(rng, pop, persons, CARD_DIRT.name_typo, ctx.log, dataset),
            "birth_date": dates(pop.birth[persons]),
            "issued_on": dates(issued),
            "status": categorical(status, CARD_STATUSES),
            "district_code": ctx.code_column("districts", ctx.district_of(persons)),
        },
    )
    ctx.writer.truth(
        "bus_cards",
        pa.table(
            {
                "card_no": card_numbers(np.arange(k)),
                "person_id": pa.array(persons + 1),
                "status": categorical(status, CARD_STATUSES),
                "holder_alive": pa.array(~dead),
                "holder_age": pa.array(pop.age[persons].astype(np.int16)),
                "holder_registered": pa.array(facts.hukou_status[persons] == ACTIVE),
                "reason": categorical(reason, REVOKE_REASONS),
                "should_revoke": pa.array(should_revoke),
                "used_after_death": pa.array(fraud),
            }
        ),
        "Every elderly bus card: holder alive, age, registered; why it should be revoked "
        "(holder_dead, moved_out, under_age, not_registered) and whether someone still uses it "
        "after the holder's death.",
    )


def write_housing_fund(ctx: Context) -> None:
    """Write housing fund accounts and withdrawal applications (GJJ) with their ground truth."""
    pop, rng, dataset = ctx.pop, ctx.rng("housing_fund"), "GJJ.accounts"
    n = len(pop)
    facts = ctx.facts
    public = facts.public_employer >= 0
    working = (facts.employer >= 0) | public
    active = working & (rng.random(n) < np.where(public, 0.95, 0.6))
    idle = ~working & (pop.age >= 18) & (rng.random(n) < np.where(facts.pensioner, 0.25, 0.12))
    idle &= pop.age < 75
    has = active | idle
    persons = np.flatnonzero(has)
    k = persons.size
    dead = pop.dead[persons]
    end = np.where(dead, pop.death[persons], ctx.today - 1)
    status = np.where(active[persons], 0, np.where(rng.random(k) < 0.5, 1, 2))
    status = np.where(dead & (status == 0) & (rng.random(k) < 0.6), 1, status)
    opened = np.maximum(pop.birth[persons] + 18 * 365, end - rng.integers(60, 25 * 365, k))
    wage = rng.lognormal(np.log(7_000), 0.45, k)
    deposit = np.rint(wage * 0.24).astype(np.int64) * 100
    months = np.maximum((end - opened) // 30, 1)
    balance = np.where(status == 2, 0, deposit * np.minimum(months, 120) * rng.uniform(0.2, 0.9, k))
    last = np.where(active[persons], end, end - rng.integers(200, 3000, k))
    last = np.maximum(last, opened)
    account = np.full(n, -1, np.int64)
    account[persons] = np.arange(k)
    facts.housing_fund = account
    ctx.emit(
        dataset,
        {
            "account_no": padded_strings(np.arange(1, k + 1), 12, "GJ"),
            "id_number": id_column(rng, pop, persons, ACCOUNT_DIRT, ctx.log, dataset),
            "name": name_column(rng, pop, persons, ACCOUNT_DIRT.name_typo, ctx.log, dataset),
            "employer_uscc": employer_uscc(ctx, persons, status == 0),
            "opened_on": dates(opened),
            "monthly_deposit": money(np.where(status == 0, deposit, 0)),
            "balance": money(np.rint(balance / 100) * 100),
            "status": categorical(status, ACCOUNT_STATUSES),
            "last_deposit_month": dates(first_of_month(last), status == 2),
        },
    )
    _applications(ctx, status, np.rint(balance / 100).astype(np.int64) * 100)


def _applications(ctx: Context, account_status: Ints, balance: Ints) -> None:
    pop, rng, dataset = ctx.pop, ctx.rng("housing_fund.applications"), "GJJ.withdrawal_applications"
    n = len(pop)
    facts = ctx.facts
    account = facts.housing_fund
    has = account >= 0
    usable = has & (account_status[np.maximum(account, 0)] < 2)
    alive_adult = ~pop.dead & (pop.age >= 18) & (pop.age < 65)
    eligible = alive_adult & facts.low_income & usable & (rng.random(n) < 0.45)
    stopped = (
        alive_adult & facts.low_income_listed & ~facts.low_income & has & (rng.random(n) < 0.45)
    )
    closed = alive_adult & facts.low_income & has & ~usable & (rng.random(n) < 0.45)
    others = np.flatnonzero(alive_adult & usable & ~facts.low_income_listed)
    extra = max(1, int(eligible.sum() // 2)) if others.size else 0
    chancers = np.zeros(n, np.bool_)
    chancers[rng.choice(others, min(extra, others.size), replace=False)] = True
    applicant = eligible | stopped | closed | chancers
    persons = np.flatnonzero(applicant)
    k = persons.size
    reason = np.select([eligible[persons], stopped[persons], closed[persons]], [0, 2, 3], 1).astype(
        np.int64
    )
    acct = account[persons]
    wanted = np.minimum(balance[acct], rng.integers(20, 300, k) * 10_000)
    wanted = np.maximum(wanted, 100_000)
    applied = ctx.today - rng.integers(1, 90, k)
    order = np.lexsort((persons, applied))
    persons, reason, acct, wanted, applied = (
        persons[order],
        reason[order],
        acct[order],
        wanted[order],
        applied[order],
    )
    take, copies, originals = duplicate(rng, k, 0.002)
    rows = persons[take]
    ctx.log.add(dataset, copies, "*", "duplicate", rows[copies] + 1, originals)
    accounts = padded_strings(np.arange(1, len(account_status) + 1), 12, "GJ")
    ctx.emit(
        dataset,
        {
            "application_no": padded_strings(take + 1, 10, "TQ"),
            "account_no": pick(accounts, acct[take]),
            "id_number": id_column(rng, pop, rows, APPLICATION_DIRT, ctx.log, dataset),
            "name": name_column(rng, pop, rows, APPLICATION_DIRT.name_typo, ctx.log, dataset),
            "reason": categorical(np.zeros(rows.size, np.int64), ("最低生活保障家庭提取",)),
            "amount": money(wanted[take]),
            "applied_on": dates(applied[take]),
        },
    )
    ctx.writer.truth(
        "housing_fund_applications",
        pa.table(
            {
                "application_no": padded_strings(np.arange(1, k + 1), 10, "TQ"),
                "person_id": pa.array(persons + 1),
                "eligible": pa.array(reason == 0),
                "reason": categorical(reason, APPLICATION_REASONS),
            }
        ),
        "Every housing-fund withdrawal application citing a low-income family: eligible only when "
        "the applicant is alive, in an active 低保 household and has an open account.",
    )
