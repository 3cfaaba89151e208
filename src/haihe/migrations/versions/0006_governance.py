"""grid governance — grids, events, workflow, whistles (tables governance_*)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import haihe.core.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "governance_categories",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=100), nullable=False),
        sa.Column("group_zh", sa.String(length=100), nullable=True),
        sa.Column("group_en", sa.String(length=100), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("keywords", sa.String(length=300), nullable=True),
        sa.Column(
            "level",
            sa.Enum(
                "city",
                "district",
                "street",
                "community",
                "cell",
                name="governance_area_level",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("department_code", sa.String(length=64), nullable=True),
        sa.Column("deadline_hours", sa.Integer(), nullable=True),
        sa.Column("deadline_working_days", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_governance_categories")),
    )
    op.create_table(
        "governance_grid_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_grid_revision")),
    )
    op.create_table(
        "governance_areas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "level",
            sa.Enum(
                "city",
                "district",
                "street",
                "community",
                "cell",
                name="governance_area_level",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("name_zh", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=True),
        sa.Column("org_id", sa.Integer(), nullable=True),
        sa.Column("district_id", sa.Integer(), nullable=True),
        sa.Column("street_id", sa.Integer(), nullable=True),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column("geometry", sa.Text(), nullable=False),
        sa.Column("min_lng", sa.Float(), nullable=False),
        sa.Column("min_lat", sa.Float(), nullable=False),
        sa.Column("max_lng", sa.Float(), nullable=False),
        sa.Column("max_lat", sa.Float(), nullable=False),
        sa.Column("centre_lng", sa.Float(), nullable=False),
        sa.Column("centre_lat", sa.Float(), nullable=False),
        sa.Column("created_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_governance_areas_org_id_organisations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["governance_areas.id"],
            name=op.f("fk_governance_areas_parent_id_governance_areas"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_areas")),
        sa.UniqueConstraint("code", name=op.f("uq_governance_areas_code")),
    )
    with op.batch_alter_table("governance_areas", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_areas_community_id"), ["community_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_governance_areas_district_id"), ["district_id"], unique=False
        )
        batch_op.create_index("ix_governance_areas_level_code", ["level", "code"], unique=False)
        batch_op.create_index(batch_op.f("ix_governance_areas_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_governance_areas_parent_id"), ["parent_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_governance_areas_street_id"), ["street_id"], unique=False
        )

    op.create_table(
        "governance_cell_workers",
        sa.Column("cell_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("assigned_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cell_id"],
            ["governance_areas.id"],
            name=op.f("fk_governance_cell_workers_cell_id_governance_areas"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_governance_cell_workers_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cell_id", "user_id", name=op.f("pk_governance_cell_workers")),
    )
    with op.batch_alter_table("governance_cell_workers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_cell_workers_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "governance_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column(
            "source",
            sa.Enum(
                "resident",
                "grid_worker",
                "hotline_12345",
                "sensor",
                "platform",
                name="governance_source",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("category_code", sa.String(length=32), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "reported",
                "accepted",
                "dispatched",
                "in_progress",
                "returned",
                "escalated",
                "resolved",
                "evaluated",
                "closed",
                name="governance_status",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("lng", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("cell_id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column("street_id", sa.Integer(), nullable=True),
        sa.Column("district_id", sa.Integer(), nullable=True),
        sa.Column(
            "level",
            sa.Enum(
                "city",
                "district",
                "street",
                "community",
                "cell",
                name="governance_area_level",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("command_code", sa.String(length=64), nullable=True),
        sa.Column("unit_code", sa.String(length=64), nullable=True),
        sa.Column(
            "unit_level",
            sa.Enum(
                "city",
                "district",
                "street",
                "community",
                "cell",
                name="governance_area_level",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("reporter_user_id", sa.Integer(), nullable=True),
        sa.Column("reporter_client_id", sa.Integer(), nullable=True),
        sa.Column("reporter_name", sa.String(length=100), nullable=True),
        sa.Column("reporter_contact", sa.String(length=100), nullable=True),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("due_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reminded_at", haihe.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("overdue", sa.Boolean(), nullable=False),
        sa.Column("supervised", sa.Boolean(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("feedback", sa.Text(), nullable=True),
        sa.Column("reopened", sa.Integer(), nullable=False),
        sa.Column("status_note", sa.Text(), nullable=True),
        sa.Column("created_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", haihe.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", haihe.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("changed_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_code"],
            ["governance_categories.code"],
            name=op.f("fk_governance_events_category_code_governance_categories"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["cell_id"],
            ["governance_areas.id"],
            name=op.f("fk_governance_events_cell_id_governance_areas"),
        ),
        sa.ForeignKeyConstraint(
            ["reporter_client_id"],
            ["api_clients.id"],
            name=op.f("fk_governance_events_reporter_client_id_api_clients"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["reporter_user_id"],
            ["users.id"],
            name=op.f("fk_governance_events_reporter_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_events")),
        sa.UniqueConstraint("token", name=op.f("uq_governance_events_token")),
    )
    with op.batch_alter_table("governance_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_events_category_code"), ["category_code"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_governance_events_cell_id"), ["cell_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_governance_events_command_code"), ["command_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_governance_events_community_id"), ["community_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_governance_events_changed_at"), ["changed_at"], unique=False
        )
        batch_op.create_index("ix_governance_events_created", ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_governance_events_district_id"), ["district_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_governance_events_reporter_user_id"), ["reporter_user_id"], unique=False
        )
        batch_op.create_index("ix_governance_events_status_due", ["status", "due_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_governance_events_street_id"), ["street_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_governance_events_unit_code"), ["unit_code"], unique=False
        )

    op.create_table(
        "governance_open311_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column(
            "source",
            sa.Enum(
                "resident",
                "grid_worker",
                "hotline_12345",
                "sensor",
                "platform",
                name="governance_source",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", haihe.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["api_clients.id"],
            name=op.f("fk_governance_open311_keys_client_id_api_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_open311_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_governance_open311_keys_key_hash")),
    )
    op.create_table(
        "governance_event_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column(
            "from_status",
            sa.Enum(
                "reported",
                "accepted",
                "dispatched",
                "in_progress",
                "returned",
                "escalated",
                "resolved",
                "evaluated",
                "closed",
                name="governance_status",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column(
            "to_status",
            sa.Enum(
                "reported",
                "accepted",
                "dispatched",
                "in_progress",
                "returned",
                "escalated",
                "resolved",
                "evaluated",
                "closed",
                name="governance_status",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "level",
            sa.Enum(
                "city",
                "district",
                "street",
                "community",
                "cell",
                name="governance_area_level",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("unit_code", sa.String(length=64), nullable=True),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_name", sa.String(length=100), nullable=False),
        sa.Column("actor_org", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["governance_events.id"],
            name=op.f("fk_governance_event_steps_event_id_governance_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_event_steps")),
        sa.UniqueConstraint("event_id", "seq", name=op.f("uq_governance_event_steps_event_id")),
    )
    with op.batch_alter_table("governance_event_steps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_event_steps_event_id"), ["event_id"], unique=False
        )

    op.create_table(
        "governance_photos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["governance_events.id"],
            name=op.f("fk_governance_photos_event_id_governance_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_photos")),
    )
    with op.batch_alter_table("governance_photos", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_photos_event_id"), ["event_id"], unique=False
        )

    op.create_table(
        "governance_whistles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("street_code", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("blown_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["governance_events.id"],
            name=op.f("fk_governance_whistles_event_id_governance_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_whistles")),
    )
    with op.batch_alter_table("governance_whistles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_whistles_event_id"), ["event_id"], unique=False
        )

    op.create_table(
        "governance_summons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("whistle_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("department_code", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "summoned", "reported", name="governance_summons", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("due_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reminded_at", haihe.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("overdue", sa.Boolean(), nullable=False),
        sa.Column("supervised", sa.Boolean(), nullable=False),
        sa.Column("report", sa.Text(), nullable=True),
        sa.Column("reported_by", sa.String(length=100), nullable=True),
        sa.Column("reported_at", haihe.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["governance_events.id"],
            name=op.f("fk_governance_summons_event_id_governance_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["whistle_id"],
            ["governance_whistles.id"],
            name=op.f("fk_governance_summons_whistle_id_governance_whistles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_summons")),
        sa.UniqueConstraint(
            "whistle_id", "department_code", name=op.f("uq_governance_summons_whistle_id")
        ),
    )
    with op.batch_alter_table("governance_summons", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_summons_department_code"), ["department_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_governance_summons_event_id"), ["event_id"], unique=False
        )
        batch_op.create_index(
            "ix_governance_summons_status_due", ["status", "due_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_governance_summons_whistle_id"), ["whistle_id"], unique=False
        )

    op.create_table(
        "governance_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "reminder",
                "overdue",
                "supervision",
                "summons",
                name="governance_notice",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("org_code", sa.String(length=64), nullable=True),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("summons_id", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", haihe.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["governance_events.id"],
            name=op.f("fk_governance_notifications_event_id_governance_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["summons_id"],
            ["governance_summons.id"],
            name=op.f("fk_governance_notifications_summons_id_governance_summons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_notifications")),
    )
    with op.batch_alter_table("governance_notifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_notifications_event_id"), ["event_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_governance_notifications_org_code"), ["org_code"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("governance_notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_governance_notifications_org_code"))
        batch_op.drop_index(batch_op.f("ix_governance_notifications_event_id"))

    op.drop_table("governance_notifications")
    with op.batch_alter_table("governance_summons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_governance_summons_whistle_id"))
        batch_op.drop_index("ix_governance_summons_status_due")
        batch_op.drop_index(batch_op.f("ix_governance_summons_event_id"))
        batch_op.drop_index(batch_op.f("ix_governance_summons_department_code"))

    op.drop_table("governance_summons")
    with op.batch_alter_table("governance_whistles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_governance_whistles_event_id"))

    op.drop_table("governance_whistles")
    with op.batch_alter_table("governance_photos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_governance_photos_event_id"))

    op.drop_table("governance_photos")
    with op.batch_alter_table("governance_event_steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_governance_event_steps_event_id"))

    op.drop_table("governance_event_steps")
    op.drop_table("governance_open311_keys")
    with op.batch_alter_table("governance_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_governance_events_unit_code"))
        batch_op.drop_index(batch_op.f("ix_governance_events_street_id"))
        batch_op.drop_index("ix_governance_events_status_due")
        batch_op.drop_index(batch_op.f("ix_governance_events_reporter_user_id"))
        batch_op.drop_index(batch_op.f("ix_governance_events_district_id"))
        batch_op.drop_index("ix_governance_events_created")
        batch_op.drop_index(batch_op.f("ix_governance_events_community_id"))
        batch_op.drop_index(batch_op.f("ix_governance_events_command_code"))
        batch_op.drop_index(batch_op.f("ix_governance_events_changed_at"))
        batch_op.drop_index(batch_op.f("ix_governance_events_cell_id"))
        batch_op.drop_index(batch_op.f("ix_governance_events_category_code"))

    op.drop_table("governance_events")
    with op.batch_alter_table("governance_cell_workers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_governance_cell_workers_user_id"))

    op.drop_table("governance_cell_workers")
    with op.batch_alter_table("governance_areas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_governance_areas_street_id"))
        batch_op.drop_index(batch_op.f("ix_governance_areas_parent_id"))
        batch_op.drop_index(batch_op.f("ix_governance_areas_org_id"))
        batch_op.drop_index("ix_governance_areas_level_code")
        batch_op.drop_index(batch_op.f("ix_governance_areas_district_id"))
        batch_op.drop_index(batch_op.f("ix_governance_areas_community_id"))

    op.drop_table("governance_areas")
    op.drop_table("governance_grid_revision")
    op.drop_table("governance_categories")
