"""catalogue: resources, items, relations, loads, changes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 04:13:20.090792
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import haihe.core.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalogue_resources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("classification_code", sa.String(length=16), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("name_zh", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=300), nullable=True),
        sa.Column("summary_zh", sa.Text(), nullable=False),
        sa.Column("summary_en", sa.Text(), nullable=True),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column(
            "base_library",
            sa.Enum(
                "population",
                "legal_entity",
                "geospatial",
                "social_credit",
                "e_licence",
                name="base_library",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("topic", sa.String(length=64), nullable=True),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column(
            "sharing_type",
            sa.Enum(
                "unconditional",
                "conditional",
                "not_shared",
                name="sharing_type",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("sharing_conditions", sa.Text(), nullable=True),
        sa.Column("legal_basis", sa.Text(), nullable=True),
        sa.Column("sharing_modes", sa.JSON(), nullable=False),
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
        sa.Column("open_conditions", sa.Text(), nullable=True),
        sa.Column(
            "update_cycle",
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
        sa.Column("published_on", sa.Date(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "published",
                "retired",
                name="resource_status",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("steward_name", sa.String(length=100), nullable=True),
        sa.Column("steward_contact", sa.String(length=200), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=True),
        sa.Column("row_count", sa.Integer(), nullable=True),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["organisations.id"],
            name=op.f("fk_catalogue_resources_provider_id_organisations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_resources")),
        sa.UniqueConstraint("code", name=op.f("uq_catalogue_resources_code")),
    )
    with op.batch_alter_table("catalogue_resources", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_catalogue_resources_base_library"), ["base_library"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_catalogue_resources_classification_code"),
            ["classification_code"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_catalogue_resources_open_type"), ["open_type"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_catalogue_resources_provider_id"), ["provider_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_catalogue_resources_sharing_type"), ["sharing_type"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_catalogue_resources_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_catalogue_resources_topic"), ["topic"], unique=False)

    op.create_table(
        "catalogue_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["catalogue_resources.id"],
            name=op.f("fk_catalogue_changes_resource_id_catalogue_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_changes")),
    )
    with op.batch_alter_table("catalogue_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_catalogue_changes_resource_id"), ["resource_id"], unique=False
        )

    op.create_table(
        "catalogue_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=True),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("is_key", sa.Boolean(), nullable=False),
        sa.Column("nullable", sa.Boolean(), nullable=False),
        sa.Column(
            "sensitivity",
            sa.Enum("L1", "L2", "L3", "L4", name="sensitivity", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("personal", sa.Boolean(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "id_number",
                "name",
                "phone",
                "address",
                "uscc",
                "plate",
                "generic",
                name="item_kind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("description", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["catalogue_resources.id"],
            name=op.f("fk_catalogue_items_resource_id_catalogue_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_items")),
        sa.UniqueConstraint("resource_id", "name", name=op.f("uq_catalogue_items_resource_id")),
    )
    with op.batch_alter_table("catalogue_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_catalogue_items_resource_id"), ["resource_id"], unique=False
        )

    op.create_table(
        "catalogue_loads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum("succeeded", "failed", name="load_status", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("source", sa.JSON(), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("rows_accepted", sa.Integer(), nullable=False),
        sa.Column("rows_rejected", sa.Integer(), nullable=False),
        sa.Column("rejects_path", sa.String(length=500), nullable=True),
        sa.Column("checksum", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("started_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", haihe.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["catalogue_resources.id"],
            name=op.f("fk_catalogue_loads_resource_id_catalogue_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_loads")),
    )
    with op.batch_alter_table("catalogue_loads", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_catalogue_loads_resource_id"), ["resource_id"], unique=False
        )

    op.create_table(
        "catalogue_relations",
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("related_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["related_id"],
            ["catalogue_resources.id"],
            name=op.f("fk_catalogue_relations_related_id_catalogue_resources"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["catalogue_resources.id"],
            name=op.f("fk_catalogue_relations_resource_id_catalogue_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("resource_id", "related_id", name=op.f("pk_catalogue_relations")),
    )


def downgrade() -> None:
    op.drop_table("catalogue_relations")
    with op.batch_alter_table("catalogue_loads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalogue_loads_resource_id"))

    op.drop_table("catalogue_loads")
    with op.batch_alter_table("catalogue_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalogue_items_resource_id"))

    op.drop_table("catalogue_items")
    with op.batch_alter_table("catalogue_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalogue_changes_resource_id"))

    op.drop_table("catalogue_changes")
    with op.batch_alter_table("catalogue_resources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalogue_resources_topic"))
        batch_op.drop_index(batch_op.f("ix_catalogue_resources_status"))
        batch_op.drop_index(batch_op.f("ix_catalogue_resources_sharing_type"))
        batch_op.drop_index(batch_op.f("ix_catalogue_resources_provider_id"))
        batch_op.drop_index(batch_op.f("ix_catalogue_resources_open_type"))
        batch_op.drop_index(batch_op.f("ix_catalogue_resources_classification_code"))
        batch_op.drop_index(batch_op.f("ix_catalogue_resources_base_library"))

    op.drop_table("catalogue_resources")
