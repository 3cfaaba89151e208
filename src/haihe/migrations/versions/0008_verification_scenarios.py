"""verification scenarios — jobs of a rule or scenario, their engine and score (verification_jobs)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("verification_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="rule")
        )
        batch_op.add_column(
            sa.Column("engine", sa.String(length=16), nullable=False, server_default="duckdb")
        )
        batch_op.add_column(sa.Column("score", sa.JSON(), nullable=True))
    with op.batch_alter_table("verification_jobs", schema=None) as batch_op:
        batch_op.alter_column("kind", server_default=None)
        batch_op.alter_column("engine", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("verification_jobs", schema=None) as batch_op:
        batch_op.drop_column("score")
        batch_op.drop_column("engine")
        batch_op.drop_column("kind")
