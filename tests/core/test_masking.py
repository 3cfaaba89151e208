"""Display masking and keyed pseudonyms."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from haihe.core.errors import ConfigError, InvalidInput
from haihe.core.identity import compose_ids_np
from haihe.core.masking import (
    MaskKind,
    mask_address,
    mask_generic,
    mask_id_number,
    mask_middle,
    mask_name,
    mask_phone,
    mask_uscc,
    mask_value,
    pseudonymise,
    pseudonymise_ids,
    pseudonymise_many,
)

KEY = bytes(range(32))


@pytest.mark.parametrize(
    ("masker", "value", "masked"),
    [
        (mask_id_number, "120101199001011234", "120101********1234"),
        (mask_id_number, "11010519491231002X", "110105********002X"),
        (mask_id_number, "110105491231002", "110105*****1002"),
        (mask_id_number, "12010119900101", "**************"),
        (mask_id_number, "1234567", "*******"),
        (mask_id_number, "", ""),
        (mask_name, "张三丰", "张**"),
        (mask_name, "张三", "张*"),
        (mask_name, "欧阳娜娜", "欧***"),
        (mask_name, "张", "*"),
        (mask_name, "John Smith", "J*********"),
        (mask_phone, "13812345678", "138****5678"),
        (mask_phone, "+8613812345678", "+86*******5678"),
        (mask_phone, "23456789", "****6789"),
        (mask_phone, "110", "***"),
        (mask_uscc, "91110000600037341L", "91110000********1L"),
        (mask_uscc, "9111000060", "**********"),
        (mask_address, "天津市和平区南京路123号", "天津市和平区*******"),
        (mask_address, "天津市滨海新区塘沽街道福建路1号", "天津市滨海新区*********"),
        (mask_address, "河北省石家庄市长安区建设北大街15号", "河北省石家庄市***********"),
        (mask_address, "天津市和平区", "天津市***"),
        (mask_address, "天津市", "***"),
        (mask_address, "南京路123号", "南京*****"),
        (mask_generic, "abcdefgh", "ab****gh"),
        (mask_generic, "abc", "***"),
    ],
)
def test_examples(masker: object, value: str, masked: str) -> None:
    assert callable(masker)
    assert masker(value) == masked


def test_mask_middle() -> None:
    assert mask_middle("abcdef", 2, 1) == "ab***f"
    assert mask_middle("abcdef", 2, 1, char="#") == "ab###f"
    assert mask_middle("abc", 2, 1) == "***"
    assert mask_middle("abc", 0, 0) == "***"
    with pytest.raises(InvalidInput):
        mask_middle("abc", -1, 0)
    with pytest.raises(InvalidInput):
        mask_middle("abc", 1, 0, char="**")


@given(value=st.text(max_size=40), keep_start=st.integers(0, 45), keep_end=st.integers(0, 45))
def test_mask_middle_never_reveals_the_middle(value: str, keep_start: int, keep_end: int) -> None:
    masked = mask_middle(value, keep_start, keep_end)
    assert len(masked) == len(value)
    if keep_start + keep_end >= len(value):
        assert masked == "*" * len(value)
    else:
        assert masked[:keep_start] == value[:keep_start]
        assert masked[keep_start : len(value) - keep_end] == "*" * (
            len(value) - keep_start - keep_end
        )
        assert masked[len(value) - keep_end :] == value[len(value) - keep_end :]


@given(value=st.text(alphabet="0123456789X", min_size=15, max_size=18))
def test_id_masking_shows_region_and_tail_only(value: str) -> None:
    masked = mask_id_number(value)
    assert len(masked) == len(value)
    assert masked[:6] == value[:6]
    assert masked[6:-4] == "*" * (len(value) - 10)
    assert masked[-4:] == value[-4:]


# Most characters each masker may show, given the value's length.
MOST_SHOWN = {
    mask_id_number: lambda n: 10,
    mask_name: lambda n: 1,
    mask_phone: lambda n: 7,
    mask_uscc: lambda n: 10,
    mask_address: lambda n: n // 2,
    mask_generic: lambda n: 2 * (n // 4),
}


@given(masker=st.sampled_from(list(MOST_SHOWN)), value=st.text(min_size=1, max_size=40))
def test_every_masker_keeps_length_and_shows_little(masker: object, value: str) -> None:
    assert callable(masker)
    masked = masker(value)
    assert len(masked) == len(value)
    assert all(m in ("*", v) for m, v in zip(masked, value, strict=True))
    shown = sum(m != "*" for m in masked)
    assert shown <= MOST_SHOWN[masker](len(value))
    assert shown < len(value)


@given(value=st.text(min_size=2, max_size=60))
def test_address_second_half_is_always_masked(value: str) -> None:
    masked = mask_address(value)
    assert masked[len(value) // 2 :] == "*" * (len(value) - len(value) // 2)


@pytest.mark.parametrize(
    ("kind", "value", "masked"),
    [
        ("id_number", "120101199001011234", "120101********1234"),
        (MaskKind.NAME, "张三丰", "张**"),
        ("phone", "13812345678", "138****5678"),
        ("uscc", "91110000600037341L", "91110000********1L"),
        ("address", "天津市和平区南京路123号", "天津市和平区*******"),
        ("generic", "abcdefgh", "ab****gh"),
    ],
)
def test_mask_value_by_kind(kind: str, value: str, masked: str) -> None:
    assert mask_value(value, kind) == masked
    assert mask_value(None, kind) is None


def test_mask_value_unknown_kind() -> None:
    with pytest.raises(InvalidInput, match="mask kind 'salary' is unknown; use one of id_number"):
        mask_value("1000", "salary")


def test_pseudonym_known_answer() -> None:
    # RFC 4231 test case 1 (key 0x0b * 20, "Hi There"), first 32 hex characters.
    assert pseudonymise(b"\x0b" * 20, "Hi There") == "b0344c61d8db38535ca8afceaf0bf12b"


def test_pseudonym_is_stable_and_keyed() -> None:
    first = pseudonymise(KEY, "11010519491231002X")
    assert first == pseudonymise(KEY, "11010519491231002X")
    assert len(first) == 32
    assert int(first, 16) >= 0
    assert first != pseudonymise(KEY[::-1], "11010519491231002X")
    assert first != pseudonymise(KEY, "11010519491231003X")


def test_pseudonym_refuses_a_short_key() -> None:
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        pseudonymise(b"short", "11010519491231002X")
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        pseudonymise_many(b"short", ["11010519491231002X"])


def test_many_pseudonyms_at_once_are_the_same_as_one_by_one() -> None:
    # RFC 4231 test case 6: a key longer than SHA-256's block is hashed first
    long_key = b"\xaa" * 131
    assert pseudonymise_many(
        long_key, ["Test Using Larger Than Block-Size Key - Hash Key First"]
    ) == ["60e431591ee0b67f0d8a26aacbf5b77f"]
    assert pseudonymise_many(b"\x0b" * 20, ["Hi There"]) == ["b0344c61d8db38535ca8afceaf0bf12b"]


@given(
    key=st.binary(min_size=16, max_size=100),
    values=st.lists(st.text(max_size=30), max_size=5),
)
def test_many_pseudonyms_match_single_ones(key: bytes, values: list[str]) -> None:
    assert pseudonymise_many(key, values) == [pseudonymise(key, v) for v in values]


@given(
    key=st.binary(min_size=16, max_size=100),
    bodies=st.lists(st.integers(min_value=0, max_value=10**17 - 1), max_size=20),
)
def test_pseudonyms_of_id_bodies_are_those_of_their_id_numbers(
    key: bytes, bodies: list[int]
) -> None:
    numbers = [str(n) for n in compose_ids_np(np.array(bodies, dtype=np.int64))]
    assert pseudonymise_ids(key, np.array(bodies, dtype=np.int64)) == [
        pseudonymise(key, n) for n in numbers
    ]
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        pseudonymise_ids(b"short", np.array([1], dtype=np.int64))
