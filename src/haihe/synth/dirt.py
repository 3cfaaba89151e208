"""Dirty data, as departments really hold it, and the log that says where it is.

Every defect injected into a departmental dataset is written to ``truth/dirty_rows.parquet``:
dataset, row, column, kind, the true person_id and, for duplicates, the row it copies. Kinds:

- ``duplicate`` — the whole row appears twice (the copy is the logged row);
- ``id_legacy`` — the 15-digit ID of before 1999 (only for people born in the 1900s);
- ``id_typo`` — one digit changed or two neighbours swapped, so the check character fails;
- ``id_lower_x`` / ``id_fullwidth`` / ``id_spaces`` — right number, wrong form;
- ``id_missing`` — no ID at all, only name and birth date to match on;
- ``name_typo`` — one given-name character replaced by a homophone or look-alike;
- ``missing`` — a nullable column left empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from haihe.synth import reference
from haihe.synth.arrays import (
    Bools,
    Ints,
    civil_from_days,
    fixed_strings,
    join,
    pick,
    with_nulls,
)
from haihe.synth.people import Population, name_vocabulary

KINDS = (
    "duplicate",
    "id_legacy",
    "id_typo",
    "id_lower_x",
    "id_fullwidth",
    "id_spaces",
    "id_missing",
    "name_typo",
    "missing",
)
_FULLWIDTH = {ord(c): chr(ord(c) + 0xFEE0) for c in "0123456789X"}


@dataclass(frozen=True)
class Dirt:
    """Rates (0-1, per row) of each defect in one dataset."""

    duplicate: float = 0.0
    id_legacy: float = 0.0
    id_typo: float = 0.0
    id_format: float = 0.0
    id_missing: float = 0.0
    name_typo: float = 0.0
    missing: float = 0.0


class DirtLog:
    """Collects the rows of ``truth/dirty_rows.parquet``."""

    def __init__(self) -> None:
        self._parts: list[tuple[str, Ints, str, str, Ints, Ints]] = []

    def add(
        self,
        dataset: str,
        rows: Ints,
        column: str,
        kind: str,
        person_id: Ints,
        original_row: Ints | None = None,
    ) -> None:
        """Record ``kind`` at ``rows`` of ``dataset`` (``person_id``: the true person, 0: none)."""
        if not rows.size:
            return
        original = np.full(rows.size, -1, np.int64) if original_row is None else original_row
        self._parts.append(
            (dataset, rows.astype(np.int64), column, kind, person_id.astype(np.int64), original)
        )

    def count(self, dataset: str, kind: str) -> int:
        """Return how many rows of ``dataset`` carry ``kind``."""
        return sum(p[1].size for p in self._parts if p[0] == dataset and p[3] == kind)

    def table(self) -> pa.Table:
        """Return the log as a table sorted by dataset, row and kind."""
        parts = sorted(self._parts, key=lambda p: (p[0], p[2], KINDS.index(p[3])))
        sizes = np.array([p[1].size for p in parts], np.int64)
        datasets = sorted({p[0] for p in parts})
        columns = sorted({p[2] for p in parts})
        ds_idx = np.repeat([datasets.index(p[0]) for p in parts], sizes).astype(np.int32)
        col_idx = np.repeat([columns.index(p[2]) for p in parts], sizes).astype(np.int32)
        kind_idx = np.repeat([KINDS.index(p[3]) for p in parts], sizes).astype(np.int32)
        cat = lambda a: np.concatenate(a) if a else np.zeros(0, np.int64)  # noqa: E731
        rows = cat([p[1] for p in parts])
        original = cat([p[5] for p in parts])
        order = np.lexsort((kind_idx, rows, ds_idx))
        return pa.table(
            {
                "dataset": pa.DictionaryArray.from_arrays(
                    pa.array(ds_idx[order]), pa.array(datasets, pa.string())
                ),
                "row": pa.array(rows[order]),
                "column": pa.DictionaryArray.from_arrays(
                    pa.array(col_idx[order]), pa.array(columns, pa.string())
                ),
                "kind": pa.DictionaryArray.from_arrays(
                    pa.array(kind_idx[order]), pa.array(list(KINDS), pa.string())
                ),
                "person_id": pa.array(cat([p[4] for p in parts])[order]),
                "original_row": pa.array(original[order], mask=original[order] < 0),
            }
        )


def duplicate(rng: np.random.Generator, n: int, rate: float) -> tuple[Ints, Ints, Ints]:
    """Return (source row per output row, rows that are copies, the row each copy repeats)."""
    d = int(rng.binomial(n, rate)) if rate > 0 and n else 0
    if not d:
        return np.arange(n, dtype=np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    src = np.sort(rng.choice(n, d, replace=False))
    pos = np.sort(rng.integers(0, n + 1, d))
    take = np.insert(np.arange(n, dtype=np.int64), pos, src)
    copies = pos + np.arange(d)
    # Every copy inserted at or before an original's index shifts that original by one.
    originals = src + np.searchsorted(pos, src, side="right")
    return take, copies, originals


def _typos(rng: np.random.Generator, matrix: np.ndarray) -> None:
    """Change one digit of each row's body, or swap two different neighbours, in place."""
    rows = np.arange(matrix.shape[0])
    pos = rng.integers(6, 16, rows.size)
    a, b = matrix[rows, pos].copy(), matrix[rows, pos + 1].copy()
    swap = (rng.random(rows.size) < 0.5) & (a != b)
    matrix[rows[swap], pos[swap]] = b[swap]
    matrix[rows[swap], pos[swap] + 1] = a[swap]
    sub = ~swap
    shift = rng.integers(1, 10, int(sub.sum())).astype(np.uint8)
    matrix[rows[sub], pos[sub]] = (a[sub] - 48 + shift) % 10 + 48


def _fullwidth(strings: pa.Array) -> pa.Array:
    values = [s.translate(_FULLWIDTH) for s in strings.to_pylist()]
    return pa.array(values, pa.string())


def id_column(
    rng: np.random.Generator,
    pop: Population,
    persons: Ints,
    dirt: Dirt,
    log: DirtLog,
    dataset: str,
    column: str = "id_number",
) -> pa.Array:
    """Return the ID numbers of ``persons`` as ``dataset`` holds them, defects logged."""
    n = persons.size
    u = rng.random(n)
    edges = np.cumsum([dirt.id_legacy, dirt.id_typo, dirt.id_format, dirt.id_missing])
    legacy = u < edges[0]
    candidates = np.flatnonzero(legacy)
    legacy[candidates] = civil_from_days(pop.birth[persons[candidates]])[0] < 1990
    typo = (u >= edges[0]) & (u < edges[1])
    form = (u >= edges[1]) & (u < edges[2])
    missing = (u >= edges[2]) & (u < edges[3])
    matrix = pop.id_matrix(persons)
    if typo.any():
        sub = matrix[typo]
        _typos(rng, sub)
        matrix[typo] = sub
    lower_x = form & (matrix[:, 17] == ord("X"))
    matrix[lower_x, 17] = ord("x")
    spaces = form & ~lower_x & (rng.random(n) < 0.5)
    full = form & ~lower_x & ~spaces
    values: pa.Array = fixed_strings(matrix)
    swaps = [
        (legacy, pop.legacy_ids(persons[legacy])),
        (spaces, join(" ", pick(values, np.flatnonzero(spaces)), " ")),
        (full, _fullwidth(pick(values, np.flatnonzero(full)))),
    ]
    mask = legacy | spaces | full
    if mask.any():
        rows = np.concatenate([np.flatnonzero(m) for m, _ in swaps])
        order = np.argsort(rows, kind="stable")
        replacements = pa.concat_arrays([s for _, s in swaps]).take(pa.array(order))
        values = pc.replace_with_mask(values, pa.array(mask), replacements)
    values = with_nulls(values, missing)
    pid = persons + 1
    kinds = (
        ("id_legacy", legacy),
        ("id_typo", typo),
        ("id_lower_x", lower_x),
        ("id_fullwidth", full),
        ("id_spaces", spaces),
        ("id_missing", missing),
    )
    for kind, m in kinds:
        log.add(dataset, np.flatnonzero(m), column, kind, pid[m])
    return values


def name_column(
    rng: np.random.Generator,
    pop: Population,
    persons: Ints,
    rate: float,
    log: DirtLog,
    dataset: str,
    column: str = "name",
) -> pa.Array:
    """Return the names of ``persons`` as ``dataset`` holds them, typos logged."""
    values = pop.names(persons)
    typo = rng.random(persons.size) < rate
    if not typo.any():
        return values
    rows = np.flatnonzero(typo)
    given = pop.given[persons[rows]].copy()
    chars = reference.column("given_chars", "char")
    variants = reference.column("given_chars", "variant")
    blank = len(chars)
    which = np.where((given[:, 1] == blank) | (rng.random(rows.size) < 0.5), 0, 1)
    old = given[np.arange(rows.size), which]
    new = (old + rng.integers(1, blank, rows.size)) % blank
    surnames, vocab_chars = name_vocabulary()
    extra = pa.array([v or c for c, v in zip(chars, variants, strict=True)], pa.string())
    use_variant = np.array([bool(v) for v in variants])[old] & (rng.random(rows.size) < 0.8)
    first = np.where(which == 0, new, given[:, 0])
    second = np.where(which == 1, new, given[:, 1])
    chars_all = pa.concat_arrays([vocab_chars, extra])
    offset = blank + 1  # index of the variant of char c is offset + c
    first = np.where(use_variant & (which == 0), offset + old, first)
    second = np.where(use_variant & (which == 1), offset + old, second)
    typed = join(
        pick(surnames, pop.surname[persons[rows]]), pick(chars_all, first), pick(chars_all, second)
    )
    log.add(dataset, rows, column, "name_typo", persons[rows] + 1)
    return pc.replace_with_mask(values, pa.array(typo), typed)


def blank_out(
    rng: np.random.Generator,
    values: pa.Array,
    rate: float,
    log: DirtLog,
    dataset: str,
    column: str,
    persons: Ints | None = None,
) -> pa.Array:
    """Return ``values`` with a share ``rate`` of rows made null, logged as ``missing``."""
    mask: Bools = (rng.random(len(values)) < rate) & pc.is_valid(values).to_numpy(
        zero_copy_only=False
    )
    rows = np.flatnonzero(mask)
    pid = np.zeros(rows.size, np.int64) if persons is None else persons[rows] + 1
    log.add(dataset, rows, column, "missing", pid)
    return with_nulls(values, mask)
