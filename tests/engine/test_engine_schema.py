"""Portable column types and the neutral field list of a manifest."""

from __future__ import annotations

import pyarrow as pa
import pytest
from engine_samples import PEOPLE_SCHEMA

from haihe.core.errors import InvalidInput
from haihe.engine import FieldSpec, fields_to_schema, portable_schema, schema_to_fields
from haihe.engine.schema import arrow_type, type_name

PORTABLE = [
    (pa.bool_(), "bool"),
    (pa.int8(), "int8"),
    (pa.int16(), "int16"),
    (pa.int32(), "int32"),
    (pa.int64(), "int64"),
    (pa.float32(), "float32"),
    (pa.float64(), "float64"),
    (pa.string(), "string"),
    (pa.binary(), "binary"),
    (pa.date32(), "date32"),
    (pa.timestamp("us"), "timestamp[us]"),
    (pa.timestamp("us", tz="UTC"), "timestamp[us, UTC]"),
    (pa.decimal128(18, 2), "decimal(18,2)"),
    (pa.decimal128(38, 0), "decimal(38,0)"),
    (pa.decimal128(1, 1), "decimal(1,1)"),
]


@pytest.mark.parametrize(("arrow", "name"), PORTABLE)
def test_portable_types_have_stable_names(arrow: pa.DataType, name: str) -> None:
    assert type_name(arrow) == name
    assert arrow_type(name) == arrow


def test_schema_round_trips_through_the_field_list() -> None:
    schema = pa.schema(
        [pa.field(f"c{i}", arrow, nullable=i % 2 == 0) for i, (arrow, _) in enumerate(PORTABLE)]
    )

    fields = schema_to_fields(schema)

    assert [f.type for f in fields] == [name for _, name in PORTABLE]
    assert [f.nullable for f in fields] == [i % 2 == 0 for i in range(len(PORTABLE))]
    assert fields_to_schema(fields) == schema
    as_json = [f.model_dump() for f in fields]
    assert fields_to_schema([FieldSpec.model_validate(f) for f in as_json]) == schema


def test_sample_schema_is_already_portable() -> None:
    assert portable_schema(PEOPLE_SCHEMA) == PEOPLE_SCHEMA
    assert schema_to_fields(PEOPLE_SCHEMA)[1] == FieldSpec(name="姓名", type="string")


@pytest.mark.parametrize(
    ("given", "portable"),
    [
        (pa.large_string(), pa.string()),
        (pa.string_view(), pa.string()),
        (pa.dictionary(pa.int32(), pa.string()), pa.string()),
        (pa.large_binary(), pa.binary()),
        (pa.float16(), pa.float32()),
        (pa.date64(), pa.date32()),
        (pa.uint8(), pa.int16()),
        (pa.uint16(), pa.int32()),
        (pa.uint32(), pa.int64()),
        (pa.timestamp("ns"), pa.timestamp("us")),
        (pa.timestamp("s"), pa.timestamp("us")),
        (pa.timestamp("ms", tz="Asia/Shanghai"), pa.timestamp("us", tz="UTC")),
        (pa.decimal256(20, 4), pa.decimal128(20, 4)),
    ],
)
def test_near_types_move_onto_portable_ones(given: pa.DataType, portable: pa.DataType) -> None:
    assert portable_schema(pa.schema([("c", given)])) == pa.schema([("c", portable)])


@pytest.mark.parametrize(
    ("given", "hint"),
    [
        (pa.uint64(), "decimal\\(20,0\\)"),
        (pa.time64("us"), "time-of-day"),
        (pa.duration("s"), "durations"),
        (pa.null(), "no type"),
        (pa.list_(pa.int64()), "nested"),
        (pa.struct([("a", pa.int64())]), "nested"),
        (pa.decimal256(40, 2), "precision 40"),
    ],
)
def test_types_other_engines_cannot_read_are_refused(given: pa.DataType, hint: str) -> None:
    with pytest.raises(InvalidInput, match=hint):
        portable_schema(pa.schema([("c", given)]))


def test_column_names_must_differ_beyond_case() -> None:
    with pytest.raises(InvalidInput, match="differ only in case"):
        portable_schema(pa.schema([("Name", pa.string()), ("name", pa.string())]))
    with pytest.raises(InvalidInput, match="empty"):
        portable_schema(pa.schema([(" name", pa.string())]))
    with pytest.raises(InvalidInput, match="at least one column"):
        portable_schema(pa.schema([]))


@pytest.mark.parametrize("name", ["int", "decimal(39,2)", "decimal(5,6)", "timestamp[ns]", ""])
def test_unknown_type_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="unknown portable type"):
        arrow_type(name)


def test_non_portable_arrow_type_has_no_name() -> None:
    with pytest.raises(InvalidInput, match="portable_schema"):
        type_name(pa.large_string())
