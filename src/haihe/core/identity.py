"""Identity kit: resident ID numbers (居民身份证号码) and unified social credit codes (统一社会信用代码).

Resident ID numbers follow GB 11643-1999: 17 digits (6 region, 8 birth date, 3 sequence whose last
digit is odd for men) and an ISO 7064 MOD 11-2 check character; the legacy 15-digit form has a
2-digit year and no check character. Haihe normalises them once, at load, and joins on the 17-digit
body as a 64-bit integer (DESIGN.md). Enterprise codes follow GB 32100-2015, whose positions 9-17
are a GB 11714 organisation code with its own MOD 11 check character.

The ``*_np`` helpers do the same work on whole columns for synth and the loaders.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from enum import IntEnum
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from haihe.core.errors import InvalidInput

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)  # 2**(17-i) mod 11
ID_CHECK_CHARS = "10X98765432"  # indexed by (weighted sum) mod 11
EARLIEST_BIRTH = date(1890, 1, 1)

PROVINCES: dict[str, str] = {
    "11": "北京", "12": "天津", "13": "河北", "14": "山西", "15": "内蒙古",
    "21": "辽宁", "22": "吉林", "23": "黑龙江",
    "31": "上海", "32": "江苏", "33": "浙江", "34": "安徽", "35": "福建", "36": "江西", "37": "山东",
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
    return sum(int(c) * w for c, w in zip(body17, ID_WEIGHTS, strict=True)) % 11


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
    IdProblem.TOO_EARLY: "ID number {shown}: birth date {born} is before 1890; check the year digits",
    IdProblem.FUTURE: "ID number {shown}: birth date {born} is after today ({today}); check the "
    "year digits",
    IdProblem.CHECK_CHAR: "ID number {shown}: check character should be {expected}, not {got}; "
    "re-enter the number from the card",
}


def _diagnose(raw: str, today: date | None) -> tuple[str, IdProblem, dict[str, object]]:
    """Return (canonical number or "", problem, message fields) for one raw ID number."""
    text = _clean(raw)
    facts: dict[str, object] = {"shown": _shown(text), "n": len(text)}
    if not text:
        return "", IdProblem.EMPTY, facts
    if len(text) not in (15, 18):
        return "", IdProblem.LENGTH, facts
    legacy = len(text) == 15
    for pos, char in enumerate(text, start=1):
        if char not in _DIGITS and not (char == "X" and pos == 18):
            rule = "digits only" if legacy else "digits 0-9, with X only as the 18th character"
            return "", IdProblem.CHARACTERS, facts | {"char": char, "pos": pos, "rule": rule}
    body = text[:6] + "19" + text[6:] if legacy else text[:17]
    born = _real_date(body[6:14])
    if born is None:
        where = "7-12" if legacy else "7-14"
        return "", IdProblem.DATE, facts | {"ymd": body[6:14], "where": where}
    today = today or date.today()
    facts |= {"born": born.isoformat(), "today": today.isoformat()}
    if born < EARLIEST_BIRTH:
        return "", IdProblem.TOO_EARLY, facts
    if born > today:
        return "", IdProblem.FUTURE, facts
    expected = ID_CHECK_CHARS[_check_value(body)]
    if not legacy and text[17] != expected:
        return "", IdProblem.CHECK_CHAR, facts | {"expected": expected, "got": text[17]}
    return body + expected, IdProblem.OK, facts


def normalise_id(raw: str, *, today: date | None = None) -> str:
    """Return the canonical 18-character form of a resident ID number, or raise InvalidInput.

    Removes all whitespace (including U+3000), makes full-width characters half-width, upper-cases
    x and converts a 15-digit legacy number by inserting "19" before its year and computing the check
    character. The birth date must be real, not before 1890 and not after ``today``.
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
    sex: str
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
        """Return the age in completed years on ``on`` (a 29 February birthday counts on 1 March)."""
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
_BLOCK = 1 << 15  # rows per block: keeps the (rows, 18) temporaries in cache
_CHUNKS = ((0, 5), (5, 6), (11, 6))  # (first position, width) of the body's three pieces
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 0], np.int64)


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
    """Return the ASCII digits of 0 .. 10**width - 1, zero-padded, one row per number."""
    n = np.arange(10**width, dtype=np.int64)
    out = np.empty((10**width, width), np.uint8)
    for col in range(width - 1, -1, -1):
        n, out[:, col] = np.divmod(n, 10)
    return out + np.uint8(48)


@functools.cache
def _weight_table(start: int, width: int) -> npt.NDArray[np.uint8]:
    """Return each piece's weighted digit sum mod 11 for the piece starting at ``start``."""
    digits = (_digit_table(width) - np.uint8(48)).astype(np.uint16)
    return ((digits @ np.array(ID_WEIGHTS[start : start + width], np.uint16)) % 11).astype(np.uint8)


_CHECK_CODES = np.array([ord(ID_CHECK_CHARS[s % 11]) for s in range(33)], np.uint32)


def _pieces(bodies: Int64Array) -> tuple[Int64Array, Int64Array, Int64Array]:
    high, low = np.divmod(bodies, 10**6)
    top, mid = np.divmod(high, 10**6)
    return top, mid, low


def _check_codes(top: Int64Array, mid: Int64Array, low: Int64Array) -> npt.NDArray[np.uint32]:
    tables = [_weight_table(start, width) for start, width in _CHUNKS]
    return _CHECK_CODES[tables[0][top] + tables[1][mid] + tables[2][low]]


def _as_bodies(bodies: npt.ArrayLike) -> Int64Array:
    arr = np.asarray(bodies)
    if arr.dtype.kind not in "iu":
        raise InvalidInput(f"ID bodies must be integers, not {arr.dtype}", details=None)
    arr = arr.astype(np.int64, copy=False).reshape(-1)
    if arr.size and (arr.min() < 0 or arr.max() >= 10**17):
        raise InvalidInput("ID bodies must be 17-digit integers (0 to 10**17 - 1)", details=None)
    return arr


def check_chars_np(bodies: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """Return the check characters (dtype '<U1') of an int64 array of 17-digit bodies."""
    arr = _as_bodies(bodies)
    out = np.empty(arr.size, np.uint32)
    for lo in range(0, arr.size, _BLOCK):
        out[lo : lo + _BLOCK] = _check_codes(*_pieces(arr[lo : lo + _BLOCK]))
    return out.view("<U1")


def compose_ids_np(bodies: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """Return the 18-character ID numbers (dtype '<U18') of an int64 array of 17-digit bodies."""
    arr = _as_bodies(bodies)
    out = np.empty((arr.size, 18), np.uint32)
    for lo in range(0, arr.size, _BLOCK):
        pieces = _pieces(arr[lo : lo + _BLOCK])
        block = out[lo : lo + _BLOCK]
        for (start, width), piece in zip(_CHUNKS, pieces, strict=True):
            block[:, start : start + width] = _digit_table(width)[piece]
        block[:, 17] = _check_codes(*pieces)
    return out.view("<U18").reshape(arr.size)


def _date_problems(ymd: Int64Array, today: int) -> npt.NDArray[np.int8]:
    year, month, day = ymd // 10000, ymd // 100 % 100, ymd % 100
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    last_day = _DAYS_IN_MONTH[np.clip(month, 0, 13)] + ((month == 2) & leap)
    real = (month >= 1) & (month <= 12) & (day >= 1) & (day <= last_day)
    return np.select(
        [~real, ymd < 18900101, ymd > today],
        [IdProblem.DATE, IdProblem.TOO_EARLY, IdProblem.FUTURE],
        IdProblem.OK,
    ).astype(np.int8)


def _fast_block(codes: npt.NDArray[Any], today: int) -> tuple[Int64Array, npt.NDArray[np.int8]]:
    """Return bodies and problems for (rows, 18) character codes; problem -1 means "ask _diagnose"."""
    digits = codes[:, :17].astype(np.int64) - 48
    last = codes[:, 17].astype(np.int64)
    plain = ((digits >= 0) & (digits <= 9)).all(axis=1) & (
        ((last >= 48) & (last <= 57)) | (last == 88)
    )
    digits[~plain] = 0
    top, mid, low = (digits[:, s : s + w] @ 10 ** np.arange(w - 1, -1, -1) for s, w in _CHUNKS)
    bodies = (top * 10**6 + mid) * 10**6 + low
    problems = _date_problems(bodies // 1000 % 10**8, today)
    bad_check = (problems == IdProblem.OK) & (_check_codes(top, mid, low) != last)
    problems[bad_check] = IdProblem.CHECK_CHAR
    problems[~plain] = -1
    return bodies, problems


def _code_blocks(ids: Any) -> tuple[int, Any]:
    """Return (row count, iterator of (start, codes, lengths, fallback strings)) for a column."""
    if isinstance(ids, np.ndarray) and ids.dtype.kind == "U":
        flat = ids.reshape(-1)
        width = flat.dtype.itemsize // 4
        codes = flat.view(np.uint32).reshape(flat.size, width) if width else None

        def numpy_blocks() -> Any:
            for lo in range(0, flat.size, _BLOCK):
                part = flat[lo : lo + _BLOCK]
                if codes is None or width < 18:
                    yield lo, None, part
                    continue
                block = codes[lo : lo + _BLOCK]
                exact = block[:, 17] != 0
                if width > 18:
                    exact &= block[:, 18] == 0
                yield lo, (block[:, :18], exact), part

        return flat.size, numpy_blocks()
    import pyarrow as pa

    try:
        column = ids if isinstance(ids, pa.Array | pa.ChunkedArray) else pa.array(ids, pa.string())
        column = column.cast(pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise InvalidInput(f"ID numbers must be strings: {exc}", details=None) from exc
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]

    def arrow_blocks() -> Any:
        lo = 0
        for chunk in chunks:
            offsets = np.frombuffer(chunk.buffers()[1], np.int64)[chunk.offset :][: len(chunk) + 1]
            data = np.frombuffer(chunk.buffers()[2] or b"", np.uint8)
            valid = chunk.is_valid().to_numpy(zero_copy_only=False)
            for start in range(0, len(chunk), _BLOCK):
                starts = offsets[start : start + _BLOCK + 1]
                exact = (np.diff(starts) == 18) & valid[start : start + _BLOCK]
                where = np.where(exact, starts[:-1], 0)[:, None] + np.arange(18)
                codes = data[where] if data.size >= 18 else np.zeros((len(exact), 18), np.uint8)
                yield lo + start, (codes, exact), chunk.slice(start, _BLOCK)
            lo += len(chunk)

    return len(column), arrow_blocks()


def validate_ids_np(ids: Any, *, today: date | None = None) -> IdBatch:
    """Return an IdBatch for a column of raw ID numbers: canonical bodies and a problem per row.

    ``ids`` may be a numpy string array, a pyarrow string array (nulls count as EMPTY) or a sequence
    of str. Canonical 18-character rows are checked in bulk; any other row (15-digit, spaced,
    full-width, lower-case x, wrong) is judged by the same rules as ``normalise_id``, so the two
    always agree. Rejected rows get body -1; ``normalise_id`` on one gives the one-line message.
    Accepted rows give ``compose_ids_np(batch.bodies[batch.ok])`` back as canonical strings.
    """
    today_int = int((today or date.today()).strftime("%Y%m%d"))
    as_date = date(today_int // 10000, today_int // 100 % 100, today_int % 100)
    size, blocks = _code_blocks(ids)
    bodies = np.full(size, -1, np.int64)
    problems = np.full(size, -1, np.int8)
    for lo, fast, part in blocks:
        if fast is not None:
            codes, exact = fast
            got_bodies, got_problems = _fast_block(codes, today_int)
            got_problems[~exact] = -1
            n = len(exact)
            bodies[lo : lo + n] = np.where(got_problems == IdProblem.OK, got_bodies, -1)
            problems[lo : lo + n] = got_problems
        slow = np.flatnonzero(problems[lo : lo + len(part)] == -1)
        values = part.take(slow).to_pylist() if not isinstance(part, np.ndarray) else part[slow]
        for row, raw in zip(slow, values, strict=True):
            number, problem, _ = _diagnose(raw or "", as_date)
            problems[lo + row] = problem
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


def _uscc_problem(code: str) -> tuple[str, str] | None:
    shown = _shown(code)
    if not code:
        return "empty", "unified social credit code is empty; give the 18-character code"
    if len(code) != 18:
        return "length", (
            f"unified social credit code {shown}: has {len(code)} characters, expected 18; "
            "check for missing or extra characters"
        )
    for pos, char in enumerate(code, start=1):
        if 3 <= pos <= 8 and char not in _DIGITS:
            return "characters", (
                f"unified social credit code {shown}: character {char!r} at position {pos} is "
                "not allowed; positions 3-8 are the region code and must be digits"
            )
        if char not in _USCC_VALUE:
            return "characters", (
                f"unified social credit code {shown}: character {char!r} at position {pos} is "
                "not allowed; use digits and capital letters other than I, O, S, V and Z"
            )
    org_check = org_code_check_char(code[8:16])
    if code[16] != org_check:
        return "org_check_char", (
            f"unified social credit code {shown}: organisation-code check character "
            f"(position 17) should be {org_check}, not {code[16]}; re-enter the code"
        )
    check = uscc_check_char(code[:17])
    if code[17] != check:
        return "check_char", (
            f"unified social credit code {shown}: check character should be {check}, "
            f"not {code[17]}; re-enter the code"
        )
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
        raise InvalidInput(problem[1], details={"reason": problem[0]})
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
