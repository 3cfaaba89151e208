"""Verification rules — 核验规则: named, versioned yes/no questions declared in TOML rule files.

A rule file names the rule and its version, its titles, its parameters (typed, with defaults),
the *sources* it reads by role (``deaths``, ``cremations``, ``low_income``, ``household``, …,
each with the data items it needs) and its *checks*: each check asks whether a source holds a
record of the subject meeting some conditions (``exists``), or tests the subject's age from the
ID number (``age``). The verdict combines the checks: ``combine = "none"`` answers yes when no
check holds (``alive``: in neither death certificates nor cremation records), ``"any"`` answers
yes when one does (``evidence_of_life``). The checks that hold are the reason codes.

Why a small declarative form and not SQL: the same rule runs three ways — as indexed lookups in
a version's SQLite row store for single checks (``checks``), and as Ibis expressions for batch
jobs (``jobs``), which Ibis compiles for DuckDB now and PySpark later. SQL written by hand in
one dialect would differ between SQLite, DuckDB and Spark SQL on dates, timestamps and
parameters; conditions of the form ``item op value`` compile to each exactly, so the engines
agree by construction (and a test checks that the two paths give the same verdicts).

Rules are registered the same way whether they ship with Haihe or with a city's package: each
distribution names a directory of rule files in the entry-point group
``haihe.verification_rules`` (Haihe's own: ``builtin = "haihe.verification.rules:RULES_DIR"``, whose
value may also be a plain ``module:attribute`` holding a path). A later file with the same name
and a higher version replaces an earlier one; the same name and version twice is an error.
"""

from __future__ import annotations

import datetime as dt
import importlib
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from haihe.core.errors import ConfigError, InvalidInput, NotFound

ENTRY_POINT_GROUP = "haihe.verification_rules"
RULES_DIR = Path(__file__).parent / "rules"
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
OPS = ("=", "!=", "<", "<=", ">", ">=", "in")
ParamType = Literal["date", "int", "str", "roles"]
PARAM_TYPES: tuple[str, ...] = ("date", "int", "str", "roles")
RELATIVE_DAY = re.compile(r"^today(?:([+-])(\d+)d)?$")


class RuleError(ConfigError):
    """A rule file is not a valid rule (the message names the file and the problem)."""

    code = "rule_invalid"


@dataclass(frozen=True)
class Parameter:
    """A rule parameter: its type and default (``today``/``today-365d`` for dates)."""

    name: str
    type: str
    default: Any = None
    help: str = ""


@dataclass(frozen=True)
class Source:
    """A source role the rule reads — e.g. ``deaths`` — and the items it needs of it."""

    role: str
    id_item: str
    items: tuple[str, ...]
    title: str = ""


@dataclass(frozen=True)
class Condition:
    """``item op value``; a value ``":name"`` is the rule parameter ``name``."""

    item: str
    op: str
    value: Any

    def resolved(self, params: Mapping[str, Any]) -> Any:
        """Return the condition's value with a parameter reference replaced by its value."""
        if isinstance(self.value, str) and self.value.startswith(":"):
            return params[self.value[1:]]
        return self.value


@dataclass(frozen=True)
class Check:
    """One fact about a subject: a record in a source (``exists``) or an age test (``age``)."""

    name: str
    kind: Literal["exists", "age"]
    source: str | None = None
    where: tuple[Condition, ...] = ()
    at_least: str | None = None  # age: parameter holding the years
    on: str | None = None  # age: parameter holding the date


@dataclass(frozen=True)
class Rule:
    """A verification rule — 核验规则 — as its file declares it."""

    name: str
    version: int
    title_zh: str
    title_en: str
    combine: Literal["any", "none"]
    otherwise: str  # the reason code when no check holds
    parameters: dict[str, Parameter]
    sources: dict[str, Source]
    checks: tuple[Check, ...]
    reasons: dict[str, dict[str, str]] = field(default_factory=dict)
    path: Path | None = None

    def params(self, given: Mapping[str, Any], *, today: dt.date | None = None) -> dict[str, Any]:
        """Return every parameter's value: ``given`` (text or typed) over the defaults.

        InvalidInput names an unknown parameter or a value of the wrong type.
        """
        unknown = sorted(set(given) - set(self.parameters))
        if unknown:
            raise InvalidInput(
                f"rule {self.name} has no parameter {unknown[0]!r}; "
                f"it takes {', '.join(self.parameters) or 'none'}",
                details={"parameter": unknown[0]},
            )
        today = today or dt.date.today()
        values: dict[str, Any] = {}
        for name, p in self.parameters.items():
            raw = given[name] if name in given else p.default
            if raw is None:
                raise InvalidInput(
                    f"rule {self.name} needs parameter {name!r} ({p.type})",
                    details={"parameter": name},
                )
            values[name] = _coerce(self, p, raw, today)
        return values

    def active_checks(self, params: Mapping[str, Any]) -> list[Check]:
        """Return the checks to run: those of the chosen source roles (a ``roles`` parameter)."""
        chosen: set[str] | None = None
        for p in self.parameters.values():
            if p.type == "roles":
                chosen = set(params[p.name])
        return [c for c in self.checks if c.source is None or chosen is None or c.source in chosen]

    def roles_read(self, params: Mapping[str, Any]) -> list[str]:
        """Return the source roles the rule reads with these parameters, in declared order."""
        used = {c.source for c in self.active_checks(params)}
        return [r for r in self.sources if r in used]


def _coerce(rule: Rule, p: Parameter, raw: Any, today: dt.date) -> Any:
    def bad(expected: str) -> InvalidInput:
        return InvalidInput(
            f"parameter {p.name!r} of rule {rule.name} must be {expected}, not {raw!r}",
            details={"parameter": p.name},
        )

    if p.type == "date":
        if isinstance(raw, dt.datetime):
            return raw.date()
        if isinstance(raw, dt.date):
            return raw
        text = str(raw).strip()
        relative = RELATIVE_DAY.match(text)
        if relative:
            sign, days = relative.groups()
            shift = int(days or 0) * (-1 if sign == "-" else 1)
            return today + dt.timedelta(days=shift)
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise bad("a date (YYYY-MM-DD)") from None
    if p.type == "int":
        if isinstance(raw, bool):
            raise bad("an integer")
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise bad("an integer") from None
    if p.type == "roles":
        listed = raw if isinstance(raw, list | tuple) else str(raw).split(",")
        roles = [str(r).strip() for r in listed if str(r).strip()]
        unknown = [r for r in roles if r not in rule.sources]
        if unknown or not roles:
            raise bad(f"a list of this rule's sources ({', '.join(rule.sources)})")
        return roles
    return str(raw)


# ---------------------------------------------------------------- reading rule files


def parse_rule(text: str, *, path: Path | None = None) -> Rule:
    """Return the rule a rule file declares, or raise RuleError naming the problem."""
    where = str(path) if path else "rule file"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{where}: not TOML: {exc}") from None
    try:
        return _rule(data, path)
    except (KeyError, TypeError, ValueError) as exc:
        raise RuleError(f"{where}: {exc}") from None


def _rule(data: dict[str, Any], path: Path | None) -> Rule:
    name = str(data["name"])
    if not NAME.match(name):
        raise ValueError(f"name {name!r}: lower-case letters, digits and _")
    parameters = {}
    for pname, spec in data.get("parameters", {}).items():
        ptype = spec.get("type", "str")
        if ptype not in PARAM_TYPES:
            raise ValueError(f"parameter {pname!r}: type must be one of {', '.join(PARAM_TYPES)}")
        parameters[pname] = Parameter(pname, ptype, spec.get("default"), spec.get("help", ""))
    sources = {}
    for role, spec in data.get("sources", {}).items():
        if not NAME.match(role):
            raise ValueError(f"source role {role!r}: lower-case letters, digits and _")
        id_item = spec.get("id_item", "id_number")
        items = tuple(dict.fromkeys([id_item, *spec.get("items", [])]))
        sources[role] = Source(role, id_item, items, spec.get("title", ""))
    checks = tuple(_check(c, parameters, sources) for c in data["checks"])
    if not checks:
        raise ValueError("a rule has at least one check")
    combine = data.get("combine", "any")
    if combine not in ("any", "none"):
        raise ValueError("combine must be 'any' or 'none'")
    for p in parameters.values():
        if p.type == "roles" and p.default is None:
            parameters[p.name] = Parameter(p.name, p.type, list(sources), p.help)
    return Rule(
        name=name,
        version=int(data["version"]),
        title_zh=str(data.get("title_zh", name)),
        title_en=str(data.get("title_en", name)),
        combine=combine,
        otherwise=str(data.get("otherwise", "no_record")),
        parameters=parameters,
        sources=sources,
        checks=checks,
        reasons={k: dict(v) for k, v in data.get("reasons", {}).items()},
        path=path,
    )


def _check(
    spec: dict[str, Any], parameters: Mapping[str, Parameter], sources: Mapping[str, Source]
) -> Check:
    name = str(spec["name"])
    kind = spec.get("kind", "exists")
    if kind == "age":
        for key in ("at_least", "on"):
            if spec.get(key) not in parameters:
                raise ValueError(f"check {name!r}: {key} names no parameter")
        return Check(name=name, kind="age", at_least=spec["at_least"], on=spec["on"])
    if kind != "exists":
        raise ValueError(f"check {name!r}: kind must be 'exists' or 'age'")
    source = sources.get(spec.get("source", ""))
    if source is None:
        raise ValueError(f"check {name!r}: source {spec.get('source')!r} is not declared")
    conditions = []
    for item, op, value in spec.get("where", []):
        if op not in OPS:
            raise ValueError(f"check {name!r}: operator {op!r} is not one of {' '.join(OPS)}")
        if item not in source.items:
            raise ValueError(f"check {name!r}: item {item!r} is not among source items")
        if isinstance(value, str) and value.startswith(":") and value[1:] not in parameters:
            raise ValueError(f"check {name!r}: {value} names no parameter")
        conditions.append(Condition(item, op, value))
    return Check(name=name, kind="exists", source=source.role, where=tuple(conditions))


# ---------------------------------------------------------------- the registry


class Declared(Protocol):
    """What rules and scenarios have alike: a name, a version and the file they came from."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def path(self) -> Path | None: ...


D = TypeVar("D", bound=Declared)


def declared_dirs(group: str, builtin: Path, error: type[ConfigError]) -> list[Path]:
    """Return the directories the entry points of ``group`` name, the built-in one first.

    Rules and scenarios are registered this way whether they ship with Haihe or come from a
    city's own package (``[project.entry-points."haihe.verification_rules"]``).
    """
    dirs = []
    for ep in sorted(entry_points(group=group), key=lambda e: e.name != "builtin"):
        module, _, attr = ep.value.partition(":")
        try:
            value = getattr(importlib.import_module(module), attr) if attr else module
        except (ImportError, AttributeError) as exc:
            raise error(f"entry point {ep.name} = {ep.value!r}: {exc}") from None
        dirs.append(Path(value))
    if builtin not in dirs:
        dirs.insert(0, builtin)  # an uninstalled checkout has no entry points
    return dirs


def load_declared(
    dirs: Iterable[Path],
    parse: Callable[..., D],
    *,
    what: str,
    error: type[ConfigError],
) -> dict[str, D]:
    """Return what every ``*.toml`` file in ``dirs`` declares, by name (highest version wins);
    ``error`` for a missing directory or a name declared twice at one version."""
    found: dict[str, D] = {}
    for directory in dirs:
        if not directory.is_dir():
            raise error(f"{what} directory {directory} does not exist")
        for path in sorted(directory.glob("*.toml")):
            declared = parse(path.read_text(encoding="utf-8"), path=path)
            known = found.get(declared.name)
            if known is not None and known.version == declared.version:
                raise error(
                    f"{what} {declared.name} v{declared.version} is declared twice: "
                    f"{known.path}, {path}"
                )
            if known is None or declared.version > known.version:
                found[declared.name] = declared
    return found


def rule_dirs() -> list[Path]:
    """Return the directories the ``haihe.verification_rules`` entry points name, in order."""
    return declared_dirs(ENTRY_POINT_GROUP, RULES_DIR, RuleError)


def load_rules(dirs: Iterable[Path]) -> dict[str, Rule]:
    """Return the rules of every ``*.toml`` file in ``dirs``, by name (highest version wins)."""
    return load_declared(dirs, parse_rule, what="rule", error=RuleError)


_registry: dict[str, Rule] | None = None


def registry(*, reload: bool = False) -> dict[str, Rule]:
    """Return the installation's rules (read once per process)."""
    global _registry
    if _registry is None or reload:
        _registry = load_rules(rule_dirs())
    return _registry


def get_rule(name: str) -> Rule:
    """Return rule ``name``, or NotFound listing the known ones."""
    rule = registry().get(name)
    if rule is None:
        raise NotFound(
            f"no verification rule {name!r}; known: {', '.join(sorted(registry()))}",
            details={"rule": name},
        )
    return rule


def all_roles(rules: Sequence[Rule]) -> dict[str, set[str]]:
    """Return every source role the rules read, with the items they need of it."""
    roles: dict[str, set[str]] = {}
    for rule in rules:
        for s in rule.sources.values():
            roles.setdefault(s.role, set()).update(s.items)
    return roles
