"""Masking (脱敏) for display and keyed pseudonyms (假名化) for joins.

Masking hides part of a value on screen and in exports; it is not pseudonymisation. A masked ID
number (first 6 + last 4) still narrows a pensioner to ~1,300 candidates, so it never serves as a
join key. Where two departments must join without pooling raw IDs they use ``pseudonymise`` with a
shared secret key: a plain hash of an ID can be reversed by trying every ID of a county in seconds.

Every masker keeps the value's length, so a masked column still lines up, and never shows more than
its documented start and end.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import TYPE_CHECKING

from haihe.core.errors import ConfigError, InvalidInput

if TYPE_CHECKING:
    import numpy.typing as npt
    import pyarrow as pa

MASK_CHAR = "*"
PSEUDONYM_HEX_CHARS = 32  # 128 bits of HMAC-SHA256: no collisions at any city's scale
PSEUDONYM_BYTES = PSEUDONYM_HEX_CHARS // 2
MIN_KEY_BYTES = 16

# Administrative levels at the start of an address: province, prefecture, county, street/town.
_ADDRESS_LEVELS = re.compile(
    r"(?P<province>[^\d*]{1,7}?(?:省|自治区))?"
    r"(?P<prefecture>[^\d*]{1,7}?(?:市|自治州|地区|盟))?"
    r"(?P<county>[^\d*]{1,7}?(?:区|县|市|旗))?"
    r"(?P<street>[^\d*]{1,7}?(?:街道|镇|乡))?"
)


class MaskKind(StrEnum):
    """The kind of a data item (数据项) that decides how it is masked."""

    ID_NUMBER = "id_number"
    NAME = "name"
    PHONE = "phone"
    USCC = "uscc"
    ADDRESS = "address"
    GENERIC = "generic"


def mask_middle(value: str, keep_start: int, keep_end: int, char: str = MASK_CHAR) -> str:
    """Return ``value`` with all but its first ``keep_start`` and last ``keep_end`` chars masked.

    When the kept parts would cover the whole value, everything is masked: a masker never returns
    its input unchanged.
    """
    if keep_start < 0 or keep_end < 0:
        raise InvalidInput("keep_start and keep_end must not be negative", details=None)
    if len(char) != 1:
        raise InvalidInput(f"mask character {char!r}: give exactly one character", details=None)
    length = len(value)
    if keep_start + keep_end >= length:
        return char * length
    return value[:keep_start] + char * (length - keep_start - keep_end) + value[length - keep_end :]


def mask_id_number(value: str) -> str:
    """Return a resident ID number with only its region (first 6) and last 4 characters shown.

    Works on 18- and 15-character numbers; anything shorter than 15 characters is not an ID number
    and is masked whole.
    """
    if len(value) < 15:
        return MASK_CHAR * len(value)
    return mask_middle(value, 6, 4)


def mask_name(value: str) -> str:
    """Return a person's name with only its first character shown ("张三丰" → "张**").

    For a Chinese name that is the surname (the first character of a compound surname); for a
    Latin-script name the first letter. A one-character value is masked whole.
    """
    return mask_middle(value, 1, 0)


def mask_phone(value: str) -> str:
    """Return a phone number with the first 3 and last 4 shown ("13812345678" → "138****5678").

    Numbers of 8-10 characters (landlines without area code) show only the last 4; shorter values
    are masked whole.
    """
    if len(value) >= 11:
        return mask_middle(value, 3, 4)
    if len(value) >= 8:
        return mask_middle(value, 0, 4)
    return MASK_CHAR * len(value)


def mask_uscc(value: str) -> str:
    """Return a unified social credit code with its first 8 and last 2 characters shown.

    The first 8 (registration authority, organisation type, region) say what kind of body it is and
    where it registered, not which one; a sole trader's code (个体工商户) can point at a person, so
    the organisation code in positions 9-16 is hidden. Values under 18 characters are masked whole.
    """
    if len(value) < 18:
        return MASK_CHAR * len(value)
    return mask_middle(value, 8, 2)


def mask_address(value: str) -> str:
    """Return an address with only its administrative part shown, up to the district or street.

    "天津市和平区南京路123号" → "天津市和平区*******". Whole levels (province, city, district,
    street) are kept while they make up no more than half of the address; with no level found, the
    first characters up to a third of the address (at most 6) are kept.
    """
    found = _ADDRESS_LEVELS.match(value)
    ends = [found.end(level) for level in _ADDRESS_LEVELS.groupindex] if found else []
    ends = [end for end in ends if end > 0]  # -1: level absent
    fitting = [end for end in ends if end <= len(value) // 2]
    keep = max(fitting) if fitting else (0 if ends else min(6, len(value) // 3))
    return mask_middle(value, keep, 0)


def mask_generic(value: str) -> str:
    """Return ``value`` with only its first and last quarter shown (nothing under 4 characters)."""
    return mask_middle(value, len(value) // 4, len(value) // 4)


_MASKERS = {
    MaskKind.ID_NUMBER: mask_id_number,
    MaskKind.NAME: mask_name,
    MaskKind.PHONE: mask_phone,
    MaskKind.USCC: mask_uscc,
    MaskKind.ADDRESS: mask_address,
    MaskKind.GENERIC: mask_generic,
}


def mask_value(value: str | None, kind: MaskKind | str) -> str | None:
    """Return ``value`` masked as its declared ``kind``; None stays None."""
    mask = masker(kind)
    return None if value is None else mask(value)


def pseudonymise(key: bytes, value: str) -> str:
    """Return the keyed pseudonym of ``value``: HMAC-SHA256, first 32 hex characters (128 bits).

    The same key and value always give the same pseudonym, so departments holding the key can join
    on it; without the key it cannot be reversed by trying candidate values. Normalise the value
    first (``normalise_id`` for ID numbers), or two spellings of one ID get different pseudonyms.
    """
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"pseudonym key has {len(key)} bytes; use a random secret of at least "
            f"{MIN_KEY_BYTES} bytes (32 recommended)"
        )
    digest = hmac.digest(key, value.encode("utf-8"), hashlib.sha256)
    return digest.hex()[:PSEUDONYM_HEX_CHARS]


def pseudonymise_many(key: bytes, values: Iterable[str]) -> list[str]:
    """Return ``pseudonymise(key, v)`` for each of ``values`` — millions a second-ish.

    HMAC is two hashes over the key padded with two constants; those pads' hash states are
    computed once and copied per value (RFC 2104), a third of ``hmac.digest``'s time per value
    in CPython (a batch job's audit pseudonymises every person it checked).
    """
    text, width = _hmac_each(key, (value.encode("utf-8") for value in values)).hex(), 64
    return [text[k : k + PSEUDONYM_HEX_CHARS] for k in range(0, len(text), width)]


def pseudonymise_ids(key: bytes, bodies: npt.ArrayLike) -> list[str]:
    """Return ``pseudonymise(key, id_number)`` for the 18-character ID number of each 17-digit
    body (``pseudonym_bytes_of_ids`` as text)."""
    text, width = pseudonym_bytes_of_ids(key, bodies).hex(), PSEUDONYM_HEX_CHARS
    return [text[k : k + width] for k in range(0, len(text), width)]


def pseudonym_bytes_of_ids(key: bytes, bodies: npt.ArrayLike) -> bytes:
    """The pseudonyms of ``pseudonymise_ids`` as bytes, ``PSEUDONYM_BYTES`` each, in order: the
    numbers are composed as ASCII bytes at once and hashed slice by slice (a third faster than
    composing them as text and encoding each), and nothing is made text per value — a batch
    job's audit sorts the bytes and writes them as text at once (``subject_sets``)."""
    import numpy as np  # only batch jobs need it

    from haihe.core.identity import compose_id_bytes

    data, width = compose_id_bytes(bodies).tobytes(), 18
    digests = _hmac_each(key, (data[k : k + width] for k in range(0, len(data), width)))
    whole = np.frombuffer(digests, np.uint8).reshape(-1, hashlib.sha256().digest_size)
    return whole[:, :PSEUDONYM_BYTES].tobytes()


def _hmac_each(key: bytes, values: Iterable[bytes]) -> bytes:
    """HMAC-SHA256 of each value under ``key``, the whole digests joined (cut at once by the
    caller: a slice per value costs more than the hash state's copy)."""
    if len(key) < MIN_KEY_BYTES:
        pseudonymise(key, "")  # raises the same ConfigError
    block = hashlib.sha256().block_size
    padded = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded)).copy
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded)).copy
    out: list[bytes] = []
    append = out.append
    for value in values:
        i = inner()
        i.update(value)
        o = outer()
        o.update(i.digest())
        append(o.digest())
    return b"".join(out)


def masker(kind: MaskKind | str) -> Callable[[str], str]:
    """Return the masking function of ``kind``; InvalidInput for an unknown kind."""
    try:
        return _MASKERS[MaskKind(kind)]
    except ValueError:
        kinds = ", ".join(k.value for k in MaskKind)
        raise InvalidInput(
            f"mask kind {kind!r} is unknown; use one of {kinds}", details={"kind": str(kind)}
        ) from None


def mask_values(values: Iterable[object | None], kind: MaskKind | str) -> list[str | None]:
    """Return a column of values masked as ``kind``, looking the masker up once.

    Values that are not text are masked as their text (``str``); None stays None.
    """
    mask = masker(kind)
    return [None if v is None else mask(v if isinstance(v, str) else str(v)) for v in values]


# Kinds whose masking depends only on a value's length: (minimum length, kept start, kept end),
# longest rule first; shorter values than every rule are masked whole.
_BY_LENGTH: dict[MaskKind, list[tuple[int, int, int]]] = {
    MaskKind.ID_NUMBER: [(15, 6, 4)],
    MaskKind.PHONE: [(11, 3, 4), (8, 0, 4)],
    MaskKind.USCC: [(18, 8, 2)],
    MaskKind.NAME: [(2, 1, 0)],
}


def mask_array(values: pa.Array | pa.ChunkedArray, kind: MaskKind | str) -> pa.Array:
    """Return a column masked as ``kind``, vectorised with Arrow (for exports and pages).

    Gives exactly what ``mask_value`` gives for each value (non-text values as their text);
    nulls stay null. Addresses and generic values are masked value by value: their rule reads
    the text.
    """
    import pyarrow as pa  # not at import: most users of this module never need Arrow
    import pyarrow.compute as pc

    masker(kind)  # InvalidInput naming the kinds when unknown
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if not pa.types.is_string(arr.type):
        arr = arr.cast(pa.string())
    rules = _BY_LENGTH.get(MaskKind(kind))
    if rules is None:
        return pa.array(mask_values(arr.to_pylist(), kind), pa.string())
    length = pc.utf8_length(arr)
    masked = pc.binary_repeat(MASK_CHAR, length)
    for minimum, start, end in reversed(rules):  # the longest rule is applied last, so it wins
        tail = pc.utf8_slice_codeunits(arr, -end) if end else pc.binary_repeat("", length)
        kept = pc.binary_join_element_wise(
            pc.utf8_slice_codeunits(arr, 0, start),
            pc.binary_repeat(MASK_CHAR, pc.max_element_wise(pc.subtract(length, start + end), 0)),
            tail,
            "",
        )
        masked = pc.if_else(pc.greater_equal(length, minimum), kept, masked)
    return masked
