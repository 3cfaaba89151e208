"""One chunk of a batch job — the subjects of a range of rows answered on the engine.

The sources are read once per job: every ``exists`` check of every step is one bit, and one Ibis
expression — each check's qualifying records as 17-digit ID bodies (BIGINT), a bit each, in one
union OR-ed per body (``source_flags``) — gives every person some check finds with their bits,
kept sorted beside the job. A chunk then looks its subjects up in it (a binary search, no engine
call). A job with more checks than a BIGINT holds asks the engine per chunk instead: the chunk's
subjects semi-joined to each check's records. Both run the same on DuckDB or PySpark; everything
after — age checks, verdicts, reasons, outcomes, derived values — is Arrow compute on the
answers, so both engines give the same file by construction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from haihe.engine import Engine, VersionStore
from haihe.verification.matching import NONE
from haihe.verification.rules import Check, Rule
from haihe.verification.scenarios import Scenario
from haihe.verification.service import NO, UNKNOWN, YES, Plan
from haihe.verification.subjects import problem_reason

if TYPE_CHECKING:
    import ibis.expr.types as ir


@dataclass(frozen=True)
class StepPlan:
    """A scenario step ready to run: its name and its rule's plan."""

    name: str
    plan: Plan


def answer(
    engine: Engine,
    store: VersionStore,
    scenario: Scenario,
    steps: Sequence[StepPlan],
    params: Mapping[str, Any],
    subjects: pa.Table,
    people: ir.Table,
    *,
    single: bool,
    found: pa.Table | None = None,
) -> pa.Table:
    """Return the answers of one chunk, one row per subject in ``ref`` order.

    ``subjects``: the chunk's rows of ``resolved.parquet`` (ref, id_number, body, problem,
    confidence, match and the input columns kept); ``people``: the same rows as an engine
    table. ``single``: a rule run alone (columns verdict/reasons instead of steps/outcome).
    ``found``: the job's ``source_flags`` when it has them (then the engine is not asked again
    per chunk), else each chunk runs its own expression.
    """
    bodies = subjects["body"].to_numpy()
    valid = bodies >= 0
    if not valid.any():
        flags = {}
    elif found is not None:
        flags = _looked_up(found, flag_keys(steps), bodies[valid])
    else:
        flags = _flags(engine, store, steps, people)
    n = subjects.num_rows
    columns: dict[str, Any] = {}
    reasons: list[Any] = []
    for step in steps:
        held: dict[str, Any] = {}
        for check in step.plan.checks:
            if check.kind == "exists":
                held[check.name] = flags.get(_key(step.plan, check), pa.array([], pa.bool_()))
            else:
                held[check.name] = _ages(step.plan, check, bodies[valid])
        verdict, why = decide(step.plan.rule, held, int(valid.sum()))
        columns[step.name] = _spread(verdict, valid, UNKNOWN)
        if not single:
            why = pc.binary_join_element_wise(
                pa.scalar(f"{step.name}."),
                pc.replace_substring(why, ";", f";{step.name}."),
                "",
            )
        reasons.append(_spread(why, valid, None))
    problems = _problem_reasons(subjects)
    joined = join(*reasons, problems)
    out: dict[str, Any] = {
        "ref": subjects["ref"],
        "id_number": subjects["id_number"],
        "body": subjects["body"],
    }
    if single:
        out["verdict"] = columns[steps[0].name]
    else:
        out.update({c: subjects[c] for c in scenario.keep})
        out.update(columns)
        outcome = outcomes(scenario, {**columns, **{c: subjects[c] for c in scenario.keep}}, params)
        out["outcome"] = outcome
    out["reasons"] = joined
    out["confidence"] = subjects["confidence"]
    out["match"] = subjects["match"]
    if not single:
        for d in scenario.derived:
            value = d.expr.evaluate({**columns, **{c: subjects[c] for c in scenario.keep}}, params)
            value = pc.round(pc.cast(value, pa.float64()), 2)
            out[d.name] = pc.if_else(pc.equal(out["outcome"], d.when), value, None)
    assert all(len(v) == n for v in out.values())
    return pa.table(out)


def outcomes(scenario: Scenario, columns: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """Return each row's outcome: the first whose condition holds, else ``otherwise``."""
    n = len(next(iter(columns.values())))
    result = pa.nulls(n, pa.string())
    for outcome in scenario.outcomes:
        holds = pc.fill_null(_bool(outcome.when.evaluate(columns, params), n), False)
        result = pc.if_else(pc.and_(pc.is_null(result), holds), outcome.name, result)
    return pc.fill_null(result, scenario.otherwise)


def _bool(value: Any, n: int) -> Any:
    if isinstance(value, pa.Scalar):
        return pa.array([value.as_py()] * n, pa.bool_())
    return value


def decide(rule: Rule, held: Mapping[str, Any], n: int) -> tuple[Any, Any]:
    """Return verdicts and reasons for ``n`` rows from each check's outcome (null:
    undecidable), as ``service.decide`` says for one row."""
    if not held:
        return pa.array([UNKNOWN] * n, pa.string()), pa.array([""] * n, pa.string())
    any_true = pa.array(np.zeros(n, bool))
    any_null = pa.array(np.zeros(n, bool))
    holding, undecided = [], []
    for name, h in held.items():
        any_true = pc.or_(any_true, pc.fill_null(h, False))
        any_null = pc.or_(any_null, pc.is_null(h))
        holding.append(pc.if_else(pc.fill_null(h, False), name, None))
        undecided.append(pc.if_else(pc.is_null(h), f"{name}_undecidable", None))
    found = join(*holding)
    unsure = join(*undecided)
    hit, miss = (YES, NO) if rule.combine == "any" else (NO, YES)
    verdict = pc.if_else(any_true, hit, pc.if_else(any_null, UNKNOWN, miss))
    reasons = pc.if_else(any_true, found, pc.if_else(any_null, unsure, rule.otherwise))
    return verdict, reasons


def join(*parts: Any) -> Any:
    """Return the non-null texts of each row joined by ``;`` ("" when all are null).

    (Arrow's ``null_handling="skip"`` drops rows in pyarrow 2x, hence replace-and-trim.)
    """
    joined = pc.binary_join_element_wise(*parts, ";", null_handling="replace", null_replacement="")
    return pc.utf8_trim(pc.replace_substring_regex(joined, ";+", ";"), ";")


def _spread(values: Any, valid: np.ndarray, fill: str | None) -> Any:
    """Return ``values`` (one per valid row) placed at the valid rows, ``fill`` elsewhere."""
    if valid.all():
        return values if isinstance(values, pa.Array) else values.combine_chunks()
    if not valid.any():
        return pa.array([fill] * len(valid), pa.string())
    index = np.cumsum(valid) - 1
    taken = pc.take(values, pa.array(np.where(valid, index, 0)))
    return pc.if_else(pa.array(valid), taken, pa.scalar(fill, pa.string()))


def _problem_reasons(subjects: pa.Table) -> Any:
    """Return each row's ID reason and what identity matching made of it (null: no problem)."""
    out: list[str | None] = []
    for problem, match, body in zip(
        subjects["problem"].to_pylist(),
        subjects["match"].to_pylist(),
        subjects["body"].to_pylist(),
        strict=True,
    ):
        if not problem:
            out.append(None)
        elif body >= 0:
            out.append(f"{problem_reason(problem)};identity_matched")
        elif match == NONE:
            out.append(problem_reason(problem))
        else:
            out.append(f"{problem_reason(problem)};{match}")
    return pa.array(out, pa.string())


def _ages(plan: Plan, check: Check, bodies: np.ndarray) -> Any:
    """Vectorised ``service.age_holds``: True/False, null when born after the day."""
    on: dt.date = plan.params[check.on or ""]
    years = int(plan.params[check.at_least or ""])
    ymd = (bodies // 1000) % 100_000_000
    year, month, day = ymd // 10000, ymd // 100 % 100, ymd % 100
    born_after = (year * 10000 + month * 100 + day) > (on.year * 10000 + on.month * 100 + on.day)
    age = on.year - year - ((on.month * 100 + on.day) < (month * 100 + day))
    return pa.array(age >= years, mask=born_after)


def _key(plan: Plan, check: Check) -> str:
    source = plan.sources[check.source or ""]
    where = tuple((c.item, c.op, repr(c.resolved(plan.params))) for c in check.where)
    return repr((source.code, source.version, where))


MAX_FLAGS = 62  # checks one BIGINT of bits holds (past them, each chunk runs its expression)


def flag_keys(steps: Sequence[StepPlan]) -> list[str]:
    """Return the distinct ``exists`` checks of the steps, in order: bit ``i`` is key ``i``."""
    keys: dict[str, None] = {}
    for step in steps:
        for check in step.plan.checks:
            if check.kind == "exists":
                keys.setdefault(_key(step.plan, check))
    return list(keys)


def source_flags(engine: Engine, store: VersionStore, steps: Sequence[StepPlan]) -> pa.Table | None:
    """Return, for every person some check finds, ``body`` and ``bits`` (bit ``i``: check
    ``flag_keys(steps)[i]`` holds), sorted by body — the sources read once for a whole job, as
    one union of the checks' bodies with a bit each, OR-ed per body on the engine. None when
    there is no check or more than ``MAX_FLAGS``."""
    import ibis

    keys = flag_keys(steps)
    if not keys or len(keys) > MAX_FLAGS:
        return None
    plans: dict[str, tuple[Plan, Check]] = {}
    for step in steps:
        for check in step.plan.checks:
            if check.kind == "exists":
                plans.setdefault(_key(step.plan, check), (step.plan, check))
    parts = [
        _bodies(engine, store, *plans[key])
        .name("body")
        .as_table()
        .mutate(bit=ibis.literal(1 << i, type="int64"))
        for i, key in enumerate(keys)
    ]
    # distinct (body, bit) pairs summed are their OR, on every engine (PySpark has no bit_or)
    pairs = (parts[0] if len(parts) == 1 else ibis.union(*parts, distinct=False)).distinct()
    found = engine.execute(pairs.group_by("body").aggregate(bits=pairs.bit.sum()))
    return found.sort_by("body")


def _looked_up(found: pa.Table, keys: Sequence[str], bodies: np.ndarray) -> dict[str, Any]:
    """Return each check's column for ``bodies`` from the job's sorted ``source_flags``."""
    known = found["body"].to_numpy()
    bits = found["bits"].to_numpy()
    words = np.zeros(len(bodies), dtype=np.int64)
    if len(known):
        at = np.minimum(np.searchsorted(known, bodies), len(known) - 1)
        hit = known[at] == bodies
        words = np.where(hit, bits[at], 0)
    return {key: pa.array((words >> i) & 1 == 1) for i, key in enumerate(keys)}


def _flags(
    engine: Engine, store: VersionStore, steps: Sequence[StepPlan], people: ir.Table
) -> dict[str, Any]:
    """Run the chunk's one expression; return each distinct check's column for valid rows."""
    wanted: dict[str, ir.Column] = {}
    for step in steps:
        for check in step.plan.checks:
            if check.kind == "exists":
                key = _key(step.plan, check)
                if key not in wanted:
                    wanted[key] = _bodies(engine, store, step.plan, check)
    if not wanted:
        return {}
    names = {key: f"c{i}" for i, key in enumerate(wanted)}
    expr = people.select(
        people.ref, **{names[k]: people.body.isin(col) for k, col in wanted.items()}
    ).order_by("ref")
    found = engine.execute(expr)
    return {k: pc.fill_null(found.column(names[k]).combine_chunks(), False) for k in wanted}


def _bodies(engine: Engine, store: VersionStore, plan: Plan, check: Check) -> ir.Column:
    """The 17-digit ID bodies (BIGINT) of a source's records meeting the check's conditions."""
    import ibis  # a second to import: the app and single checks should not pay for it

    source = plan.sources[check.source or ""]
    table = engine.table(store, store.manifest(source.code, source.version))
    ident = table[source.id_item]
    table = table.filter(ident.notnull() & (ident.length() == 18))
    for cond in check.where:
        column = table[cond.item]
        value = cond.resolved(plan.params)
        if source.types[cond.item].startswith("timestamp") and isinstance(value, dt.date):
            column = column.date()
        if cond.op == "in":
            table = table.filter(column.isin(list(value)))
        else:
            table = table.filter(_compare(column, cond.op, ibis.literal(value)))
    return table[source.id_item].substr(0, 17).cast("int64")


def _compare(column: Any, op: str, value: Any) -> Any:
    return {
        "=": lambda: column == value,
        "!=": lambda: column != value,
        "<": lambda: column < value,
        "<=": lambda: column <= value,
        ">": lambda: column > value,
        ">=": lambda: column >= value,
    }[op]()
