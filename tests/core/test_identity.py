"""Resident ID numbers (GB 11643-1999) and unified social credit codes (GB 32100-2015)."""

from __future__ import annotations

import re
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haihe.core import identity
from haihe.core.errors import InvalidInput
from haihe.core.identity import (
    IdProblem,
    body_int,
    check_char,
    check_chars_np,
    compose_id,
    compose_ids_arrow,
    compose_ids_np,
    compose_uscc,
    is_valid_id,
    is_valid_uscc,
    normalise_id,
    normalise_uscc,
    org_code_check_char,
    parse_id,
    uscc_check_char,
    validate_ids_np,
)

TODAY = date(2025, 6, 30)
STANDARD_EXAMPLE = "11010519491231002X"  # the worked example printed in GB 11643-1999
FULL_WIDTH = {c: chr(ord(c) + 0xFEE0) for c in "0123456789Xx"}

bodies_17 = st.integers(min_value=0, max_value=10**17 - 1)
birth_dates = st.dates(min_value=date(1890, 1, 1), max_value=TODAY)


@st.composite
def ids_18(draw: st.DrawFn) -> str:
    """Draw a valid 18-character ID number."""
    region = draw(st.integers(100000, 999999))
    born = draw(birth_dates)
    sequence = draw(st.integers(0, 999))
    return compose_id(int(f"{region}{born:%Y%m%d}{sequence:03d}"))


def _reason(raw: str) -> str:
    with pytest.raises(InvalidInput) as caught:
        normalise_id(raw, today=TODAY)
    return str(caught.value.details["reason"])


# --- single numbers -------------------------------------------------------------------------------


def test_standard_example_parses() -> None:
    parsed = parse_id(STANDARD_EXAMPLE, today=TODAY)
    assert parsed.number == STANDARD_EXAMPLE
    assert parsed.region_code == "110105"
    assert parsed.birth_date == date(1949, 12, 31)
    assert parsed.sex == "F"
    assert parsed.sequence == "002"
    assert parsed.province == "北京"
    assert parsed.legacy is False
    assert parsed.body == 11010519491231002


def test_check_char_known_values() -> None:
    assert check_char("11010519491231002") == "X"
    assert check_char("44052418800101001") == "4"  # GB 11643-1999's second example
    assert check_char("12010119900101123") == "9"


@pytest.mark.parametrize(
    "bad", ["1101051949123100", "1101051949123100A", "１１０１０５１９４９１２３１００２"]
)
def test_check_char_wants_17_ascii_digits(bad: str) -> None:
    with pytest.raises(InvalidInput, match="17 digits"):
        check_char(bad)


def test_legacy_number_converts() -> None:
    parsed = parse_id("110105491231002", today=TODAY)
    assert parsed.number == STANDARD_EXAMPLE
    assert parsed.legacy is True


@pytest.mark.parametrize(
    "raw",
    [
        "11010519491231002x",
        " 110105 19491231 002X ",
        "110105\u300019491231\u3000002x",
        "１１０１０５１９４９１２３１００２Ｘ",
        "１１０１０５１９４９１２３１００２ｘ",
        "110105\t19491231\n002X",
    ],
)
def test_spelling_variants_normalise(raw: str) -> None:
    assert normalise_id(raw, today=TODAY) == STANDARD_EXAMPLE


def test_province_table_has_34_entries() -> None:
    assert len(identity.PROVINCES) == 34
    assert identity.PROVINCES["12"] == "天津"
    assert identity.PROVINCES["82"] == "澳门"
    assert parse_id(compose_id(90010119900101123), today=TODAY).province is None


def test_error_empty() -> None:
    with pytest.raises(InvalidInput, match="^ID number is empty; give the 18-character"):
        normalise_id(" \u3000 ")
    assert _reason("") == "empty"


@pytest.mark.parametrize("raw", ["1234567", "1201011990010112345", "12010119900101123"])
def test_error_length(raw: str) -> None:
    message = f"ID number {raw}: has {len(raw)} characters, expected 18 (or 15 for a legacy number)"
    with pytest.raises(InvalidInput, match=re.escape(message)):
        normalise_id(raw, today=TODAY)
    assert _reason(raw) == "length"


@pytest.mark.parametrize(
    ("raw", "char", "pos"),
    [
        ("1201011990A1011239", "A", 11),
        ("X20101199001011239", "X", 1),
        ("12010119900101123-", "-", 18),
        ("11010549123100X", "X", 15),
    ],
)
def test_error_characters(raw: str, char: str, pos: int) -> None:
    with pytest.raises(InvalidInput, match=f"character '{char}' at position {pos} is not allowed"):
        normalise_id(raw, today=TODAY)
    assert _reason(raw) == "characters"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("120101199002301230", "19900230"),
        ("120101199013011230", "19901301"),
        ("120101190002291230", "19000229"),  # 1900 was not a leap year
        ("110105491331002", "19491331"),
    ],
)
def test_error_not_a_real_date(raw: str, shown: str) -> None:
    with pytest.raises(InvalidInput, match=f"birth date {shown} .* is not a real date"):
        normalise_id(raw, today=TODAY)
    assert _reason(raw) == "date"


def test_leap_day_is_a_real_date() -> None:
    assert parse_id(compose_id(12010120000229123), today=TODAY).birth_date == date(2000, 2, 29)


def test_error_before_1890() -> None:
    raw = "440524188001010014"  # GB 11643-1999's second example: born 1880, older than Haihe allows
    with pytest.raises(InvalidInput, match="birth date 1880-01-01 is before 1890; check the year"):
        normalise_id(raw, today=TODAY)
    assert normalise_id(compose_id(12010118900101123), today=TODAY)


def test_error_future_date() -> None:
    tomorrow = compose_id(int(f"120101{TODAY + timedelta(days=1):%Y%m%d}123"))
    with pytest.raises(InvalidInput, match=r"birth date 2025-07-01 is after today \(2025-06-30\)"):
        normalise_id(tomorrow, today=TODAY)
    assert _reason(tomorrow) == "future"
    assert normalise_id(tomorrow, today=TODAY + timedelta(days=1)) == tomorrow
    born_today = compose_id(int(f"120101{TODAY:%Y%m%d}123"))
    assert normalise_id(born_today, today=TODAY) == born_today


def test_error_check_character() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalise_id("120101199001011234", today=TODAY)
    assert str(caught.value) == (
        "ID number 120101199001011234: check character should be 9, not 4; "
        "re-enter the number from the card"
    )
    assert caught.value.details == {"reason": "check_char"}
    assert "\n" not in str(caught.value)


def test_long_garbage_is_not_echoed_whole() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalise_id("9" * 500)
    assert len(str(caught.value)) < 200


def test_is_valid_and_body_int() -> None:
    assert is_valid_id(STANDARD_EXAMPLE)
    assert not is_valid_id("120101199001011234")
    assert body_int("110105491231002") == 11010519491231002
    with pytest.raises(InvalidInput):
        body_int("120101199001011234")


def test_compose_id_range() -> None:
    assert compose_id(11010519491231002) == STANDARD_EXAMPLE
    with pytest.raises(InvalidInput):
        compose_id(10**17)
    with pytest.raises(InvalidInput):
        compose_id(-1)


@pytest.mark.parametrize(
    ("on", "age"),
    [
        (date(2000, 2, 29), 0),
        (date(2001, 2, 28), 0),
        (date(2001, 3, 1), 1),
        (date(2004, 2, 29), 4),
        (date(2025, 2, 28), 24),
    ],
)
def test_age_on_for_a_leap_day_birthday(on: date, age: int) -> None:
    assert parse_id(compose_id(12010120000229123), today=TODAY).age_on(on) == age


def test_age_on_birthday_and_before_birth() -> None:
    parsed = parse_id(STANDARD_EXAMPLE, today=TODAY)
    assert parsed.age_on(date(2024, 12, 30)) == 74
    assert parsed.age_on(date(2024, 12, 31)) == 75
    with pytest.raises(InvalidInput, match="before the birth date"):
        parsed.age_on(date(1949, 12, 30))


# --- properties -----------------------------------------------------------------------------------


@given(region=st.integers(100000, 999999), born=birth_dates, sequence=st.integers(0, 999))
def test_composed_ids_validate_and_parse_back(region: int, born: date, sequence: int) -> None:
    number = compose_id(int(f"{region}{born:%Y%m%d}{sequence:03d}"))
    parsed = parse_id(number, today=TODAY)
    assert parsed.number == number
    assert parsed.birth_date == born
    assert parsed.region_code == f"{region}"
    assert parsed.sex == ("M" if sequence % 2 else "F")
    assert parsed.sequence == f"{sequence:03d}"


@given(number=ids_18(), pos=st.integers(0, 17), data=st.data())
def test_any_single_character_change_is_detected(
    number: str, pos: int, data: st.DataObject
) -> None:
    choices = "0123456789X" if pos == 17 else "0123456789"
    replacement = data.draw(st.sampled_from([c for c in choices if c != number[pos]]))
    changed = number[:pos] + replacement + number[pos + 1 :]
    assert not is_valid_id(changed, today=TODAY)


@given(region=st.integers(100000, 999999), born=st.dates(date(1900, 1, 1), date(1999, 12, 31)),
       sequence=st.integers(0, 999))  # fmt: skip
def test_legacy_round_trip(region: int, born: date, sequence: int) -> None:
    legacy = f"{region}{born:%y%m%d}{sequence:03d}"
    parsed = parse_id(legacy, today=TODAY)
    assert parsed.legacy is True
    assert parsed.birth_date == born
    assert parsed.number[:6] + parsed.number[8:17] == legacy
    assert parsed.number == compose_id(int(f"{region}{born:%Y%m%d}{sequence:03d}"))


@given(number=ids_18(), data=st.data())
def test_spelling_variants_normalise_to_the_same(number: str, data: st.DataObject) -> None:
    chars = []
    for char in number.replace("X", data.draw(st.sampled_from("Xx"))):
        chars.append(FULL_WIDTH[char] if data.draw(st.booleans()) else char)
        chars.append(data.draw(st.sampled_from(["", "", " ", "\u3000", "\t"])))
    assert normalise_id("".join(chars), today=TODAY) == number


# --- whole columns --------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(bodies=st.lists(bodies_17, min_size=0, max_size=40))
def test_vectorised_compose_agrees_with_scalar(bodies: list[int]) -> None:
    arr = np.array(bodies, dtype=np.int64)
    expected = [compose_id(b) for b in bodies]
    composed = compose_ids_np(arr)
    assert composed.dtype == np.dtype("<U18")
    assert composed.tolist() == expected
    chars = check_chars_np(arr)
    assert chars.dtype == np.dtype("<U1")
    assert chars.tolist() == [n[17] for n in expected]
    assert compose_ids_arrow(arr).to_pylist() == expected


def test_vectorised_helpers_take_empty_lists() -> None:
    assert compose_ids_np([]).dtype == np.dtype("<U18")
    assert compose_ids_np([]).tolist() == []
    assert check_chars_np([]).tolist() == []
    assert compose_ids_arrow([]).to_pylist() == []


def test_vectorised_helpers_reject_bad_bodies() -> None:
    for bad in ([10**17], [-5], [1.5]):
        with pytest.raises(InvalidInput):
            compose_ids_np(np.array(bad))
        with pytest.raises(InvalidInput):
            check_chars_np(np.array(bad))


def _expected(raw: str | None) -> tuple[int, int]:
    try:
        return int(normalise_id(raw or "", today=TODAY)[:17]), 0
    except InvalidInput as exc:
        return -1, int(IdProblem[str(exc.details["reason"]).upper()])


def _mutate(number: str, how: int) -> str:
    """Return a spelling of ``number`` that is valid or wrong in one of many ways."""
    variants = [
        number,
        number.lower(),
        number[:6] + number[8:17],  # legacy form of a 19xx birth, else a wrong date
        " " + number,
        "".join(FULL_WIDTH.get(c, c) for c in number),
        number[:-1] + ("0" if number[-1] != "0" else "1"),
        number[:10] + "13" + number[12:],
        number[:6] + "2999" + number[10:],
        number[:6] + "1889" + number[10:],
        number[:17],
        number + "0",
        "",
        number[:5] + "A" + number[6:],
        number[:17] + "x",
        number[:17] + " ",
        number[:17] + "\u3000",
        "X" * 18,
    ]
    return variants[how % len(variants)]


raw_columns = st.lists(
    st.one_of(
        st.tuples(ids_18(), st.integers(0, 30)).map(lambda t: _mutate(*t)),
        st.text(alphabet="0123456789X x１", max_size=20),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(raws=raw_columns)
def test_validate_ids_np_agrees_with_scalar(raws: list[str]) -> None:
    expected = [_expected(r) for r in raws]
    wanted_bodies = [b for b, _ in expected]
    wanted_problems = [p for _, p in expected]
    for column in (np.array(raws, dtype=str), raws, pa.array(raws, pa.string())):
        batch = validate_ids_np(column, today=TODAY)
        assert batch.bodies.tolist() == wanted_bodies
        assert batch.problems.tolist() == wanted_problems
        assert batch.ok.tolist() == [p == 0 for p in wanted_problems]


def test_validate_ids_np_wide_numpy_column_and_nulls() -> None:
    raws = [STANDARD_EXAMPLE, STANDARD_EXAMPLE + "0", None, "110105491231002", ""]
    wanted = ([11010519491231002, -1, -1, 11010519491231002, -1], [0, 2, 1, 0, 1])
    batch = validate_ids_np(raws, today=TODAY)
    assert (batch.bodies.tolist(), batch.problems.tolist()) == wanted
    wide = np.array([r or "" for r in raws], dtype="<U30")
    assert validate_ids_np(wide, today=TODAY).problems.tolist() == wanted[1]
    large = pa.array(raws, pa.large_string())
    assert validate_ids_np(large, today=TODAY).problems.tolist() == wanted[1]


def test_validate_ids_np_across_blocks_and_chunks() -> None:
    """Rows straddling block and chunk edges, sliced arrow arrays and a narrow numpy column."""
    rng = np.random.default_rng(7)
    days = rng.integers(0, (TODAY - date(1890, 1, 1)).days, 80_000)
    ymd = [int(f"{date(1890, 1, 1) + timedelta(days=int(d)):%Y%m%d}") for d in days]
    bodies = (rng.integers(110000, 830000, days.size) * 10**8 + ymd) * 1000 + rng.integers(
        0, 999, days.size
    )
    numbers = compose_ids_np(bodies).tolist()
    broken = [0, identity._BLOCK - 1, identity._BLOCK, 2 * identity._BLOCK + 1, 79_999]
    for row in broken:
        numbers[row] = numbers[row][:17] + ("0" if numbers[row][17] != "0" else "1")
    numbers[12345] = numbers[12345].lower().replace("1", "１", 1)
    column = pa.chunked_array([pa.array(numbers[:50_001]), pa.array(numbers[50_001:])])
    for ids in (column, pa.array(numbers).slice(1), np.array(numbers)):
        batch = validate_ids_np(ids, today=TODAY)
        offset = 1 if len(batch.bodies) < len(numbers) else 0
        wanted = np.where(np.isin(np.arange(offset, 80_000), broken), 7, 0)
        assert batch.problems.tolist() == wanted.tolist()
        assert (batch.bodies[batch.ok] == bodies[offset:][wanted == 0]).all()
    assert validate_ids_np(np.array(["1101054912", ""]), today=TODAY).problems.tolist() == [2, 1]


def test_validate_ids_np_leaves_its_input_alone() -> None:
    for raws in (["120101199001011239"], ["120101199001011239", " 110105491231002"]):
        column = np.array(raws)
        validate_ids_np(column, today=TODAY)
        assert column.tolist() == raws


def test_validate_ids_np_rejects_non_strings() -> None:
    with pytest.raises(InvalidInput, match="must be strings"):
        validate_ids_np([object()])


# --- unified social credit codes ------------------------------------------------------------------

# Real codes published as valid in python-stdnum's test data, and confirmed by both checks here.
REAL_USCCS = [
    "91110000600037341L",
    "91310115MA1K3BTP2B",
    "91620105L015101280",
    "121200004013590816",
]


@pytest.mark.parametrize("code", REAL_USCCS)
def test_real_codes_are_valid(code: str) -> None:
    assert normalise_uscc(code) == code
    assert uscc_check_char(code[:17]) == code[17]
    assert org_code_check_char(code[8:16]) == code[16]


def test_standard_worked_example() -> None:
    """The GB 32100 explanatory example 91350100M000100Y4Z: check character should be 3."""
    assert uscc_check_char("91350100M000100Y4") == "3"
    assert org_code_check_char("M000100Y") == "4"
    with pytest.raises(InvalidInput, match="'Z' at position 18 is not allowed"):
        normalise_uscc("91350100M000100Y4Z")
    assert is_valid_uscc("91350100M000100Y43")


def test_uscc_spelling_variants() -> None:
    assert normalise_uscc(" 91 110000 600037341l ") == "91110000600037341L"
    assert normalise_uscc("９１１１００００６０００３７３４１Ｌ") == "91110000600037341L"
    assert is_valid_uscc("91110000600037341l")


@pytest.mark.parametrize(
    ("raw", "reason", "text"),
    [
        ("", "empty", "is empty"),
        ("91110000600037341", "length", "has 17 characters, expected 18"),
        ("9111000060003IOZSV", "characters", "'I' at position 14 is not allowed"),
        ("911100A0600037341L", "region", "positions 3-8 are the region code"),
        ("91110000600037340L", "org_check_char", "(position 17) should be 1, not 0"),
        ("91110000600037341N", "check_char", "check character should be L, not N"),
        ("91350100M0001TGQXM", "check_char", "should be 1, not M"),  # a non-conforming pilot code
    ],
)
def test_uscc_errors(raw: str, reason: str, text: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(text)) as caught:
        normalise_uscc(raw)
    assert caught.value.details == {"reason": reason}
    assert not is_valid_uscc(raw)


alphabet = st.sampled_from(identity.USCC_ALPHABET)
usccs = st.builds(
    compose_uscc,
    alphabet,
    alphabet,
    st.integers(0, 999999).map(lambda n: f"{n:06d}"),
    st.text(alphabet=identity.USCC_ALPHABET, min_size=8, max_size=8),
)


@given(code=usccs, pos=st.integers(0, 17), data=st.data())
def test_uscc_any_single_substitution_is_detected(code: str, pos: int, data: st.DataObject) -> None:
    assert is_valid_uscc(code)
    replacement = data.draw(st.sampled_from([c for c in identity.USCC_ALPHABET if c != code[pos]]))
    assert not is_valid_uscc(code[:pos] + replacement + code[pos + 1 :])


def test_compose_uscc_checks_its_parts() -> None:
    assert compose_uscc("9", "1", "110000", "60003734") == "91110000600037341L"
    for parts in (("9", "1", "11000", "60003734"), ("91", "1", "110000", "60003734"),
                  ("9", "1", "110000", "6000373"), ("9", "1", "110000", "6000373I")):  # fmt: skip
        with pytest.raises(InvalidInput):
            compose_uscc(*parts)
