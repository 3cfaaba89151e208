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
from haihe.verification import service
from haihe.verification.matching import NONE
from haihe.verification.rules import Check
from haihe.verification.scenarios import Scenario
from haihe.verification.service import UNKNOWN, Plan
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
    people: ir.Table | None,
    *,
    single: bool,
    found: pa.Table | None = None,
) -> pa.Table:
    """Return the answers of one chunk, one row per subject in ``ref`` order: ``ref``, the
    verdict (``verdict``, or each step's and the ``outcome``), ``reasons`` and the scenario's
    derived values — what the chunk computed; ``result_columns`` puts the subjects' own
    columns beside them.

    ``subjects``: the chunk's rows of ``resolved.parquet`` (ref, id_number, body, problem,
    confidence, match and the input columns kept); ``people``: the same rows as an engine
    table (needed only without ``found``). ``single``: a rule run alone (columns
    verdict/reasons instead of steps/outcome). ``found``: the job's ``source_flags`` when it
    has them (then the engine is not asked again per chunk), else each chunk runs its own
    expression.

    A subject's verdicts and reasons follow from its facts alone (which checks hold), and a
    chunk of a quarter of a million people has a few thousand distinct sets of facts: each set
    is decided once, by ``service.decide`` as a single check is, and every row takes its set's
    answers (``_patterns``).
    """
    bodies = subjects["body"].to_numpy()
    valid = bodies >= 0
    n = subjects.num_rows
    facts = _facts(engine, store, steps, people, bodies[valid], found)
    pattern, answers = _patterns(steps, facts, single=single)
    # each row's pattern; rows whose ID found no one take one more, "no person"
    nobody = len(answers["reasons"])
    row_pattern = np.full(n, nobody, np.int64)
    row_pattern[valid] = pattern.to_numpy()
    # the answers stay dictionary-encoded (a few thousand distinct texts, not a text per row),
    # so that neither this nor the chunk's and result's Parquet writes copy them per row
    columns = {step.name: _per_row(answers[step.name], UNKNOWN, row_pattern) for step in steps}
    reasons = _with_problems(subjects, answers["reasons"], row_pattern)
    out: dict[str, Any] = {"ref": subjects["ref"]}
    kept = {c: subjects[c] for c in scenario.keep} if not single else {}
    if single:
        out["verdict"] = columns[steps[0].name]
    else:
        out.update(columns)
        out["outcome"] = outcomes(scenario, {**columns, **kept}, params)
    out["reasons"] = reasons
    if not single:
        for d in scenario.derived:
            value = d.expr.evaluate({**columns, **kept}, params)
            value = pc.round(pc.cast(value, pa.float64()), 2)
            out[d.name] = pc.if_else(pc.equal(out["outcome"], d.when), value, None)
    assert all(len(v) == n for v in out.values())
    return pa.table(out)


def result_columns(scenario: Scenario, answers: pa.Table, subjects: pa.Table) -> pa.Table:
    """A chunk's result rows: ``row`` (1-based), ``id_number``, the scenario's list columns,
    the ``answer`` columns, then ``confidence`` and ``match``, from its ``answers`` and the
    same rows of the job's ``subjects``."""
    single = "verdict" in answers.column_names
    # (a chunk written before this layout also held the subjects' columns: theirs win)
    theirs = {"ref", "reasons", "id_number", "body", "confidence", "match", *scenario.keep}
    computed = [c for c in answers.column_names if c not in theirs]
    derived = [d.name for d in scenario.derived] if not single else []
    out: dict[str, Any] = {
        "row": pc.add(answers["ref"], 1),
        "id_number": subjects["id_number"],
    }
    if not single:
        out.update({c: subjects[c] for c in scenario.keep})
    out.update({c: answers[c] for c in computed if c not in derived})
    out["reasons"] = answers["reasons"]
    out["confidence"] = subjects["confidence"]
    out["match"] = subjects["match"]
    out.update({c: answers[c] for c in derived})
    return pa.table(out)


@dataclass(frozen=True)
class _Facts:
    """What the checks found for a chunk's valid rows: one column per fact, in order.

    ``exists``: each distinct ``exists`` check (``flag_keys`` order) as a boolean matrix
    (rows × checks); ``ages``: each step's age checks, True/False/None per row.
    """

    keys: list[str]
    exists: np.ndarray
    ages: dict[tuple[str, str], pa.Array]


def _facts(
    engine: Engine,
    store: VersionStore,
    steps: Sequence[StepPlan],
    people: ir.Table | None,
    bodies: np.ndarray,
    found: pa.Table | None,
) -> _Facts:
    keys = flag_keys(steps)
    if not len(bodies) or not keys:
        exists = np.zeros((len(bodies), len(keys)), bool)
    elif found is not None:
        words = _words(found, bodies)
        exists = ((words[:, None] >> np.arange(len(keys), dtype=np.int64)) & 1).astype(bool)
    else:
        assert people is not None, "a chunk without the job's source flags needs its people"
        flags = _flags(engine, store, steps, people)
        exists = np.column_stack([flags[k].to_numpy(zero_copy_only=False) for k in keys])
    ages = {
        (step.name, check.name): _ages(step.plan, check, bodies)
        for step in steps
        for check in step.plan.checks
        if check.kind == "age"
    }
    return _Facts(keys, exists, ages)


def _patterns(
    steps: Sequence[StepPlan], facts: _Facts, *, single: bool
) -> tuple[pa.Array, dict[str, pa.Array]]:
    """Return each row's pattern (its distinct set of facts) and, per pattern, each step's
    verdict and the reasons of all steps joined (``step.reason;…``, or the rule's own codes
    when ``single``)."""
    columns = [facts.exists]
    for age in facts.ages.values():
        known = pc.fill_null(age, False).to_numpy(zero_copy_only=False)
        columns.append(np.column_stack([known, pc.is_null(age).to_numpy(zero_copy_only=False)]))
    matrix = np.column_stack(columns) if columns else np.zeros((0, 0), bool)
    packed = np.packbits(matrix, axis=1, bitorder="little")
    if packed.shape[1] <= 8:
        word = np.zeros((len(packed), 8), np.uint8)
        word[:, : packed.shape[1]] = packed
        _, first, inverse = np.unique(
            word.view(np.uint64).ravel(), return_index=True, return_inverse=True
        )
    else:
        rows = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()
        _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    bit = {key: i for i, key in enumerate(facts.keys)}
    # each exists check's column, looked up once (not once per pattern)
    column = {
        (step.name, check.name): bit[_key(step.plan, check)]
        for step in steps
        for check in step.plan.checks
        if check.kind == "exists"
    }
    verdicts: dict[str, list[str]] = {step.name: [] for step in steps}
    reasons: list[str] = []
    for row in first:
        said: list[str] = []
        for step in steps:
            held: dict[str, bool | None] = {}
            for check in step.plan.checks:
                if check.kind == "exists":
                    held[check.name] = bool(matrix[row, column[(step.name, check.name)]])
                else:
                    value = facts.ages[(step.name, check.name)][int(row)].as_py()
                    held[check.name] = value
            verdict, why = service.decide(step.plan.rule, held)
            verdicts[step.name].append(verdict)
            said.extend(why if single else (f"{step.name}.{r}" for r in why))
        reasons.append(";".join(r for r in said if r))
    answers = {name: pa.array(v, pa.string()) for name, v in verdicts.items()}
    answers["reasons"] = pa.array(reasons, pa.string())
    return pa.array(inverse.ravel().astype(np.int64)), answers


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


def _per_row(values: pa.Array, fill: str, row_pattern: np.ndarray) -> pa.DictionaryArray:
    """Each row's value of its pattern (``fill`` for the "no person" pattern at the end), as a
    dictionary array over the distinct values."""
    encoded = pc.dictionary_encode(pa.concat_arrays([values, pa.array([fill], pa.string())]))
    indices = encoded.indices.to_numpy()[row_pattern]
    return pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), encoded.dictionary)


def _with_problems(
    subjects: pa.Table, reasons: pa.Array, row_pattern: np.ndarray
) -> pa.DictionaryArray:
    """Return each row's reasons, with its ID problem and what identity matching made of it
    appended (rows with a problem are few: they are joined one by one)."""
    texts = reasons.to_pylist() + [""]
    problems = subjects["problem"].to_numpy()
    rows = np.flatnonzero(problems != 0)
    if len(rows):
        indices = row_pattern.copy()
        matches = subjects["match"].take(pa.array(rows)).to_pylist()
        bodies = subjects["body"].to_numpy()
        known: dict[str, int] = {}
        for row, match in zip(rows.tolist(), matches, strict=True):
            problem = problem_reason(int(problems[row]))
            if bodies[row] >= 0:
                tail = f"{problem};identity_matched"
            elif match == NONE:
                tail = problem
            else:
                tail = f"{problem};{match}"
            head = texts[row_pattern[row]]
            text = f"{head};{tail}" if head else tail
            if text not in known:
                known[text] = len(texts)
                texts.append(text)
            indices[row] = known[text]
        row_pattern = indices
    # texts[nobody] is "": the reasons of a row whose ID found no one are its problem only
    return pa.DictionaryArray.from_arrays(
        pa.array(row_pattern, pa.int32()), pa.array(texts, pa.string())
    )


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


def source_flags(
    engine: Engine,
    store: VersionStore,
    steps: Sequence[StepPlan],
    wanted: ir.Column | None = None,
) -> pa.Table | None:
    """Return, for every person some check finds, ``body`` and ``bits`` (bit ``i``: check
    ``flag_keys(steps)[i]`` holds), sorted by body — the sources read once for a whole job, as
    one union of the checks' bodies with a bit each, OR-ed per body on the engine. ``wanted``:
    the job's subjects' bodies, to keep only their people (the aggregation then holds the
    job's people, not the city's). None when there is no check or more than ``MAX_FLAGS``."""
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
    pairs = parts[0] if len(parts) == 1 else ibis.union(*parts, distinct=False)
    if wanted is not None:
        pairs = pairs.filter(pairs.body.isin(wanted))
    if engine.name == "duckdb":
        grouped = pairs.group_by("body").aggregate(bits=pairs.bit.bit_or())
    else:
        # distinct (body, bit) pairs summed are their OR (Ibis has no bit_or on PySpark)
        pairs = pairs.distinct()
        grouped = pairs.group_by("body").aggregate(bits=pairs.bit.sum())
    return engine.execute(grouped).sort_by("body")


def _words(found: pa.Table, bodies: np.ndarray) -> np.ndarray:
    """Return each body's bits from the job's sorted ``source_flags`` (0: no check holds)."""
    known = found["body"].to_numpy()
    bits = found["bits"].to_numpy()
    if not len(known):
        return np.zeros(len(bodies), dtype=np.int64)
    # the needles sorted: each search starts where the last ended (numpy's binary search keeps
    # its lower bound for rising keys), several times faster than a quarter million at random
    order = np.argsort(bodies, kind="stable")
    at = np.empty(len(bodies), dtype=np.int64)
    at[order] = np.searchsorted(known, bodies[order])
    at = np.minimum(at, len(known) - 1)
    return np.where(known[at] == bodies, bits[at], 0).astype(np.int64)


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
    table = table.filter(ident.notnull() & (engine.byte_length(ident) == 18))
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
