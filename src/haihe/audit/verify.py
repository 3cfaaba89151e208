"""Verifying the ledger — 验证: every entry's hash, every link, every chain head and checkpoint.

Checks, each named in a problem's line:

- ``hash``: an entry's hash is not the hash of its content (an entry was edited);
- ``link``: an entry's ``prev_hash`` is not the previous entry's hash (deleted, inserted or
  reordered entries);
- ``sequence``: sequence numbers are missing (deleted entries);
- ``head``: the chain's head row disagrees with its last entry (a truncated tail, or an entry
  appended behind the ledger's back);
- ``anchor``: the chain does not start at 1, and no signed checkpoint left by a purge anchors
  its first entry;
- ``checkpoint`` / ``signature``: a signed checkpoint's hash is not the entry's hash at its
  sequence number, or its signature is not valid (a chain rewritten with recomputed hashes).

Speed (about 3.5 µs of CPU per entry on SQLite, most of it the database printing the
fields): the database builds each entry's canonical text (``chain.body``) in SQL and joins a
chunk's texts, hashes, links and sequence numbers into four values, so Python handles no row: it
hashes the texts and compares everything whole, walking a chunk entry by entry only when it
fails. Every entry carries ``prev_hash``, so ranges verify independently: large chains are
split over a process pool and the seams checked.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from haihe.audit import chain as chain_format
from haihe.audit import repository as repo
from haihe.audit import signing
from haihe.audit.chain import SEP
from haihe.core.errors import BadRequest

# Problems kept per chain (a chain rewritten from the start would otherwise list every entry).
MAX_PROBLEMS = 200
# Entries one query fetches, and the least a worker process is worth starting for.
CHUNK = 100_000
PER_WORKER = 100_000


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the ledger: where (chain, seq), which check, what."""

    chain: str
    seq: int | None
    check: str
    message: str

    def line(self) -> str:
        where = f"chain {self.chain}" + (f" seq {self.seq}" if self.seq is not None else "")
        return f"{where}: {self.check}: {self.message}"


@dataclass
class ChainReport:
    """What was verified of one chain."""

    name: str
    entries: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    checkpoints: int = 0
    rechecked: int = 0  # chunks walked entry by entry after failing the whole-chunk check
    problems: list[Problem] = field(default_factory=list)
    more_problems: int = 0

    def add(self, problem: Problem) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        else:
            self.more_problems += 1


@dataclass
class Report:
    """The result of a verification: per chain, and in total."""

    chains: list[ChainReport]
    seconds: float

    @property
    def entries(self) -> int:
        return sum(c.entries for c in self.chains)

    @property
    def problems(self) -> list[Problem]:
        return [p for c in self.chains for p in c.problems]

    @property
    def intact(self) -> bool:
        return not any(c.problems for c in self.chains)


@dataclass(frozen=True)
class _Range:
    """What a worker found in one range: its ends (for the seams) and its problems."""

    first: tuple[int, str] | None  # (seq, prev_hash) of the first entry
    last: tuple[int, str] | None  # (seq, hash) of the last entry
    count: int
    problems: list[Problem]
    extra: int  # problems found beyond those kept
    rechecked: int  # chunks that failed the whole-chunk check and were walked entry by entry


def body_sql(dialect: str) -> str:
    """SQL giving ``prev_hash ␟ body`` of an entry exactly as ``chain.body`` builds it.

    One ``printf``/``format`` call (NULL prints as the empty string on both backends) is
    several times faster than concatenating the fields one by one. SQLite stores the time as
    the chain's own text and a boolean as 1/0, so both go in as stored.
    """
    args = ["prev_hash"]
    for name in chain_format.FIELDS:
        if name == "at" and dialect != "sqlite":
            args.append("to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
        elif name == "personal" and dialect != "sqlite":
            args.append("CASE WHEN personal THEN 1 ELSE 0 END")
        else:
            args.append(name)
    template = SEP.join(["%s"] * len(args))
    function = "printf" if dialect == "sqlite" else "format"
    return f"{function}('{template}', {', '.join(args)})"


def _range_sql(dialect: str) -> str:
    """Every entry of a chain's range, in order: seq, prev_hash, hash, the text hashed."""
    mark = "?" if dialect == "sqlite" else "%s"
    return (
        f"SELECT seq, prev_hash, hash, {_text_sql(dialect)} FROM audit_entries "
        f"WHERE chain = {mark} AND seq >= {mark} AND seq <= {mark} ORDER BY seq"
    )


def _chunk_sql(dialect: str) -> str:
    """A chain's range as one row: its sequence numbers, prev_hashes, hashes and texts hashed,
    each joined into one value (texts by NUL, which no text the ledger writes holds).

    The joins follow the rows' order without an ORDER BY of their own: were it ever another
    than ``seq``'s, the joined sequence numbers would not be consecutive and the chunk would be
    walked row by row, so the order is checked, never trusted.
    """
    mark = "?" if dialect == "sqlite" else "%s"
    if dialect == "sqlite":
        joined = (
            "group_concat(seq, ','), group_concat(prev_hash, ''), group_concat(hash, ''), "
            "CAST(group_concat(t, x'00') AS BLOB)"
        )
    else:
        joined = (
            "string_agg(CAST(seq AS text), ','), string_agg(prev_hash, ''), "
            "string_agg(hash, ''), string_agg(t, '\\x00'::bytea)"
        )
    return (
        f"SELECT {joined} FROM (SELECT seq, prev_hash, hash, {_text_sql(dialect)} AS t "
        f"FROM audit_entries WHERE chain = {mark} AND seq >= {mark} AND seq <= {mark} "
        "ORDER BY seq) AS r"
    )


def _first_sql(dialect: str) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    return (
        f"SELECT seq, prev_hash FROM audit_entries WHERE chain = {mark} AND seq >= {mark} "
        f"AND seq <= {mark} ORDER BY seq LIMIT 1"
    )


def _text_sql(dialect: str) -> str:
    if dialect == "sqlite":
        return f"CAST({body_sql(dialect)} AS BLOB)"
    # psycopg takes %s for parameters, so format()'s own %s are written %%s
    return f"convert_to({body_sql(dialect).replace('%', '%%')}, 'UTF8')"


def _scan(dbapi_conn: Any, dialect: str, name: str, low: int, high: int) -> _Range:
    """Verify the entries of ``name`` with ``low <= seq <= high`` on a raw DBAPI connection.

    The database joins each chunk's columns into single values, so that Python handles no row:
    it hashes the texts and compares the joined digests, links and sequence numbers at once.
    Only a chunk that fails is fetched again row by row and walked entry by entry to say where.
    """
    quick, full = _chunk_sql(dialect), _range_sql(dialect)
    problems: list[Problem] = []
    first: tuple[int, str] | None = None
    expected_seq = -1
    last_hash = ""
    count = extra = rechecked = 0
    cur = dbapi_conn.cursor()
    try:
        for start in range(low, high + 1, CHUNK):
            params = (name, start, min(high, start + CHUNK - 1))
            cur.execute(quick, params)
            seqs, prevs, hashes, texts = cur.fetchone()
            if seqs is None:
                continue
            n = seqs.count(",") + 1
            if first is None:
                cur.execute(_first_sql(dialect), params)
                seq, prev = cur.fetchone()
                first = (int(seq), str(prev))
                expected_seq, last_hash = first
            count += n
            if _intact(n, seqs, prevs, hashes, bytes(texts), expected_seq, last_hash):
                expected_seq, last_hash = int(seqs.rpartition(",")[2]) + 1, hashes[-64:]
            else:
                rechecked += 1
                cur.execute(full, params)
                rows = cur.fetchall()
                _locate(name, rows, expected_seq, last_hash, problems)
                expected_seq, last_hash = rows[-1][0] + 1, str(rows[-1][2])
            if len(problems) > MAX_PROBLEMS:
                extra += len(problems) - MAX_PROBLEMS
                del problems[MAX_PROBLEMS:]
    finally:
        cur.close()
    last = None if first is None else (expected_seq - 1, last_hash)
    return _Range(
        first=first, last=last, count=count, problems=problems, extra=extra, rechecked=rechecked
    )


def _intact(
    n: int, seqs: str, prevs: str, hashes: str, texts: bytes, expected_seq: int, last_hash: str
) -> bool:
    """Whether a chunk, joined by the database, holds no problem: consecutive sequence numbers,
    every hash the hash of its text, every prev_hash the previous hash (all hashes 64 long)."""
    parts = texts.split(b"\x00")
    return (
        len(parts) == n
        and len(hashes) == len(prevs) == 64 * n
        and seqs == ",".join(map(str, range(expected_seq, expected_seq + n)))
        and prevs == last_hash + hashes[:-64]
        and b"".join([h.digest() for h in map(sha256, parts)]).hex() == hashes
    )


def _locate(
    name: str, rows: Sequence[Any], expected_seq: int, last_hash: str, problems: list[Problem]
) -> None:
    """Walk a chunk that failed its whole-chunk check and say which entries are wrong."""
    for seq, prev, digest, text in rows:
        if seq != expected_seq:
            problems.append(_gap(name, expected_seq, seq))
        elif prev != last_hash:
            problems.append(Problem(name, seq, "link", _LINK))
        data = text.encode() if text.__class__ is str else text
        if sha256(data).hexdigest() != digest:
            problems.append(Problem(name, seq, "hash", _HASH))
        expected_seq, last_hash = seq + 1, digest


_LINK = "prev_hash is not the previous entry's hash (an entry was inserted, deleted or moved)"
_HASH = "the entry's content does not match its hash (the entry was edited)"


def _gap(name: str, expected: int, seq: int) -> Problem:
    if seq < expected:
        return Problem(name, seq, "sequence", f"out of order after entry {expected - 1}")
    missing = f"entry {expected}" if seq == expected + 1 else f"entries {expected}-{seq - 1}"
    return Problem(name, seq, "sequence", f"{missing} missing before this one")


def _scan_in_worker(url: str, name: str, low: int, high: int) -> _Range:
    """``_scan`` in a worker process, on its own connection."""
    engine = create_engine(url)
    try:
        raw = engine.raw_connection()
        dbapi_conn: Any = raw.dbapi_connection
        if engine.dialect.name == "sqlite":
            dbapi_conn.execute("PRAGMA mmap_size=4294967296")
        try:
            return _scan(dbapi_conn, engine.dialect.name, name, low, high)
        finally:
            raw.close()
    finally:
        engine.dispose()


def verify_ledger(
    session: Session,
    *,
    public_keys: Sequence[Ed25519PublicKey],
    chain: str | None = None,
    workers: int | None = 1,
) -> Report:
    """Verify every chain (or ``chain``); ``workers`` None means one process per core.

    BadRequest when ``chain`` names no chain. Worker processes read the committed ledger on
    their own connections; one worker reads through ``session``.
    """
    started = time.perf_counter()
    heads = {h.name: h for h in repo.chain_heads(session)}
    names = sorted(set(heads) | repo.chain_names(session))
    if chain is not None:
        if chain not in names:
            raise BadRequest(f"there is no audit chain {chain!r} (chains: {', '.join(names)})")
        names = [chain]
    keys = {signing.key_id(k): k for k in public_keys}
    reports = []
    for name in names:
        report = ChainReport(name)
        _verify_chain(session, report, heads.get(name), keys, workers)
        reports.append(report)
    return Report(chains=reports, seconds=time.perf_counter() - started)


def _verify_chain(
    session: Session,
    report: ChainReport,
    head: Any,
    keys: dict[str, Ed25519PublicKey],
    workers: int | None,
) -> None:
    name = report.name
    bounds = repo.seq_bounds(session, name)
    if head is None:
        report.add(Problem(name, None, "head", "the chain has entries but no head row"))
    if bounds is None:
        if head is not None and head.next_seq > 1:
            report.add(Problem(name, None, "head", "the head says entries exist; none are left"))
        _check_checkpoints(session, report, keys, low=1, anchor_prev=None)
        return
    low, high, count = bounds
    report.first_seq, report.last_seq = low, high
    ranges = _scan_ranges(session, name, low, high, count, workers)
    previous: _Range | None = None
    for part in ranges:
        report.entries += part.count
        if part.first is not None and previous is not None and previous.last is not None:
            seam_seq, seam_prev = part.first
            if seam_seq != previous.last[0] + 1:
                report.add(_gap(name, previous.last[0] + 1, seam_seq))
            elif seam_prev != previous.last[1]:
                report.add(Problem(name, seam_seq, "link", _LINK))
        for problem in part.problems:
            report.add(problem)
        report.more_problems += part.extra
        report.rechecked += part.rechecked
        if part.first is not None:
            previous = part
    start = ranges[0].first
    if start is None or previous is None or previous.last is None:
        report.add(Problem(name, None, "sequence", "the entries changed while being verified"))
        return
    if low == 1 and start[1] != chain_format.GENESIS:
        report.add(Problem(name, 1, "link", "the first entry does not follow the genesis hash"))
    if head is not None:
        if head.next_seq - 1 != high:
            report.add(
                Problem(
                    name,
                    high,
                    "head",
                    f"the head row says the last entry is "
                    f"{head.next_seq - 1}, the ledger ends at {high}",
                )
            )
        elif head.head_hash != previous.last[1]:
            report.add(Problem(name, high, "head", "the head row's hash is not the last entry's"))
    _check_checkpoints(session, report, keys, low=low, anchor_prev=start[1])


def _scan_ranges(
    session: Session, name: str, low: int, high: int, count: int, workers: int | None
) -> list[_Range]:
    wanted = workers if workers is not None else (os.cpu_count() or 1)
    processes = max(1, min(wanted, count // PER_WORKER if workers is None else wanted))
    bind = session.connection().engine
    if processes == 1 or bind.dialect.name == "sqlite" and bind.url.database in (None, ":memory:"):
        raw = session.connection().connection.dbapi_connection
        return [_scan(raw, bind.dialect.name, name, low, high)]
    url = bind.url.render_as_string(hide_password=False)
    step = -(-(high - low + 1) // processes)
    bounds = [(s, min(high, s + step - 1)) for s in range(low, high + 1, step)]
    with ProcessPoolExecutor(max_workers=processes) as pool:
        futures = [pool.submit(_scan_in_worker, url, name, lo, hi) for lo, hi in bounds]
        found = [f.result() for f in futures]
    return [r for r in found if r.first is not None] or found[:1]


def _check_checkpoints(
    session: Session,
    report: ChainReport,
    keys: dict[str, Ed25519PublicKey],
    *,
    low: int,
    anchor_prev: str | None,
) -> None:
    name = report.name
    points = repo.checkpoints_of(session, name)
    report.checkpoints = len(points)
    hashes = repo.hashes_at(session, name, [p.seq for p in points if p.seq >= low])
    anchored = False
    for point in points:
        key = keys.get(point.key_id)
        if key is None:
            report.add(
                Problem(name, point.seq, "signature", f"signed by unknown key {point.key_id}")
            )
        elif not signing.is_valid(key, point.signature, name, point.seq, point.hash, point.at):
            report.add(Problem(name, point.seq, "signature", "the checkpoint's signature is bad"))
        if point.seq == low - 1:
            anchored = point.hash == anchor_prev
            if not anchored:
                report.add(
                    Problem(
                        name,
                        low,
                        "anchor",
                        f"the first entry does not follow the signed checkpoint at {point.seq}",
                    )
                )
        elif point.seq >= low:
            if point.seq not in hashes:
                report.add(Problem(name, point.seq, "checkpoint", "the signed entry is missing"))
            elif hashes[point.seq] != point.hash:
                report.add(
                    Problem(
                        name,
                        point.seq,
                        "checkpoint",
                        "the entry's hash is not the signed one (the chain was rewritten)",
                    )
                )
    if low > 1 and anchor_prev is not None:
        _check_anchor(session, report, low, anchored, any(p.seq == low - 1 for p in points))


def _check_anchor(
    session: Session, report: ChainReport, low: int, anchored: bool, has_point: bool
) -> None:
    """A chain starting after 1 must start where a purge left it, at a signed checkpoint."""
    name = report.name
    if not has_point:
        report.add(
            Problem(
                name,
                low,
                "anchor",
                f"entries 1-{low - 1} are missing and no signed checkpoint anchors the chain there",
            )
        )
        return
    detail = repo.last_purge(session, name)
    through = json.loads(detail).get("through_seq") if detail else None
    if anchored and through != low - 1:
        report.add(
            Problem(
                name,
                low,
                "anchor",
                f"entries 1-{low - 1} are missing but no purge entry records their removal",
            )
        )


def lines(report: Report) -> Iterable[str]:
    """One line per problem, then one per chain's hidden problems."""
    for chain_report in report.chains:
        for problem in chain_report.problems:
            yield problem.line()
        if chain_report.more_problems:
            yield f"chain {chain_report.name}: … and {chain_report.more_problems} more problems"
