"""open-data portal — datasets, applications, usage (tables portal_*)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import haihe.core.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "portal_api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_on", sa.Date(), nullable=True),
        sa.Column("revoked_at", haihe.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_portal_api_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_api_keys")),
        sa.UniqueConstraint("digest", name=op.f("uq_portal_api_keys_digest")),
    )
    with op.batch_alter_table("portal_api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_portal_api_keys_user_id"), ["user_id"], unique=False)

    op.create_table(
        "portal_datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("resource_uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("title_zh", sa.String(length=200), nullable=False),
        sa.Column("title_en", sa.String(length=300), nullable=True),
        sa.Column("notes_zh", sa.Text(), nullable=False),
        sa.Column("notes_en", sa.Text(), nullable=True),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=32), nullable=False),
        sa.Column(
            "open_type",
            sa.Enum(
                "unconditional",
                "conditional",
                "not_open",
                name="open_type",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("licence_id", sa.String(length=64), nullable=False),
        sa.Column(
            "update_frequency",
            sa.Enum(
                "realtime",
                "daily",
                "weekly",
                "monthly",
                "quarterly",
                "yearly",
                "irregular",
                name="update_cycle",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("view", sa.JSON(), nullable=False),
        sa.Column("terms", sa.Text(), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "active", "withdrawn", name="portal_dataset_state", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("source_version", sa.Integer(), nullable=True),
        sa.Column("data_version", sa.Integer(), nullable=True),
        sa.Column("row_count", sa.Integer(), nullable=True),
        sa.Column("data_bytes", sa.BigInteger(), nullable=True),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("formats", sa.String(length=64), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("views_total", sa.Integer(), nullable=False),
        sa.Column("downloads_total", sa.Integer(), nullable=False),
        sa.Column("api_calls_total", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("data_updated_at", haihe.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_portal_datasets_org_id_organisations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["catalogue_resources.id"],
            name=op.f("fk_portal_datasets_resource_id_catalogue_resources"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_datasets")),
        sa.UniqueConstraint("name", name=op.f("uq_portal_datasets_name")),
        sa.UniqueConstraint("resource_uuid", name=op.f("uq_portal_datasets_resource_uuid")),
        sa.UniqueConstraint("uuid", name=op.f("uq_portal_datasets_uuid")),
    )
    with op.batch_alter_table("portal_datasets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_portal_datasets_modified_at"), ["modified_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_portal_datasets_open_type"), ["open_type"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_portal_datasets_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_portal_datasets_resource_id"), ["resource_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_portal_datasets_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_portal_datasets_topic"), ["topic"], unique=False)

    op.create_table(
        "portal_applications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("accepted_terms", sa.Boolean(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "approved",
                "refused",
                "withdrawn",
                name="portal_application_status",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("submitted_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("decided_at", haihe.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["portal_datasets.id"],
            name=op.f("fk_portal_applications_dataset_id_portal_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_portal_applications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_applications")),
    )
    with op.batch_alter_table("portal_applications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_portal_applications_dataset_id"), ["dataset_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_portal_applications_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_portal_applications_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "portal_dataset_tags",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["portal_datasets.id"],
            name=op.f("fk_portal_dataset_tags_dataset_id_portal_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "tag", name=op.f("pk_portal_dataset_tags")),
    )
    with op.batch_alter_table("portal_dataset_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_portal_dataset_tags_tag"), ["tag"], unique=False)

    op.create_table(
        "portal_usage",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.Column("downloads", sa.Integer(), nullable=False),
        sa.Column("api_calls", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["portal_datasets.id"],
            name=op.f("fk_portal_usage_dataset_id_portal_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "day", name=op.f("pk_portal_usage")),
    )
    with op.batch_alter_table("portal_usage", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_portal_usage_day"), ["day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("portal_usage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_portal_usage_day"))

    op.drop_table("portal_usage")
    with op.batch_alter_table("portal_dataset_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_portal_dataset_tags_tag"))

    op.drop_table("portal_dataset_tags")
    with op.batch_alter_table("portal_applications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_portal_applications_user_id"))
        batch_op.drop_index(batch_op.f("ix_portal_applications_status"))
        batch_op.drop_index(batch_op.f("ix_portal_applications_dataset_id"))

    op.drop_table("portal_applications")
    with op.batch_alter_table("portal_datasets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_portal_datasets_topic"))
        batch_op.drop_index(batch_op.f("ix_portal_datasets_state"))
        batch_op.drop_index(batch_op.f("ix_portal_datasets_resource_id"))
        batch_op.drop_index(batch_op.f("ix_portal_datasets_org_id"))
        batch_op.drop_index(batch_op.f("ix_portal_datasets_open_type"))
        batch_op.drop_index(batch_op.f("ix_portal_datasets_modified_at"))

    op.drop_table("portal_datasets")
    with op.batch_alter_table("portal_api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_portal_api_keys_user_id"))

    op.drop_table("portal_api_keys")
