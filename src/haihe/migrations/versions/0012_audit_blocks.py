"""audit blocks — a signed checkpoint seals the entries since the one before by one digest

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-21

Verifying hashed every entry one by one: on PostgreSQL one SHA-256 call costs more than reading
the entry (OpenSSL's set-up per call), which kept a verifier under a million entries a second
on two cores. A checkpoint now also signs the digest of its block of entries (first_seq..seq),
so a verifier checks a sealed block with one hash over it. Earlier checkpoints keep both empty:
their entries are verified one by one, as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("block_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.drop_column("block_digest")
        batch_op.drop_column("first_seq")
