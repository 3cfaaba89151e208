"""the working-day calendar belongs to the kit: exchange_calendar → calendar_days

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21

The table moved with its model from the exchange domain to ``haihe.core.calendar``, since the
portal and governance count working days too. Rows are kept; only names change.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.rename_table("exchange_calendar", "calendar_days")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE calendar_days RENAME CONSTRAINT pk_exchange_calendar TO pk_calendar_days"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE calendar_days RENAME CONSTRAINT pk_calendar_days TO pk_exchange_calendar"
        )
    op.rename_table("calendar_days", "exchange_calendar")
