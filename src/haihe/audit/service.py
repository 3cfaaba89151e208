"""Appending to the ledger — the one way any domain records a use or a decision.

Appends run in the caller's transaction (the edge commits): if the work rolls back, so does its
entry, and a use that cannot be recorded does not happen (DESIGN.md: audit rows are never held
where a crash can lose them). Services never commit.

Each entry's canonical text (``chain.body``, what its hash covers) is stored with it as
``body``: SQLite generates it from the columns itself (so it is never written here), PostgreSQL
takes it from the app and checks it against the columns (``ck_audit_entries_body``).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import ColumnElement, Connection, Table, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from haihe.audit import chain, scan, signing, subject_sets
from haihe.audit import repository as repo
from haihe.audit.models import AuditChain, AuditCheckpoint, AuditEntry
from haihe.audit.subject_sets import SubjectSet
from haihe.core.auth import Principal, Role
from haihe.core.db import utcnow
from haihe.core.errors import Forbidden
from haihe.core.settings import Settings

log = logging.getLogger("haihe.audit")

DEFAULT_CHAIN = "main"

_entries = cast(Table, AuditEntry.__table__)
_chains = cast(Table, AuditChain.__table__)
_INSERT_ENTRY = insert(_entries).returning(_entries.c.id)
_INSERT_ENTRIES = insert(_entries)
_IDS_BY_SEQ = (
    select(_entries.c.seq, _entries.c.id)
    .where(_entries.c.chain == bindparam("chain_name"))
    .where(_entries.c.seq.between(bindparam("lo"), bindparam("hi")))
)
_SET_HEAD = (
    update(_chains)
    .where(_chains.c.name == bindparam("chain_name"))
    .values(head_hash=bindparam("head"))
)
_ADVANCE = (
    update(_chains)
    .where(_chains.c.name == bindparam("chain_name"))
    .values(next_seq=_chains.c.next_seq + bindparam("by"), updated_at=bindparam("now"))
    .returning(_chains.c.next_seq, _chains.c.head_hash)
)


@dataclass(frozen=True)
class NewEntry:
    """One entry to append with ``record_many``: the same fields as ``record`` takes.

    ``at`` is for imports of earlier logs; left out, the entry gets the time of its append.
    """

    actor: Principal
    action: str
    outcome: str = "ok"
    resource_code: str | None = None
    provider_code: str | None = None
    items: Sequence[str] = ()
    purpose: str | None = None
    mode: str | None = None
    rows: int = 0
    subjects: Sequence[str] = ()
    personal: bool = False
    request_id: str | None = None
    detail: Mapping[str, Any] | None = None
    at: dt.datetime | None = None
    # a batch's persons kept once for all its entries (``subject_sets.keep_set``), instead
    # of ``subjects``: the entry's hash covers the set's size and digest
    subject_set: SubjectSet | None = None


@dataclass(frozen=True)
class Batch:
    """Where a batch went: its chain, first and last sequence numbers, the new head hash."""

    chain: str
    first_seq: int
    last_seq: int
    head_hash: str


@dataclass(frozen=True)
class Appended:
    """Where an entry went: its row id, chain, sequence number and hash."""

    id: int
    chain: str
    seq: int
    hash: str


def chain_of(session: Session) -> str:
    """The chain this session appends to: set by the edge from settings, else ``main``."""
    return str(session.info.get("audit_chain", DEFAULT_CHAIN))


def record(
    session: Session,
    *,
    actor: Principal,
    action: str,
    outcome: str = "ok",
    resource_code: str | None = None,
    provider_code: str | None = None,
    items: Sequence[str] = (),
    purpose: str | None = None,
    mode: str | None = None,
    rows: int = 0,
    subjects: Sequence[str] = (),
    personal: bool = False,
    request_id: str | None = None,
    detail: Mapping[str, Any] | None = None,
    chain_name: str | None = None,
) -> Appended:
    """Append one entry to this session's chain; return its place (executed, not committed).

    ``provider_code`` is the code of the organisation whose data was used (so that it sees the
    use too); ``subjects`` are keyed pseudonyms of the persons whose records were used (see
    ``haihe.core.masking.pseudonymise``), never raw ID numbers; ``personal`` marks a
    personal-information processing record, kept longer (3 years against 6 months).
    ``chain_name`` appends to another chain than the session's (the ledger's own records).
    """
    entry = NewEntry(
        actor=actor,
        action=action,
        outcome=outcome,
        resource_code=resource_code,
        provider_code=provider_code,
        items=items,
        purpose=purpose,
        mode=mode,
        rows=rows,
        subjects=subjects,
        personal=personal,
        request_id=request_id,
        detail=detail,
    )
    name = chain_name or chain_of(session)
    seq, prev = _advance(session, name)
    values, tokens = _values(entry, name, seq, utcnow())
    text = chain.body([values[f] for f in chain.FIELDS])
    digest = chain.link(prev, text)
    # Prepared Core statements on the session's connection: this runs once per gateway call.
    conn = session.connection()
    if _writes_body(conn):
        values["body"] = text
    entry_id = conn.execute(
        _INSERT_ENTRY, {**values, "prev_hash": prev, "hash": digest}
    ).scalar_one()
    conn.execute(_SET_HEAD, {"chain_name": name, "head": digest})
    if tokens:
        _insert_subjects(conn, [(entry_id, t) for t in tokens])
    return Appended(id=entry_id, chain=name, seq=seq, hash=digest)


def record_many(session: Session, entries: Sequence[NewEntry]) -> Batch:
    """Append ``entries`` in order with one advance of the chain's head (for imports).

    The hashes are the same as ``record`` one at a time would give; the rows go in with one
    executemany (COPY on PostgreSQL). An entry without ``at`` gets the batch's time.
    """
    name = chain_of(session)
    if not entries:
        seq, head = _head(session, name)
        return Batch(chain=name, first_seq=seq + 1, last_seq=seq, head_hash=head)
    first, prev = _advance(session, name, by=len(entries))
    now = utcnow()
    rows: list[dict[str, Any]] = []
    subjects: dict[int, list[str]] = {}
    sets: dict[int, int] = {}
    link, body, fields = chain.link, chain.body, chain.FIELDS
    conn = session.connection()
    keep_text = _writes_body(conn)
    for seq, entry in enumerate(entries, start=first):
        values, tokens = _values(entry, name, seq, entry.at or now)
        text = body([values[f] for f in fields])
        digest = link(prev, text)
        values["prev_hash"], values["hash"] = prev, digest
        if keep_text:
            values["body"] = text
        rows.append(values)
        if tokens:
            subjects[seq] = tokens
        if entry.subject_set is not None:
            sets[seq] = entry.subject_set.id
        prev = digest
    _insert_entries(conn, rows)
    conn.execute(_SET_HEAD, {"chain_name": name, "head": prev})
    last = first + len(entries) - 1
    if subjects or sets:
        ids = dict(conn.execute(_IDS_BY_SEQ, {"chain_name": name, "lo": first, "hi": last}).all())
        _insert_subjects(conn, [(ids[seq], t) for seq, ts in subjects.items() for t in ts])
        subject_sets.link_entries(session, [(ids[seq], s) for seq, s in sets.items()])
    return Batch(chain=name, first_seq=first, last_seq=last, head_hash=prev)


def _writes_body(conn: Connection) -> bool:
    """Whether the app writes an entry's text (PostgreSQL); SQLite generates it itself."""
    return conn.dialect.name != "sqlite"


def _insert_entries(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert a batch's entry rows: one executemany on SQLite, COPY on PostgreSQL.

    PostgreSQL prepares a table's CHECK constraints once per statement, and an executemany is
    a statement per row: the text's check (``ck_audit_entries_body``) cost about 12 µs a row
    that way, measured, against once per batch by COPY (the whole append then costs half).
    The rows go in as the driver adapts them, not through the column types, so the time is
    checked to be aware here, as ``UTCDateTime`` would.
    """
    if conn.dialect.name != "postgresql":
        conn.execute(_INSERT_ENTRIES, rows)
        return
    columns = list(rows[0])
    values = itemgetter(*columns)
    dbapi: Any = conn.connection.dbapi_connection
    statement = f"COPY audit_entries ({', '.join(columns)}) FROM STDIN"
    with dbapi.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            if row["at"].tzinfo is None:
                raise ValueError("naive datetime given to a UTC column")
            copy.write_row(values(row))


def _insert_subjects(conn: Connection, pairs: list[tuple[int, str]]) -> None:
    """Insert (entry id, token) rows through the driver, sorted so that they fill the token
    index in order. The connection has written this transaction already (the entry rows), so
    on SQLite it holds the write queue."""
    pairs.sort(key=lambda pair: pair[1])
    repo.insert_rows(conn, "audit_subjects", ("entry_id", "token"), pairs)


def _values(
    entry: NewEntry, name: str, seq: int, at: dt.datetime
) -> tuple[dict[str, Any], list[str]]:
    """The column values of ``entry`` as the hash covers them, and its distinct subjects."""
    tokens = list(dict.fromkeys(entry.subjects))
    kept = entry.subject_set
    if kept is not None and tokens:
        raise ValueError("an audit entry names its subjects or a subject set, not both")
    actor = entry.actor
    values: dict[str, Any] = {
        "chain": name,
        "seq": seq,
        "at": at,
        "action": entry.action,
        "outcome": entry.outcome,
        "actor_kind": actor.kind,
        "actor_id": actor.id,
        "actor_name": actor.name,
        "org_code": actor.org_code,
        "system_id": actor.system_id,
        "resource_code": entry.resource_code,
        "provider_code": entry.provider_code,
        "items_json": _items_json(tuple(entry.items)),
        "purpose": entry.purpose,
        "mode": entry.mode,
        "rows": entry.rows,
        "subjects": len(tokens) if kept is None else kept.count,
        "subjects_digest": chain.subjects_digest(tokens) if kept is None else kept.digest,
        "personal": entry.personal or bool(tokens) or kept is not None,
        "request_id": entry.request_id,
        "detail_json": None if entry.detail is None else chain.canonical_json(dict(entry.detail)),
    }
    return values, tokens


def ledger_scope(actor: Principal) -> ColumnElement[bool] | None:
    """Which entries ``actor`` may list: None for all (platform admin, auditor), an org admin's
    organisation as actor or provider; Forbidden for everyone else."""
    if actor.has(Role.PLATFORM_ADMIN, Role.AUDITOR):
        return None
    if actor.has(Role.ORG_ADMIN) and actor.org_code:
        return repo.visible_to_org(actor.org_code)
    raise Forbidden("the audit ledger is for the platform admin, auditors and org admins")


@functools.lru_cache(maxsize=4096)
def _items_json(items: tuple[str, ...]) -> str:
    """Canonical JSON of a list of field names (few distinct lists recur in every batch)."""
    return chain.canonical_json(list(items))


def checkpoint(session: Session, *, settings: Settings) -> list[AuditCheckpoint]:
    """Sign every chain that moved since its last checkpoint; return the new checkpoints.

    The scheduler calls this every ``audit_checkpoint_every`` seconds; ``haihe audit
    checkpoint`` calls it at once. A checkpoint lets verification catch a chain rewritten with
    recomputed hashes: the signed hash no longer matches, and no one without the key can sign
    a new one. The entries since the chain's last checkpoint are verified entry by entry first;
    if they check out, they are sealed in blocks (``scan.seal``), one checkpoint each, which
    signs the block's digest with its last entry's hash, so that verification hashes a block
    once. If they do not, only the head is signed, as before blocks, and a warning logged.
    """
    key = signing.signing_key(settings)
    kid = signing.key_id(key.public_key())
    raw = session.connection().connection.dbapi_connection
    dialect = session.get_bind().dialect.name
    made: list[AuditCheckpoint] = []
    for head in repo.chain_heads(session):
        seq = head.next_seq - 1
        last = repo.last_checkpoint(session, head.name)
        if seq < 1 or (last is not None and last.seq >= seq):
            continue
        at = utcnow()
        first, prev = (1, chain.GENESIS) if last is None else (last.seq + 1, last.hash)
        blocks = scan.seal(raw, dialect, head.name, first, seq, prev)
        if blocks is None or blocks[-1].hash != head.head_hash:
            log.warning(
                "audit chain %s: entries %d-%d do not verify; signed its head without sealing "
                "them (run 'haihe audit verify')",
                head.name,
                first,
                seq,
            )
            made.append(_signed(key, kid, head.name, seq, head.head_hash, at, None))
            continue
        made.extend(
            _signed(key, kid, head.name, b.last, b.hash, at, (b.first, b.digest)) for b in blocks
        )
    session.add_all(made)
    session.flush()
    return made


def _signed(
    key: Ed25519PrivateKey,
    kid: str,
    name: str,
    seq: int,
    hash_: str,
    at: dt.datetime,
    block: signing.Block | None,
) -> AuditCheckpoint:
    """A checkpoint of chain ``name`` at ``seq``, sealing ``block`` (first_seq, digest) if any."""
    return AuditCheckpoint(
        chain=name,
        seq=seq,
        hash=hash_,
        at=at,
        key_id=kid,
        signature=signing.sign(key, name, seq, hash_, at, block),
        first_seq=None if block is None else block[0],
        block_digest=None if block is None else block[1],
    )


def _head(session: Session, name: str) -> tuple[int, str]:
    """The chain's last sequence number and hash (0 and the genesis hash when it is new)."""
    head = session.get(AuditChain, name)
    if head is None:
        return 0, chain.GENESIS
    return head.next_seq - 1, head.head_hash


def _advance(session: Session, name: str, *, by: int = 1) -> tuple[int, str]:
    """Take the chain's next ``by`` sequence numbers, locking its head row; return the first
    and the hash before it.

    The UPDATE comes first so that concurrent appenders queue on the row lock (PostgreSQL) or the
    write lock (SQLite) before reading the head, never both reading the same one.
    """
    params = {"chain_name": name, "now": utcnow(), "by": by}
    row = session.connection().execute(_ADVANCE, params).first()
    if row is None:
        _create_chain(session, name)
        return _advance(session, name, by=by)
    return int(row[0]) - by, str(row[1])


def _create_chain(session: Session, name: str) -> None:
    """Create a chain's head row unless a concurrent appender just did."""
    values = {"name": name, "next_seq": 1, "head_hash": chain.GENESIS, "updated_at": utcnow()}
    dialect = session.get_bind().dialect.name
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert_fn(AuditChain).values(**values).on_conflict_do_nothing())
