"""Scanning a range of one chain — 逐段校验: chunk by chunk, at once, and entry by entry if not.

What is hashed is the text the table stores (``audit_entries.body``, which the database keeps
equal to the columns: see ``guard.py``), so the database only reads it; nothing is printed per
entry. Chunk by chunk, every hash, link and sequence number is checked at once, and a chunk is
walked entry by entry in Python only when it fails, to say where.

- SQLite joins a chunk into one row (Python would spend more taking rows one by one than SQLite
  spends joining them); Python hashes the texts and compares digests and links whole. Chunks
  are small, so that a chunk's texts and digests stay in the core's cache.
- PostgreSQL checks a chunk itself and answers in one row: how many entries' hash is not the
  SHA-256 of their text or whose ``prev_hash`` is not the hash before (a window's ``lag``), the
  count and the first and last sequence numbers. The text is the one the database stores and
  the hash function is the standard one, so a server that lied would have to have been changed
  itself. Sending rows would cost more: per entry and core, PostgreSQL sending one takes 1.1 µs
  and psycopg taking it 0.5 µs, while hashing in the server takes about 1 µs.

Measured on this project's two-core machine, per entry and core: SHA-256 itself 0.5 µs in
Python's hashlib (most of it OpenSSL's cost per call, not per byte), SQLite reading and joining
0.7 µs.

A block a valid signed checkpoint sealed (``Block``; ``chain.BLOCK`` entries at most) is
checked by its digest alone: the database joins each piece's entries' parts
(``chain.block_part``) in sequence order and one SHA-256 runs over them (PostgreSQL's own in the
server; Python's over SQLite's joined chunks, fed in turn), then one over the pieces' digests.
Per entry that is about 0.75 µs on PostgreSQL instead of 1.8-2.2 (the per-call cost of OpenSSL's
SHA-256 goes, and a piece's text stays in the core's cache; measured). A block
whose digest differs is walked like any range to say where; should the walk find nothing (the
block rewritten with recomputed hashes ending at the signed one, or the database joining rows
out of order), its digest is recomputed in Python from the rows in order to tell which.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from hashlib import sha256
from operator import itemgetter, methodcaller
from typing import Any

from psycopg.types.string import ByteaBinaryLoader
from sqlalchemy import create_engine

from haihe.audit import chain
from haihe.audit.models import body_sql

# Problems kept per chain (a chain rewritten from the start would otherwise list every entry).
MAX_PROBLEMS = 200
# Entries one query fetches (SQLite): small enough for a chunk's texts and digests to stay in
# the core's cache (a million entries verified 20-40% faster than in chunks of 20,000, measured).
CHUNK = 1_000
# Entries PostgreSQL checks per query: nothing comes back per entry, so chunks are large (a
# million entries 10% faster than in chunks of 10,000, measured); a failed one is walked.
SERVER_CHUNK = 50_000


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the ledger: where (chain, seq), which check, what.

    ``chain`` is empty for a problem of the whole ledger (its guard).
    """

    chain: str
    seq: int | None
    check: str
    message: str

    def line(self) -> str:
        where = f"chain {self.chain}" if self.chain else "ledger"
        where += f" seq {self.seq}" if self.seq is not None else ""
        return f"{where}: {self.check}: {self.message}"


@dataclass(frozen=True)
class Range:
    """What a scan found in one range: its ends (for the seams) and its problems."""

    first: tuple[int, str] | None  # (seq, prev_hash) of the first entry
    last: tuple[int, str] | None  # (seq, hash) of the last entry
    count: int
    problems: list[Problem]
    extra: int  # problems found beyond those kept
    rechecked: int  # chunks that failed the whole-chunk check and were walked entry by entry
    sealed: int = 0  # entries verified by their block's signed digest


@dataclass(frozen=True)
class Block:
    """A block a valid checkpoint sealed: entries ``first``..``last``, the digest signed for
    them, and the hash signed for the last."""

    first: int
    last: int
    digest: str
    hash: str


# What a scan verifies: a sealed block (by its digest), or a range (low, high) entry by entry.
Segment = Block | tuple[int, int]


def _range_sql(dialect: str) -> str:
    """Every entry of a chain's range, in order: seq, prev_hash, hash, the text hashed
    (``prev_hash ␟ body``), for walking a chunk entry by entry."""
    if dialect == "sqlite":
        mark, hashed = "?", "CAST(prev_hash || char(31) || body AS BLOB)"
    else:
        mark, hashed = "%s", "prev_hash || chr(31) || body"
    return (
        f"SELECT seq, prev_hash, hash, {hashed} FROM audit_entries "
        f"WHERE chain = {mark} AND seq >= {mark} AND seq <= {mark} ORDER BY seq"
    )


# SQLite: a chain's range as one row — its first and last sequence numbers, its entry count,
# its hashes joined, and its texts hashed joined by NUL. The texts are ``prev_hash ␟ body``, but
# SQLite never builds them: each row's prefix rides in the separator the aggregate puts before
# its body (an argument evaluated per row), which saves a copy of every text (``||``), a third
# of SQLite's work; the first entry's prefix comes from ``_first_sql``. The rows are joined in the
# (chain, seq) index's order; were it another, the links would break and the chunk be walked.
_JOINED = (
    "SELECT min(seq), max(seq), count(*), group_concat(hash, ''), "
    "CAST(group_concat(body, char(0) || prev_hash || char(31)) AS BLOB) "
    "FROM audit_entries WHERE chain = ? AND seq >= ? AND seq <= ?"
)
# PostgreSQL: a chain's range checked by the server — entries whose hash is not the SHA-256 of
# their text (``prev_hash ␟ body``, as UTF-8) or whose prev_hash is not the hash before (the
# first's: the parameter), then the count and the first and last sequence numbers. NULLs count
# as wrong (IS DISTINCT FROM), should a NOT NULL have been dropped. ``textsend`` gives the text in
# the database's encoding: UTF-8, as docs/install.md creates it (in another, every chunk would
# fail here and be walked in Python, which would still say rightly whether it is intact).
_CHECKED = (
    "SELECT count(*) FILTER (WHERE wrong), count(*), min(seq), max(seq) FROM ("
    "SELECT seq, encode(sha256(textsend(prev_hash || chr(31) || body)), 'hex') "
    "IS DISTINCT FROM hash OR prev_hash IS DISTINCT FROM lag(hash, 1, %s) OVER (ORDER BY seq) "
    "AS wrong FROM audit_entries WHERE chain = %s AND seq >= %s AND seq <= %s) AS checked"
)
# A piece's entry count, first and last sequence numbers and its text (``chain.block_part`` of
# each entry, in sequence order). PostgreSQL hashes the piece's text itself and sends the digest.
# SQLite sends a chunk's text, which Python feeds to the block's digest; as in ``_JOINED``, each
# row's prefix (``len:prev_hash hash``) rides in the separator the aggregate puts before its
# body, saving a copy of every body, and the first row's comes apart. Were the rows joined in
# another order, the digest would differ and the block be walked (see the module).
_BLOCK_PG = (
    "SELECT count(*), min(seq), max(seq), encode(sha256(textsend(string_agg("
    "octet_length(body) || ':' || prev_hash || hash || body, ''))), 'hex') FROM ("
    "SELECT seq, prev_hash, hash, body FROM audit_entries WHERE chain = %s AND seq >= %s "
    "AND seq <= %s ORDER BY seq) AS block"
)
_PREFIX_SQLITE = "CAST(length(CAST(body AS BLOB)) || ':' || prev_hash || hash AS BLOB)"
_BLOCK_SQLITE = (
    f"SELECT count(*), min(seq), max(seq), (SELECT {_PREFIX_SQLITE} FROM audit_entries "
    "WHERE chain = ?1 AND seq >= ?2 AND seq <= ?3 ORDER BY seq LIMIT 1), "
    "CAST(group_concat(body, length(CAST(body AS BLOB)) || ':' || prev_hash || hash) AS BLOB) "
    "FROM audit_entries WHERE chain = ?1 AND seq >= ?2 AND seq <= ?3"
)


def _first_sql(dialect: str) -> str:
    """The first entry of a chain's range: seq, prev_hash."""
    mark = "?" if dialect == "sqlite" else "%s"
    return (
        f"SELECT seq, prev_hash FROM audit_entries WHERE chain = {mark} AND seq >= {mark} "
        f"AND seq <= {mark} ORDER BY seq LIMIT 1"
    )


def _hash_at_sql(dialect: str) -> str:
    """The hash of a chain's entry at a sequence number."""
    mark = "?" if dialect == "sqlite" else "%s"
    return f"SELECT hash FROM audit_entries WHERE chain = {mark} AND seq = {mark}"


def _columns_sql(dialect: str) -> str:
    """Sequence numbers of a range's entries whose columns do not print as their stored text."""
    if dialect == "sqlite":
        mark, differs = "?", f"body IS NOT {body_sql(dialect)}"
    else:
        # psycopg takes %s for parameters, so format()'s own %s are written %%s
        mark, differs = "%s", f"body IS DISTINCT FROM {body_sql(dialect).replace('%', '%%')}"
    return (
        f"SELECT seq FROM audit_entries WHERE chain = {mark} AND seq >= {mark} "
        f"AND seq <= {mark} AND {differs} ORDER BY seq"
    )


# PostgreSQL, for the scans' own transaction: walk the (chain, seq) index in order, as the
# chunks need, and compile nothing. Left to itself, once the table has statistics the planner
# sorts a parallel scan of the whole table for every chunk and JIT-compiles the query.
_PLAN = {"enable_seqscan": "off", "enable_bitmapscan": "off", "jit": "off"}


@dataclass(frozen=True)
class _Chunk:
    """A chunk as fetched for the whole-chunk check: its first entry (seq, prev_hash), its
    entry count, whether its sequence numbers run on from the first without a gap, every
    entry's prev_hash (each text's first 64 characters) and hash joined, the texts hashed."""

    first: tuple[int, str]
    n: int
    consecutive: bool
    prevs: str
    hashes: str
    texts: list[bytes]


def _sqlite_chunk(cur: Any, params: tuple[str, int, int]) -> _Chunk | None:
    """A chunk joined by SQLite into one row (``_JOINED``): no row reaches Python.

    Sequence numbers are unique in a chain (the table's unique constraint), so the first, the
    last and the count say whether they are consecutive. Were the constraint dropped, a
    duplicate entry would still break the links, unless its hash were forged from there on —
    which the signed checkpoints catch, as they catch any chain rewritten.
    """
    cur.execute(_JOINED, params)
    low, high, n, hashes, bodies = cur.fetchone()
    if not n:
        return None
    cur.execute(_first_sql("sqlite"), params)
    seq, prev = cur.fetchone()
    texts = bytes(bodies).split(b"\x00")
    texts[0] = f"{prev}\x1f".encode() + texts[0]
    prevs = b"".join(map(_PREV_HASH, texts)).decode("latin-1")
    return _Chunk((seq, prev), n, high - low + 1 == n, prevs, hashes, texts)


@dataclass(frozen=True)
class _Checked:
    """A chunk's verdict: its first entry (seq, prev_hash), its entry count, whether it holds
    no problem, and its last entry's hash (when it does)."""

    first: tuple[int, str]
    n: int
    intact: bool
    last_hash: str


def _sqlite_check(
    cur: Any, params: tuple[str, int, int], expected: tuple[int, str] | None
) -> _Checked | None:
    """A chunk fetched joined (``_sqlite_chunk``) and checked in Python. ``expected``: the
    (seq, hash) the chunk must follow on from; None for a range's first chunk, which follows
    on from its first entry's own prev_hash (the caller checks the seam)."""
    chunk = _sqlite_chunk(cur, params)
    if chunk is None:
        return None
    intact = _intact(chunk, *(expected or chunk.first))
    return _Checked(chunk.first, chunk.n, intact, chunk.hashes[-64:] if intact else "")


def _postgresql_check(
    cur: Any, params: tuple[str, int, int], expected: tuple[int, str] | None
) -> _Checked | None:
    """A chunk checked by PostgreSQL (``_CHECKED``): one row back, no entry's text sent.
    ``expected`` as for ``_sqlite_check``."""
    cur.execute(_first_sql("postgresql"), params)
    found = cur.fetchone()
    if found is None:
        return None
    first = (int(found[0]), found[1])
    seq, last = expected or first
    cur.execute(_CHECKED, (last, *params))
    wrong, n, low, high = cur.fetchone()
    cur.execute(_hash_at_sql("postgresql"), (params[0], high))
    (tail,) = cur.fetchone()
    intact = not wrong and low == seq and high - low + 1 == n and tail is not None
    return _Checked(first, int(n), intact, str(tail) if intact else "")


def _intact(chunk: _Chunk, expected_seq: int, last_hash: str) -> bool:
    """Whether a chunk holds no problem: sequence numbers from the one expected, consecutive;
    every prev_hash the previous hash; every hash the hash of its text."""
    n, hashes = chunk.n, chunk.hashes
    return (
        chunk.consecutive
        and chunk.first[0] == expected_seq
        and len(chunk.texts) == n
        and len(hashes) == 64 * n
        and chunk.prevs == f"{last_hash}{hashes[:-64]}"
        and b"".join(map(_DIGEST, map(sha256, chunk.texts))).hex() == hashes
    )


_PREV_HASH = itemgetter(slice(0, 64))
_DIGEST = methodcaller("digest")


def scan(
    dbapi_conn: Any, dialect: str, name: str, low: int, high: int, deep: bool = False
) -> Range:
    """Verify the entries of ``name`` with ``low <= seq <= high`` on a raw DBAPI connection,
    entry by entry (``scan_segments`` of one range)."""
    return scan_segments(dbapi_conn, dialect, name, [(low, high)], deep)[0]


def scan_segments(
    dbapi_conn: Any, dialect: str, name: str, segments: Sequence[Segment], deep: bool = False
) -> list[Range]:
    """Verify each segment of chain ``name`` on a raw DBAPI connection: a sealed block by its
    digest, a range chunk by chunk. ``deep`` also has the database compare each entry's
    columns with its stored text."""
    with _cursor(dbapi_conn, dialect) as cur:
        return [
            _scan_block(cur, dialect, name, segment, deep)
            if isinstance(segment, Block)
            else _scan_range(cur, dialect, name, *segment, deep)
            for segment in segments
        ]


@contextmanager
def _cursor(dbapi_conn: Any, dialect: str) -> Iterator[Any]:
    """A cursor for scanning: on PostgreSQL with the scans' planner settings (``_PLAN``) for
    the transaction, put back when the caller is done, and texts loaded as bytes."""
    cur = dbapi_conn.cursor()
    planned = {}
    if dialect == "postgresql":
        planned = _plan(cur)
        # a failed chunk's texts, walked in Python, sent in binary as the bytes they are
        cur.adapters.register_loader("text", ByteaBinaryLoader)
    try:
        yield cur
        if planned:  # a failed scan's transaction is rolled back, and its settings with it
            _plan(cur, planned)
    finally:
        cur.close()


def seal(
    dbapi_conn: Any, dialect: str, name: str, first: int, last: int, prev_hash: str
) -> list[Block] | None:
    """The blocks a checkpoint may seal of entries ``first``..``last`` of chain ``name``,
    following ``prev_hash``: each ``chain.BLOCK`` entries at most, with its digest and its last
    entry's hash. None unless every one of those entries verifies first, entry by entry — a
    seal must never cover an entry edited before it was made."""
    found = scan(dbapi_conn, dialect, name, first, last)
    if (
        found.problems
        or found.first != (first, prev_hash)
        or found.last is None
        or found.last[0] != last
        or found.count != last - first + 1
    ):
        return None
    blocks = []
    with _cursor(dbapi_conn, dialect) as cur:
        for start in range(first, last + 1, chain.BLOCK):
            end = min(last, start + chain.BLOCK - 1)
            n, _, _, digest = block_digest(cur, dialect, name, start, end)
            cur.execute(_hash_at_sql(dialect), (name, end))
            (hash_,) = cur.fetchone()
            if n != end - start + 1 or digest is None:
                return None  # changed since the scan: sign no block now
            blocks.append(Block(start, end, digest, str(hash_)))
    return blocks


def block_digest(
    cur: Any, dialect: str, name: str, first: int, last: int
) -> tuple[int, int | None, int | None, str | None]:
    """Entries ``first``..``last`` of chain ``name`` as the database finds them: their count,
    first and last sequence numbers, and their block's digest (``chain.block_digest``; None
    when there are none). One query per piece on PostgreSQL, which hashes the piece; on SQLite
    one per chunk, whose text Python hashes."""
    block = sha256()
    n, low, high = 0, None, None
    for start in range(first, last + 1, chain.PIECE):
        end = min(last, start + chain.PIECE - 1)
        if dialect != "sqlite":
            cur.execute(_BLOCK_PG, (name, start, end))
            count, lo, hi, digest = cur.fetchone()
            piece = bytes.fromhex(str(digest)) if count else b""
        else:
            count, lo, hi, piece = _sqlite_piece(cur, name, start, end)
        if count:
            n, low, high = n + count, lo if low is None else low, hi
            block.update(piece)
    return n, low, high, block.hexdigest() if n else None


def _sqlite_piece(cur: Any, name: str, first: int, last: int) -> tuple[int, Any, Any, bytes]:
    """A piece's count, first and last sequence numbers and digest, joined by SQLite chunk by
    chunk and hashed in Python."""
    hashed = sha256()
    n, low, high = 0, None, None
    for start in range(first, last + 1, CHUNK):
        cur.execute(_BLOCK_SQLITE, (name, start, min(last, start + CHUNK - 1)))
        count, lo, hi, first_prefix, joined = cur.fetchone()
        if count:
            n, low, high = n + count, lo if low is None else low, hi
            hashed.update(first_prefix)
            hashed.update(joined)
    return n, low, high, hashed.digest()


def _scan_block(cur: Any, dialect: str, name: str, block: Block, deep: bool) -> Range:
    """A sealed block checked by its digest; walked entry by entry if it differs."""
    n, low, high, digest = block_digest(cur, dialect, name, block.first, block.last)
    if (n, low, high, digest) == (
        block.last - block.first + 1,
        block.first,
        block.last,
        block.digest,
    ):
        cur.execute(_first_sql(dialect), (name, block.first, block.last))
        seq, prev = cur.fetchone()
        problems = _columns(cur, dialect, name, block.first, block.last) if deep else []
        return Range(
            first=(int(seq), str(prev)),
            last=(block.last, block.hash),
            count=n,
            problems=problems[:MAX_PROBLEMS],
            extra=max(0, len(problems) - MAX_PROBLEMS),
            rechecked=0,
            sealed=n,
        )
    walked = _scan_range(cur, dialect, name, block.first, block.last, deep)
    if walked.problems or walked.last is None or walked.last[1] != block.hash:
        return walked  # the walk says where; a wrong hash at the end is the checkpoint check's
    cur.execute(_range_sql(dialect), (name, block.first, block.last))
    rows = [(str(prev), str(hash_), _bytes(hashed)[65:]) for _, prev, hash_, hashed in cur]
    if chain.block_digest(rows) == block.digest:
        return walked  # the database joined the rows out of order: nothing is wrong
    problem = Problem(name, block.last, "checkpoint", _REWRITTEN % (block.first, block.last))
    return replace(walked, problems=[problem])


def _scan_range(cur: Any, dialect: str, name: str, low: int, high: int, deep: bool) -> Range:
    """Entries ``low``..``high`` chunk by chunk: every hash, link and sequence number checked
    at once (see the module; no loop over entries in Python). Only a chunk that fails is
    walked entry by entry, to say where."""
    check, step = (
        (_sqlite_check, CHUNK) if dialect == "sqlite" else (_postgresql_check, SERVER_CHUNK)
    )
    problems: list[Problem] = []
    first: tuple[int, str] | None = None
    expected_seq = -1
    last_hash = ""
    count = extra = rechecked = 0
    for start in range(low, high + 1, step):
        params = (name, start, min(high, start + step - 1))
        checked = check(cur, params, None if first is None else (expected_seq, last_hash))
        if checked is None:
            continue
        if first is None:
            first = checked.first
            expected_seq, last_hash = first
        count += checked.n
        if checked.intact:
            expected_seq, last_hash = expected_seq + checked.n, checked.last_hash
        else:
            rechecked += 1
            cur.execute(_range_sql(dialect), params)
            rows = cur.fetchall()
            _locate(name, rows, expected_seq, last_hash, problems)
            expected_seq, last_hash = rows[-1][0] + 1, str(rows[-1][2])
        if deep:
            problems.extend(_columns(cur, dialect, name, *params[1:]))
        if len(problems) > MAX_PROBLEMS:
            extra += len(problems) - MAX_PROBLEMS
            del problems[MAX_PROBLEMS:]
    last = None if first is None else (expected_seq - 1, last_hash)
    return Range(
        first=first, last=last, count=count, problems=problems, extra=extra, rechecked=rechecked
    )


def _columns(cur: Any, dialect: str, name: str, low: int, high: int) -> list[Problem]:
    """Entries ``low``..``high`` whose columns do not print as their stored text."""
    step = CHUNK if dialect == "sqlite" else SERVER_CHUNK
    found: list[Problem] = []
    for start in range(low, high + 1, step):
        cur.execute(_columns_sql(dialect), (name, start, min(high, start + step - 1)))
        found.extend(Problem(name, seq, "columns", _COLUMNS) for (seq,) in cur)
    return found


def _bytes(hashed: Any) -> bytes:
    """A text hashed as fetched (str, or bytes when loaded as such) as UTF-8 bytes."""
    return hashed.encode() if hashed.__class__ is str else bytes(hashed or b"")


def _plan(cur: Any, settings: dict[str, str] | None = None) -> dict[str, str]:
    """Set the planner ``settings`` for this transaction (``_PLAN`` if none); return the
    values they replaced, to put back."""
    wanted = settings or _PLAN
    cur.execute("SELECT " + ", ".join(f"current_setting('{k}')" for k in wanted))
    previous = dict(zip(wanted, cur.fetchone(), strict=True))
    cur.execute(
        "SELECT " + ", ".join(f"set_config('{k}', %s, true)" for k in wanted),
        [*wanted.values()],
    )
    return previous


def _locate(
    name: str, rows: Sequence[Any], expected_seq: int, last_hash: str, problems: list[Problem]
) -> None:
    """Walk a chunk that failed its whole-chunk check and say which entries are wrong."""
    for seq, prev, digest, hashed in rows:
        if seq != expected_seq:
            problems.append(gap(name, expected_seq, seq))
        elif prev != last_hash:
            problems.append(Problem(name, seq, "link", LINK))
        if sha256(_bytes(hashed)).hexdigest() != digest:
            problems.append(Problem(name, seq, "hash", _HASH))
        expected_seq, last_hash = seq + 1, digest


LINK = "prev_hash is not the previous entry's hash (an entry was inserted, deleted or moved)"
_HASH = "the entry's content does not match its hash (the entry was edited)"
_COLUMNS = "the entry's columns do not match its hashed text (the columns were edited)"
_REWRITTEN = (
    "entries %d-%d are not the ones this checkpoint signed, though each follows the one before "
    "(the block was rewritten with recomputed hashes)"
)


def gap(name: str, expected: int, seq: int) -> Problem:
    if seq < expected:
        return Problem(name, seq, "sequence", f"out of order after entry {expected - 1}")
    missing = f"entry {expected}" if seq == expected + 1 else f"entries {expected}-{seq - 1}"
    return Problem(name, seq, "sequence", f"{missing} missing before this one")


def scan_in_worker(url: str, name: str, segments: Sequence[Segment], deep: bool) -> list[Range]:
    """``scan_segments`` in a worker process, on its own connection."""
    engine = create_engine(url)
    try:
        raw = engine.raw_connection()
        dbapi_conn: Any = raw.dbapi_connection
        if engine.dialect.name == "sqlite":
            dbapi_conn.execute("PRAGMA mmap_size=4294967296")
        try:
            return scan_segments(dbapi_conn, engine.dialect.name, name, segments, deep)
        finally:
            raw.close()
    finally:
        engine.dispose()
