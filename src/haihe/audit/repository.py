"""Every query of the audit ledger: chain heads, checkpoints, entries by filter and by subject."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    case,
    delete,
    func,
    or_,
    select,
    union,
)
from sqlalchemy.orm import Session

from haihe.audit.models import (
    AuditChain,
    AuditCheckpoint,
    AuditEntry,
    AuditEntrySet,
    AuditSetMember,
    AuditSubject,
)

# Modes whose uses are counted in rows delivered; ``verify`` counts the subjects checked.
ROW_MODES = ("query", "bulk", "subscribe")
VERIFY_MODE = "verify"


@dataclass(frozen=True)
class Filters:
    """What a ledger listing is narrowed to; ``action`` ending in ``.`` matches a prefix."""

    org: str | None = None
    provider: str | None = None
    resource: str | None = None
    action: str | None = None
    mode: str | None = None
    outcome: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    chain: str | None = None


def chain_heads(session: Session) -> Sequence[AuditChain]:
    return session.scalars(select(AuditChain).order_by(AuditChain.name)).all()


def chain_names(session: Session) -> set[str]:
    """Names of the chains that have entries."""
    return set(session.scalars(select(AuditEntry.chain).distinct()))


def chain_head(session: Session, name: str) -> AuditChain | None:
    return session.get(AuditChain, name)


def last_checkpoint(session: Session, chain: str) -> AuditCheckpoint | None:
    stmt = (
        select(AuditCheckpoint)
        .where(AuditCheckpoint.chain == chain)
        .order_by(AuditCheckpoint.seq.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def checkpoints_of(session: Session, chain: str) -> Sequence[AuditCheckpoint]:
    stmt = (
        select(AuditCheckpoint).where(AuditCheckpoint.chain == chain).order_by(AuditCheckpoint.seq)
    )
    return session.scalars(stmt).all()


def hashes_at(session: Session, chain: str, seqs: Sequence[int]) -> dict[int, str]:
    """The hash of each entry of ``chain`` at the given sequence numbers that exists."""
    out: dict[int, str] = {}
    for start in range(0, len(seqs), 500):
        part = list(seqs[start : start + 500])
        stmt = select(AuditEntry.seq, AuditEntry.hash).where(
            AuditEntry.chain == chain, AuditEntry.seq.in_(part)
        )
        out.update({int(seq): str(h) for seq, h in session.execute(stmt)})
    return out


def seq_bounds(session: Session, chain: str) -> tuple[int, int, int] | None:
    """The lowest and highest sequence numbers of ``chain`` and its entry count, or None."""
    stmt = select(func.min(AuditEntry.seq), func.max(AuditEntry.seq), func.count()).where(
        AuditEntry.chain == chain
    )
    low, high, count = session.execute(stmt).one()
    return None if low is None else (int(low), int(high), int(count))


def first_entry(session: Session, chain: str, seq: int) -> tuple[int, str] | None:
    """(seq, prev_hash) of the entry at ``seq``."""
    stmt = select(AuditEntry.seq, AuditEntry.prev_hash).where(
        AuditEntry.chain == chain, AuditEntry.seq == seq
    )
    row = session.execute(stmt).first()
    return None if row is None else (int(row[0]), str(row[1]))


def last_purge(session: Session, chain: str) -> str | None:
    """The detail of the chain's latest ``audit.purge`` entry, or None."""
    stmt = (
        select(AuditEntry.detail_json)
        .where(AuditEntry.chain == chain, AuditEntry.action == "audit.purge")
        .order_by(AuditEntry.seq.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def first_unexpired(
    session: Session, chain: str, *, log_cutoff: dt.datetime, personal_cutoff: dt.datetime
) -> int | None:
    """The lowest sequence number of ``chain`` whose entry is still within its retention."""
    kept = or_(
        and_(AuditEntry.personal.is_(True), AuditEntry.at >= personal_cutoff),
        and_(AuditEntry.personal.is_(False), AuditEntry.at >= log_cutoff),
    )
    stmt = select(func.min(AuditEntry.seq)).where(AuditEntry.chain == chain, kept)
    found = session.scalar(stmt)
    return None if found is None else int(found)


def insert_rows(
    conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` into the ledger's ``table`` straight through the driver: COPY on
    PostgreSQL, the driver's own executemany on SQLite.

    For the tables of persons (a batch job names millions): SQLAlchemy's executemany took 11 µs
    a row to pass on, the driver a third of that. ``table`` and ``columns`` are this module's
    callers' constants, never input.
    """
    dbapi: Any = conn.connection.dbapi_connection
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        with dbapi.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    cursor = dbapi.cursor()
    try:
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
    finally:
        cursor.close()


def delete_prefix(session: Session, chain: str, through_seq: int) -> int:
    """Delete the entries of ``chain`` up to ``through_seq`` and their subjects; return how many."""
    ids = select(AuditEntry.id).where(AuditEntry.chain == chain, AuditEntry.seq <= through_seq)
    session.execute(delete(AuditSubject).where(AuditSubject.entry_id.in_(ids)))
    session.execute(delete(AuditEntrySet).where(AuditEntrySet.entry_id.in_(ids)))
    result = session.execute(
        delete(AuditEntry).where(AuditEntry.chain == chain, AuditEntry.seq <= through_seq)
    )
    session.execute(
        delete(AuditCheckpoint).where(
            AuditCheckpoint.chain == chain, AuditCheckpoint.seq < through_seq
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def count_prefix(session: Session, chain: str, through_seq: int) -> int:
    stmt = select(func.count()).where(AuditEntry.chain == chain, AuditEntry.seq <= through_seq)
    return int(session.scalar(stmt) or 0)


# ---------------------------------------------------------------- listings


def visible_to_org(org_code: str) -> ColumnElement[bool]:
    """Entries an organisation sees: where it acted, or where its data was used."""
    return or_(AuditEntry.org_code == org_code, AuditEntry.provider_code == org_code)


def _filtered(stmt: Select[Any], f: Filters) -> Select[Any]:
    if f.org:
        stmt = stmt.where(AuditEntry.org_code == f.org)
    if f.provider:
        stmt = stmt.where(AuditEntry.provider_code == f.provider)
    if f.resource:
        stmt = stmt.where(AuditEntry.resource_code == f.resource)
    if f.action:
        if f.action.endswith("."):
            stmt = stmt.where(AuditEntry.action.startswith(f.action, autoescape=True))
        else:
            stmt = stmt.where(AuditEntry.action == f.action)
    if f.mode:
        stmt = stmt.where(AuditEntry.mode == f.mode)
    if f.outcome:
        stmt = stmt.where(AuditEntry.outcome == f.outcome)
    if f.since:
        stmt = stmt.where(AuditEntry.at >= f.since)
    if f.until:
        stmt = stmt.where(AuditEntry.at < f.until)
    if f.chain:
        stmt = stmt.where(AuditEntry.chain == f.chain)
    return stmt


def find_entries(
    session: Session,
    *,
    filters: Filters,
    visible: ColumnElement[bool] | None,
    before_id: int | None,
    limit: int,
) -> Sequence[AuditEntry]:
    """Entries matching ``filters`` that ``visible`` admits, newest first, below ``before_id``."""
    stmt = _filtered(select(AuditEntry), filters)
    if visible is not None:
        stmt = stmt.where(visible)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    return session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit)).all()


def stream_entries(
    session: Session, *, filters: Filters, visible: ColumnElement[bool] | None
) -> Iterator[AuditEntry]:
    """Every matching entry, oldest first, fetched in batches (for exports)."""
    stmt = _filtered(select(AuditEntry), filters)
    if visible is not None:
        stmt = stmt.where(visible)
    stmt = stmt.order_by(AuditEntry.id).execution_options(yield_per=2000)
    yield from session.scalars(stmt)


def entries_about(
    session: Session,
    token: str,
    *,
    pending_sets: Sequence[int] = (),
    before_id: int | None,
    limit: int,
) -> Sequence[AuditEntry]:
    """Entries whose subjects include ``token`` — named by the entry, or in a subject set the
    entry used (indexed, or one of ``pending_sets`` whose file holds it) — newest first."""
    named = select(AuditSubject.entry_id).where(AuditSubject.token == token)
    in_sets = select(AuditEntrySet.entry_id).where(
        AuditEntrySet.set_id.in_(select(AuditSetMember.set_id).where(AuditSetMember.token == token))
    )
    ids = union(named, in_sets)
    if pending_sets:
        ids = union(
            named, in_sets,
            select(AuditEntrySet.entry_id).where(AuditEntrySet.set_id.in_(pending_sets)),
        )  # fmt: skip
    stmt = select(AuditEntry).where(AuditEntry.id.in_(ids))
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    return session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit)).all()


# ---------------------------------------------------------------- statistics


def uses_expression() -> ColumnElement[int]:
    """Sharing uses of an entry: rows delivered, or subjects verified in ``verify`` mode."""
    return case((AuditEntry.mode == VERIFY_MODE, AuditEntry.subjects), else_=AuditEntry.rows)


def day_expression(dialect: str) -> ColumnElement[str]:
    """The entry's day on Asia/Shanghai clocks (UTC+8, no daylight saving) as YYYY-MM-DD."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("Asia/Shanghai", AuditEntry.at), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", AuditEntry.at, "+8 hours")


def sharing_uses(
    session: Session,
    *,
    key: ColumnElement[str] | ColumnElement[str | None],
    visible: ColumnElement[bool] | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    limit: int,
) -> list[tuple[str | None, int, int]]:
    """(key, uses, entries) of successful sharing entries grouped by ``key``."""
    uses = func.sum(uses_expression())
    stmt = (
        select(key.label("k"), uses.label("uses"), func.count().label("entries"))
        .where(AuditEntry.outcome == "ok")
        .where(AuditEntry.mode.in_((*ROW_MODES, VERIFY_MODE)))
        .group_by(key)
    )
    if visible is not None:
        stmt = stmt.where(visible)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    stmt = stmt.order_by(key).limit(limit)
    return [(k, int(u or 0), int(n)) for k, u, n in session.execute(stmt)]
