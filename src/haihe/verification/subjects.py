"""Subjects — 核验对象: the persons a check is about, read and normalised once.

A subject file is CSV (UTF-8 or GBK, with or without BOM) or Parquet with a column
``id_number`` and optionally ``name``, ``birth_date`` and ``region``. ID numbers are normalised
by ``haihe.core.identity`` (15 → 18 digits, full-width → half-width, x → X) and joined on their
17-digit body as a 64-bit integer (DESIGN.md); an invalid one stays in the file with body -1 and
a per-row reason (``id_check_char``, ``id_length``, …), never dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from haihe.core.errors import InvalidInput
from haihe.core.identity import IdProblem, validate_ids_np

ID_COLUMN = "id_number"
OPTIONAL = ("name", "birth_date", "region")
ENCODINGS = ("utf-8", "gb18030")  # GB18030 reads GBK and GB2312 files too


def problem_reason(problem: int) -> str:
    """Return the per-row reason code of an ID number's problem (``id_check_char``…)."""
    return "id_" + IdProblem(problem).name.lower()


def normalised(ids: pa.Array | pa.ChunkedArray, *, today: dt.date | None = None) -> pa.Table:
    """Return ``ref`` (input position), ``body`` (int64, -1 when invalid), ``problem`` and
    ``legacy`` (the number was given in its 15-digit form)."""
    batch = validate_ids_np(ids, today=today)
    valid = batch.problems == 0
    # a valid number given in 15 digits; only the rare one with inner spaces needs the regex
    text = pc.fill_null(ids, "")
    length = pc.utf8_length(pc.utf8_trim_whitespace(text)).to_numpy(zero_copy_only=False)
    odd = valid & (length != 15) & (length != 18)
    if odd.any():
        bare = pc.utf8_length(pc.replace_substring_regex(text.filter(pa.array(odd)), r"\s+", ""))
        length = length.copy()
        length[odd] = bare.to_numpy(zero_copy_only=False)
    return pa.table(
        {
            "ref": pa.array(np.arange(len(batch.bodies), dtype=np.int64)),
            "body": pa.array(batch.bodies, pa.int64()),
            "problem": pa.array(batch.problems, pa.int8()),
            "legacy": pa.array(valid & (length == 15)),
        }
    )


def read_subjects(path: Path, *, keep: Sequence[str] = ()) -> pa.Table:
    """Return a subject file's columns as text (``id_number`` first, then the optional ones
    present and ``keep``), rows in file order.

    InvalidInput when the file cannot be read, has no ``id_number`` column or one of ``keep``
    (a scenario's input columns), or has no rows.
    Empty lines of a CSV are skipped; a row with an empty ID number stays (reason ``id_empty``).
    """
    if path.suffix.lower() == ".parquet":
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInput(f"{path.name} is not a readable Parquet file: {exc}") from None
    else:
        table = _read_csv(path)
    names = [n.strip().lstrip("\ufeff").lower() for n in table.column_names]
    table = table.rename_columns(names)
    if ID_COLUMN not in names:
        raise InvalidInput(
            f"{path.name} has no column {ID_COLUMN!r}; its columns: {', '.join(names) or 'none'}",
            details={"columns": names, "required": [ID_COLUMN], "optional": list(OPTIONAL)},
        )
    lacking = [c for c in keep if c not in names]
    if lacking:
        raise InvalidInput(
            f"{path.name} lacks the column(s) {', '.join(lacking)} this scenario's list needs; "
            f"its columns: {', '.join(names)}",
            details={"columns": names, "required": [ID_COLUMN, *keep]},
        )
    if table.num_rows == 0:
        raise InvalidInput(f"{path.name} has no subjects")
    wanted = dict.fromkeys([ID_COLUMN, *(c for c in OPTIONAL if c in names), *keep])
    return pa.table({c: table.column(c).cast(pa.string()) for c in wanted})


def _read_csv(path: Path) -> pa.Table:
    raw = path.read_bytes()
    for encoding in ENCODINGS:
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise InvalidInput(f"{path.name} is neither UTF-8 nor GBK text")
    data = text.lstrip("\ufeff").encode("utf-8")
    try:
        return pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(encoding="utf-8"),
            parse_options=pacsv.ParseOptions(ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in (ID_COLUMN, *OPTIONAL)},
                strings_can_be_null=False,
                auto_dict_encode=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise InvalidInput(f"{path.name} is not a readable CSV file: {exc}") from None
