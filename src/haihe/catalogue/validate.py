"""Checking rows against the data items — 数据校验: header, types, required values, ID numbers.

Conversion is vectorised with ``pyarrow.compute``; Python touches only the rows being rejected,
to write their reasons. Text values are trimmed and an empty value is null. Accepted forms:

- integers ``-12``, ``+7``; floats and decimals ``1.5``, ``.5``, ``1e3``;
- booleans 是/否, true/false, t/f, yes/no, y/n, 1/0 (any case);
- dates ``YYYY-MM-DD``, ``YYYY/MM/DD`` (month and day may have one digit) and ``YYYYMMDD``;
- timestamps in ISO 8601 (``2024-01-05T10:30:00``, a space instead of ``T``, fractions). A
  ``timestamp[us, UTC]`` item takes the offset a value gives (``Z``, ``+08:00``) and reads one
  without as Beijing time (UTC+8); a ``timestamp[us]`` item holds local times and refuses offsets.

An item of kind ``id_number`` is checked by the identity kit (GB 11643) and stored in its
canonical 18-character form, so a 15-digit legacy number becomes 18 digits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from haihe.catalogue.models import DataItem, ItemKind
from haihe.catalogue.sources import Chunk
from haihe.core.errors import InvalidInput
from haihe.core.identity import compose_ids_arrow, normalise_id, validate_ids_np
from haihe.engine.schema import arrow_type

ROW = "_row"  # staging columns; item names start with a letter, so they cannot clash
REASON = "_reason"
LOCAL_OFFSET = "+08:00"  # how a timestamp without an offset is read for a UTC item
_SHOWN = 60
_INT = r"^[+-]?\d+$"
_NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
_DATE_SEP = r"^(?P<y>\d{4})[-/](?P<m>\d{1,2})[-/](?P<d>\d{1,2})$"
_DATE_DIGITS = r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$"
_ISO = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$"
_ZONE = r"[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$"
_TRUE = pa.array(["是", "true", "t", "yes", "y", "1"])
_FALSE = pa.array(["否", "false", "f", "no", "n", "0"])
_WHY = {
    "int": "is not an integer",
    "range": "is out of range for {type}",
    "number": "is not a number",
    "decimal": "does not fit {type}",
    "bool": "is not a yes/no value (是/否, true/false, 1/0)",
    "date": "is not a date (YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD)",
    "timestamp": "is not an ISO 8601 timestamp (YYYY-MM-DD HH:MM:SS)",
    "zone": "has a time-zone offset, but this item holds local times",
}


@dataclass(frozen=True)
class ItemSpec:
    """What a column must hold, taken from its data item."""

    name: str
    name_zh: str
    type: str
    arrow: pa.DataType
    nullable: bool
    is_key: bool
    id_number: bool


def item_specs(items: Sequence[DataItem]) -> list[ItemSpec]:
    """Return the checks of a resource's data items, in their order."""
    return [
        ItemSpec(
            name=i.name,
            name_zh=i.name_zh,
            type=i.type,
            arrow=arrow_type(i.type),
            nullable=i.nullable and not i.is_key,
            is_key=i.is_key,
            id_number=i.kind is ItemKind.ID_NUMBER,
        )
        for i in items
    ]


def version_schema(specs: Sequence[ItemSpec]) -> pa.Schema:
    """Return the Arrow schema of the resource's versions."""
    return pa.schema([pa.field(s.name, s.arrow, s.nullable) for s in specs])


def rejects_schema(specs: Sequence[ItemSpec]) -> pa.Schema:
    """Return the schema of rejected rows: row, reason, then every value as text."""
    fields = [pa.field(ROW, pa.int64()), pa.field(REASON, pa.string())]
    return pa.schema(fields + [pa.field(s.name, pa.string()) for s in specs])


def match_columns(names: Sequence[str], specs: Sequence[ItemSpec], *, label: str) -> list[int]:
    """Return, per data item, the index of its source column (named in English or Chinese).

    Raises InvalidInput naming every missing and extra column; nothing is read before this.
    """
    wanted: dict[str, int] = {}
    for number, spec in enumerate(specs):
        wanted[spec.name.casefold()] = number
        wanted.setdefault(spec.name_zh.strip(), number)
    found: dict[int, int] = {}
    extra: list[str] = []
    for position, raw in enumerate(names):
        name = raw.strip().lstrip("\ufeff")
        index: int | None = wanted.get(name.casefold())
        index = wanted.get(name) if index is None else index
        if index is None:
            extra.append(name or f"(unnamed column {position + 1})")
        elif index in found:
            raise InvalidInput(f"{label}: column {name!r} appears twice in the header")
        else:
            found[index] = position
    missing = [s.name for i, s in enumerate(specs) if i not in found]
    if missing or extra:
        parts = []
        if missing:
            parts.append(
                "missing column" + ("s " if len(missing) > 1 else " ") + ", ".join(missing)
            )
        if extra:
            parts.append("extra column" + ("s " if len(extra) > 1 else " ") + ", ".join(extra))
        expected = ", ".join(s.name for s in specs)
        raise InvalidInput(
            f"{label} does not match the data items: {'; '.join(parts)} (expected: {expected})",
            details={"missing": missing, "extra": extra},
        )
    return [found[i] for i in range(len(specs))]


@dataclass
class Checked:
    """A chunk after checking: the accepted rows (typed, with their row numbers) and the
    rejected ones (row, reason, values as text)."""

    good: pa.RecordBatch
    rejects: pa.RecordBatch


@dataclass
class _Column:
    values: pa.Array  # in the item's type; null where rejected
    text: pa.Array  # the source values (as text, or in a type that casts to text): for rejects
    present: npt.NDArray[np.bool_]  # the source held a value (not null, not blank)
    problems: list[tuple[npt.NDArray[np.bool_], str]]  # (rows, why) per kind of problem


def check_chunk(chunk: Chunk, specs: Sequence[ItemSpec], *, today: date) -> Checked:
    """Return the chunk's rows converted to the items' types, split into accepted and rejected."""
    n = len(chunk.rows)
    columns = [_convert(arr, spec, today) for arr, spec in zip(chunk.columns, specs, strict=True)]
    bad = np.zeros(n, dtype=bool)
    for spec, col in zip(specs, columns, strict=True):
        if not spec.nullable:
            col.problems.append((~col.present, "required"))
        for rows, _ in col.problems:
            bad |= rows
    keep = pa.array(~bad)
    good = pa.RecordBatch.from_arrays(
        [pa.array(chunk.rows).filter(keep), *[c.values.filter(keep) for c in columns]],
        schema=staging_schema(specs),
    )
    return Checked(good, _rejects(chunk, specs, columns, bad))


def staging_schema(specs: Sequence[ItemSpec]) -> pa.Schema:
    """Return the schema of accepted rows before publication: row number, then the items."""
    return pa.schema([pa.field(ROW, pa.int64()), *[pa.field(s.name, s.arrow) for s in specs]])


def _rejects(
    chunk: Chunk, specs: Sequence[ItemSpec], columns: list[_Column], bad: npt.NDArray[np.bool_]
) -> pa.RecordBatch:
    """Return the rejected rows with a reason each (the only per-row Python: rejected rows)."""
    index = np.flatnonzero(bad)
    texts = [c.text.take(pa.array(index)).cast(pa.string()).to_pylist() for c in columns]
    reasons: list[list[str]] = [[] for _ in index]
    position = {int(row): k for k, row in enumerate(index)}
    for spec, col, text in zip(specs, columns, texts, strict=True):
        for mask, why in col.problems:
            for row in np.flatnonzero(mask):
                k = position[int(row)]
                reasons[k].append(_reason(spec, why, text[k]))
    numbers = [int(r) for r in chunk.rows[index]]
    joined = ["; ".join(r) for r in reasons]
    values = [list(v) for v in zip(*texts, strict=True)] if texts else [[] for _ in index]
    for broken in chunk.broken:
        numbers.append(broken.row)
        joined.append(broken.reason)
        values.append(broken.values)
    arrays = [pa.array(numbers, pa.int64()), pa.array(joined, pa.string())]
    arrays += [pa.array([v[i] for v in values], pa.string()) for i in range(len(specs))]
    return pa.RecordBatch.from_arrays(arrays, schema=rejects_schema(specs))


def _reason(spec: ItemSpec, why: str, value: str | None) -> str:
    if why == "required":
        return f"{spec.name} is empty but required"
    if why == "id":
        try:
            normalise_id(value or "")
        except InvalidInput as exc:
            return f"{spec.name}: {exc.message}"
        return f"{spec.name}: {value!r} is not a valid ID number"
    shown = value if value is None or len(value) <= _SHOWN else value[:_SHOWN] + "…"
    return f'{spec.name}: "{shown}" ' + _WHY[why].format(type=spec.type)


# ---------------------------------------------------------------- converting one column


def _convert(arr: pa.Array, spec: ItemSpec, today: date) -> _Column:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    target = spec.arrow
    if not _is_text(arr.type):
        direct = _direct(arr, target)  # typed values of the right kind (Parquet, databases)
        if direct is not None:
            return _Column(direct, arr, arr.is_valid().to_numpy(zero_copy_only=False), [])
        arr = _text(arr, spec)
    text = arr if pa.types.is_string(arr.type) else arr.cast(pa.string())
    trimmed = pc.utf8_trim_whitespace(text)
    present = pc.fill_null(pc.not_equal(trimmed, ""), False).to_numpy(zero_copy_only=False)
    value = pc.if_else(pa.array(present), trimmed, pa.scalar(None, pa.string()))
    values, problems = _parse(value, target, present)
    column = _Column(values, text, present, problems)
    return _check_ids(column, spec, today) if spec.id_number else column


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t)


def _text(arr: pa.Array, spec: ItemSpec) -> pa.Array:
    try:
        return arr.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InvalidInput(
            f"column {spec.name} holds {arr.type}, which cannot be loaded as {spec.type}"
        ) from None


def _direct(arr: pa.Array, target: pa.DataType) -> pa.Array | None:
    """Return typed values cast without loss to the target type, or None to go through text."""
    t, types = arr.type, pa.types
    same_family = (
        (types.is_integer(target) and types.is_integer(t))
        or (types.is_floating(target) and (types.is_floating(t) or types.is_integer(t)))
        or (types.is_decimal(target) and (types.is_decimal(t) or types.is_integer(t)))
        or (types.is_boolean(target) and types.is_boolean(t))
        or (types.is_date(target) and (types.is_date(t) or types.is_timestamp(t)))
        or (types.is_timestamp(target) and types.is_date(t) and target.tz is None)
        or (
            types.is_timestamp(target)
            and types.is_timestamp(t)
            and (target.tz is None) == (t.tz is None)
        )
    )
    if not same_family:
        return None
    try:
        out = pc.cast(arr, target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if types.is_timestamp(t) and types.is_date(target):
        # a timestamp with a time of day is not a date; Arrow would drop the time silently
        return out if pc.all(pc.equal(out.cast(t), arr)).as_py() is not False else None
    return out


def _parse(
    value: pa.Array, target: pa.DataType, present: npt.NDArray[np.bool_]
) -> tuple[pa.Array, list[tuple[npt.NDArray[np.bool_], str]]]:
    """Return the text values parsed as ``target`` (null where bad) and the problems found.

    One vectorised cast is tried first; only a batch it fails on is looked at row by row
    (regular expressions, then casts split in halves until the bad rows are found).
    """
    types = pa.types
    none = np.zeros(len(value), dtype=bool)
    if types.is_string(target):
        return value, []
    if types.is_binary(target):
        return value.cast(pa.binary()), []
    if types.is_boolean(target):
        lowered = pc.utf8_lower(value)
        truth = pc.if_else(pc.is_in(lowered, _TRUE), True, None)
        parsed = pc.if_else(pc.is_in(lowered, _FALSE), False, truth)
        return parsed, [(present & _nulls(parsed), "bool")]
    if types.is_date(target):
        return _dates(value, target, present)
    if types.is_integer(target):
        wide, shape_ok, failed = _attempt(value, pa.int64(), present, _INT)
        lo, hi = _int_range(target)
        fits = pc.fill_null(pc.and_(pc.greater_equal(wide, lo), pc.less_equal(wide, hi)), False)
        fits_np = fits.to_numpy(zero_copy_only=False)
        parsed = pc.if_else(fits, wide, None).cast(target)
        return parsed, [(present & ~shape_ok, "int"), (shape_ok & (failed | ~fits_np), "range")]
    if types.is_floating(target) or types.is_decimal(target):
        parsed, shape_ok, failed = _attempt(value, target, present, _NUMBER)
        why = "decimal" if types.is_decimal(target) else "range"
        if types.is_floating(target):
            failed = failed | pc.fill_null(pc.is_inf(parsed), False).to_numpy(zero_copy_only=False)
            parsed = pc.if_else(pa.array(failed), None, parsed)
        return parsed, [(present & ~shape_ok, "number"), (shape_ok & failed, why)]
    if types.is_timestamp(target):
        if target.tz is not None:
            dated = pc.equal(pc.utf8_length(value), 10)
            suffix = pc.if_else(dated, "T00:00:00" + LOCAL_OFFSET, LOCAL_OFFSET)
            fast = _try_cast(pc.binary_join_element_wise(value, suffix, ""), target)
            if fast is not None:  # the usual case: local times without an offset
                return fast, []
        fast = _try_cast(value, target)
        if fast is not None:
            return fast, []
        shape_ok, zoned = _matches(value, _ISO), _matches(value, _ZONE)
        usable = shape_ok & ~zoned if target.tz is None else shape_ok
        if target.tz is not None:
            with_offset = pc.binary_join_element_wise(value, suffix, "")
            value = pc.if_else(pa.array(zoned), value, with_offset)
        parsed, failed = _cast_rows(pc.if_else(pa.array(usable), value, None), target)
        zone = shape_ok & zoned if target.tz is None else none
        return parsed, [
            (present & ~shape_ok, "timestamp"),
            (zone, "zone"),
            (usable & failed, "timestamp"),
        ]
    raise InvalidInput(f"type {target} cannot be loaded yet")


def _attempt(
    value: pa.Array, target: pa.DataType, present: npt.NDArray[np.bool_], shape: str
) -> tuple[pa.Array, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Return (parsed, rows of the right shape, rows of that shape that did not cast)."""
    fast = _try_cast(value, target)
    if fast is not None:
        return fast, present, np.zeros(len(value), dtype=bool)
    shape_ok = _matches(value, shape)
    parsed, failed = _cast_rows(pc.if_else(pa.array(shape_ok), value, None), target)
    return parsed, shape_ok, failed


def _try_cast(value: pa.Array, target: pa.DataType) -> pa.Array | None:
    try:
        return pc.cast(value, target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _dates(
    value: pa.Array, target: pa.DataType, present: npt.NDArray[np.bool_]
) -> tuple[pa.Array, list[tuple[npt.NDArray[np.bool_], str]]]:
    """Return text dates in the three accepted forms as ``date32`` (real dates only)."""
    fast = _try_cast(value, target)  # YYYY-MM-DD, checked for real dates by Arrow
    if fast is not None:
        return fast, []
    a = pc.extract_regex(value, _DATE_SEP)
    b = pc.extract_regex(value, _DATE_DIGITS)
    parts = [pc.coalesce(pc.struct_field(a, k), pc.struct_field(b, k)) for k in "ymd"]
    iso = pc.binary_join_element_wise(
        parts[0], pc.utf8_lpad(parts[1], 2, "0"), pc.utf8_lpad(parts[2], 2, "0"), "-"
    )
    parsed, failed = _cast_rows(iso, target)
    shaped = iso.is_valid().to_numpy(zero_copy_only=False)
    return parsed, [(present & (~shaped | failed), "date")]


def _check_ids(column: _Column, spec: ItemSpec, today: date) -> _Column:
    """Check ID numbers with the identity kit and keep their canonical 18-character form."""
    values = column.values
    result = validate_ids_np(values, today=today)
    ok = result.ok
    bad_before = np.zeros(len(values), dtype=bool)
    for rows, _ in column.problems:
        bad_before |= rows
    wrong = column.present & ~ok & ~bad_before
    canonical = compose_ids_arrow(np.where(ok, result.bodies, 0))
    column.values = pc.if_else(pa.array(ok), canonical, pa.scalar(None, pa.string()))
    column.problems.append((wrong, "id"))
    return column


def _matches(value: pa.Array, pattern: str) -> npt.NDArray[np.bool_]:
    found = pc.fill_null(pc.match_substring_regex(value, pattern), False)
    return found.to_numpy(zero_copy_only=False)


def _nulls(arr: pa.Array) -> npt.NDArray[np.bool_]:
    return arr.is_null().to_numpy(zero_copy_only=False)


def _int_range(t: pa.DataType) -> tuple[int, int]:
    bits = t.bit_width
    if pa.types.is_unsigned_integer(t):
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _cast_rows(arr: pa.Array, target: pa.DataType) -> tuple[pa.Array, npt.NDArray[np.bool_]]:
    """Return ``arr`` cast to ``target`` with the rows that would not cast as nulls, and the
    mask of those rows; a failing cast is split in halves until the bad rows are found."""
    try:
        return pc.cast(arr, target, safe=True), np.zeros(len(arr), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if len(arr) == 1:
            return pa.nulls(1, target), np.ones(1, dtype=bool)
    half = len(arr) // 2
    left, left_bad = _cast_rows(arr.slice(0, half), target)
    right, right_bad = _cast_rows(arr.slice(half), target)
    return pa.concat_arrays([left, right]), np.concatenate([left_bad, right_bad])
