"""The identity register's blocking index — 户籍比对索引 — for identity matching in single checks.

A single check whose ID number is missing or fails may still name the person (name, birth date,
region). Batch jobs link such rows with Splink over the register's Parquet (``matching.link``);
a counter clerk's check cannot pay Splink's start-up or a scan of millions of rows. So, once per
register version, the rows identity matching reads (``id_number, name, birth_date,
district_code``; valid 18-character numbers only — the register's own typos are no one's
identity) are copied into an SQLite file with an index per blocking key (``matching.KEY_PARTS``),
each holding the columns a lookup returns (``FORMAT`` in the name: a file of an older layout is
rebuilt):

    DATA_DIR/verify/register/<code>/v000003.f3.sqlite

written under a temporary name and renamed into place (a reader finds a whole file or none;
concurrent builders each write their own and the last rename wins with the same content). A
single check's lookup is two indexed queries — the rows sharing the subject's birth date (given,
or what the ID's digits say) or its name, the indexes' prefixes — and the pairs are scored by
``matching.score_pair``, the model Splink runs for batch jobs, with the same prior (one over the
whole register's rows) and the same decision (``matching.best_match``). Batch jobs of up to a
few thousand failed IDs read their blocked rows here too (``blocking_rows``).
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from haihe.core.errors import StorageError
from haihe.core.identity import validate_ids_np
from haihe.core.settings import Settings
from haihe.engine import make_store
from haihe.verification import matching, repository
from haihe.verification.service import IDENTITY_ROLE

BUILD_BATCH = 200_000


@dataclass(frozen=True)
class Match:
    """What identity matching made of one subject: the person's ID body (-1: none), the
    confidence and how (``probabilistic``, ``no_match``, ``ambiguous_match``)."""

    body: int
    confidence: float
    how: str


# The index's layout; a file of an older one is rebuilt (and removed by ``ensure_current``).
FORMAT = 3


def index_path(settings: Settings, code: str, version: int) -> Path:
    name = f"v{version:06d}.f{FORMAT}.sqlite"
    return settings.data_dir / "verify" / "register" / code / name


def ensure_index(settings: Settings, code: str, version: int) -> Path:
    """Return the register version's blocking index, built first if it is not there yet."""
    path = index_path(settings, code, version)
    if path.is_file():
        return path
    store = make_store(settings)
    manifest = store.manifest(code, version)
    files = store.paths(manifest)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        conn = sqlite3.connect(temp)
        # each blocking key's parts (``matching.KEY_PARTS``) as columns, indexed together
        # with the columns a lookup returns (covering: a key's rows are read together from
        # its index, not each from wherever the table holds it — 13.6 M people, 3,388 failed
        # IDs' 259,000 rows: 1.9 s instead of 3.3); the birth date and the name alone are
        # those indexes' prefixes
        conn.execute(
            "CREATE TABLE people (id_number TEXT, name TEXT, birth_date TEXT, region TEXT, "
            "surname TEXT, id_prefix TEXT)"
        )
        for file in files:
            parquet = pq.ParquetFile(file)
            for batch in parquet.iter_batches(
                batch_size=BUILD_BATCH, columns=list(matching.MATCH_ITEMS)
            ):
                conn.executemany("INSERT INTO people VALUES (?, ?, ?, ?, ?, ?)", _rows(batch))
        conn.execute("CREATE TABLE meta (register_rows INTEGER)")
        conn.execute("INSERT INTO meta VALUES (?)", [manifest.row_count])
        for kind, columns in _INDEXED.items():
            covered = [*columns, *(c for c in _RETURNED if c not in columns)]
            conn.execute(f"CREATE INDEX people_{kind} ON people ({', '.join(covered)})")
        conn.commit()
        conn.close()
        os.replace(temp, path)
    except (OSError, sqlite3.Error, pa.ArrowException) as exc:
        temp.unlink(missing_ok=True)
        raise StorageError(f"cannot build the register index of {code} v{version}: {exc}") from None
    return path


# The index's columns of each blocking key kind (``matching.KEY_PARTS``): a part that is a
# field's first characters has its own column.
_PREFIXES: dict[tuple[str, int | None], str] = {
    ("name", 1): "surname",
    ("id_number", 6): "id_prefix",
}
# The columns a lookup returns: every index holds them too (it covers the lookup).
_RETURNED = ("id_number", "name", "birth_date", "region")
_INDEXED = {
    kind: tuple(_PREFIXES.get(part, part[0]) for part in parts)
    for kind, parts in matching.KEY_PARTS.items()
}


def blocking_rows(path: Path, keys: dict[str, list[str]]) -> tuple[pa.Table, int]:
    """The index's rows sharing a whole blocking key with a batch's candidates
    (``matching.key_sets``: what ``matching.register_slice`` keeps of the whole register), and
    the register's row count — a batch job's identity matching without a scan of the
    register."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        try:
            selects = []
            for kind, (first, second) in _INDEXED.items():
                conn.execute(f"CREATE TEMP TABLE wanted_{kind} (a TEXT, b TEXT)")
                conn.executemany(
                    f"INSERT INTO wanted_{kind} VALUES (?, ?)",
                    [key.split(matching.KEY_SEP, 1) for key in keys.get(kind, [])],
                )
                selects.append(
                    f"SELECT {', '.join(f'p.{c}' for c in _RETURNED)} FROM "
                    f"wanted_{kind} w JOIN people p ON p.{first} = w.a AND p.{second} = w.b"
                )
            # UNION ALL, and the rows found twice dropped in Arrow: SQLite's UNION sorts them
            found = conn.execute(" UNION ALL ".join(selects)).fetchall()
            (register_rows,) = conn.execute("SELECT register_rows FROM meta").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StorageError(f"the register index {path.name} cannot be read: {exc}") from None
    columns = list(zip(*found, strict=True)) or [() for _ in _RETURNED]
    table = pa.table({c: pa.array(v, pa.string()) for c, v in zip(_RETURNED, columns, strict=True)})
    return table.group_by(list(_RETURNED), use_threads=False).aggregate([]), int(register_rows)


TASK = "verification.register_index"


def ensure_current(session: Session, settings: Settings) -> Path | None:
    """Build the blocking index of the identity register's current version if it is missing
    (the periodic task, so that neither a counter's check nor a batch job waits for it), and
    remove the indexes of its older versions; return the index, None with no register bound."""
    entry = repository.bound_entries(session).get(IDENTITY_ROLE)
    if entry is None or entry.current_version is None:
        return None
    path = ensure_index(settings, entry.code, entry.current_version)
    for old in path.parent.glob("v*.sqlite"):
        if old != path:
            old.unlink(missing_ok=True)
    return path


def _rows(batch: pa.RecordBatch) -> list[tuple[str | None, ...]]:
    ids = pc.fill_null(batch.column("id_number").cast(pa.string()), "")
    ok = validate_ids_np(ids).problems == 0
    lengths = pc.equal(pc.utf8_length(ids), 18).to_numpy(zero_copy_only=False)
    text = {
        c: batch.column(c).cast(pa.string()).to_pylist()
        for c in ("name", "birth_date", "district_code")
    }
    numbers = ids.to_pylist()
    names = text["name"]
    return [
        (numbers[i], names[i], text["birth_date"][i], text["district_code"][i],
         names[i][:1] if names[i] else None, numbers[i][:6])
        for i in range(batch.num_rows)
        if ok[i] and lengths[i]
    ]  # fmt: skip


def match_one(
    path: Path,
    *,
    id_number: str | None,
    name: str | None,
    birth_date: str | None,
    region: str | None,
) -> Match:
    """Return the person a subject is, by the register index at ``path`` (see the module)."""
    number = matching.clean_id(id_number)
    subject = {
        "id_number": number,
        "name": name.strip() if name and name.strip() else None,
        "birth_date": matching._iso(birth_date),
        "id_birth": matching.birth_from_id(number),
        "region": region.strip() if region and region.strip() else None,
    }
    if subject["name"] is None:
        return Match(-1, 0.0, "no_match")
    births = sorted({b for b in (subject["birth_date"], subject["id_birth"]) if b})
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        try:
            marks = ", ".join("?" for _ in births) or "NULL"
            found = conn.execute(
                "SELECT id_number, name, birth_date, region FROM people "
                f"WHERE birth_date IN ({marks}) UNION "
                "SELECT id_number, name, birth_date, region FROM people WHERE name = ?",
                [*births, subject["name"]],
            ).fetchall()
            (register_rows,) = conn.execute("SELECT register_rows FROM meta").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StorageError(f"the register index {path.name} cannot be read: {exc}") from None
    records = [{"id_number": r[0], "name": r[1], "birth_date": r[2], "region": r[3]} for r in found]
    scored = [
        (int(r["id_number"][:17]), matching.score_pair(subject, r, register_rows=register_rows))
        for r in records
        if matching.blocks(subject, r)
    ]
    return Match(*matching.best_match(scored))
