"""Tables of the audit ledger — 审计日志: hash-chained entries, their subjects, signed checkpoints.

Each node appends to its own chain (DESIGN.md, "Past one machine"), so appends never queue
behind one global writer. An entry's hash covers its content and the previous entry's hash; a
checkpoint signs a chain's head with Ed25519 so that even a rewrite of every later hash is caught.
An entry keeps the canonical text its hash covers (``body``), held to its columns by the database.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import ColumnElement

from haihe.core.db import Base, UTCDateTime, utcnow

# The text an entry's hash covers joins these columns, in this order, by SEP (chain.py: how each
# value prints and how the hash links entries). The table keeps that text as ``body``.
SEP = "\x1f"
HASHED_FIELDS = (
    "chain",
    "seq",
    "at",
    "action",
    "outcome",
    "actor_kind",
    "actor_id",
    "actor_name",
    "org_code",
    "system_id",
    "resource_code",
    "provider_code",
    "items_json",
    "purpose",
    "mode",
    "rows",
    "subjects",
    "subjects_digest",
    "personal",
    "request_id",
    "detail_json",
)


def body_sql(dialect: str) -> str:
    """SQL building an entry's body from its columns, byte for byte as ``chain.body`` does.

    One ``printf``/``format`` call (NULL prints as the empty string on both backends) is
    several times faster than concatenating the fields one by one. SQLite stores the time as
    the chain's own text and a boolean as 1/0, so both go in as stored; PostgreSQL prints them.
    It is the body column's generation expression on SQLite and its CHECK constraint's on
    PostgreSQL, written as PostgreSQL prints it back (``timezone()``, not ``AT TIME ZONE``) so
    that verify can compare the two.
    """
    args = []
    for name in HASHED_FIELDS:
        if name == "at" and dialect != "sqlite":
            args.append("to_char(timezone('UTC', at), 'YYYY-MM-DD HH24:MI:SS.US')")
        elif name == "personal" and dialect != "sqlite":
            args.append("CASE WHEN personal THEN 1 ELSE 0 END")
        else:
            args.append(name)
    template = SEP.join(["%s"] * len(args))
    function = "printf" if dialect == "sqlite" else "format"
    return f"{function}('{template}', {', '.join(args)})"


class _SQLiteText(ColumnElement[str]):
    """The body's generation expression, which only SQLite has (see ``_SQLiteGenerated``)."""

    inherit_cache = True


class _SQLiteGenerated(Computed):
    """A STORED generated column on SQLite, a plain column elsewhere.

    PostgreSQL refuses ``format()`` and ``to_char()`` in a generated column (they are not
    immutable), so there the column is plain, written by the app and held to the same text by
    a CHECK constraint. Rendered as nothing on PostgreSQL, the model builds and compares (alembic
    autogenerate) as the migrations made each backend; on SQLite the ORM leaves the column out
    of its INSERTs and UPDATEs, as it must.
    """

    def __init__(self) -> None:
        super().__init__(_SQLiteText(), persisted=True)


@compiles(_SQLiteText)
def _sqlite_text(element: _SQLiteText, compiler: Any, **kw: Any) -> str:
    return body_sql("sqlite")


@compiles(_SQLiteText, "postgresql")
@compiles(_SQLiteGenerated, "postgresql")
def _nothing(element: Any, compiler: Any, **kw: Any) -> str:
    return ""


class AuditChain(Base):
    """The head of one node's chain: the next sequence number and the last entry's hash."""

    __tablename__ = "audit_chains"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_seq: Mapped[int] = mapped_column(BigInteger, default=1)
    head_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(Base):
    """One use or decision — 审计记录: who did what to which resource, when, why, with what result.

    ``items_json`` and ``detail_json`` hold canonical JSON text (what the hash covers), not a
    JSON column whose text a backend may rewrite. ``body`` is the text the hash covers
    (``chain.body``): SQLite generates it from the columns; on PostgreSQL the app writes it and
    the CHECK constraint ``ck_audit_entries_body`` refuses any row where it differs. Verifying
    hashes ``body``; ``haihe audit verify`` checks that this guard is in place. On SQLite, never
    rebuild this table by dropping it (alembic's batch mode does): the connection enforces
    foreign keys, and the drop would cascade to every row that points at an entry (migration
    0010 shows how to rebuild it).
    """

    __tablename__ = "audit_entries"
    __table_args__ = (
        UniqueConstraint("chain", "seq", name="uq_audit_entries_chain_seq"),
        Index("ix_audit_entries_resource_at", "resource_code", "at"),
        Index("ix_audit_entries_org_at", "org_code", "at"),
        CheckConstraint(f"body = {body_sql('postgresql')}", name="body").ddl_if(
            dialect="postgresql"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    chain: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int] = mapped_column(Integer)
    actor_name: Mapped[str] = mapped_column(String(200))
    org_code: Mapped[str | None] = mapped_column(String(64))
    system_id: Mapped[int | None] = mapped_column(Integer)
    resource_code: Mapped[str | None] = mapped_column(String(64))
    provider_code: Mapped[str | None] = mapped_column(String(64), index=True)
    items_json: Mapped[str] = mapped_column(Text, default="[]")
    purpose: Mapped[str | None] = mapped_column(Text)
    mode: Mapped[str | None] = mapped_column(String(16))
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    subjects: Mapped[int] = mapped_column(BigInteger, default=0)
    subjects_digest: Mapped[str | None] = mapped_column(String(64))
    personal: Mapped[bool] = mapped_column(Boolean, default=False)
    request_id: Mapped[str | None] = mapped_column(String(64))
    detail_json: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # deferred: listings and exports read the columns; only verification reads the text
    body: Mapped[str] = mapped_column(Text, _SQLiteGenerated(), deferred=True)


class AuditSubject(Base):
    """A person whose records an entry used, as a keyed pseudonym (never the raw ID number)."""

    __tablename__ = "audit_subjects"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("audit_entries.id", ondelete="CASCADE"), index=True
    )
    token: Mapped[str] = mapped_column(String(64), index=True)


class AuditCheckpoint(Base):
    """A chain's entry at ``seq``, signed with the platform's Ed25519 key — 签名检查点.

    Since migration 0012 a checkpoint also seals its block, the entries ``first_seq``..``seq``
    (``chain.BLOCK`` at most), by their digest (``chain.block_digest``), which the signature
    covers; both are empty on earlier checkpoints, and on one made while those entries did not
    verify.
    """

    __tablename__ = "audit_checkpoints"
    __table_args__ = (UniqueConstraint("chain", "seq", name="uq_audit_checkpoints_chain_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    first_seq: Mapped[int | None] = mapped_column(BigInteger, default=None)
    block_digest: Mapped[str | None] = mapped_column(String(64), default=None)


class AuditSubjectSet(Base):
    """The persons a batch verification checked — 核验对象集合 — kept once for every entry
    that used them.

    A batch job's chunk names up to a quarter of a million people and is audited by one entry
    per source it read: naming them per entry wrote millions of rows per job. The entries carry
    the set's size and digest (so their hashes cover it) and point at the set
    (``AuditEntrySet``). The members are written with the job as a file of sorted pseudonyms,
    then moved into ``audit_set_members`` in slices by a background task (``indexed_rows`` of
    them so far; ``indexed_at`` once all are in), so a long index never holds the ledger's
    writers; until then the citizen's view searches the file.
    """

    __tablename__ = "audit_subject_sets"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    count: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    indexed_rows: Mapped[int] = mapped_column(BigInteger, default=0)
    indexed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)


class AuditSetMember(Base):
    """One person of a subject set, as a keyed pseudonym.

    The primary key (token, set) is the only index: the citizen's view looks a token up; a
    purge deleting a whole set scans (it runs rarely, at night). On SQLite the table has no
    row ids, so the key is the table.
    """

    __tablename__ = "audit_set_members"
    __table_args__ = {"sqlite_with_rowid": False}

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    set_id: Mapped[int] = mapped_column(
        ForeignKey("audit_subject_sets.id", ondelete="CASCADE"), primary_key=True
    )


class AuditEntrySet(Base):
    """Which subject set an entry used (an entry names its subjects one way or the other)."""

    __tablename__ = "audit_entry_sets"

    entry_id: Mapped[int] = mapped_column(
        ForeignKey("audit_entries.id", ondelete="CASCADE"), primary_key=True
    )
    set_id: Mapped[int] = mapped_column(ForeignKey("audit_subject_sets.id"), index=True)
