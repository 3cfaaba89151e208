"""Dirty data: every defect is where truth/dirty_rows says, of the kind it says, at low rates;
every ID the log does not list is clean."""

from __future__ import annotations

from collections import Counter, defaultdict

import pyarrow.parquet as pq
import pytest
from synth_city import AS_OF

from haihe.core.identity import is_valid_id, normalise_id

ID_KINDS = {"id_legacy", "id_typo", "id_lower_x", "id_fullwidth", "id_spaces", "id_missing"}


@pytest.fixture(scope="module")
def dirty(city_dir):
    """{dataset: [(row, column, kind, person_id, original_row)]}."""
    table = pq.read_table(city_dir / "truth" / "dirty_rows.parquet").to_pylist()
    out = defaultdict(list)
    for r in table:
        out[r["dataset"]].append(
            (r["row"], r["column"], r["kind"], r["person_id"], r["original_row"])
        )
    return out


@pytest.fixture(scope="module")
def truth(city_dir):
    """{person_id: (id_number, name)}."""
    t = pq.read_table(
        city_dir / "truth" / "persons.parquet", columns=["person_id", "id_number", "name"]
    )
    return {
        p: (i, n)
        for p, i, n in zip(*(t.column(c).to_pylist() for c in t.column_names), strict=True)
    }


def test_every_main_kind_of_defect_occurs(dirty):
    kinds = Counter(kind for rows in dirty.values() for _, _, kind, _, _ in rows)
    for kind in (
        "duplicate",
        "id_legacy",
        "id_typo",
        "id_fullwidth",
        "id_spaces",
        "id_missing",
        "name_typo",
        "missing",
    ):
        assert kinds[kind] > 0, kind


def test_defect_rates_are_low(dirty, manifest):
    for info in manifest.datasets:
        rows = dirty.get(info.id, [])
        per_kind = Counter(kind for _, _, kind, _, _ in rows)
        for kind, count in per_kind.items():
            assert count <= max(0.06 * info.rows, 3), (info.id, kind, count, info.rows)
        assert len({row for row, *_ in rows}) <= 0.1 * info.rows + 3, info.id


def test_logged_defects_are_real_and_unlogged_ids_are_clean(city_dir, manifest, dirty, truth):
    clean_ids = {i for i, _ in truth.values()}
    for info in manifest.datasets:
        id_columns = [c.name for c in info.columns if c.kind == "id_number"]
        if not id_columns:
            continue
        table = pq.read_table(city_dir / info.path).to_pydict()
        logged = defaultdict(dict)
        for row, column, kind, pid, _ in dirty.get(info.id, []):
            logged[column][row] = (kind, pid)
        for column in id_columns:
            for row, value in enumerate(table[column]):
                kind, pid = logged[column].get(row, (None, 0))
                if kind is None:
                    assert value is None or value in clean_ids, (info.id, row, value)
                    continue
                true_id = truth[pid][0]
                if kind == "id_missing":
                    assert value is None
                elif kind == "id_typo":
                    assert not is_valid_id(value, today=AS_OF), (info.id, row, value)
                else:
                    assert value != true_id
                    assert normalise_id(value, today=AS_OF) == true_id
                    assert kind != "id_legacy" or len(value) == 15
                    assert kind != "id_lower_x" or value.endswith("x")
                    assert kind != "id_fullwidth" or not value.isascii()
                    assert kind != "id_spaces" or value != value.strip()


def test_name_typos_change_one_given_name_character(city_dir, manifest, dirty, truth):
    seen = 0
    for info in manifest.datasets:
        typos = [
            (row, col, pid)
            for row, col, kind, pid, _ in dirty.get(info.id, [])
            if kind == "name_typo"
        ]
        if not typos:
            continue
        table = pq.read_table(city_dir / info.path, columns=sorted({c for _, c, _ in typos}))
        for row, col, pid in typos:
            value, true_name = table.column(col)[row].as_py(), truth[pid][1]
            assert value != true_name
            assert len(value) == len(true_name)
            assert sum(a != b for a, b in zip(value, true_name, strict=True)) == 1
            seen += 1
    assert seen > 0


def test_duplicates_repeat_their_original_and_missing_values_are_null(city_dir, manifest, dirty):
    checked = 0
    for info in manifest.datasets:
        rows = dirty.get(info.id, [])
        if not rows:
            continue
        table = pq.read_table(city_dir / info.path)
        defects = defaultdict(set)
        for row, column, *_ in rows:
            defects[row].add(column)
        keys = {c.name for c in info.columns if c.is_key}
        for row, column, kind, _, original in rows:
            if kind == "duplicate":
                # A register that numbers its rows gives the copy a number of its own (重复登记);
                # a copy may also carry its own typo, which the log lists.
                skip = keys | defects[row] | defects[original]
                same = [c for c in table.column_names if c not in skip]
                copy, first = (
                    table.select(same).slice(row, 1),
                    table.select(same).slice(original, 1),
                )
                assert copy.to_pylist() == first.to_pylist(), (info.id, row, original)
                checked += 1
            elif kind == "missing":
                assert table.column(column)[row].as_py() is None
    assert checked > 0
