"""Portable column types: the Arrow types every engine reads the same way, named neutrally.

A resource version must be readable by DuckDB and Spark without conversion and give identical
results on both, so its columns are restricted to types both engines (and Parquet) agree on:

========================  ==============================  =================================
portable type             Arrow                           Spark
========================  ==============================  =================================
``bool``                  ``bool``                        ``BooleanType``
``int8`` … ``int64``      ``int8`` … ``int64``            ``ByteType`` … ``LongType``
``float32``/``float64``   ``float``/``double``            ``FloatType``/``DoubleType``
``string``                ``string``                      ``StringType``
``binary``                ``binary``                      ``BinaryType``
``date32``                ``date32[day]``                 ``DateType``
``timestamp[us]``         ``timestamp[us]``               ``TimestampNTZType``
``timestamp[us, UTC]``    ``timestamp[us, tz=UTC]``       ``TimestampType``
``decimal(p,s)``, p ≤ 38  ``decimal128(p, s)``            ``DecimalType(p, s)``
========================  ==============================  =================================

``portable_schema`` brings near types onto this list without losing values (large strings,
dictionaries, other timestamp units and zones, narrow unsigned integers) and refuses the rest with
a message saying what to do instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from haihe.core.errors import InvalidInput

_SIMPLE: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "string": pa.string(),
    "binary": pa.binary(),
    "date32": pa.date32(),
    "timestamp[us]": pa.timestamp("us"),
    "timestamp[us, UTC]": pa.timestamp("us", tz="UTC"),
}
_NAME_OF: dict[pa.DataType, str] = {arrow: name for name, arrow in _SIMPLE.items()}
_DECIMAL = re.compile(r"^decimal\((\d{1,2}),\s*(\d{1,2})\)$")
MAX_DECIMAL_PRECISION = 38

# Types that map onto a portable type without losing any value.
_WIDEN: list[tuple[Callable[[pa.DataType], bool], Callable[[pa.DataType], pa.DataType]]] = [
    (pa.types.is_large_string, lambda t: pa.string()),
    (pa.types.is_string_view, lambda t: pa.string()),
    (pa.types.is_large_binary, lambda t: pa.binary()),
    (pa.types.is_binary_view, lambda t: pa.binary()),
    (pa.types.is_float16, lambda t: pa.float32()),
    (pa.types.is_date64, lambda t: pa.date32()),
    (pa.types.is_uint8, lambda t: pa.int16()),
    (pa.types.is_uint16, lambda t: pa.int32()),
    (pa.types.is_uint32, lambda t: pa.int64()),
]


class FieldSpec(BaseModel):
    """One column of a resource version: name, portable type and whether it may hold nulls."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    type: str
    nullable: bool = True


def portable_type(arrow_type: pa.DataType, *, column: str = "?") -> pa.DataType:
    """Return the portable Arrow type that holds every value of ``arrow_type``.

    Raises InvalidInput for types an engine would read differently or not at all.
    """
    t = arrow_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    for matches, widen in _WIDEN:
        if matches(t):
            t = widen(t)
            break
    if pa.types.is_timestamp(t):
        # Spark cannot read nanoseconds; time zones are display, the instant is UTC in Parquet.
        t = pa.timestamp("us", tz="UTC" if t.tz else None)
    elif pa.types.is_decimal(t):
        if t.precision > MAX_DECIMAL_PRECISION:
            raise InvalidInput(
                f"column {column!r}: decimal precision {t.precision} is above "
                f"{MAX_DECIMAL_PRECISION}, which Spark cannot read; store it as a string"
            )
        t = pa.decimal128(t.precision, t.scale)
    if t in _NAME_OF or pa.types.is_decimal128(t):
        return t
    raise InvalidInput(f"column {column!r}: {_refusal(t)}", details={"arrow_type": str(t)})


def _refusal(t: pa.DataType) -> str:
    if pa.types.is_uint64(t):
        return "uint64 has no portable type; use int64 if values fit, or decimal(20,0)"
    if pa.types.is_time(t):
        return "Spark has no time-of-day type; store seconds or microseconds as int64"
    if pa.types.is_duration(t) or pa.types.is_interval(t):
        return "durations are not portable; store them as int64 microseconds"
    if pa.types.is_null(t):
        return "the column has no type (all nulls?); declare one explicitly"
    if pa.types.is_nested(t):
        return f"nested type {t} is not supported in resource versions yet; flatten it"
    return f"type {t} is not a portable column type"


def portable_schema(schema: pa.Schema) -> pa.Schema:
    """Return ``schema`` with every column moved onto its portable type (metadata dropped).

    Raises InvalidInput for an empty schema, empty or duplicate column names (Spark compares
    names without regard to case) and types that are not portable.
    """
    if len(schema) == 0:
        raise InvalidInput("a resource version needs at least one column")
    seen: dict[str, str] = {}
    fields = []
    for field in schema:
        if not field.name or field.name.strip() != field.name:
            raise InvalidInput(f"column name {field.name!r} is empty or has surrounding spaces")
        folded = field.name.casefold()
        if folded in seen:
            raise InvalidInput(
                f"columns {seen[folded]!r} and {field.name!r} differ only in case; "
                "Spark treats them as the same column"
            )
        seen[folded] = field.name
        fields.append(
            pa.field(field.name, portable_type(field.type, column=field.name), field.nullable)
        )
    return pa.schema(fields)


def type_name(arrow_type: pa.DataType) -> str:
    """Return the portable name of a portable Arrow type (``decimal(18,2)``, ``int64``…)."""
    if pa.types.is_decimal128(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    try:
        return _NAME_OF[arrow_type]
    except KeyError:
        raise InvalidInput(
            f"type {arrow_type} is not portable; pass the schema through portable_schema() first"
        ) from None


def arrow_type(name: str) -> pa.DataType:
    """Return the Arrow type a portable type name stands for."""
    if name in _SIMPLE:
        return _SIMPLE[name]
    match = _DECIMAL.match(name)
    if match:
        precision, scale = int(match[1]), int(match[2])
        if 1 <= precision <= MAX_DECIMAL_PRECISION and scale <= precision:
            return pa.decimal128(precision, scale)
    raise InvalidInput(f"unknown portable type {name!r}")


def schema_to_fields(schema: pa.Schema) -> list[FieldSpec]:
    """Return the neutral field list of a portable Arrow schema."""
    return [FieldSpec(name=f.name, type=type_name(f.type), nullable=f.nullable) for f in schema]


def fields_to_schema(fields: list[FieldSpec]) -> pa.Schema:
    """Return the Arrow schema a neutral field list describes."""
    return pa.schema([pa.field(f.name, arrow_type(f.type), f.nullable) for f in fields])
