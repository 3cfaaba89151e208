"""Identity matching — 身份比对: which person a subject row means when its ID number fails.

Most subjects carry a good ID number: ``subjects.normalised`` makes it canonical (full-width →
half-width, spaces out, x → X, a legacy 15-digit number → 18 digits) and the row is matched
exactly (confidence 1). A row whose ID number is missing or fails (a typo breaks the check
character, a digit too few) falls back to probabilistic record linkage against the identity
register (the ``household`` source: 户籍人口登记信息) on name, birth date, region and what is
left of the ID number, with Splink's Fellegi-Sunter model on DuckDB.

Blocking. A pair is compared only when it shares one of ``BLOCKING``'s keys: the birth date
(given, or what the ID's digits say) with the district or with the surname (the name's first
character), or the whole name with the district or with the ID's first six digits. One birth
date alone is shared by some 470 people of a city of 13.6 million, so a batch with thousands of
failed IDs would score millions of pairs; with the district or the surname beside it, some 50
per row. A true match is missed only if every key differs — a birth date and a name both
mistyped, or a birth date right but the person both moved district and had the surname's own
character mistyped (a typo usually falls on the given name).

Model. Each pair is compared on four fields; each comparison level has an m probability (the
level's chance among true matches) and a u probability (among non-matches):

=============  ======================  =====  ========  ==========================================
field          level                   m      u         why
=============  ======================  =====  ========  ==========================================
id_number      ≤ 1 edit (typo, swap)   0.80   1e-4      one mistyped or swapped digit is the usual
               ≤ 2 edits               0.15   1e-3      defect; u among strangers who share the
               else                    0.05   ~1        birth date compared beside it
id_number,     ≤ 1 edit                0.80   1e-8      the number is the only birth evidence, so
no birth date  ≤ 2 edits               0.15   2e-7      u is among all strangers: measured on the
given          else                    0.05   ~1        13.6 M city, 0.06 and 1.7 per number
name           exact                   0.95   1e-3      homophone/look-alike typos ~3-5% of rows;
               1 character differs     0.04   1e-2      the commonest names (张伟) are ~0.1% of
               else                    0.01   ~1        people
birth_date     exact                   0.98   3.4e-5    1 in ~29,000 birth dates (80 years)
region         exact (district code)   0.90   0.06      people move; 16 districts
=============  ======================  =====  ========  ==========================================

The number carries the birth date, so the two are not independent, as Fellegi-Sunter assumes:
a stranger whose number is one or two edits away usually shares the birth date too. With a birth
date given, the number's u is counted among strangers who share it; without one (a dataset that
holds only ID and name), among all strangers — else an ID with one mistyped digit and the right
name could never outweigh the prior of a city of millions.

The m and u values are fixed priors, not trained by EM: the fallback rows of one job are a few
hundred or thousand, too few (and too unlike the register) for EM to converge the same way twice,
and a job must give the same answer on every engine and every rerun. The prior that two random
records match is 1 / (the register's rows) — the whole register, not the rows a job's blocking
reads, so a row's answer never depends on the other rows of its job (or on being checked
alone). A row is matched when its best candidate's probability is at least ``THRESHOLD`` (0.9)
and no other person is as likely; the probability is the row's
match confidence. Otherwise the row keeps its ID reason plus ``no_match`` or
``ambiguous_match`` — reported, never dropped.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from haihe.core.identity import validate_ids_np

THRESHOLD = 0.9
MATCH_ITEMS = ("id_number", "name", "birth_date", "district_code")
EXACT, LEGACY, PROBABILISTIC, NONE = "id", "id_legacy", "probabilistic", "none"
_NOT_ID = re.compile(r"[\s\u3000]+")
_FULLWIDTH = {ord(c): chr(ord(c) - 0xFEE0) for c in "０１２３４５６７８９Ｘｘ"}


def clean_id(raw: str | None) -> str | None:
    """Return a raw ID number without spaces, half-width and upper-case (None if empty)."""
    if raw is None:
        return None
    text = _NOT_ID.sub("", raw.translate(_FULLWIDTH)).upper()
    return text or None


def birth_from_id(text: str | None) -> str | None:
    """Return the ISO birth date an ID number's digits carry, if they form a real date."""
    if text is None or len(text) not in (15, 18):
        return None
    ymd = "19" + text[6:12] if len(text) == 15 else text[6:14]
    try:
        return dt.date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:8])).isoformat()
    except ValueError:
        return None


def _text(column: pa.ChunkedArray | pa.Array | None, n: int) -> list[str | None]:
    if column is None:
        return [None] * n
    values = column.cast(pa.string()).to_pylist()
    return [v.strip() if isinstance(v, str) and v.strip() else None for v in values]


def candidates_of(unresolved: pa.Table) -> pa.Table:
    """Return the rows to link: ``unique_id`` (the ref), cleaned ``id_number``, ``name``,
    ``birth_date`` (as given), ``id_birth`` (what the ID's digits say, for blocking only: a
    typo there must not count twice) and ``region``; rows with no name are left out (nothing
    to link on)."""
    n = unresolved.num_rows
    names = _text(unresolved.column("name") if "name" in unresolved.column_names else None, n)
    given = _text(
        unresolved.column("birth_date") if "birth_date" in unresolved.column_names else None, n
    )
    regions = _text(unresolved.column("region") if "region" in unresolved.column_names else None, n)
    ids = [clean_id(v) for v in unresolved.column("id_number").to_pylist()]
    births = [_iso(g) for g in given]
    keep = [i for i in range(n) if names[i] is not None]
    return pa.table(
        {
            "unique_id": pa.array([unresolved.column("ref")[i].as_py() for i in keep], pa.int64()),
            "id_number": pa.array([ids[i] for i in keep], pa.string()),
            "name": pa.array([names[i] for i in keep], pa.string()),
            "birth_date": pa.array([births[i] for i in keep], pa.string()),
            "id_birth": pa.array([birth_from_id(ids[i]) for i in keep], pa.string()),
            "region": pa.array([regions[i] for i in keep], pa.string()),
        }
    )


def _iso(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text.replace("/", "-")[:10]).isoformat()
    except ValueError:
        digits = text.replace("-", "")
        if len(digits) == 8 and digits.isdigit():
            return birth_from_id("000000" + digits + "0000")
        return None


# The fixed priors of the table above: (level, m, u) per field, best level first; ``else`` is
# every other non-null pair. Splink (batch jobs) and ``score_pair`` (single checks) read these.
ID_LEVELS = ((1, 0.80, 1e-4), (2, 0.15, 1e-3))  # Damerau-Levenshtein distance at most n
ID_ALONE_LEVELS = ((1, 0.80, 1e-8), (2, 0.15, 2e-7))  # the same, the subject without birth date
ID_ELSE = (0.05, 1 - 1.1e-3)
NAME_LEVELS = ((0, 0.95, 1e-3), (1, 0.04, 1e-2))  # Levenshtein distance at most n
NAME_ELSE = (0.01, 1 - 1.1e-2)
BIRTH_EXACT, BIRTH_ELSE = (0.98, 3.4e-5), (0.02, 1 - 3.4e-5)
REGION_EXACT, REGION_ELSE = (0.90, 0.06), (0.10, 0.94)


# The blocking rules (see the module): a pair is compared when it agrees on every key of one
# rule. ``surname`` is the name's first character, ``id_prefix`` the ID's first six (its region
# part: with the same name, it catches a typo in the birth digits).
BLOCKING = (
    ("birth_date", "region"),
    ("birth_date", "surname"),
    ("id_birth", "region"),
    ("id_birth", "surname"),
    ("name", "region"),
    ("name", "id_prefix"),
)
_BLOCK_SQL = {"surname": "substr(name, 1, 1)", "id_prefix": "substr(id_number, 1, 6)"}
_BLOCK_PREFIX = {"surname": ("name", 1), "id_prefix": ("id_number", 6)}


def settings(reference_rows: int) -> Any:
    """Return the Splink model: blocking, comparisons and the fixed m/u priors above."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    def level(made: Any, m: float, u: float) -> Any:
        return made.configure(m_probability=m, u_probability=u)

    def compare(name: str, *levels: Any) -> Any:
        return cl.CustomComparison(
            output_column_name=name, comparison_levels=[cll.NullLevel(name), *levels]
        )

    (_, idm, idu), (_, id2m, id2u) = ID_LEVELS
    (_, am, au), (_, a2m, a2u) = ID_ALONE_LEVELS
    alone = cll.NullLevel("birth_date")  # the register always has one: the subject has none
    (_, nm, nu), (_, n1m, n1u) = NAME_LEVELS
    return SettingsCreator(
        link_type="link_only",
        probability_two_random_records_match=1 / max(reference_rows, 2),
        blocking_rules_to_generate_predictions=[
            block_on(*(_BLOCK_SQL.get(key, key) for key in rule)) for rule in BLOCKING
        ],
        comparisons=[
            compare(
                "id_number",
                level(cll.And(cll.DamerauLevenshteinLevel("id_number", 1), alone), am, au),
                level(cll.And(cll.DamerauLevenshteinLevel("id_number", 2), alone), a2m, a2u),
                level(cll.DamerauLevenshteinLevel("id_number", 1), idm, idu),
                level(cll.DamerauLevenshteinLevel("id_number", 2), id2m, id2u),
                level(cll.ElseLevel(), *ID_ELSE),
            ),
            compare(
                "name",
                level(cll.ExactMatchLevel("name"), nm, nu),
                level(cll.LevenshteinLevel("name", 1), n1m, n1u),
                level(cll.ElseLevel(), *NAME_ELSE),
            ),
            compare(
                "birth_date",
                level(cll.ExactMatchLevel("birth_date"), *BIRTH_EXACT),
                level(cll.ElseLevel(), *BIRTH_ELSE),
            ),
            compare(
                "region",
                level(cll.ExactMatchLevel("region"), *REGION_EXACT),
                level(cll.ElseLevel(), *REGION_ELSE),
            ),
        ],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )


def blocks(subject: Mapping[str, str | None], record: Mapping[str, str | None]) -> bool:
    """True when a register record shares a blocking key with a subject (the Splink model's
    blocking rules, for one pair; a record's ``id_birth`` is its birth date)."""
    record = {**record, "id_birth": record.get("birth_date")}
    for rule in BLOCKING:
        for key in rule:
            mine, theirs = _block_key(subject, key), _block_key(record, key)
            if not mine or mine != theirs:
                break
        else:
            return True
    return False


def _block_key(row: Mapping[str, str | None], key: str) -> str | None:
    if key in _BLOCK_SQL:  # the first characters of a field, as SQL's substr gives them
        field, length = _BLOCK_PREFIX[key]
        value = row.get(field)
        return value[:length] if value else None
    return row.get(key)


def score_pair(
    subject: Mapping[str, str | None], record: Mapping[str, str | None], *, register_rows: int
) -> float:
    """Return the match probability of one subject and one register record under the model
    Splink runs for batch jobs (same levels, m, u and prior), without Splink's start-up —
    what a single check can afford."""
    prior = 1 / max(register_rows, 2)
    weight = math.log2(prior / (1 - prior))

    def add(m: float, u: float) -> None:
        nonlocal weight
        weight += math.log2(m / u)

    sid, rid = subject.get("id_number"), record.get("id_number")
    if sid and rid:
        distance = _damerau(sid, rid)
        levels = (
            ID_LEVELS if subject.get("birth_date") and record.get("birth_date") else ID_ALONE_LEVELS
        )
        add(*next(((m, u) for n, m, u in levels if distance <= n), ID_ELSE))
    sname, rname = subject.get("name"), record.get("name")
    if sname and rname:
        distance = _levenshtein(sname, rname)
        add(*next(((m, u) for n, m, u in NAME_LEVELS if distance <= n), NAME_ELSE))
    for field, same, other in (
        ("birth_date", BIRTH_EXACT, BIRTH_ELSE),
        ("region", REGION_EXACT, REGION_ELSE),
    ):
        a, b = subject.get(field), record.get(field)
        if a and b:
            add(*(same if a == b else other))
    odds = 2.0**weight
    return odds / (1 + odds)


def _levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _damerau(a: str, b: str) -> int:
    """Optimal-string-alignment distance (an adjacent swap costs 1), as DuckDB computes it."""
    rows = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        rows[i][0] = i
    for j in range(len(b) + 1):
        rows[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
    return rows[-1][-1]


def best_match(
    scored: list[tuple[int, float]], *, threshold: float = THRESHOLD
) -> tuple[int, float, str]:
    """Return (body or -1, confidence, how) from one subject's (body, probability) pairs: the
    best person if at least ``threshold`` likely and no other person is — as ``link`` decides."""
    best: dict[int, float] = {}
    for body, probability in scored:
        best[body] = max(best.get(body, 0.0), probability)
    ranked = sorted(best.items(), key=lambda x: -x[1])
    if not ranked:
        return -1, 0.0, "no_match"
    body, top = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    if top >= threshold and runner_up < threshold:
        return body, round(top, 6), PROBABILISTIC
    return -1, round(top, 6), "ambiguous_match" if top >= threshold else "no_match"


def link(
    candidates: pa.Table,
    reference: pa.Table,
    *,
    register_rows: int | None = None,
    threshold: float = THRESHOLD,
) -> pa.Table:
    """Return, per candidate row (``unique_id`` = ref), the person it is: ``ref``, ``body``
    (-1 when none), ``confidence`` (the best pair's probability, 0 with no candidate) and
    ``match`` (``probabilistic``, ``no_match`` or ``ambiguous_match``).

    ``reference``: the register's ``id_number`` (canonical), ``name``, ``birth_date`` (ISO
    text) and ``region``; rows are blocked, so only those sharing a birth date or a name and
    region with some candidate matter (the caller may pass just those). ``register_rows``: the
    whole register's size, for the prior (default: ``reference``'s) — pass it when
    ``reference`` is a slice, so a row's answer does not depend on the other rows of its job.
    """
    refs = candidates.column("unique_id").to_pylist()
    best: dict[int, tuple[float, int]] = {}
    second: dict[int, float] = {}
    if candidates.num_rows and reference.num_rows:
        rows = register_rows or reference.num_rows
        for ref, body, probability in _scored_pairs(candidates, reference, rows):
            top = best.get(ref)
            if top is None or probability > top[0]:
                if top is not None and top[1] != body:
                    second[ref] = max(second.get(ref, 0.0), top[0])
                best[ref] = (probability, body)
            elif body != top[1]:
                second[ref] = max(second.get(ref, 0.0), probability)
    bodies, confidence, how = [], [], []
    for ref in refs:
        probability, body = best.get(ref, (0.0, -1))
        if probability >= threshold and second.get(ref, 0.0) < threshold:
            bodies.append(body)
            how.append(PROBABILISTIC)
        else:
            bodies.append(-1)
            how.append("ambiguous_match" if probability >= threshold else "no_match")
        confidence.append(round(probability, 6))
    return pa.table(
        {
            "ref": pa.array(refs, pa.int64()),
            "body": pa.array(bodies, pa.int64()),
            "confidence": pa.array(confidence, pa.float64()),
            "match": pa.array(how, pa.string()),
        }
    )


def _scored_pairs(
    candidates: pa.Table, reference: pa.Table, register_rows: int
) -> list[tuple[int, int, float]]:
    import duckdb
    from splink import DuckDBAPI, Linker

    ref_table = reference.select(["id_number", "name", "birth_date", "region"])
    ref_table = ref_table.append_column("id_birth", ref_table.column("birth_date"))
    ref_table = ref_table.append_column(
        "unique_id", pa.array(np.arange(reference.num_rows, dtype=np.int64))
    )
    bodies = np.array(
        [int(v[:17]) for v in ref_table.column("id_number").to_pylist()], dtype=np.int64
    )
    con = duckdb.connect()
    try:
        api = DuckDBAPI(connection=con)
        left = api.register(candidates, table_name="haihe_subjects")
        right = api.register(ref_table, table_name="haihe_register")
        linker = Linker([left, right], settings(register_rows), log_level=logging.WARNING)
        pairs = linker.inference.predict(threshold_match_probability=0.001)
        # Splink orders each pair's sides by dataset name, not by registration
        scored = con.sql(
            "SELECT CASE WHEN source_dataset_l = 'haihe_subjects' THEN unique_id_l "
            "ELSE unique_id_r END, CASE WHEN source_dataset_l = 'haihe_subjects' "
            "THEN unique_id_r ELSE unique_id_l END, match_probability "
            f"FROM {pairs.physical_name}"
        ).fetchall()
    finally:
        con.close()
    return [(int(ref), int(bodies[row]), float(p)) for ref, row, p in scored]


# A register row's birth date joined with its district or its surname, as the key sets of
# ``key_sets`` hold them (a birth date is ISO text, so "|" cannot occur in it).
KEY_SEP = "|"


def key_sets(candidates: pa.Table) -> dict[str, list[str]]:
    """Return, per blocking rule of ``BLOCKING`` (the ``id_birth`` rules folded into the
    ``birth_date`` ones: a register row's ID birth is its birth date), the keys a register row
    must share with some candidate to be compared with it, each key's parts joined by
    ``KEY_SEP``: ``birth_region``, ``birth_surname``, ``name_region`` and ``name_id`` (the
    name and the ID's first six characters)."""
    keys: dict[str, set[str]] = {kind: set() for kind in KEY_KINDS}
    rows = candidates.select(["id_number", "name", "birth_date", "id_birth", "region"])
    for row in rows.to_pylist():
        name, region, number = row["name"], row["region"], row["id_number"]
        for born in {row["birth_date"], row["id_birth"]} - {None}:
            keys["birth_surname"].add(f"{born}{KEY_SEP}{name[:1]}")
            if region:
                keys["birth_region"].add(f"{born}{KEY_SEP}{region}")
        if region:
            keys["name_region"].add(f"{name}{KEY_SEP}{region}")
        if number:
            keys["name_id"].add(f"{name}{KEY_SEP}{number[:6]}")
    return {kind: sorted(values) for kind, values in keys.items()}


# Each key kind's two parts, as (register field, characters kept: None for all).
KEY_PARTS: dict[str, tuple[tuple[str, int | None], tuple[str, int | None]]] = {
    "birth_region": (("birth_date", None), ("region", None)),
    "birth_surname": (("birth_date", None), ("name", 1)),
    "name_region": (("name", None), ("region", None)),
    "name_id": (("name", None), ("id_number", 6)),
}
KEY_KINDS = tuple(KEY_PARTS)


def register_slice(register: pa.Table, candidates: pa.Table) -> pa.Table:
    """Return the register rows a candidate could block with (``key_sets``), with valid ID
    numbers."""
    keys = key_sets(candidates)

    def part(field: str, length: int | None) -> Any:
        text = pc.fill_null(register.column(field), "")
        return text if length is None else pc.utf8_slice_codeunits(text, 0, length)

    wanted = pa.array(np.zeros(register.num_rows, bool))
    for kind, parts in KEY_PARTS.items():
        joined = pc.binary_join_element_wise(*(part(*p) for p in parts), KEY_SEP)
        wanted = pc.or_(wanted, pc.is_in(joined, value_set=pa.array(keys[kind], pa.string())))
    kept = register.filter(pc.fill_null(wanted, False))
    # the register's own mistyped numbers are no one's identity
    checked = validate_ids_np(pc.fill_null(kept.column("id_number"), ""))
    ok = pa.array(checked.problems == 0) if kept.num_rows else pa.array([], pa.bool_())
    lengths = pc.equal(pc.utf8_length(pc.fill_null(kept.column("id_number"), "")), 18)
    return kept.filter(pc.and_(ok, lengths))
