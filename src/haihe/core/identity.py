"""Identity kit: resident ID numbers (居民身份证号码) and enterprise codes (统一社会信用代码).

Resident ID numbers follow GB 11643-1999: 17 digits (6 region, 8 birth date, 3 sequence whose last
digit is odd for men) and an ISO 7064 MOD 11-2 check character; the legacy 15-digit form has a
2-digit year and no check character. Haihe normalises them once, at load, and joins on the 17-digit
body as a 64-bit integer (DESIGN.md). Enterprise codes follow GB 32100-2015, whose positions 9-17
are a GB 11714 organisation code with its own MOD 11 check character.

The ``*_np`` helpers do the same work on whole columns for synth and the loaders.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from enum import IntEnum
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from haihe.core.errors import InvalidInput

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)  # 2**(17-i) mod 11
ID_CHECK_CHARS = "10X98765432"  # indexed by (weighted sum) mod 11
EARLIEST_BIRTH = date(1890, 1, 1)

PROVINCES: dict[str, str] = {
    "11": "北京", "12": "天津", "13": "河北", "14": "山西", "15": "内蒙古",
    "21": "辽宁", "22": "吉林", "23": "黑龙江",
    "31": "上海", "32": "江苏", "33": "浙江", "34": "安徽",
    "35": "福建", "36": "江西", "37": "山东",
    "41": "河南", "42": "湖北", "43": "湖南", "44": "广东", "45": "广西", "46": "海南",
    "50": "重庆", "51": "四川", "52": "贵州", "53": "云南", "54": "西藏",
    "61": "陕西", "62": "甘肃", "63": "青海", "64": "宁夏", "65": "新疆",
    "71": "台湾", "81": "香港", "82": "澳门",
}  # fmt: skip

_DIGITS = frozenset("0123456789")
_HALF_WIDTH = {
    code: code - 0xFEE0 for code in range(0xFF10, 0xFF5B) if chr(code - 0xFEE0).isalnum()
}
_SHOWN = 40  # echo at most this many characters of bad input in a message
_ASCII_ZERO_SUM = ord("0") * sum(ID_WEIGHTS)


class IdProblem(IntEnum):
    """Why a resident ID number was rejected; 0 means it was accepted."""

    OK = 0
    EMPTY = 1
    LENGTH = 2
    CHARACTERS = 3
    DATE = 4
    TOO_EARLY = 5
    FUTURE = 6
    CHECK_CHAR = 7


def _clean(raw: str) -> str:
    """Return ``raw`` without any whitespace, full-width letters and digits made half-width."""
    return "".join(raw.split()).translate(_HALF_WIDTH).upper()


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


def _check_value(body17: str) -> int:
    """Return the weighted digit sum mod 11 of 17 ASCII digits."""
    return (sum(map(operator.mul, body17.encode("ascii"), ID_WEIGHTS)) - _ASCII_ZERO_SUM) % 11


def check_char(body17: str) -> str:
    """Return the ISO 7064 MOD 11-2 check character (校验码, '0'-'9' or 'X') for a 17-digit body."""
    if len(body17) != 17 or not _DIGITS.issuperset(body17):
        raise InvalidInput(
            f"ID body {_shown(body17)}: expected exactly 17 digits 0-9",
            details={"reason": "characters"},
        )
    return ID_CHECK_CHARS[_check_value(body17)]


def _real_date(ymd: str) -> date | None:
    try:
        return date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:8]))
    except ValueError:
        return None


_ID_MESSAGES = {
    IdProblem.EMPTY: "ID number is empty; give the 18-character resident ID number",
    IdProblem.LENGTH: "ID number {shown}: has {n} characters, expected 18 (or 15 for a legacy "
    "number); check for missing or extra digits",
    IdProblem.CHARACTERS: "ID number {shown}: character {char!r} at position {pos} is not allowed; "
    "use {rule}",
    IdProblem.DATE: "ID number {shown}: birth date {ymd} (characters {where}) is not a real date; "
    "check the birth-date digits",
    IdProblem.TOO_EARLY: "ID number {shown}: birth date {born} is before 1890; check the year "
    "digits",
    IdProblem.FUTURE: "ID number {shown}: birth date {born} is after today ({today}); check the "
    "year digits",
    IdProblem.CHECK_CHAR: "ID number {shown}: check character should be {expected}, not {got}; "
    "re-enter the number from the card",
}


def _diagnose(raw: str, today: date | None) -> tuple[str, IdProblem, dict[str, object]]:
    """Return (canonical number or "", problem, message fields) for one raw ID number."""
    text = _clean(raw)
    legacy = len(text) == 15

    def fail(problem: IdProblem, **facts: object) -> tuple[str, IdProblem, dict[str, object]]:
        return "", problem, {"shown": _shown(text), "n": len(text), **facts}

    if not text:
        return fail(IdProblem.EMPTY)
    if len(text) not in (15, 18):
        return fail(IdProblem.LENGTH)
    plain = text.isascii() and text[:17].isdigit() and (legacy or text[17] in "0123456789X")
    for pos, char in enumerate("" if plain else text, start=1):
        if char not in _DIGITS and not (char == "X" and pos == 18):
            rule = "digits only" if legacy else "digits 0-9, with X only as the 18th character"
            return fail(IdProblem.CHARACTERS, char=char, pos=pos, rule=rule)
    body = text[:6] + "19" + text[6:] if legacy else text[:17]
    born = _real_date(body[6:14])
    if born is None:
        return fail(IdProblem.DATE, ymd=body[6:14], where="7-12" if legacy else "7-14")
    today = today or date.today()
    if not EARLIEST_BIRTH <= born <= today:
        problem = IdProblem.TOO_EARLY if born < EARLIEST_BIRTH else IdProblem.FUTURE
        return fail(problem, born=born.isoformat(), today=today.isoformat())
    expected = ID_CHECK_CHARS[_check_value(body)]
    if not legacy and text[17] != expected:
        return fail(IdProblem.CHECK_CHAR, expected=expected, got=text[17])
    return body + expected, IdProblem.OK, {}


def normalise_id(raw: str, *, today: date | None = None) -> str:
    """Return the canonical 18-character form of a resident ID number, or raise InvalidInput.

    Removes all whitespace (including U+3000), makes full-width characters half-width, upper-cases
    x and converts a 15-digit legacy number by inserting "19" before its year and computing the
    check character. The birth date must be real, not before 1890 and not after ``today``.
    """
    number, problem, facts = _diagnose(raw, today)
    if problem is not IdProblem.OK:
        message = _ID_MESSAGES[problem].format(**facts)
        raise InvalidInput(message, details={"reason": problem.name.lower()})
    return number


def is_valid_id(raw: str, *, today: date | None = None) -> bool:
    """Return True when ``raw`` normalises to a valid resident ID number."""
    return _diagnose(raw, today)[1] is IdProblem.OK


def body_int(number: str) -> int:
    """Return the 17-digit body of a resident ID number as an int (the join key, DESIGN.md)."""
    return int(normalise_id(number)[:17])


def compose_id(body: int) -> str:
    """Return the 18-character ID number for a 17-digit body given as an int."""
    if not 0 <= body < 10**17:
        raise InvalidInput(f"ID body {body}: expected 0 to 10**17 - 1", details={"reason": "body"})
    body17 = f"{body:017d}"
    return body17 + check_char(body17)


@dataclass(frozen=True, slots=True)
class ResidentId:
    """A parsed resident ID number — 居民身份证号码."""

    number: str
    region_code: str
    birth_date: date
    sex: Literal["M", "F"]
    sequence: str
    legacy: bool

    @property
    def province(self) -> str | None:
        """Return the province-level name (省级行政区, zh) from the first two digits, if known."""
        return PROVINCES.get(self.number[:2])

    @property
    def body(self) -> int:
        """Return the 17-digit body as an int."""
        return int(self.number[:17])

    def age_on(self, on: date) -> int:
        """Return the age in completed years on ``on``; a 29 February birthday counts on 1 March."""
        if on < self.birth_date:
            raise InvalidInput(
                f"date {on.isoformat()} is before the birth date; give a later date",
                details={"reason": "before_birth"},
            )
        born = self.birth_date
        return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def parse_id(raw: str, *, today: date | None = None) -> ResidentId:
    """Return the parts of a resident ID number, or raise InvalidInput."""
    number = normalise_id(raw, today=today)
    return ResidentId(
        number=number,
        region_code=number[:6],
        birth_date=date(int(number[6:10]), int(number[10:12]), int(number[12:14])),
        sex="M" if int(number[16]) % 2 else "F",
        sequence=number[14:17],
        legacy=len(_clean(raw)) == 15,
    )


# --- whole columns -------------------------------------------------------------------------------

Int64Array = npt.NDArray[np.int64]
IntpArray = npt.NDArray[np.intp]
_BLOCK = 1 << 15  # rows per block: keeps each block's temporaries in the CPU cache
_CHUNKS = ((0, 5), (5, 6), (11, 6))  # (first position, width) of the body's three pieces
_RECORD = np.dtype([("top", "V5"), ("mid", "V6"), ("low", "V6"), ("check", "u1")])  # 18 bytes
_CHECK_CODES = np.array([ord(ID_CHECK_CHARS[s % 11]) for s in range(33)], np.uint32)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] + [0] * 87, np.intp)


class IdBatch(NamedTuple):
    """Result of ``validate_ids_np``: ``bodies`` (int64, -1 where rejected), ``problems`` (int8)."""

    bodies: Int64Array
    problems: npt.NDArray[np.int8]

    @property
    def ok(self) -> npt.NDArray[np.bool_]:
        """Return the mask of accepted rows."""
        return self.problems == IdProblem.OK


@functools.cache
def _digit_table(width: int) -> npt.NDArray[np.uint8]:
    """Return the zero-padded ASCII digits of 0 .. 10**width - 1, one row per number."""
    n = np.arange(10**width, dtype=np.int64)
    out = np.empty((10**width, width), np.uint8)
    for col in range(width - 1, -1, -1):
        n, out[:, col] = np.divmod(n, 10)
    return out + np.uint8(48)


@functools.cache
def _weight_table(start: int, width: int) -> npt.NDArray[np.uint8]:
    """Return the weighted digit sum mod 11 of every value of the piece starting at ``start``."""
    digits = (_digit_table(width) - np.uint8(48)).astype(np.uint16)
    return ((digits @ np.array(ID_WEIGHTS[start : start + width], np.uint16)) % 11).astype(np.uint8)


@functools.cache
def _leap_years() -> npt.NDArray[np.bool_]:
    year = np.arange(10000)
    return (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))


def _check_codes(top: IntpArray, mid: IntpArray, low: IntpArray) -> npt.NDArray[np.uint32]:
    tables = [_weight_table(start, width) for start, width in _CHUNKS]
    return _CHECK_CODES[tables[0][top] + tables[1][mid] + tables[2][low]]


def _pieces(bodies: Int64Array) -> tuple[IntpArray, IntpArray, IntpArray]:
    high, low = np.divmod(bodies, 10**6)
    top, mid = np.divmod(high, 10**6)
    return top.astype(np.intp), mid.astype(np.intp), low.astype(np.intp)


def _as_bodies(bodies: npt.ArrayLike) -> Int64Array:
    arr = np.asarray(bodies)
    if arr.size == 0:
        return np.empty(0, np.int64)
    if arr.dtype.kind not in "iu":
        raise InvalidInput(f"ID bodies must be integers, not {arr.dtype}", details=None)
    arr = arr.astype(np.int64, copy=False).reshape(-1)
    if arr.min() < 0 or arr.max() >= 10**17:
        raise InvalidInput("ID bodies must be 17-digit integers (0 to 10**17 - 1)", details=None)
    return arr


def check_chars_np(bodies: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """Return the check characters (dtype '<U1') of an int64 array of 17-digit bodies."""
    arr = _as_bodies(bodies)
    out = np.empty(arr.size, np.uint32)
    for lo in range(0, arr.size, _BLOCK):
        out[lo : lo + _BLOCK] = _check_codes(*_pieces(arr[lo : lo + _BLOCK]))
    return out.view("<U1")


def compose_id_bytes(bodies: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """Return the ASCII bytes, one row of 18 per body, of the ID numbers of 17-digit bodies."""
    arr = _as_bodies(bodies)
    out = np.empty(arr.size, _RECORD)
    tables = {width: _digit_table(width).view(f"V{width}").reshape(-1) for width in (5, 6)}
    for lo in range(0, arr.size, _BLOCK):
        pieces = _pieces(arr[lo : lo + _BLOCK])
        block = out[lo : lo + _BLOCK]
        for name, (_, width), piece in zip(("top", "mid", "low"), _CHUNKS, pieces, strict=True):
            block[name] = tables[width][piece]
        block["check"] = _check_codes(*pieces)
    return out.view(np.uint8).reshape(arr.size, 18)


def compose_ids_np(bodies: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """Return the 18-character ID numbers (dtype '<U18') of an int64 array of 17-digit bodies."""
    ascii_rows = compose_id_bytes(bodies)
    out = np.empty(ascii_rows.shape, np.uint32)
    out[...] = ascii_rows
    return out.view("<U18").reshape(len(out))


def compose_ids_arrow(bodies: npt.ArrayLike) -> Any:
    """Return the 18-character ID numbers of 17-digit bodies as a pyarrow string array.

    A quarter of the memory of ``compose_ids_np`` (one byte per character), ready for Parquet.
    """
    import pyarrow as pa  # only synth and the loaders need it; keep it out of import time

    ascii_rows = compose_id_bytes(bodies)
    offsets = np.arange(
        0, ascii_rows.size + 1, 18, dtype=np.int32 if ascii_rows.size < 2**31 else np.int64
    )
    kind = pa.string() if offsets.dtype == np.int32 else pa.large_string()
    return pa.Array.from_buffers(
        kind, len(ascii_rows), [None, pa.py_buffer(offsets), pa.py_buffer(ascii_rows)]
    )


def _horner(digits: npt.NDArray[np.uint32], start: int, width: int) -> IntpArray:
    value = digits[start].copy()
    for row in digits[start + 1 : start + width]:
        value *= 10
        value += row
    return np.minimum(value, 10**width - 1).astype(np.intp)  # garbage rows stay indexable


def _fast_block(codes: npt.NDArray[Any], today: int) -> tuple[Int64Array, npt.NDArray[np.int8]]:
    """Return bodies and problems of (rows, 18) character codes; -1: not plain, ask _diagnose."""
    digits = codes.T.astype(np.uint32, order="C")  # always a copy: the caller's column stays
    digits -= np.uint32(48)  # wraps below '0', so one comparison tests for a digit
    last = np.where(digits[17] == ord("x") - 48, ord("X") - 48, digits[17])  # x is common
    plain = ~(digits[:17] > 9).any(axis=0) & ((last <= 9) | (last == ord("X") - 48))
    top, mid, low = (_horner(digits, start, width) for start, width in _CHUNKS)
    year, month, day = _horner(digits, 6, 4), _horner(digits, 10, 2), _horner(digits, 12, 2)
    last_day = _DAYS_IN_MONTH[month] + ((month == 2) & _leap_years()[year])
    ymd = (year * 100 + month) * 100 + day
    wrong_check = _check_codes(top, mid, low) != last + 48
    problems = np.select(
        [~plain, (day == 0) | (day > last_day), ymd < 18900101, ymd > today, wrong_check],
        [-1, IdProblem.DATE, IdProblem.TOO_EARLY, IdProblem.FUTURE, IdProblem.CHECK_CHAR],
        IdProblem.OK,
    ).astype(np.int8)
    return (top * 10**6 + mid) * 10**6 + low, problems


def _numpy_blocks(flat: npt.NDArray[np.str_]) -> Iterator[tuple[int, Any, Any, Any]]:
    """Yield (first row, codes of 18-character rows, exact-length mask, raw rows) per block."""
    width = flat.dtype.itemsize // 4
    codes = flat.view(np.uint32).reshape(flat.size, width) if width >= 18 else None
    for lo in range(0, flat.size, _BLOCK):
        if codes is None:
            yield lo, None, None, flat[lo : lo + _BLOCK]
            continue
        block = codes[lo : lo + _BLOCK]
        exact = block[:, 17] != 0
        if width > 18:
            exact &= block[:, 18] == 0
        yield lo, block[:, :18], exact, flat[lo : lo + _BLOCK]


def _arrow_blocks(column: Any) -> Iterator[tuple[int, Any, Any, Any]]:
    """Yield (first row, codes of 18-byte rows, exact-length mask, raw rows) per block."""
    import pyarrow as pa

    lo = 0
    for chunk in column.chunks:
        width = np.int64 if chunk.type == pa.large_string() else np.int32
        offsets = np.frombuffer(chunk.buffers()[1], width)[chunk.offset :][: len(chunk) + 1]
        data = np.frombuffer(chunk.buffers()[2] or b"", np.uint8)
        # Every byte offset as an 18-byte record, so one gather pulls whole values.
        records = np.ndarray((max(data.size - 17, 0),), "V18", data, strides=(1,))
        valid = chunk.is_valid().to_numpy(zero_copy_only=False)
        for start in range(0, len(chunk), _BLOCK):
            starts = offsets[start : start + _BLOCK + 1]
            exact = (np.diff(starts) == 18) & valid[start : start + _BLOCK]
            codes = records[np.where(exact, starts[:-1], 0)] if records.size else None
            codes = None if codes is None else codes.view(np.uint8).reshape(-1, 18)
            yield lo + start, codes, exact, chunk.slice(start, _BLOCK)
        lo += len(chunk)


def _blocks(ids: Any) -> tuple[int, Iterator[tuple[int, Any, Any, Any]]]:
    if isinstance(ids, np.ndarray) and ids.dtype.kind == "U":
        return ids.size, _numpy_blocks(ids.reshape(-1))
    import pyarrow as pa  # only the loaders need it; keep it out of import time

    try:
        column = ids if isinstance(ids, pa.Array | pa.ChunkedArray) else pa.array(ids, pa.string())
        column = pa.chunked_array([column]) if isinstance(column, pa.Array) else column
        if column.type not in (pa.string(), pa.large_string()):
            column = column.cast(pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise InvalidInput(f"ID numbers must be strings: {exc}", details=None) from exc
    return len(column), _arrow_blocks(column)


def validate_ids_np(ids: Any, *, today: date | None = None) -> IdBatch:
    """Return an IdBatch for a column of raw ID numbers: canonical body and problem per row.

    ``ids`` may be a numpy str array, a pyarrow string array (nulls are EMPTY) or a sequence of str
    or None. Rows of 18 ASCII characters (lower-case x too) are judged in bulk; any other row
    (15-digit, spaced, full-width, garbage) one by one by ``normalise_id``'s own rules (~5-25 µs a
    row), so the two always agree. Rejected rows get body -1 and ``normalise_id`` on one gives
    its message; ``compose_ids_np(batch.bodies[batch.ok])`` gives the accepted rows as strings.
    """
    as_of = today or date.today()
    today_int = as_of.year * 10000 + as_of.month * 100 + as_of.day
    size, blocks = _blocks(ids)
    bodies = np.full(size, -1, np.int64)
    problems = np.full(size, -1, np.int8)
    for lo, codes, exact, raw in blocks:
        hi = lo + len(raw)
        if codes is not None:
            got_bodies, got_problems = _fast_block(codes, today_int)
            problems[lo:hi] = np.where(exact, got_problems, -1)
            bodies[lo:hi] = np.where(problems[lo:hi] == IdProblem.OK, got_bodies, -1)
        slow = np.flatnonzero(problems[lo:hi] == -1)
        if not slow.size:
            continue
        values = raw[slow] if isinstance(raw, np.ndarray) else raw.take(slow).to_pylist()
        for row, value in zip(slow, values, strict=True):
            number, problems[lo + row], _ = _diagnose(value or "", as_of)
            bodies[lo + row] = int(number[:17]) if number else -1
    return IdBatch(bodies, problems)


# --- unified social credit code ------------------------------------------------------------------

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))  # 1, 3, 9, 27, 19, 26, ...
ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_USCC_VALUE = {c: v for v, c in enumerate(USCC_ALPHABET)}


def uscc_check_char(first17: str) -> str:
    """Return the 18th character of a unified social credit code (GB 32100-2015 MOD 31)."""
    if len(first17) != 17 or any(c not in _USCC_VALUE for c in first17):
        raise InvalidInput(
            f"code {_shown(first17)}: expected 17 characters from {USCC_ALPHABET}",
            details={"reason": "characters"},
        )
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[-total % 31]


def org_code_check_char(body8: str) -> str:
    """Return the check character of a GB 11714 organisation code (组织机构代码) body of 8 chars."""
    if len(body8) != 8 or any(c not in _USCC_VALUE for c in body8):
        raise InvalidInput(
            f"organisation code body {_shown(body8)}: expected 8 characters from {USCC_ALPHABET}",
            details={"reason": "characters"},
        )
    # GB 11714 values letters A=10 .. Z=35 over the whole Latin alphabet, unlike GB 32100.
    total = sum(int(c, 36) * w for c, w in zip(body8, ORG_CODE_WEIGHTS, strict=True))
    return "0123456789X0"[11 - total % 11]


_USCC_MESSAGES = {
    "empty": "unified social credit code is empty; give the 18-character code",
    "length": "unified social credit code {shown}: has {n} characters, expected 18; check for "
    "missing or extra characters",
    "region": "unified social credit code {shown}: character {char!r} at position {pos} is not "
    "allowed; positions 3-8 are the region code and must be digits",
    "characters": "unified social credit code {shown}: character {char!r} at position {pos} is not "
    "allowed; use digits and capital letters other than I, O, S, V and Z",
    "org_check_char": "unified social credit code {shown}: organisation-code check character "
    "(position 17) should be {expected}, not {got}; re-enter the code",
    "check_char": "unified social credit code {shown}: check character should be {expected}, not "
    "{got}; re-enter the code",
}


def _uscc_problem(code: str) -> tuple[str, dict[str, object]] | None:
    """Return (reason, message fields) of what is wrong with a cleaned code, or None."""
    facts: dict[str, object] = {"shown": _shown(code), "n": len(code)}
    if len(code) != 18:
        return ("length" if code else "empty"), facts
    for pos, char in enumerate(code, start=1):
        if char not in _USCC_VALUE or (3 <= pos <= 8 and char not in _DIGITS):
            reason = "region" if 3 <= pos <= 8 else "characters"
            return reason, facts | {"char": char, "pos": pos}
    for reason, expected, got in (
        ("org_check_char", org_code_check_char(code[8:16]), code[16]),
        ("check_char", uscc_check_char(code[:17]), code[17]),
    ):
        if got != expected:
            return reason, facts | {"expected": expected, "got": got}
    return None


def normalise_uscc(raw: str) -> str:
    """Return the canonical 18-character unified social credit code, or raise InvalidInput.

    Removes whitespace, makes full-width characters half-width and upper-cases; then checks the
    alphabet, the digit region code, the organisation-code check (position 17) and the check
    character (position 18).
    """
    code = _clean(raw)
    problem = _uscc_problem(code)
    if problem is not None:
        reason, facts = problem
        raise InvalidInput(_USCC_MESSAGES[reason].format(**facts), details={"reason": reason})
    return code


def is_valid_uscc(raw: str) -> bool:
    """Return True when ``raw`` normalises to a valid unified social credit code."""
    return _uscc_problem(_clean(raw)) is None


def compose_uscc(reg_authority: str, org_type: str, region_code: str, org_body8: str) -> str:
    """Return a valid unified social credit code built from its parts, computing both checks.

    ``reg_authority`` (登记管理部门, e.g. "9" market regulation) and ``org_type`` (机构类别, e.g.
    "1" company) are one character each, ``region_code`` is the registering authority's 6-digit
    division code and ``org_body8`` the first 8 characters of the organisation code.
    """
    if len(region_code) != 6 or not _DIGITS.issuperset(region_code):
        raise InvalidInput(f"region code {region_code!r}: expected 6 digits", details=None)
    if len(reg_authority) != 1 or len(org_type) != 1:
        raise InvalidInput("registration authority and organisation type are one character each")
    first17 = reg_authority + org_type + region_code + org_body8 + org_code_check_char(org_body8)
    return first17 + uscc_check_char(first17)
