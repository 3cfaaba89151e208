"""Column builders for the synthetic city: seeded random streams and numpy → Arrow conversions.

Strings are built as byte matrices and handed to Arrow as buffers (no Python string per row);
small vocabularies become dictionary arrays. Every generator draws from a named stream, so adding a
dataset never changes the rows of another.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from datetime import date

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Bytes = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float64]

EPOCH = date(1970, 1, 1)
DAY_SECONDS = 86_400


def stream(seed: int, name: str) -> np.random.Generator:
    """Return the random generator of one named step: the same (seed, name), the same draws."""
    words = np.frombuffer(hashlib.sha256(name.encode()).digest()[:8], np.uint32)
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, seed >> 32, *words]))


def day_number(day: date) -> int:
    """Return ``day`` as days since 1970-01-01 (Arrow's date32)."""
    return (day - EPOCH).days


def weighted_choice(rng: np.random.Generator, weights: npt.ArrayLike, size: int) -> Ints:
    """Return ``size`` indices drawn with probability proportional to ``weights`` (inverse CDF)."""
    cdf = np.cumsum(np.asarray(weights, np.float64))
    picks = np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right")
    return np.minimum(picks, cdf.size - 1).astype(np.int64)


def _repeat_rows(values: Ints, ordered: Ints) -> Ints:
    """Return the rows whose value also occurs at an earlier row (``ordered`` = sorted values)."""
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if not repeated.size:
        return np.zeros(0, np.int64)
    hit = pc.is_in(pa.array(values), value_set=pa.array(repeated))
    rows = np.flatnonzero(hit.to_numpy(zero_copy_only=False))
    rows = rows[np.lexsort((rows, values[rows]))]
    first = np.ones(rows.size, np.bool_)
    first[1:] = values[rows][1:] != values[rows][:-1]
    return np.sort(rows[~first])


def make_distinct(values: Ints, redraw: Callable[[Ints], Ints]) -> Ints:
    """Return ``values`` with repeats replaced by ``redraw(rows)`` until all values differ.

    Sorts once; later rounds only test the redrawn values, so the cost stays near one sort.
    """
    out = np.array(values, np.int64)
    ordered = np.sort(out)
    rows = _repeat_rows(out, ordered)
    kept = ordered[np.concatenate([[True], ordered[1:] != ordered[:-1]])]
    for _ in range(1000):
        if not rows.size:
            return out
        new = redraw(rows)
        pos = np.searchsorted(kept, new)
        clash = kept[np.minimum(pos, kept.size - 1)] == new
        order = np.lexsort((np.arange(new.size), new))
        again = np.zeros(new.size, np.bool_)
        again[order[1:]] = new[order][1:] == new[order][:-1]
        ok = ~clash & ~again
        out[rows[ok]] = new[ok]
        kept = np.insert(kept, pos[ok][np.argsort(new[ok])], np.sort(new[ok]))
        rows = rows[~ok]
    raise ValueError("could not draw distinct values; the space is too small")


def unique_ints(rng: np.random.Generator, low: int, high: int, size: int) -> Ints:
    """Return ``size`` distinct random integers in [low, high), in random order."""
    if high - low < size:
        raise ValueError(f"cannot draw {size} distinct values from {high - low}")
    return make_distinct(
        rng.integers(low, high, size), lambda rows: rng.integers(low, high, rows.size)
    )


def split_counts(total: int, weights: npt.ArrayLike, minimum: int = 0) -> Ints:
    """Return integers proportional to ``weights`` that sum to ``total`` (largest remainder)."""
    w = np.asarray(weights, np.float64)
    base = np.full(w.size, minimum, np.int64)
    spare = total - int(base.sum())
    if spare < 0:
        raise ValueError("total is smaller than the minimum per part")
    share = w / w.sum() * spare
    counts = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[: spare - int(counts.sum())]] += 1
    return base + counts


# --- strings -------------------------------------------------------------------------------------


@functools.cache
def _digit_table() -> npt.NDArray[np.void]:
    """Return the ASCII digits of 0000-9999 as 4-byte records."""
    n = np.arange(10_000)
    table = np.empty((10_000, 4), np.uint8)
    for col in range(3, -1, -1):
        n, table[:, col] = np.divmod(n, 10)
    return (table + np.uint8(48)).view("V4").ravel()


def digits(values: npt.ArrayLike, width: int) -> Bytes:
    """Return the zero-padded ASCII digits of non-negative ints as a (rows, width) byte matrix."""
    x = np.asarray(values, np.int64).astype(np.uint64)  # unsigned division is much faster
    groups = -(-width // 4)
    out = np.empty((x.size, groups * 4), np.uint8)
    view = out.view("V4")
    table = _digit_table()
    base = np.uint64(10_000)
    for g in range(groups - 1, -1, -1):
        view[:, g] = table[x % base]
        x //= base
    return out[:, groups * 4 - width :]


def fixed_strings(matrix: Bytes) -> pa.StringArray:
    """Return an Arrow string array whose rows are the rows of a (rows, width) UTF-8 byte matrix."""
    rows, width = matrix.shape
    offsets = np.arange(0, (rows + 1) * width, width, dtype=np.int32)
    data = np.ascontiguousarray(matrix)
    return pa.Array.from_buffers(
        pa.string(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def ragged_strings(matrix: Bytes, lengths: npt.ArrayLike) -> pa.StringArray:
    """Return an Arrow string array of the first ``lengths[i]`` bytes of each matrix row."""
    lens = np.asarray(lengths, np.int64)
    keep = np.arange(matrix.shape[1]) < lens[:, None]
    offsets = np.zeros(lens.size + 1, np.int32)
    np.cumsum(lens, out=offsets[1:])
    data = np.ascontiguousarray(matrix[keep])
    return pa.Array.from_buffers(
        pa.string(), lens.size, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def int_strings(values: npt.ArrayLike) -> pa.StringArray:
    """Return the decimal strings (no padding) of non-negative ints."""
    x = np.asarray(values, np.int64)
    width = max(1, len(str(int(x.max())))) if x.size else 1
    matrix = digits(x, width)
    lens = np.ones(x.size, np.int64)
    for power in range(1, width):
        lens += x >= 10**power
    # Left-align: shift each row so its significant digits come first.
    shift = width - lens
    cols = np.arange(width)[None, :] + shift[:, None]
    aligned = np.take_along_axis(matrix, np.minimum(cols, width - 1), axis=1)
    return ragged_strings(aligned, lens)


def padded_strings(values: npt.ArrayLike, width: int, prefix: str = "") -> pa.StringArray:
    """Return ``prefix`` + zero-padded decimal strings of ``width`` digits."""
    matrix = digits(values, width)
    if prefix:
        head = np.frombuffer(prefix.encode(), np.uint8)
        matrix = np.hstack([np.broadcast_to(head, (matrix.shape[0], head.size)), matrix])
    return fixed_strings(matrix)


def vocab(words: Sequence[str]) -> pa.StringArray:
    """Return a small vocabulary as an Arrow string array."""
    return pa.array(list(words), pa.string())


def categorical(indices: npt.ArrayLike, words: Sequence[str] | pa.Array) -> pa.DictionaryArray:
    """Return a dictionary-encoded string column: ``words[indices[i]]`` per row.

    Repeated words are merged first: a dictionary with repeats is written nondeterministically.
    """
    values = words.to_pylist() if isinstance(words, pa.Array) else list(words)
    first: dict[str, int] = {}
    for word in values:
        first.setdefault(word, len(first))
    codes = np.asarray(indices, np.int32)
    if len(first) < len(values):
        codes = np.array([first[w] for w in values], np.int32)[codes]
    return pa.DictionaryArray.from_arrays(pa.array(codes), vocab(list(first)))


def pick(words: pa.Array, indices: npt.ArrayLike) -> pa.Array:
    """Return ``words`` taken at ``indices`` as a plain (not dictionary) array."""
    return words.take(pa.array(np.asarray(indices, np.int64)))


def join(*parts: pa.Array | str) -> pa.Array:
    """Return the row-wise concatenation of string arrays and scalar strings."""
    return pc.binary_join_element_wise(*parts, "")


def with_nulls(values: pa.Array, null_mask: Bools) -> pa.Array:
    """Return ``values`` with rows under ``null_mask`` made null."""
    if not null_mask.any():
        return values
    return pc.if_else(pa.array(null_mask), pa.nulls(len(values), values.type), values)


# --- dates, times, money -------------------------------------------------------------------------


def dates(days: npt.ArrayLike, null_mask: Bools | None = None) -> pa.Array:
    """Return a date32 column from days since 1970-01-01."""
    values = np.asarray(days, np.int32)
    mask = None if null_mask is None or not null_mask.any() else null_mask
    return pa.array(values, pa.date32(), mask=mask)


def timestamps(seconds: npt.ArrayLike) -> pa.Array:
    """Return a timestamp[ms] column (local time, no zone) from seconds since 1970-01-01.

    Milliseconds because Parquet has no seconds unit: the type read back is the type written.
    """
    return pa.array(np.asarray(seconds, np.int64) * 1000, pa.timestamp("ms"))


def money(cents: npt.ArrayLike, precision: int = 14, null_mask: Bools | None = None) -> pa.Array:
    """Return a decimal128(precision, 2) column of yuan from integer cents, exactly."""
    c = np.asarray(cents, np.int64)
    words = np.empty((c.size, 2), np.int64)
    words[:, 0] = c
    words[:, 1] = np.where(c < 0, -1, 0)
    validity = None
    if null_mask is not None and null_mask.any():
        validity = pa.array(~null_mask).buffers()[1]
    return pa.Array.from_buffers(
        pa.decimal128(precision, 2), c.size, [validity, pa.py_buffer(words)]
    )


def coords(values: Floats, places: int = 6) -> pa.Array:
    """Return a float64 column of coordinates rounded to ``places`` decimals."""
    return pa.array(np.round(values, places))


def civil_from_days(days: npt.ArrayLike) -> tuple[Ints, Ints, Ints]:
    """Return (year, month, day) arrays for days since 1970-01-01 (proleptic Gregorian)."""
    # H. Hinnant's civil_from_days in float64: exact here, and much faster than int64 division.
    z = np.asarray(days, np.float64) + 719_468.0
    era = np.floor(z / 146_097)
    doe = z - era * 146_097
    yoe = np.floor(
        (doe - np.floor(doe / 1460) + np.floor(doe / 36_524) - np.floor(doe / 146_096)) / 365
    )
    doy = doe - (365 * yoe + np.floor(yoe / 4) - np.floor(yoe / 100))
    mp = np.floor((5 * doy + 2) / 153)
    day = doy - np.floor((153 * mp + 2) / 5) + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return year.astype(np.int64), month.astype(np.int64), day.astype(np.int64)


def days_from_civil(year: npt.ArrayLike, month: npt.ArrayLike, day: npt.ArrayLike) -> Ints:
    """Return days since 1970-01-01 for (year, month, day) arrays (proleptic Gregorian)."""
    m = np.asarray(month, np.int64)
    y = np.asarray(year, np.int64) - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * np.where(m > 2, m - 3, m + 9) + 2) // 5 + np.asarray(day, np.int64) - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def month_end(days: npt.ArrayLike) -> Ints:
    """Return, for each day number, the day number of the last day of its month."""
    year, month, _ = civil_from_days(days)
    return days_from_civil(year + (month == 12), np.where(month == 12, 1, month + 1), 1) - 1


def months_between(earlier: npt.ArrayLike, later: npt.ArrayLike) -> Ints:
    """Return whole calendar months from the month of ``earlier`` to the month of ``later``."""
    y1, m1, _ = civil_from_days(earlier)
    y2, m2, _ = civil_from_days(later)
    return (y2 - y1) * 12 + (m2 - m1)
