"""audit subject sets — a batch job's persons kept once for all its entries

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-21

A batch job's chunk was audited by one entry per source, each naming every person checked: a
pension certification of 3 million people wrote 50 million subject rows. The persons are now
kept once per chunk as a subject set, which the entries point at (audit_entry_sets) and whose
size and digest their hashes cover; the members are indexed for the citizen's view afterwards.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import haihe.core.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_subject_sets",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("created_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("indexed_rows", sa.BigInteger(), nullable=False),
        sa.Column("indexed_at", haihe.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_subject_sets")),
        sa.UniqueConstraint("digest", name=op.f("uq_audit_subject_sets_digest")),
    )
    with op.batch_alter_table("audit_subject_sets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_subject_sets_indexed_at"), ["indexed_at"], unique=False
        )

    op.create_table(
        "audit_entry_sets",
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("set_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["audit_entries.id"],
            name=op.f("fk_audit_entry_sets_entry_id_audit_entries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["set_id"],
            ["audit_subject_sets.id"],
            name=op.f("fk_audit_entry_sets_set_id_audit_subject_sets"),
        ),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_audit_entry_sets")),
    )
    with op.batch_alter_table("audit_entry_sets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_entry_sets_set_id"), ["set_id"], unique=False)

    op.create_table(
        "audit_set_members",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("set_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["set_id"],
            ["audit_subject_sets.id"],
            name=op.f("fk_audit_set_members_set_id_audit_subject_sets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token", "set_id", name=op.f("pk_audit_set_members")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("audit_set_members")
    with op.batch_alter_table("audit_entry_sets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_entry_sets_set_id"))

    op.drop_table("audit_entry_sets")
    with op.batch_alter_table("audit_subject_sets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_subject_sets_indexed_at"))

    op.drop_table("audit_subject_sets")
