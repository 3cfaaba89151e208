"""The same (persons, seed, as_of) gives byte-identical files; another seed does not."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest

from haihe.core.errors import InvalidInput
from haihe.synth import generate_city

PERSONS = 2_000
AS_OF = date(2026, 11, 1)


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("first")
    generate_city(out, persons=PERSONS, seed=42, as_of=AS_OF)
    return _hashes(out)


def test_same_seed_gives_byte_identical_files(first, tmp_path):
    generate_city(tmp_path, persons=PERSONS, seed=42, as_of=AS_OF)
    again = _hashes(tmp_path)
    assert len(again) > 40
    assert again == first


def test_another_seed_gives_other_data(first, tmp_path):
    generate_city(tmp_path, persons=PERSONS, seed=43, as_of=AS_OF)
    other = _hashes(tmp_path)
    assert other.keys() == first.keys()
    changed = [path for path in first if first[path] != other[path]]
    # Only what has no random part may repeat: the member lists and the district squares.
    fixed = {"city/departments.parquet", "city/institutions.parquet", "grids/districts.geojson"}
    assert set(first) - set(changed) <= fixed


def test_another_date_gives_other_data(first, tmp_path):
    generate_city(tmp_path, persons=PERSONS, seed=42, as_of=date(2025, 11, 1))
    assert _hashes(tmp_path)["truth/persons.parquet"] != first["truth/persons.parquet"]


def test_progress_reports_every_step_in_order(tmp_path):
    seen: list[tuple[str, int, int]] = []
    generate_city(
        tmp_path, persons=500, seed=1, as_of=AS_OF, progress=lambda s, d, t: seen.append((s, d, t))
    )
    done = [d for _, d, _ in seen]
    assert done == sorted(done)
    assert done[0] == 0
    assert done[-1] == seen[-1][2]
    assert {"people", "transit taps", "ground truth"} <= {s for s, _, _ in seen}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"persons": 0}, "persons must be between"),
        ({"persons": -5}, "persons must be between"),
        ({"seed": -1}, "seed must be"),
        ({"as_of": date(1999, 1, 1)}, "must lie in 2000-2099"),
    ],
)
def test_bad_requests_are_refused(tmp_path, kwargs, message):
    args = {"persons": 500, "seed": 1, "as_of": AS_OF} | kwargs
    with pytest.raises(InvalidInput, match=message):
        generate_city(tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()
