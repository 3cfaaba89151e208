"""What catalogue search needs in the database beside ``search_text``, per dialect.

Migration 0003 built the full-text index over ``search_text`` (an FTS5 table with a column per
section, kept by triggers, on SQLite) and the facet indexes. Migration 0005 creates what
``CELLS_DDL`` says (copy the statements, so that the migration stays as it was when later
versions change):

- ``catalogue_facet_counts``: one row — a cell, numbered — per combination of facet values, with
  the number of entries that have it;
- ``catalogue_fts_cells``: each entry's cell and code, in a narrow table that search reads instead
  of the wide entries, so a word found in a quarter of the catalogue costs one integer per match;
  on PostgreSQL it also holds the entry's tsvector, out of line, under a GIN index, so the matches
  are found and read without touching ``catalogue_resources``.

Both are kept by triggers on ``catalogue_resources``. A cell is never renumbered while it exists.
"""

from __future__ import annotations

SECTIONS = ("names", "summary", "body")
FACETS = ("provider_id", "base_library", "topic", "sharing_type", "open_type", "status")
NAMES_MARK, HEAD_MARK = "α", "β"

_CELLS = "catalogue_facet_counts"
_COLUMNS = (
    "provider_id INTEGER NOT NULL, base_library VARCHAR(32) NOT NULL, topic VARCHAR(64) NOT NULL, "
    "sharing_type VARCHAR(32) NOT NULL, open_type VARCHAR(32) NOT NULL, "
    "status VARCHAR(32) NOT NULL, n INTEGER NOT NULL, "
    f"CONSTRAINT uq_catalogue_facet_counts UNIQUE ({', '.join(FACETS)})"
)


def _keys(row: str) -> list[str]:
    """The facet values of ``row`` (new/old/NEW/OLD), no base library or topic written ''."""
    return [
        f"coalesce({row}.{c}, '')" if c in ("base_library", "topic") else f"{row}.{c}"
        for c in FACETS
    ]


def _same_cell(row: str) -> str:
    return " AND ".join(f"{c} = {k}" for c, k in zip(FACETS, _keys(row), strict=True))


def _add(row: str) -> str:
    return (
        f"INSERT INTO {_CELLS} ({', '.join(FACETS)}, n) VALUES ({', '.join(_keys(row))}, 1) "
        f"ON CONFLICT ({', '.join(FACETS)}) DO UPDATE SET n = {_CELLS}.n + 1"
    )


def _remove(row: str) -> str:
    return f"UPDATE {_CELLS} SET n = n - 1 WHERE {_same_cell(row)}"


def _cell_of(row: str) -> str:
    return f"(SELECT cell FROM {_CELLS} WHERE {_same_cell(row)})"


_FILL_COUNTS = (
    f"INSERT INTO {_CELLS} ({', '.join(FACETS)}, n) "
    f"SELECT {', '.join(_keys('catalogue_resources'))}, count(*) FROM catalogue_resources "
    f"GROUP BY {', '.join(_keys('catalogue_resources'))}"
)
_WATCHED = ", ".join((*FACETS, "code"))


def pg_vector(text: str) -> str:
    """The tsvector search asks on PostgreSQL, of search text ``text``: every token, and marked
    copies of some.

    A token of the names is also there as ``α`` + token, and one of the names or summary as
    ``β`` + token; no query word yields a Greek letter, so ``'β低保' & !'α低保'`` finds the entries
    whose summary but not names hold 低保 from the index alone, in one pass over the matches.
    """
    names, summary = (f"split_part({text}, E'\\n', {i})" for i in (1, 2))
    marked = [
        f"regexp_replace({part}, '(\\S+)', '{mark}\\1', 'g')"
        for part, mark in ((names, NAMES_MARK), (f"{names} || ' ' || {summary}", HEAD_MARK))
    ]
    joined = " || E'\\n' || ".join([text, *marked])
    return f"to_tsvector('simple'::regconfig, {joined})"


def _sqlite() -> tuple[str, ...]:
    on = "ON catalogue_resources BEGIN"
    return (
        "DROP TRIGGER catalogue_facet_counts_update",
        "DROP TRIGGER catalogue_facet_counts_delete",
        "DROP TRIGGER catalogue_facet_counts_insert",
        f"DROP TABLE {_CELLS}",
        "DROP INDEX ix_catalogue_resources_hits",  # search reads catalogue_fts_cells instead
        f"CREATE TABLE {_CELLS} (cell INTEGER PRIMARY KEY, {_COLUMNS})",
        "CREATE TABLE catalogue_fts_cells (id INTEGER PRIMARY KEY, cell INTEGER NOT NULL, "
        "code VARCHAR(64) NOT NULL)",
        f"CREATE TRIGGER catalogue_facet_counts_insert AFTER INSERT {on} {_add('new')}; "
        f"INSERT INTO catalogue_fts_cells VALUES (new.id, {_cell_of('new')}, new.code); END",
        f"CREATE TRIGGER catalogue_facet_counts_delete AFTER DELETE {on} {_remove('old')}; "
        "DELETE FROM catalogue_fts_cells WHERE id = old.id; END",
        f"CREATE TRIGGER catalogue_facet_counts_update AFTER UPDATE OF {_WATCHED} {on} "
        f"{_remove('old')}; {_add('new')}; UPDATE catalogue_fts_cells "
        f"SET cell = {_cell_of('new')}, code = new.code WHERE id = old.id; END",
        _FILL_COUNTS,
        "INSERT INTO catalogue_fts_cells SELECT catalogue_resources.id, "
        f"{_cell_of('catalogue_resources')}, catalogue_resources.code FROM catalogue_resources",
    )


def _postgresql() -> tuple[str, ...]:
    words = pg_vector("NEW.search_text")
    return (
        "DROP TRIGGER catalogue_facet_counts_truncate ON catalogue_resources",
        "DROP TRIGGER catalogue_facet_counts ON catalogue_resources",
        "DROP FUNCTION catalogue_facet_counts_apply()",
        f"DROP TABLE {_CELLS}",
        "DROP INDEX ix_catalogue_resources_search",  # catalogue_fts_cells holds the words now
        f"CREATE TABLE {_CELLS} (cell integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
        f"{_COLUMNS})",
        # the words out of line: the heap the GIN index points into stays ~70 bytes a row
        "CREATE TABLE catalogue_fts_cells (id integer PRIMARY KEY, cell integer NOT NULL, "
        "code varchar(64) NOT NULL, words tsvector NOT NULL) WITH (toast_tuple_target = 128)",
        "ALTER TABLE catalogue_fts_cells ALTER COLUMN words SET STORAGE EXTERNAL",
        # no statistics on the words: the planner then always takes the GIN index; with them it
        # may scan the small heap instead and read every tsvector out of line (0.4 s, not 5 ms)
        "ALTER TABLE catalogue_fts_cells ALTER COLUMN words SET STATISTICS 0",
        "CREATE INDEX catalogue_fts_cells_words ON catalogue_fts_cells USING gin (words)",
        "CREATE FUNCTION catalogue_facet_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "DECLARE at_cell integer; BEGIN "
        "IF TG_OP = 'TRUNCATE' THEN TRUNCATE catalogue_fts_cells, catalogue_facet_counts; "
        "RETURN NULL; END IF; "
        f"IF TG_OP <> 'INSERT' THEN {_remove('OLD')}; END IF; "
        "IF TG_OP = 'DELETE' THEN DELETE FROM catalogue_fts_cells WHERE id = OLD.id; "
        "RETURN NULL; END IF; "
        f"{_add('NEW')} RETURNING cell INTO at_cell; "
        "IF TG_OP = 'INSERT' THEN INSERT INTO catalogue_fts_cells "
        f"VALUES (NEW.id, at_cell, NEW.code, {words}); "
        "ELSE UPDATE catalogue_fts_cells SET cell = at_cell, code = NEW.code, words = CASE "
        f"WHEN NEW.search_text IS DISTINCT FROM OLD.search_text THEN {words} ELSE words END "
        "WHERE id = OLD.id; END IF; RETURN NULL; END $$",
        "CREATE TRIGGER catalogue_facet_counts AFTER INSERT OR DELETE OR UPDATE OF "
        f"{_WATCHED}, search_text ON catalogue_resources FOR EACH ROW "
        "EXECUTE FUNCTION catalogue_facet_counts_apply()",
        "CREATE TRIGGER catalogue_facet_counts_truncate AFTER TRUNCATE ON catalogue_resources "
        "FOR EACH STATEMENT EXECUTE FUNCTION catalogue_facet_counts_apply()",
        _FILL_COUNTS,
        "INSERT INTO catalogue_fts_cells SELECT catalogue_resources.id, "
        f"{_cell_of('catalogue_resources')}, catalogue_resources.code, "
        f"{pg_vector('catalogue_resources.search_text')} FROM catalogue_resources",
    )


CELLS_DDL: dict[str, tuple[str, ...]] = {"sqlite": _sqlite(), "postgresql": _postgresql()}
"""The statements of migration 0005, per dialect, in order."""
