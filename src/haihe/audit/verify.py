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
  sequence number, or its signature is not valid (a chain rewritten with recomputed hashes);
- ``guard``: the database no longer holds each entry's stored text to its columns (``guard.py``;
  once per run, for the whole ledger);
- ``columns`` (``deep`` only): an entry's columns do not match the text its hash covers.

Every entry carries ``prev_hash``, so ranges verify independently (``scan.py``): large chains
are split over a process pool and the seams checked. A block that a checkpoint with a good
signature sealed (``chain.BLOCK`` entries at most) is verified by its signed digest, one hash
per piece of it; entries no such checkpoint seals (those since the last checkpoint, those of
checkpoints made before blocks were) are verified entry by entry.

``deep`` also has the database print every entry's text from its columns and compare it with
the stored one (one and a half to two times as long, measured): for after a guard problem, or
now and then.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import text
from sqlalchemy.orm import Session

from haihe.audit import chain as chain_format
from haihe.audit import guard, scan, signing
from haihe.audit import repository as repo
from haihe.audit.scan import MAX_PROBLEMS, Problem
from haihe.core.errors import BadRequest

# The least a worker process is worth starting for.
PER_WORKER = 100_000


@dataclass
class ChainReport:
    """What was verified of one chain."""

    name: str
    entries: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    checkpoints: int = 0
    rechecked: int = 0  # chunks walked entry by entry after failing the whole-chunk check
    sealed: int = 0  # entries verified by their block's signed digest
    problems: list[Problem] = field(default_factory=list)
    more_problems: int = 0

    def add(self, problem: Problem) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        else:
            self.more_problems += 1


@dataclass
class Report:
    """The result of a verification: the ledger's guard, per chain, and in total."""

    chains: list[ChainReport]
    seconds: float
    guard: list[Problem] = field(default_factory=list)
    deep: bool = False

    @property
    def entries(self) -> int:
        return sum(c.entries for c in self.chains)

    @property
    def problems(self) -> list[Problem]:
        return [*self.guard, *(p for c in self.chains for p in c.problems)]

    @property
    def intact(self) -> bool:
        return not self.guard and not any(c.problems for c in self.chains)


_GUARD = (
    "; entries' columns may differ from the text verified: run 'haihe audit verify --deep' "
    "to compare them, and restore the guard (migration 0010 builds it)"
)


def verify_ledger(
    session: Session,
    *,
    public_keys: Sequence[Ed25519PublicKey],
    chain: str | None = None,
    workers: int | None = 1,
    deep: bool = False,
) -> Report:
    """Verify every chain (or ``chain``); ``workers`` None means one process per core.

    BadRequest when ``chain`` names no chain. Worker processes read the committed ledger on
    their own connections; one worker reads through ``session``. ``deep`` also compares every
    entry's columns with its hashed text (one and a half to two times as long: after a guard
    problem, or now and then).
    """
    started = time.perf_counter()
    guarded = [Problem("", None, "guard", what + _GUARD) for what in guard.problems(session)]
    heads = {h.name: h for h in repo.chain_heads(session)}
    names = sorted(set(heads) | set(session.scalars(_CHAIN_NAMES)))
    if chain is not None:
        if chain not in names:
            raise BadRequest(f"there is no audit chain {chain!r} (chains: {', '.join(names)})")
        names = [chain]
    keys = {signing.key_id(k): k for k in public_keys}
    reports = []
    for name in names:
        report = ChainReport(name)
        _verify_chain(session, report, heads.get(name), keys, workers, deep)
        reports.append(report)
    seconds = time.perf_counter() - started
    return Report(chains=reports, seconds=seconds, guard=guarded, deep=deep)


def _verify_chain(
    session: Session,
    report: ChainReport,
    head: Any,
    keys: dict[str, Ed25519PublicKey],
    workers: int | None,
    deep: bool,
) -> None:
    name = report.name
    points = repo.checkpoints_of(session, name)
    unsigned = {p.seq: why for p in points if (why := _signature_problem(p, keys)) is not None}
    bounds = session.execute(_SEQ_RANGE, {"chain": name}).one()
    if head is None:
        report.add(Problem(name, None, "head", "the chain has entries but no head row"))
    if bounds[0] is None:
        if head is not None and head.next_seq > 1:
            report.add(Problem(name, None, "head", "the head says entries exist; none are left"))
        _check_checkpoints(session, report, points, unsigned, low=1, anchor_prev=None)
        return
    low, high = int(bounds[0]), int(bounds[1])
    report.first_seq, report.last_seq = low, high
    segments = _segments(low, high, [p for p in points if p.seq not in unsigned])
    ranges = _scan_ranges(session, name, segments, workers, deep)
    previous: scan.Range | None = None
    for part in ranges:
        report.entries += part.count
        report.sealed += part.sealed
        if part.first is not None and previous is not None and previous.last is not None:
            seam_seq, seam_prev = part.first
            if seam_seq != previous.last[0] + 1:
                report.add(scan.gap(name, previous.last[0] + 1, seam_seq))
            elif seam_prev != previous.last[1]:
                report.add(Problem(name, seam_seq, "link", scan.LINK))
        for problem in part.problems:
            report.add(problem)
        report.more_problems += part.extra
        report.rechecked += part.rechecked
        if part.first is not None:
            previous = part
    start = next((r.first for r in ranges if r.first is not None), None)
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
    _check_checkpoints(session, report, points, unsigned, low=low, anchor_prev=start[1])


def _segments(low: int, high: int, points: Sequence[Any]) -> list[scan.Segment]:
    """Entries ``low``..``high`` as segments: each block a validly signed checkpoint seals
    whole within them (in order, not overlapping one taken), and the ranges between."""
    segments: list[scan.Segment] = []
    at = low
    for p in points:
        if p.block_digest is None or p.first_seq is None:
            continue
        if p.first_seq < at or p.seq > high or p.seq - p.first_seq + 1 > chain_format.BLOCK:
            continue  # partly purged or past the end (the head check's), or not one we make
        if p.first_seq > at:
            segments.append((at, p.first_seq - 1))
        segments.append(scan.Block(p.first_seq, p.seq, p.block_digest, p.hash))
        at = p.seq + 1
    if at <= high:
        segments.append((at, high))
    return segments


# The chains that have entries, by a loose index scan: one index lookup per chain, where
# DISTINCT reads every entry's key (a tenth of a second for a million entries).
_CHAIN_NAMES = text(
    "WITH RECURSIVE c(name) AS (SELECT min(chain) FROM audit_entries UNION ALL "
    "SELECT (SELECT min(chain) FROM audit_entries WHERE chain > c.name) FROM c "
    "WHERE c.name IS NOT NULL) SELECT name FROM c WHERE name IS NOT NULL"
)
# A chain's first and last sequence numbers, two index lookups (SQLite looks up a min() or a
# max() alone in the index, not both at once; counting the entries would read every key).
_SEQ_RANGE = text(
    "SELECT (SELECT min(seq) FROM audit_entries WHERE chain = :chain), "
    "(SELECT max(seq) FROM audit_entries WHERE chain = :chain)"
)


def _scan_ranges(
    session: Session,
    name: str,
    segments: list[scan.Segment],
    workers: int | None,
    deep: bool,
) -> list[scan.Range]:
    wanted = workers if workers is not None else (os.cpu_count() or 1)
    span = sum(_size(s) for s in segments)  # the entries, or more if some are missing
    processes = max(1, min(wanted, span // PER_WORKER if workers is None else wanted))
    bind = session.connection().engine
    if processes == 1 or bind.dialect.name == "sqlite" and bind.url.database in (None, ":memory:"):
        raw = session.connection().connection.dbapi_connection
        return scan.scan_segments(raw, bind.dialect.name, name, segments, deep)
    url = bind.url.render_as_string(hide_password=False)
    with ProcessPoolExecutor(max_workers=processes) as pool:
        futures = [
            pool.submit(scan.scan_in_worker, url, name, share, deep)
            for share in _shares(segments, processes)
        ]
        found = [r for f in futures for r in f.result()]
    return [r for r in found if r.first is not None] or found[:1]


def _size(segment: scan.Segment) -> int:
    if isinstance(segment, scan.Block):
        return segment.last - segment.first + 1
    return segment[1] - segment[0] + 1


def _shares(segments: list[scan.Segment], processes: int) -> list[list[scan.Segment]]:
    """``segments`` cut into ``processes`` runs of about as many entries each, in order: a
    range is cut where a run is full; a block goes whole, to the run it mostly fits in."""
    each = -(-sum(_size(s) for s in segments) // processes)
    shares: list[list[scan.Segment]] = [[]]
    room = each
    queue = deque(segments)
    while queue:
        segment = queue.popleft()
        size = _size(segment)
        full = room <= 0 or isinstance(segment, scan.Block) and room < size / 2
        if full and shares[-1] and len(shares) < processes:
            shares.append([])
            room = each
        if not isinstance(segment, scan.Block) and size > room > 0 and len(shares) < processes:
            low, high = segment
            shares[-1].append((low, low + room - 1))
            queue.appendleft((low + room, high))
            room = 0
            continue
        shares[-1].append(segment)
        room -= size
    return shares


def _signature_problem(point: Any, keys: dict[str, Ed25519PublicKey]) -> str | None:
    """What is wrong with a checkpoint's signature (of its block too, if it seals one)."""
    key = keys.get(point.key_id)
    if key is None:
        return f"signed by unknown key {point.key_id}"
    block = signing.block_of(point.first_seq, point.block_digest)
    if not signing.is_valid(
        key, point.signature, point.chain, point.seq, point.hash, point.at, block
    ):
        return "the checkpoint's signature is bad"
    return None


def _check_checkpoints(
    session: Session,
    report: ChainReport,
    points: Sequence[Any],
    unsigned: dict[int, str],
    *,
    low: int,
    anchor_prev: str | None,
) -> None:
    """Each checkpoint's signature (``unsigned``: what is wrong with those that are not
    validly signed) and signed hash; the anchor of a chain that starts after 1."""
    name = report.name
    report.checkpoints = len(points)
    hashes = repo.hashes_at(session, name, [p.seq for p in points if p.seq >= low])
    anchored = False
    for point in points:
        if point.seq in unsigned:
            report.add(Problem(name, point.seq, "signature", unsigned[point.seq]))
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
    for problem in report.guard:
        yield problem.line()
    for chain_report in report.chains:
        for problem in chain_report.problems:
            yield problem.line()
        if chain_report.more_problems:
            yield f"chain {chain_report.name}: … and {chain_report.more_problems} more problems"
