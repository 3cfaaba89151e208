"""The ledger's hash chain: the canonical bytes of an entry and the hash that links it.

``hash = sha256(prev_hash ␟ body)`` where ``body`` joins the entry's fields with the unit
separator U+001F in ``FIELDS`` order (None as the empty string, true/false as 1/0, the time as
UTC text ``YYYY-MM-DD HH:MM:SS.ffffff``, JSON already canonical text). The format is plain on
purpose: a verifier in another language, or in SQL, can rebuild it from the table. The time is
text because that is how SQLite stores it: rebuilding the body there costs no conversion.

The table keeps each entry's body beside its columns (``audit_entries.body``), and the database
holds the two together by one expression (``models.body_sql``): a stored generated column on
SQLite, a CHECK constraint on PostgreSQL. Verifying reads and hashes the stored text.

Blocks: each signed checkpoint seals the entries since the one before, at most ``BLOCK`` of
them, by one digest of their stored columns (``block_digest``), made once they were verified
entry by entry. A verifier then checks a sealed block by that one digest: SHA-256 over the
block's pieces instead of one per entry (see ``verify.py``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from haihe.audit.models import HASHED_FIELDS, SEP

GENESIS = "0" * 64
# The most entries one signed checkpoint seals (its block): a block's text, about 300 bytes an
# entry, is one value in the database when its digest is computed (15 MB here; PostgreSQL's
# limit is 1 GB). Part of the format: a verifier treats a larger block as not sealed.
BLOCK = 50_000
# A block's digest is of its pieces' digests, each of ``PIECE`` entries from the block's first
# (the last piece may be shorter): a piece's text, about 1.5 MB, stays in a core's cache while
# the database joins and hashes it (30% faster than the block's 15 MB in one, measured).
PIECE = 5_000
# Fields the hash covers, in order: every column of AuditEntry but id, prev_hash, hash and body.
FIELDS = HASHED_FIELDS

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def micros(at: dt.datetime) -> int:
    """Integer microseconds since the epoch of an aware datetime."""
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def stamp(at: dt.datetime) -> str:
    """An aware datetime as the chain's time text: UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    return at.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def canonical_json(value: Any) -> str:
    """JSON text with sorted keys and no spaces, Chinese kept as it is."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dt.datetime):
        return stamp(value)
    return str(value)


def body(values: Sequence[Any]) -> str:
    """The canonical body of an entry given its values in ``FIELDS`` order."""
    # most values are already text: skip the conversion call for them (appends run hot)
    return SEP.join([v if v.__class__ is str else _text(v) for v in values])


def link(prev_hash: str, entry_body: str) -> str:
    """The hash of an entry whose canonical body is ``entry_body``, after ``prev_hash``."""
    return hashlib.sha256(f"{prev_hash}{SEP}{entry_body}".encode()).hexdigest()


def block_part(prev_hash: str, hash_: str, entry_body: bytes) -> bytes:
    """One entry's part of its block's text: ``len:prev_hash hash body``, the body's length in
    UTF-8 bytes first so that no two blocks' entries join to the same text."""
    return b"%d:%s%s%s" % (len(entry_body), prev_hash.encode(), hash_.encode(), entry_body)


def block_digest(entries: Iterable[tuple[str, str, bytes]]) -> str:
    """The digest a checkpoint signs for its block: SHA-256 of its pieces' SHA-256 digests
    (raw, in order), each piece's of its ``PIECE`` entries' parts (``block_part``) in sequence
    order; the entries given as (prev_hash, hash, body as UTF-8)."""
    block, piece, n = hashlib.sha256(), hashlib.sha256(), 0
    for prev_hash, hash_, entry_body in entries:
        piece.update(block_part(prev_hash, hash_, entry_body))
        n += 1
        if n == PIECE:
            block.update(piece.digest())
            piece, n = hashlib.sha256(), 0
    if n:
        block.update(piece.digest())
    return block.hexdigest()


def subjects_digest(tokens: Iterable[str]) -> str | None:
    """A digest of an entry's subject pseudonyms (sorted, so their order does not matter)."""
    ordered = sorted(tokens)
    if not ordered:
        return None
    return hashlib.sha256("\n".join(ordered).encode()).hexdigest()
