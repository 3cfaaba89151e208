"""Tables of the audit ledger — 审计日志: hash-chained entries, their subjects, signed checkpoints.

Each node appends to its own chain (DESIGN.md, "Past one machine"), so appends never queue
behind one global writer. An entry's hash covers its content and the previous entry's hash; a
checkpoint signs a chain's head with Ed25519 so that even a rewrite of every later hash is caught.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from haihe.core.db import Base, UTCDateTime, utcnow


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
    JSON column whose text a backend may rewrite.
    """

    __tablename__ = "audit_entries"
    __table_args__ = (
        UniqueConstraint("chain", "seq", name="uq_audit_entries_chain_seq"),
        Index("ix_audit_entries_resource_at", "resource_code", "at"),
        Index("ix_audit_entries_org_at", "org_code", "at"),
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


class AuditSubject(Base):
    """A person whose records an entry used, as a keyed pseudonym (never the raw ID number)."""

    __tablename__ = "audit_subjects"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("audit_entries.id", ondelete="CASCADE"), index=True
    )
    token: Mapped[str] = mapped_column(String(64), index=True)


class AuditCheckpoint(Base):
    """A chain's head at ``seq``, signed with the platform's Ed25519 key — 签名检查点."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = (UniqueConstraint("chain", "seq", name="uq_audit_checkpoints_chain_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
