# ruff: noqa: E501 - the SQL statements are kept whole, as they run
"""catalogue search: full-text index (FTS5 / GIN), facet indexes and facet counts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21

The statements are copied from haihe.catalogue.search_ddl as they were when this migration was
written, so that it stays the same when that module changes.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE = (
    "CREATE VIRTUAL TABLE catalogue_fts USING fts5(names, summary, body, content='', detail='column', tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER catalogue_fts_insert AFTER INSERT ON catalogue_resources BEGIN INSERT INTO catalogue_fts(rowid, names, summary, body) VALUES (new.id, substr(new.search_text, 1, instr(new.search_text, char(10)) - 1), substr(substr(new.search_text, instr(new.search_text, char(10)) + 1), 1, instr(substr(new.search_text, instr(new.search_text, char(10)) + 1), char(10)) - 1), substr(substr(new.search_text, instr(new.search_text, char(10)) + 1), instr(substr(new.search_text, instr(new.search_text, char(10)) + 1), char(10)) + 1)); END",
    "CREATE TRIGGER catalogue_fts_delete AFTER DELETE ON catalogue_resources BEGIN INSERT INTO catalogue_fts(catalogue_fts, rowid, names, summary, body) VALUES ('delete', old.id, substr(old.search_text, 1, instr(old.search_text, char(10)) - 1), substr(substr(old.search_text, instr(old.search_text, char(10)) + 1), 1, instr(substr(old.search_text, instr(old.search_text, char(10)) + 1), char(10)) - 1), substr(substr(old.search_text, instr(old.search_text, char(10)) + 1), instr(substr(old.search_text, instr(old.search_text, char(10)) + 1), char(10)) + 1)); END",
    "CREATE TRIGGER catalogue_fts_update AFTER UPDATE OF search_text ON catalogue_resources BEGIN INSERT INTO catalogue_fts(catalogue_fts, rowid, names, summary, body) VALUES ('delete', old.id, substr(old.search_text, 1, instr(old.search_text, char(10)) - 1), substr(substr(old.search_text, instr(old.search_text, char(10)) + 1), 1, instr(substr(old.search_text, instr(old.search_text, char(10)) + 1), char(10)) - 1), substr(substr(old.search_text, instr(old.search_text, char(10)) + 1), instr(substr(old.search_text, instr(old.search_text, char(10)) + 1), char(10)) + 1)); INSERT INTO catalogue_fts(rowid, names, summary, body) VALUES (new.id, substr(new.search_text, 1, instr(new.search_text, char(10)) - 1), substr(substr(new.search_text, instr(new.search_text, char(10)) + 1), 1, instr(substr(new.search_text, instr(new.search_text, char(10)) + 1), char(10)) - 1), substr(substr(new.search_text, instr(new.search_text, char(10)) + 1), instr(substr(new.search_text, instr(new.search_text, char(10)) + 1), char(10)) + 1)); END",
    "INSERT INTO catalogue_fts(rowid, names, summary, body) SELECT id, substr(search_text, 1, instr(search_text, char(10)) - 1), substr(substr(search_text, instr(search_text, char(10)) + 1), 1, instr(substr(search_text, instr(search_text, char(10)) + 1), char(10)) - 1), substr(substr(search_text, instr(search_text, char(10)) + 1), instr(substr(search_text, instr(search_text, char(10)) + 1), char(10)) + 1) FROM catalogue_resources",
    "CREATE INDEX ix_catalogue_resources_facets ON catalogue_resources (provider_id, base_library, topic, sharing_type, open_type, status, code)",
    "CREATE INDEX ix_catalogue_resources_hits ON catalogue_resources (id, provider_id, base_library, topic, sharing_type, open_type, status, code)",
    "CREATE TABLE catalogue_facet_counts (provider_id INTEGER NOT NULL, base_library VARCHAR(32) NOT NULL, topic VARCHAR(64) NOT NULL, sharing_type VARCHAR(32) NOT NULL, open_type VARCHAR(32) NOT NULL, status VARCHAR(32) NOT NULL, n INTEGER NOT NULL, CONSTRAINT pk_catalogue_facet_counts PRIMARY KEY (provider_id, base_library, topic, sharing_type, open_type, status))",
    "CREATE TRIGGER catalogue_facet_counts_insert AFTER INSERT ON catalogue_resources BEGIN INSERT INTO catalogue_facet_counts VALUES (new.provider_id, coalesce(new.base_library, ''), coalesce(new.topic, ''), new.sharing_type, new.open_type, new.status, 1) ON CONFLICT (provider_id, base_library, topic, sharing_type, open_type, status) DO UPDATE SET n = catalogue_facet_counts.n + 1; END",
    "CREATE TRIGGER catalogue_facet_counts_delete AFTER DELETE ON catalogue_resources BEGIN UPDATE catalogue_facet_counts SET n = n - 1 WHERE provider_id = old.provider_id AND base_library = coalesce(old.base_library, '') AND topic = coalesce(old.topic, '') AND sharing_type = old.sharing_type AND open_type = old.open_type AND status = old.status; END",
    "CREATE TRIGGER catalogue_facet_counts_update AFTER UPDATE OF provider_id, base_library, topic, sharing_type, open_type, status ON catalogue_resources BEGIN UPDATE catalogue_facet_counts SET n = n - 1 WHERE provider_id = old.provider_id AND base_library = coalesce(old.base_library, '') AND topic = coalesce(old.topic, '') AND sharing_type = old.sharing_type AND open_type = old.open_type AND status = old.status; INSERT INTO catalogue_facet_counts VALUES (new.provider_id, coalesce(new.base_library, ''), coalesce(new.topic, ''), new.sharing_type, new.open_type, new.status, 1) ON CONFLICT (provider_id, base_library, topic, sharing_type, open_type, status) DO UPDATE SET n = catalogue_facet_counts.n + 1; END",
    "INSERT INTO catalogue_facet_counts SELECT catalogue_resources.provider_id, coalesce(catalogue_resources.base_library, ''), coalesce(catalogue_resources.topic, ''), catalogue_resources.sharing_type, catalogue_resources.open_type, catalogue_resources.status, count(*) FROM catalogue_resources GROUP BY catalogue_resources.provider_id, coalesce(catalogue_resources.base_library, ''), coalesce(catalogue_resources.topic, ''), catalogue_resources.sharing_type, catalogue_resources.open_type, catalogue_resources.status",
)
POSTGRESQL = (
    "CREATE INDEX ix_catalogue_resources_search ON catalogue_resources USING gin ((to_tsvector('simple'::regconfig, search_text || E'\\n' || regexp_replace(split_part(search_text, E'\\n', 1), '(\\S+)', 'α\\1', 'g') || E'\\n' || regexp_replace(split_part(search_text, E'\\n', 1) || ' ' || split_part(search_text, E'\\n', 2), '(\\S+)', 'β\\1', 'g'))))",
    "CREATE INDEX ix_catalogue_resources_facets ON catalogue_resources (provider_id, base_library, topic, sharing_type, open_type, status, code)",
    "CREATE TABLE catalogue_facet_counts (provider_id INTEGER NOT NULL, base_library VARCHAR(32) NOT NULL, topic VARCHAR(64) NOT NULL, sharing_type VARCHAR(32) NOT NULL, open_type VARCHAR(32) NOT NULL, status VARCHAR(32) NOT NULL, n INTEGER NOT NULL, CONSTRAINT pk_catalogue_facet_counts PRIMARY KEY (provider_id, base_library, topic, sharing_type, open_type, status))",
    "CREATE FUNCTION catalogue_facet_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF TG_OP = 'TRUNCATE' THEN TRUNCATE catalogue_facet_counts; RETURN NULL; END IF; IF TG_OP <> 'INSERT' THEN UPDATE catalogue_facet_counts SET n = n - 1 WHERE provider_id = OLD.provider_id AND base_library = coalesce(OLD.base_library, '') AND topic = coalesce(OLD.topic, '') AND sharing_type = OLD.sharing_type AND open_type = OLD.open_type AND status = OLD.status; END IF; IF TG_OP <> 'DELETE' THEN INSERT INTO catalogue_facet_counts VALUES (NEW.provider_id, coalesce(NEW.base_library, ''), coalesce(NEW.topic, ''), NEW.sharing_type, NEW.open_type, NEW.status, 1) ON CONFLICT (provider_id, base_library, topic, sharing_type, open_type, status) DO UPDATE SET n = catalogue_facet_counts.n + 1; END IF; RETURN NULL; END $$",
    "CREATE TRIGGER catalogue_facet_counts AFTER INSERT OR DELETE OR UPDATE OF provider_id, base_library, topic, sharing_type, open_type, status ON catalogue_resources FOR EACH ROW EXECUTE FUNCTION catalogue_facet_counts_apply()",
    "CREATE TRIGGER catalogue_facet_counts_truncate AFTER TRUNCATE ON catalogue_resources FOR EACH STATEMENT EXECUTE FUNCTION catalogue_facet_counts_apply()",
    "INSERT INTO catalogue_facet_counts SELECT catalogue_resources.provider_id, coalesce(catalogue_resources.base_library, ''), coalesce(catalogue_resources.topic, ''), catalogue_resources.sharing_type, catalogue_resources.open_type, catalogue_resources.status, count(*) FROM catalogue_resources GROUP BY catalogue_resources.provider_id, coalesce(catalogue_resources.base_library, ''), coalesce(catalogue_resources.topic, ''), catalogue_resources.sharing_type, catalogue_resources.open_type, catalogue_resources.status",
)
DROP_SQLITE = (
    "DROP TRIGGER IF EXISTS catalogue_facet_counts_update",
    "DROP TRIGGER IF EXISTS catalogue_facet_counts_delete",
    "DROP TRIGGER IF EXISTS catalogue_facet_counts_insert",
    "DROP TABLE IF EXISTS catalogue_facet_counts",
    "DROP INDEX IF EXISTS ix_catalogue_resources_hits",
    "DROP INDEX IF EXISTS ix_catalogue_resources_facets",
    "DROP TRIGGER IF EXISTS catalogue_fts_update",
    "DROP TRIGGER IF EXISTS catalogue_fts_delete",
    "DROP TRIGGER IF EXISTS catalogue_fts_insert",
    "DROP TABLE IF EXISTS catalogue_fts",
)
DROP_POSTGRESQL = (
    "DROP TRIGGER IF EXISTS catalogue_facet_counts_truncate ON catalogue_resources",
    "DROP TRIGGER IF EXISTS catalogue_facet_counts ON catalogue_resources",
    "DROP FUNCTION IF EXISTS catalogue_facet_counts_apply()",
    "DROP TABLE IF EXISTS catalogue_facet_counts",
    "DROP INDEX IF EXISTS ix_catalogue_resources_facets",
    "DROP INDEX IF EXISTS ix_catalogue_resources_search",
)


def upgrade() -> None:
    statements = SQLITE if op.get_bind().dialect.name == "sqlite" else POSTGRESQL
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    statements = DROP_SQLITE if op.get_bind().dialect.name == "sqlite" else DROP_POSTGRESQL
    for statement in statements:
        op.execute(statement)
