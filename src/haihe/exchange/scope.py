"""Row scope (行范围) and filters as one small condition language.

A grant's ``scope`` and a caller's filters are both lists of ``Condition``; a row is delivered
only when it meets every condition of both. ``check_conditions`` validates conditions against a
resource's data items and brings every value onto the item's type; ``where_sql`` turns checked
conditions into one SQL predicate with ``?`` placeholders and double-quoted identifiers, which
SQLite (the row store) and DuckDB (exports, change feeds) both accept.

Values are compared as the item's type: numbers as numbers, booleans as booleans, dates as ISO text
(``2024-05-01``) and timestamps as ISO text with microseconds (``2024-05-01T08:00:00.000000``,
UTC ones with ``+00:00``), which is how the row store (``haihe.engine.rowstore``) holds them.
A null value meets only ``is_null``: like SQL, ``ne`` and ``not_in`` do not match nulls.

In query strings a filter is ``item=value`` for ``eq`` and ``item__op=value`` for the other ops;
``in``, ``not_in`` and ``between`` take comma-separated values (``age__between=60,80``), and
``is_null`` / ``not_null`` take ``true`` (``phone__is_null=true``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from haihe.core.errors import InvalidInput
from haihe.engine.rowstore import quote as quote_identifier
from haihe.engine.rowstore import timestamp_text

Scalar = bool | int | float | str

__all__ = [
    "Condition",
    "Op",
    "check_conditions",
    "conditions_from_params",
    "item_types",
    "parse_conditions",
    "quote_identifier",
    "timestamp_text",
    "where_sql",
]


class Op(StrEnum):
    """A comparison a condition makes."""

    EQ = "eq"
    NE = "ne"
    IN = "in"
    NOT_IN = "not_in"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    BETWEEN = "between"
    PREFIX = "prefix"
    IS_NULL = "is_null"
    NOT_NULL = "not_null"


_ONE_VALUE = {Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE, Op.PREFIX}
_MANY_VALUES = {Op.IN, Op.NOT_IN}
_NO_VALUE = {Op.IS_NULL, Op.NOT_NULL}
_OP_NAMES = frozenset(op.value for op in Op)
_ORDERING = {Op.LT, Op.LE, Op.GT, Op.GE, Op.BETWEEN}
_SQL_OPERATOR = {Op.EQ: "=", Op.NE: "<>", Op.LT: "<", Op.LE: "<=", Op.GT: ">", Op.GE: ">="}
MAX_VALUES = 1000  # values of one in/not_in condition


class Condition(BaseModel):
    """One condition on one data item: ``item op value`` (or ``values``) — 条件."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    item: str
    op: Op
    value: Scalar | None = None
    values: list[Scalar] | None = None

    @model_validator(mode="after")
    def _values_fit_op(self) -> Condition:
        if self.op in _ONE_VALUE and (self.value is None or self.values is not None):
            raise ValueError(f"op {self.op.value} on {self.item!r} takes one `value`")
        if self.op in _MANY_VALUES and (
            self.values is None or not self.values or self.value is not None
        ):
            raise ValueError(f"op {self.op.value} on {self.item!r} takes a non-empty `values`")
        if self.op in _MANY_VALUES and len(self.values or ()) > MAX_VALUES:
            raise ValueError(f"op {self.op.value} on {self.item!r} takes at most {MAX_VALUES}")
        if self.op is Op.BETWEEN and (
            self.values is None or len(self.values) != 2 or self.value is not None
        ):
            raise ValueError(f"op between on {self.item!r} takes `values` [low, high]")
        if self.op in _NO_VALUE and (self.value is not None or self.values is not None):
            raise ValueError(f"op {self.op.value} on {self.item!r} takes no value")
        return self


class ItemLike(Protocol):
    """Anything with a data item's name and portable type (a catalogue ``DataItem`` will do)."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...


def item_types(items: Mapping[str, str] | Iterable[ItemLike]) -> dict[str, str]:
    """Return ``{item name: portable type}`` from a mapping or from data items."""
    if isinstance(items, Mapping):
        return dict(items)
    return {item.name: item.type for item in items}


def parse_conditions(conditions: Iterable[Condition | Mapping[str, Any]]) -> list[Condition]:
    """Return ``conditions`` as ``Condition`` objects, parsing JSON dicts; InvalidInput if bad."""
    out = []
    for n, raw in enumerate(conditions):
        if isinstance(raw, Condition):
            out.append(raw)
            continue
        try:
            out.append(Condition.model_validate(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InvalidInput(
                f"condition {n + 1}: {first['msg'].removeprefix('Value error, ')}",
                details={"condition": dict(raw)},
            ) from None
    return out


def check_conditions(
    conditions: Iterable[Condition | Mapping[str, Any]],
    items: Mapping[str, str] | Iterable[ItemLike],
) -> list[Condition]:
    """Return the conditions checked against a resource's items, values on the item's type.

    ``items`` maps item names to portable types (or is the resource's data items). Raises
    InvalidInput naming the item and op when an item is unknown, an op does not suit the item's
    type (ordering on booleans, ``prefix`` on anything but text) or a value cannot be read as the
    item's type.
    """
    types = item_types(items)
    checked = []
    for condition in parse_conditions(conditions):
        item_type = types.get(condition.item)
        if item_type is None:
            raise InvalidInput(
                f"condition on {condition.item!r}: the resource has no such item",
                details={"item": condition.item, "op": condition.op.value},
            )
        checked.append(_checked(condition, item_type))
    return checked


def _checked(condition: Condition, item_type: str) -> Condition:
    family = _family(item_type)
    bad_op = (
        (condition.op is Op.PREFIX and family != "text")
        or (condition.op in _ORDERING and family == "bool")
        or (family == "binary" and condition.op not in _NO_VALUE)
    )
    if bad_op:
        raise InvalidInput(
            f"condition on {condition.item!r}: op {condition.op.value} does not apply to "
            f"an item of type {item_type}",
            details={"item": condition.item, "op": condition.op.value, "type": item_type},
        )
    try:
        value = None if condition.value is None else _coerce(condition.value, family)
        values = (
            None if condition.values is None else [_coerce(v, family) for v in condition.values]
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"condition on {condition.item!r} ({condition.op.value}): {exc}",
            details={"item": condition.item, "op": condition.op.value, "type": item_type},
        ) from None
    return Condition(item=condition.item, op=condition.op, value=value, values=values)


def _family(item_type: str) -> str:
    if item_type.startswith(("int", "float", "decimal")):
        return "int" if item_type.startswith("int") else "number"
    if item_type == "timestamp[us, UTC]":
        return "timestamp_utc"
    if item_type.startswith("timestamp"):
        return "timestamp"
    return {"bool": "bool", "date32": "date", "binary": "binary"}.get(item_type, "text")


def _coerce(value: Scalar, family: str) -> Scalar:
    """Return ``value`` as the item type's family holds it; raise ValueError when it cannot."""
    if family == "text":
        return value if isinstance(value, str) else _plain_text(value)
    if family == "bool":
        return _boolean(value)
    if family == "int":
        return _integer(value)
    if family == "number":
        return _number(value)
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an ISO date or time")
    if family == "date":
        return dt.date.fromisoformat(value).isoformat()
    return timestamp_text(dt.datetime.fromisoformat(value), utc=family == "timestamp_utc")


def _plain_text(value: Scalar) -> str:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not text")
    return str(value)


def _boolean(value: Scalar) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no"}:
        return False
    raise ValueError(f"{value!r} is not true or false")


def _integer(value: Scalar) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{value!r} is not a whole number")
        return int(value)
    return int(value) if isinstance(value, int) else int(value.strip())


def _number(value: Scalar) -> int | float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    number = value if isinstance(value, int | float) else float(value.strip())
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def where_sql(conditions: Iterable[Condition]) -> tuple[str, list[Any]]:
    """Return one SQL predicate meeting every condition, and its parameters in order.

    The predicate uses ``?`` placeholders and double-quoted identifiers; no conditions give
    ``1 = 1``. Pass conditions through ``check_conditions`` first so values are on the item's type.
    """
    parts: list[str] = []
    params: list[Any] = []
    for condition in conditions:
        column = quote_identifier(condition.item)
        op = condition.op
        if op in _SQL_OPERATOR:
            parts.append(f"{column} {_SQL_OPERATOR[op]} ?")
            params.append(condition.value)
        elif op in _MANY_VALUES:
            values = condition.values or []
            marks = ", ".join("?" for _ in values)
            parts.append(f"{column} {'IN' if op is Op.IN else 'NOT IN'} ({marks})")
            params.extend(values)
        elif op is Op.BETWEEN:
            parts.append(f"{column} BETWEEN ? AND ?")
            params.extend(condition.values or [])
        elif op is Op.PREFIX:
            # substr, not LIKE: SQLite's LIKE ignores case and both need escaping.
            prefix = str(condition.value)
            parts.append(f"substr({column}, 1, {len(prefix)}) = ?")
            params.append(prefix)
        elif op is Op.IS_NULL:
            parts.append(f"{column} IS NULL")
        else:
            parts.append(f"{column} IS NOT NULL")
    if not parts:
        return "1 = 1", []
    return " AND ".join(f"({part})" for part in parts), params


def conditions_from_params(params: Iterable[tuple[str, str]]) -> list[Condition]:
    """Return the filters of a query string: ``item=value`` (eq) and ``item__op=value``.

    ``in``, ``not_in`` and ``between`` split their value on commas; ``is_null`` and ``not_null``
    are applied when their value is true. Values stay text until ``check_conditions`` types them.
    """
    out = []
    for key, raw in params:
        item, op = key, Op.EQ
        head, sep, tail = key.rpartition("__")
        if sep and head and tail in _OP_NAMES:
            item, op = head, Op(tail)
        condition: dict[str, Any] = {"item": item, "op": op}
        if op in _MANY_VALUES or op is Op.BETWEEN:
            condition["values"] = raw.split(",")
        elif op in _NO_VALUE:
            if not _flag(key, raw):
                continue
        else:
            condition["value"] = raw
        out.extend(parse_conditions([condition]))
    return out


def _flag(key: str, raw: str) -> bool:
    try:
        return _boolean(raw)
    except ValueError:
        raise InvalidInput(f"filter {key}: give true or false", details={"filter": key}) from None
