"""Scenarios — 核验场景: a declared job made of rules, run over a consumer's list.

A scenario file (TOML, like a rule file) names the scenario and its version and titles, the
input list it takes (``[input]``: its description, and the columns carried from it to the
output, e.g. ``card_no``), its parameters, its *steps* (each a rule with parameters; a value
``":name"`` is a scenario parameter), its *outcomes* (the first whose ``when`` holds is the row's
outcome; ``otherwise`` when none does) and *derived* columns (``expr`` computed where the outcome
is ``when``). The lists are the outcomes (``[lists] primary`` is the one the scenario exists
for: the cancellation list, the stop list…). ``[score]`` says how a ground truth scores it.

Conditions and derived values are a small expression language, compiled to Arrow compute so a
list of millions is judged at once: step names (their verdicts ``'yes' / 'no' / 'unknown'``),
input columns and parameters, string and number literals, ``== != < <= > >=``, ``and or not``,
``+ - * /`` and parentheses. Anything else is refused when the file is read.

Scenarios are registered like rules: each distribution names a directory of scenario files in
the entry-point group ``haihe.verification_scenarios`` (Haihe's own: ``SCENARIOS_DIR``).
"""

from __future__ import annotations

import ast
import datetime as dt
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from haihe.core.errors import InvalidInput, NotFound
from haihe.verification.rules import (
    NAME,
    Parameter,
    Rule,
    RuleError,
    _coerce,
    declared_dirs,
    load_declared,
    registry,
)

ENTRY_POINT_GROUP = "haihe.verification_scenarios"
SCENARIOS_DIR = Path(__file__).parent / "scenarios"
RESERVED = ("row", "id_number", "outcome", "reasons", "confidence", "match", "verdict")


class ScenarioError(RuleError):
    """A scenario file is not a valid scenario (the message names the file and the problem)."""

    code = "scenario_invalid"


@dataclass(frozen=True)
class Step:
    """One rule run for the scenario; its verdict is the column ``name``."""

    name: str
    rule: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    name: str
    when: Expression
    title_zh: str = ""
    title_en: str = ""


@dataclass(frozen=True)
class Derived:
    name: str
    expr: Expression
    when: str  # the outcome the value is computed for (null elsewhere)
    title_zh: str = ""
    title_en: str = ""


@dataclass(frozen=True)
class ScoreSpec:
    """How a ground truth scores the primary list: the truth's key and its yes-column."""

    key: str
    truth: str  # a name the truth is known by (e.g. the synthetic city's truth file)
    column: str
    value: bool = True
    exclude: tuple[str, ...] = ()  # outcomes outside the question (e.g. already stopped)


@dataclass(frozen=True)
class Scenario:
    """A verification scenario — 核验场景 — as its file declares it."""

    name: str
    version: int
    title_zh: str
    title_en: str
    description_zh: str
    description_en: str
    input_zh: str
    input_en: str
    keep: tuple[str, ...]
    parameters: dict[str, Parameter]
    steps: tuple[Step, ...]
    outcomes: tuple[Outcome, ...]
    otherwise: str
    primary: str
    derived: tuple[Derived, ...] = ()
    score: ScoreSpec | None = None
    path: Path | None = None
    outcome_titles: dict[str, dict[str, str]] = field(default_factory=dict)

    def params(self, given: Mapping[str, Any], *, today: dt.date | None = None) -> dict[str, Any]:
        """Return every parameter's value (``given`` over the defaults), or InvalidInput."""
        unknown = sorted(set(given) - set(self.parameters))
        if unknown:
            raise InvalidInput(
                f"scenario {self.name} has no parameter {unknown[0]!r}; "
                f"it takes {', '.join(self.parameters) or 'none'}",
                details={"parameter": unknown[0]},
            )
        today = today or dt.date.today()
        shim = _as_rule(self)
        out = {}
        for name, p in self.parameters.items():
            raw = given[name] if name in given else p.default
            if raw is None:
                raise InvalidInput(
                    f"scenario {self.name} needs parameter {name!r} ({p.type})",
                    details={"parameter": name},
                )
            out[name] = _coerce(shim, p, raw, today)
        return out

    def step_params(self, step: Step, values: Mapping[str, Any]) -> dict[str, Any]:
        """Return a step's rule parameters with scenario parameters (``":name"``) filled in."""
        return {
            k: values[v[1:]] if isinstance(v, str) and v.startswith(":") else v
            for k, v in step.params.items()
        }

    def outcome_names(self) -> list[str]:
        return [*(o.name for o in self.outcomes), self.otherwise]


def _as_rule(s: Scenario) -> Rule:
    return Rule(s.name, s.version, s.title_zh, s.title_en, "any", "", s.parameters, {}, ())


# ---------------------------------------------------------------- the expression language

_COMPARE = {
    ast.Eq: pc.equal,
    ast.NotEq: pc.not_equal,
    ast.Lt: pc.less,
    ast.LtE: pc.less_equal,
    ast.Gt: pc.greater,
    ast.GtE: pc.greater_equal,
}
_ARITH = {ast.Add: pc.add, ast.Sub: pc.subtract, ast.Mult: pc.multiply, ast.Div: pc.divide}


@dataclass(frozen=True)
class Expression:
    """A parsed condition or value; ``names`` are the steps, columns and parameters it reads."""

    text: str
    tree: ast.expr
    names: frozenset[str]

    def evaluate(self, columns: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
        """Return the expression over Arrow columns (and parameter scalars) as an Arrow array."""
        return _eval(self.tree, columns, params)


def parse_expression(text: str) -> Expression:
    """Return ``text`` parsed, or ValueError naming what the language does not allow."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ValueError(f"expression {text!r}: {exc.msg}") from None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif not isinstance(
            node,
            ast.BoolOp | ast.UnaryOp | ast.Compare | ast.BinOp | ast.Constant | ast.Load
            | ast.And | ast.Or | ast.Not | ast.USub | ast.Add | ast.Sub | ast.Mult | ast.Div
            | ast.Eq | ast.NotEq | ast.Lt | ast.LtE | ast.Gt | ast.GtE,
        ):  # fmt: skip
            raise ValueError(f"expression {text!r}: {type(node).__name__} is not allowed")
        if isinstance(node, ast.Constant) and not isinstance(node.value, str | int | float):
            raise ValueError(f"expression {text!r}: only text and number literals")
    return Expression(text=text, tree=tree, names=frozenset(names))


def _eval(node: ast.expr, columns: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Name):
        if node.id in columns:
            return columns[node.id]
        value = params[node.id]
        return pa.scalar(value.isoformat() if isinstance(value, dt.date) else value)
    if isinstance(node, ast.Constant):
        return pa.scalar(node.value)
    if isinstance(node, ast.BoolOp):
        parts = [_truth(_eval(v, columns, params)) for v in node.values]
        combine = pc.and_kleene if isinstance(node.op, ast.And) else pc.or_kleene
        out = parts[0]
        for part in parts[1:]:
            out = combine(out, part)
        return out
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, columns, params)
        return pc.invert(_truth(value)) if isinstance(node.op, ast.Not) else pc.negate(value)
    if isinstance(node, ast.Compare):
        out = None
        left = _eval(node.left, columns, params)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, columns, params)
            left_c, right_c = _comparable(left, right)
            part = _COMPARE[type(op)](left_c, right_c)
            out = part if out is None else pc.and_kleene(out, part)
            left = right
        return out
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, columns, params), _eval(node.right, columns, params)
        return _ARITH[type(node.op)](_number(left), _number(right))
    raise ValueError(f"cannot evaluate {ast.dump(node)}")


def _truth(value: Any) -> Any:
    return value if pa.types.is_boolean(value.type) else pc.cast(value, pa.bool_())


def _number(value: Any) -> Any:
    kind = value.type
    if pa.types.is_decimal(kind) or pa.types.is_integer(kind):
        return pc.cast(value, pa.float64())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return pc.cast(value, pa.float64())
    return value


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    """Compare dates with ISO text and numbers with text by casting the text side."""
    for a, b in ((left, right), (right, left)):
        if pa.types.is_string(a.type) and (
            pa.types.is_date(b.type) or pa.types.is_integer(b.type) or pa.types.is_floating(b.type)
            or pa.types.is_decimal(b.type)
        ):  # fmt: skip
            cast = pc.cast(a, pa.float64() if not pa.types.is_date(b.type) else b.type)
            return (cast, b) if a is left else (b, cast)
    return left, right


# ---------------------------------------------------------------- reading scenario files


def parse_scenario(text: str, *, path: Path | None = None) -> Scenario:
    """Return the scenario a file declares, or raise ScenarioError naming the problem."""
    where = str(path) if path else "scenario file"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{where}: not TOML: {exc}") from None
    try:
        return _scenario(data, path)
    except (KeyError, TypeError, ValueError) as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def _scenario(data: dict[str, Any], path: Path | None) -> Scenario:
    name = str(data["name"])
    if not NAME.match(name):
        raise ValueError(f"name {name!r}: lower-case letters, digits and _")
    parameters = {}
    for pname, spec in data.get("parameters", {}).items():
        ptype = spec.get("type", "str")
        if ptype not in ("date", "int", "str"):
            raise ValueError(f"parameter {pname!r}: type must be date, int or str")
        parameters[pname] = Parameter(pname, ptype, spec.get("default"), spec.get("help", ""))
    known = registry()
    steps = []
    for spec in data["steps"]:
        step = Step(str(spec["name"]), str(spec["rule"]), dict(spec.get("params", {})))
        if not NAME.match(step.name) or step.name in RESERVED:
            raise ValueError(f"step {step.name!r}: a lower-case name, not one of {RESERVED}")
        if step.rule not in known:
            raise ValueError(f"step {step.name!r}: no rule {step.rule!r}")
        for value in step.params.values():
            if isinstance(value, str) and value.startswith(":") and value[1:] not in parameters:
                raise ValueError(f"step {step.name!r}: {value} names no parameter")
        steps.append(step)
    if not steps or len({s.name for s in steps}) != len(steps):
        raise ValueError("a scenario has at least one step, each with its own name")
    entry = data.get("input", {})
    keep = tuple(str(c) for c in entry.get("columns", []))
    names = {s.name for s in steps} | set(keep) | set(parameters)
    outcomes = []
    titles: dict[str, dict[str, str]] = {}
    for spec in data["outcomes"]:
        expr = _checked(str(spec["when"]), names)
        outcomes.append(Outcome(str(spec["name"]), expr))
        titles[str(spec["name"])] = {"zh": spec.get("title_zh", ""), "en": spec.get("title_en", "")}
    otherwise = data.get("otherwise", {"name": "unresolved"})
    titles[str(otherwise["name"])] = {
        "zh": otherwise.get("title_zh", ""),
        "en": otherwise.get("title_en", ""),
    }
    derived = tuple(
        Derived(
            str(d["name"]),
            _checked(str(d["expr"]), names),
            str(d["when"]),
            d.get("title_zh", ""),
            d.get("title_en", ""),
        )
        for d in data.get("derive", [])
    )
    primary = str(data.get("lists", {}).get("primary", outcomes[0].name if outcomes else ""))
    if primary not in titles:
        raise ValueError(f"lists.primary {primary!r} is not an outcome")
    for d in derived:
        if d.when not in titles:
            raise ValueError(f"derived {d.name!r}: when {d.when!r} is not an outcome")
    score = data.get("score")
    return Scenario(
        name=name,
        version=int(data["version"]),
        title_zh=str(data.get("title_zh", name)),
        title_en=str(data.get("title_en", name)),
        description_zh=str(data.get("description_zh", "")),
        description_en=str(data.get("description_en", "")),
        input_zh=str(entry.get("description_zh", "")),
        input_en=str(entry.get("description_en", "")),
        keep=keep,
        parameters=parameters,
        steps=tuple(steps),
        outcomes=tuple(outcomes),
        otherwise=str(otherwise["name"]),
        primary=primary,
        derived=derived,
        score=ScoreSpec(
            key=str(score["key"]),
            truth=str(score["truth"]),
            column=str(score["column"]),
            value=bool(score.get("value", True)),
            exclude=tuple(str(x) for x in score.get("exclude", [])),
        )
        if score
        else None,
        path=path,
        outcome_titles=titles,
    )


def _checked(text: str, names: set[str]) -> Expression:
    expr = parse_expression(text)
    unknown = sorted(expr.names - names)
    if unknown:
        raise ValueError(f"expression {text!r}: {', '.join(unknown)} is no step, column or param")
    return expr


# ---------------------------------------------------------------- the registry


def scenario_dirs() -> list[Path]:
    """Return the directories the ``haihe.verification_scenarios`` entry points name."""
    return declared_dirs(ENTRY_POINT_GROUP, SCENARIOS_DIR, ScenarioError)


def load_scenarios(dirs: Iterable[Path]) -> dict[str, Scenario]:
    """Return the scenarios of every ``*.toml`` file in ``dirs`` (highest version wins)."""
    return load_declared(dirs, parse_scenario, what="scenario", error=ScenarioError)


_registry: dict[str, Scenario] | None = None


def scenarios(*, reload: bool = False) -> dict[str, Scenario]:
    """Return the installation's scenarios (read once per process)."""
    global _registry
    if _registry is None or reload:
        _registry = load_scenarios(scenario_dirs())
    return _registry


def get_scenario(name: str) -> Scenario:
    """Return scenario ``name``, or NotFound listing the known ones."""
    found = scenarios().get(name)
    if found is None:
        raise NotFound(
            f"no verification scenario {name!r}; known: {', '.join(sorted(scenarios()))}",
            details={"scenario": name},
        )
    return found


def single_rule(rule: Rule) -> Scenario:
    """Return a rule run alone as a one-step scenario: its verdict is the outcome, and the
    job's parameters go to the rule as given (the rule checks them)."""
    return Scenario(
        name=rule.name,
        version=rule.version,
        title_zh=rule.title_zh,
        title_en=rule.title_en,
        description_zh="",
        description_en="",
        input_zh="",
        input_en="",
        keep=(),
        parameters={},
        steps=(Step(rule.name, rule.name, {}),),
        outcomes=(),
        otherwise="",
        primary="",
    )
