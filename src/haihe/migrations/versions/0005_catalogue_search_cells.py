# ruff: noqa: E501 - the SQL statements are kept whole, as they run
"""catalogue search: facet cells numbered, each entry's cell in catalogue_fts_cells

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21

Search counts facets by grouping its matches by one integer (the cell: a combination of facet
values) read from a narrow table, instead of by six strings read from the wide entries; on
PostgreSQL the narrow table also holds the words under the GIN index. The statements are copied
from haihe.catalogue.search_ddl.CELLS_DDL as they were when this migration was written; the
downgrade puts back what migration 0003 built. Only catalogue tables are touched.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE = (
    "DROP TRIGGER catalogue_facet_counts_update",
    "DROP TRIGGER catalogue_facet_counts_delete",
    "DROP TRIGGER catalogue_facet_counts_insert",
    "DROP TABLE catalogue_facet_counts",
    "DROP INDEX ix_catalogue_resources_hits",
    "CREATE TABLE catalogue_facet_counts (cell INTEGER PRIMARY KEY, provider_id INTEGER NOT NULL, base_library VARCHAR(32) NOT NULL, topic VARCHAR(64) NOT NULL, sharing_type VARCHAR(32) NOT NULL, open_type VARCHAR(32) NOT NULL, status VARCHAR(32) NOT NULL, n INTEGER NOT NULL, CONSTRAINT uq_catalogue_facet_counts UNIQUE (provider_id, base_library, topic, sharing_type, open_type, status))",
    "CREATE TABLE catalogue_fts_cells (id INTEGER PRIMARY KEY, cell INTEGER NOT NULL, code VARCHAR(64) NOT NULL)",
    "CREATE TRIGGER catalogue_facet_counts_insert AFTER INSERT ON catalogue_resources BEGIN INSERT INTO catalogue_facet_counts (provider_id, base_library, topic, sharing_type, open_type, status, n) VALUES (new.provider_id, coalesce(new.base_library, ''), coalesce(new.topic, ''), new.sharing_type, new.open_type, new.status, 1) ON CONFLICT (provider_id, base_library, topic, sharing_type, open_type, status) DO UPDATE SET n = catalogue_facet_counts.n + 1; INSERT INTO catalogue_fts_cells VALUES (new.id, (SELECT cell FROM catalogue_facet_counts WHERE provider_id = new.provider_id AND base_library = coalesce(new.base_library, '') AND topic = coalesce(new.topic, '') AND sharing_type = new.sharing_type AND open_type = new.open_type AND status = new.status), new.code); END",
    "CREATE TRIGGER catalogue_facet_counts_delete AFTER DELETE ON catalogue_resources BEGIN UPDATE catalogue_facet_counts SET n = n - 1 WHERE provider_id = old.provider_id AND base_library = coalesce(old.base_library, '') AND topic = coalesce(old.topic, '') AND sharing_type = old.sharing_type AND open_type = old.open_type AND status = old.status; DELETE FROM catalogue_fts_cells WHERE id = old.id; END",
    "CREATE TRIGGER catalogue_facet_counts_update AFTER UPDATE OF provider_id, base_library, topic, sharing_type, open_type, status, code ON catalogue_resources BEGIN UPDATE catalogue_facet_counts SET n = n - 1 WHERE provider_id = old.provider_id AND base_library = coalesce(old.base_library, '') AND topic = coalesce(old.topic, '') AND sharing_type = old.sharing_type AND open_type = old.open_type AND status = old.status; INSERT INTO catalogue_facet_counts (provider_id, base_library, topic, sharing_type, open_type, status, n) VALUES (new.provider_id, coalesce(new.base_library, ''), coalesce(new.topic, ''), new.sharing_type, new.open_type, new.status, 1) ON CONFLICT (provider_id, base_library, topic, sharing_type, open_type, status) DO UPDATE SET n = catalogue_facet_counts.n + 1; UPDATE catalogue_fts_cells SET cell = (SELECT cell FROM catalogue_facet_counts WHERE provider_id = new.provider_id AND base_library = coalesce(new.base_library, '') AND topic = coalesce(new.topic, '') AND sharing_type = new.sharing_type AND open_type = new.open_type AND status = new.status), code = new.code WHERE id = old.id; END",
    "INSERT INTO catalogue_facet_counts (provider_id, base_library, topic, sharing_type, open_type, status, n) SELECT catalogue_resources.provider_id, coalesce(catalogue_resources.base_library, ''), coalesce(catalogue_resources.topic, ''), catalogue_resources.sharing_type, catalogue_resources.open_type, catalogue_resources.status, count(*) FROM catalogue_resources GROUP BY catalogue_resources.provider_id, coalesce(catalogue_resources.base_library, ''), coalesce(catalogue_resources.topic, ''), catalogue_resources.sharing_type, catalogue_resources.open_type, catalogue_resources.status",
    "INSERT INTO catalogue_fts_cells SELECT catalogue_resources.id, (SELECT cell FROM catalogue_facet_counts WHERE provider_id = catalogue_resources.provider_id AND base_library = coalesce(catalogue_resources.base_library, '') AND topic = coalesce(catalogue_resources.topic, '') AND sharing_type = catalogue_resources.sharing_type AND open_type = catalogue_resources.open_type AND status = catalogue_resources.status), catalogue_resources.code FROM catalogue_resources",
)
POSTGRESQL = (
    "DROP TRIGGER catalogue_facet_counts_truncate ON catalogue_resources",
    "DROP TRIGGER catalogue_facet_counts ON catalogue_resources",
    "DROP FUNCTION catalogue_facet_counts_apply()",
    "DROP TABLE catalogue_facet_counts",
    "DROP INDEX ix_catalogue_resources_search",
    "CREATE TABLE catalogue_facet_counts (cell integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, provider_id INTEGER NOT NULL, base_library VARCHAR(32) NOT NULL, topic VARCHAR(64) NOT NULL, sharing_type VARCHAR(32) NOT NULL, open_type VARCHAR(32) NOT NULL, status VARCHAR(32) NOT NULL, n INTEGER NOT NULL, CONSTRAINT uq_catalogue_facet_counts UNIQUE (provider_id, base_library, topic, sharing_type, open_type, status))",
    "CREATE TABLE catalogue_fts_cells (id integer PRIMARY KEY, cell integer NOT NULL, code varchar(64) NOT NULL, words tsvector NOT NULL) WITH (toast_tuple_target = 128)",
    "ALTER TABLE catalogue_fts_cells ALTER COLUMN words SET STORAGE EXTERNAL",
    "ALTER TABLE catalogue_fts_cells ALTER COLUMN words SET STATISTICS 0",
    "CREATE INDEX catalogue_fts_cells_words ON catalogue_fts_cells USING gin (words)",
    "CREATE FUNCTION catalogue_facet_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$ DECLARE at_cell integer; BEGIN IF TG_OP = 'TRUNCATE' THEN TRUNCATE catalogue_fts_cells, catalogue_facet_counts; RETURN NULL; END IF; IF TG_OP <> 'INSERT' THEN UPDATE catalogue_facet_counts SET n = n - 1 WHERE provider_id = OLD.provider_id AND base_library = coalesce(OLD.base_library, '') AND topic = coalesce(OLD.topic, '') AND sharing_type = OLD.sharing_type AND open_type = OLD.open_type AND status = OLD.status; END IF; IF TG_OP = 'DELETE' THEN DELETE FROM catalogue_fts_cells WHERE id = OLD.id; RETURN NULL; END IF; INSERT INTO catalogue_facet_counts (provider_id, base_library, topic, sharing_type, open_type, status, n) VALUES (NEW.provider_id, coalesce(NEW.base_library, ''), coalesce(NEW.topic, ''), NEW.sharing_type, NEW.open_type, NEW.status, 1) ON CONFLICT (provider_id, base_library, topic, sharing_type, open_type, status) DO UPDATE SET n = catalogue_facet_counts.n + 1 RETURNING cell INTO at_cell; IF TG_OP = 'INSERT' THEN INSERT INTO catalogue_fts_cells VALUES (NEW.id, at_cell, NEW.code, to_tsvector('simple'::regconfig, NEW.search_text || E'\\n' || regexp_replace(split_part(NEW.search_text, E'\\n', 1), '(\\S+)', 'α\\1', 'g') || E'\\n' || regexp_replace(split_part(NEW.search_text, E'\\n', 1) || ' ' || split_part(NEW.search_text, E'\\n', 2), '(\\S+)', 'β\\1', 'g'))); ELSE UPDATE catalogue_fts_cells SET cell = at_cell, code = NEW.code, words = CASE WHEN NEW.search_text IS DISTINCT FROM OLD.search_text THEN to_tsvector('simple'::regconfig, NEW.search_text || E'\\n' || regexp_replace(split_part(NEW.search_text, E'\\n', 1), '(\\S+)', 'α\\1', 'g') || E'\\n' || regexp_replace(split_part(NEW.search_text, E'\\n', 1) || ' ' || split_part(NEW.search_text, E'\\n', 2), '(\\S+)', 'β\\1', 'g')) ELSE words END WHERE id = OLD.id; END IF; RETURN NULL; END $$",
    "CREATE TRIGGER catalogue_facet_counts AFTER INSERT OR DELETE OR UPDATE OF provider_id, base_library, topic, sharing_type, open_type, status, code, search_text ON catalogue_resources FOR EACH ROW EXECUTE FUNCTION catalogue_facet_counts_apply()",
    "CREATE TRIGGER catalogue_facet_counts_truncate AFTER TRUNCATE ON catalogue_resources FOR EACH STATEMENT EXECUTE FUNCTION catalogue_facet_counts_apply()",
    "INSERT INTO catalogue_facet_counts (provider_id, base_library, topic, sharing_type, open_type, status, n) SELECT catalogue_resources.provider_id, coalesce(catalogue_resources.base_library, ''), coalesce(catalogue_resources.topic, ''), catalogue_resources.sharing_type, catalogue_resources.open_type, catalogue_resources.status, count(*) FROM catalogue_resources GROUP BY catalogue_resources.provider_id, coalesce(catalogue_resources.base_library, ''), coalesce(catalogue_resources.topic, ''), catalogue_resources.sharing_type, catalogue_resources.open_type, catalogue_resources.status",
    "INSERT INTO catalogue_fts_cells SELECT catalogue_resources.id, (SELECT cell FROM catalogue_facet_counts WHERE provider_id = catalogue_resources.provider_id AND base_library = coalesce(catalogue_resources.base_library, '') AND topic = coalesce(catalogue_resources.topic, '') AND sharing_type = catalogue_resources.sharing_type AND open_type = catalogue_resources.open_type AND status = catalogue_resources.status), catalogue_resources.code, to_tsvector('simple'::regconfig, catalogue_resources.search_text || E'\\n' || regexp_replace(split_part(catalogue_resources.search_text, E'\\n', 1), '(\\S+)', 'α\\1', 'g') || E'\\n' || regexp_replace(split_part(catalogue_resources.search_text, E'\\n', 1) || ' ' || split_part(catalogue_resources.search_text, E'\\n', 2), '(\\S+)', 'β\\1', 'g')) FROM catalogue_resources",
)
DOWN_SQLITE = (
    "DROP TRIGGER catalogue_facet_counts_update",
    "DROP TRIGGER catalogue_facet_counts_delete",
    "DROP TRIGGER catalogue_facet_counts_insert",
    "DROP TABLE catalogue_fts_cells",
    "DROP TABLE catalogue_facet_counts",
    "CREATE INDEX ix_catalogue_resources_hits ON catalogue_resources (id, provider_id, base_library, topic, sharing_type, open_type, status, code)",
    "CREATE TABLE catalogue_facet_counts (provider_id INTEGER NOT NULL, base_library VARCHAR(32) NOT NULL, topic VARCHAR(64) NOT NULL, sharing_type VARCHAR(32) NOT NULL, open_type VARCHAR(32) NOT NULL, status VARCHAR(32) NOT NULL, n INTEGER NOT NULL, CONSTRAINT pk_catalogue_facet_counts PRIMARY KEY (provider_id, base_library, topic, sharing_type, open_type, status))",
    "CREATE TRIGGER catalogue_facet_counts_insert AFTER INSERT ON catalogue_resources BEGIN INSERT INTO catalogue_facet_counts VALUES (new.provider_id, coalesce(new.base_library, ''), coalesce(new.topic, ''), new.sharing_type, new.open_type, new.status, 1) ON CONFLICT (provider_id, base_library, topic, sharing_type, open_type, status) DO UPDATE SET n = catalogue_facet_counts.n + 1; END",
    "CREATE TRIGGER catalogue_facet_counts_delete AFTER DELETE ON catalogue_resources BEGIN UPDATE catalogue_facet_counts SET n = n - 1 WHERE provider_id = old.provider_id AND base_library = coalesce(old.base_library, '') AND topic = coalesce(old.topic, '') AND sharing_type = old.sharing_type AND open_type = old.open_type AND status = old.status; END",
    "CREATE TRIGGER catalogue_facet_counts_update AFTER UPDATE OF provider_id, base_library, topic, sharing_type, open_type, status ON catalogue_resources BEGIN UPDATE catalogue_facet_counts SET n = n - 1 WHERE provider_id = old.provider_id AND base_library = coalesce(old.base_library, '') AND topic = coalesce(old.topic, '') AND sharing_type = old.sharing_type AND open_type = old.open_type AND status = old.status; INSERT INTO catalogue_facet_counts VALUES (new.provider_id, coalesce(new.base_library, ''), coalesce(new.topic, ''), new.sharing_type, new.open_type, new.status, 1) ON CONFLICT (provider_id, base_library, topic, sharing_type, open_type, status) DO UPDATE SET n = catalogue_facet_counts.n + 1; END",
    "INSERT INTO catalogue_facet_counts SELECT catalogue_resources.provider_id, coalesce(catalogue_resources.base_library, ''), coalesce(catalogue_resources.topic, ''), catalogue_resources.sharing_type, catalogue_resources.open_type, catalogue_resources.status, count(*) FROM catalogue_resources GROUP BY catalogue_resources.provider_id, coalesce(catalogue_resources.base_library, ''), coalesce(catalogue_resources.topic, ''), catalogue_resources.sharing_type, catalogue_resources.open_type, catalogue_resources.status",
)
DOWN_POSTGRESQL = (
    "DROP TRIGGER catalogue_facet_counts_truncate ON catalogue_resources",
    "DROP TRIGGER catalogue_facet_counts ON catalogue_resources",
    "DROP FUNCTION catalogue_facet_counts_apply()",
    "DROP TABLE catalogue_fts_cells",
    "DROP TABLE catalogue_facet_counts",
    "CREATE INDEX ix_catalogue_resources_search ON catalogue_resources USING gin ((to_tsvector('simple'::regconfig, search_text || E'\\n' || regexp_replace(split_part(search_text, E'\\n', 1), '(\\S+)', 'α\\1', 'g') || E'\\n' || regexp_replace(split_part(search_text, E'\\n', 1) || ' ' || split_part(search_text, E'\\n', 2), '(\\S+)', 'β\\1', 'g'))))",
    "CREATE TABLE catalogue_facet_counts (provider_id INTEGER NOT NULL, base_library VARCHAR(32) NOT NULL, topic VARCHAR(64) NOT NULL, sharing_type VARCHAR(32) NOT NULL, open_type VARCHAR(32) NOT NULL, status VARCHAR(32) NOT NULL, n INTEGER NOT NULL, CONSTRAINT pk_catalogue_facet_counts PRIMARY KEY (provider_id, base_library, topic, sharing_type, open_type, status))",
    "CREATE FUNCTION catalogue_facet_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF TG_OP = 'TRUNCATE' THEN TRUNCATE catalogue_facet_counts; RETURN NULL; END IF; IF TG_OP <> 'INSERT' THEN UPDATE catalogue_facet_counts SET n = n - 1 WHERE provider_id = OLD.provider_id AND base_library = coalesce(OLD.base_library, '') AND topic = coalesce(OLD.topic, '') AND sharing_type = OLD.sharing_type AND open_type = OLD.open_type AND status = OLD.status; END IF; IF TG_OP <> 'DELETE' THEN INSERT INTO catalogue_facet_counts VALUES (NEW.provider_id, coalesce(NEW.base_library, ''), coalesce(NEW.topic, ''), NEW.sharing_type, NEW.open_type, NEW.status, 1) ON CONFLICT (provider_id, base_library, topic, sharing_type, open_type, status) DO UPDATE SET n = catalogue_facet_counts.n + 1; END IF; RETURN NULL; END $$",
    "CREATE TRIGGER catalogue_facet_counts AFTER INSERT OR DELETE OR UPDATE OF provider_id, base_library, topic, sharing_type, open_type, status ON catalogue_resources FOR EACH ROW EXECUTE FUNCTION catalogue_facet_counts_apply()",
    "CREATE TRIGGER catalogue_facet_counts_truncate AFTER TRUNCATE ON catalogue_resources FOR EACH STATEMENT EXECUTE FUNCTION catalogue_facet_counts_apply()",
    "INSERT INTO catalogue_facet_counts SELECT catalogue_resources.provider_id, coalesce(catalogue_resources.base_library, ''), coalesce(catalogue_resources.topic, ''), catalogue_resources.sharing_type, catalogue_resources.open_type, catalogue_resources.status, count(*) FROM catalogue_resources GROUP BY catalogue_resources.provider_id, coalesce(catalogue_resources.base_library, ''), coalesce(catalogue_resources.topic, ''), catalogue_resources.sharing_type, catalogue_resources.open_type, catalogue_resources.status",
)


def upgrade() -> None:
    statements = SQLITE if op.get_bind().dialect.name == "sqlite" else POSTGRESQL
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    statements = DOWN_SQLITE if op.get_bind().dialect.name == "sqlite" else DOWN_POSTGRESQL
    for statement in statements:
        op.execute(statement)
