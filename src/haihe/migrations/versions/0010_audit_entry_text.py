"""audit entries keep their canonical text: audit_entries.body, held to the columns by the database

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22

Verifying the ledger hashed a text the database printed from 21 columns per entry; it now hashes
the text stored beside them. The database keeps the two in step itself. On SQLite ``body`` is a
STORED generated column: SQLite cannot add one to a table, so the table is rebuilt (row ids,
indexes and constraints kept). ``audit_subjects`` is rebuilt with it: dropping the old
``audit_entries`` while its foreign key pointed there would cascade-delete every subject (the
connection enforces foreign keys, and cannot stop inside the migration's transaction). On
PostgreSQL ``format()`` and ``to_char()`` are not immutable, so ``body`` is a plain column,
filled here and then held by a CHECK constraint; the app writes it on insert. Both rewrite every
entry once: on a large PostgreSQL ledger, VACUUM audit_entries afterwards.

The expressions are copied from haihe.audit.chain.body_sql as they were when this migration was
written (the hash format never changes), so that it stays the same if that module does.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import haihe.core.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEMPLATE = "\x1f".join(["%s"] * 21)
BODY_SQLITE = (
    f"printf('{_TEMPLATE}', chain, seq, at, action, outcome, actor_kind, actor_id, actor_name, "
    "org_code, system_id, resource_code, provider_code, items_json, purpose, mode, rows, "
    "subjects, subjects_digest, personal, request_id, detail_json)"
)
BODY_POSTGRESQL = (
    f"format('{_TEMPLATE}', chain, seq, to_char(timezone('UTC', at), 'YYYY-MM-DD HH24:MI:SS.US'), "
    "action, outcome, actor_kind, actor_id, actor_name, org_code, system_id, resource_code, "
    "provider_code, items_json, purpose, mode, rows, subjects, subjects_digest, "
    "CASE WHEN personal THEN 1 ELSE 0 END, request_id, detail_json)"
)
ENTRY_COLUMNS = (
    "id, chain, seq, at, action, outcome, actor_kind, actor_id, actor_name, org_code, system_id, "
    "resource_code, provider_code, items_json, purpose, mode, rows, subjects, subjects_digest, "
    "personal, request_id, detail_json, prev_hash, hash"
)
ENTRY_INDEXES = (
    ("ix_audit_entries_action", ["action"]),
    ("ix_audit_entries_at", ["at"]),
    ("ix_audit_entries_org_at", ["org_code", "at"]),
    ("ix_audit_entries_provider_code", ["provider_code"]),
    ("ix_audit_entries_resource_at", ["resource_code", "at"]),
)
SUBJECT_INDEXES = (
    ("ix_audit_subjects_entry_id", ["entry_id"]),
    ("ix_audit_subjects_token", ["token"]),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(with_body=True)
        return
    op.add_column("audit_entries", sa.Column("body", sa.Text(), nullable=True))
    op.execute(sa.text(f"UPDATE audit_entries SET body = {BODY_POSTGRESQL}"))
    op.alter_column("audit_entries", "body", existing_type=sa.Text(), nullable=False)
    op.execute(
        sa.text(
            "ALTER TABLE audit_entries ADD CONSTRAINT ck_audit_entries_body "
            f"CHECK (body = {BODY_POSTGRESQL})"
        )
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(with_body=False)
        return
    op.execute("ALTER TABLE audit_entries DROP CONSTRAINT ck_audit_entries_body")
    op.drop_column("audit_entries", "body")


def _rebuild_sqlite(*, with_body: bool) -> None:
    """Rebuild audit_entries (with or without the generated body) and audit_subjects.

    New tables first, rows copied with their ids, the old subjects dropped before the old
    entries (so that no foreign key points at the entries dropped), then the new ones renamed:
    renaming the new entries table rewrites the new subjects' reference to it.
    """
    _create_entries("_audit_entries_new", with_body=with_body)
    op.execute(
        f"INSERT INTO _audit_entries_new ({ENTRY_COLUMNS}) SELECT {ENTRY_COLUMNS} "
        "FROM audit_entries ORDER BY id"
    )
    _create_subjects("_audit_subjects_new", entries="_audit_entries_new")
    op.execute(
        "INSERT INTO _audit_subjects_new (id, entry_id, token) "
        "SELECT id, entry_id, token FROM audit_subjects ORDER BY id"
    )
    op.drop_table("audit_subjects")
    op.drop_table("audit_entries")
    op.rename_table("_audit_entries_new", "audit_entries")
    op.rename_table("_audit_subjects_new", "audit_subjects")
    for name, columns in ENTRY_INDEXES:
        op.create_index(name, "audit_entries", columns, unique=False)
    for name, columns in SUBJECT_INDEXES:
        op.create_index(name, "audit_subjects", columns, unique=False)


def _create_entries(name: str, *, with_body: bool) -> None:
    body = [sa.Column("body", sa.Text(), sa.Computed(BODY_SQLITE, persisted=True), nullable=False)]
    op.create_table(
        name,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("at", haihe.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("org_code", sa.String(length=64), nullable=True),
        sa.Column("system_id", sa.Integer(), nullable=True),
        sa.Column("resource_code", sa.String(length=64), nullable=True),
        sa.Column("provider_code", sa.String(length=64), nullable=True),
        sa.Column("items_json", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=True),
        sa.Column("mode", sa.String(length=16), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("subjects", sa.BigInteger(), nullable=False),
        sa.Column("subjects_digest", sa.String(length=64), nullable=True),
        sa.Column("personal", sa.Boolean(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("detail_json", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        *(body if with_body else []),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
        sa.UniqueConstraint("chain", "seq", name=op.f("uq_audit_entries_chain_seq")),
    )


def _create_subjects(name: str, *, entries: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            [f"{entries}.id"],
            name=op.f("fk_audit_subjects_entry_id_audit_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_subjects")),
    )
