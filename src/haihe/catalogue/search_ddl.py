"""What catalogue search needs in the database beside ``search_text``, per dialect.

Migration 0003 creates these objects (copy the statements, so that the migration stays as it was
when later versions change): a full-text index over ``search_text`` — an FTS5 table with a column
per section, kept by triggers, on SQLite; one GIN expression index on PostgreSQL — narrow
covering indexes for facet values, and ``catalogue_facet_counts``, the number of entries with each
combination of facet values, kept by triggers, from which the catalogue's front page (no words)
is counted without reading every entry.
"""

from __future__ import annotations

SECTIONS = ("names", "summary", "body")
FACETS = ("provider_id", "base_library", "topic", "sharing_type", "open_type", "status")
# Entries found by the text index are looked up in a narrow index by id, not in their wide rows
# (SQLite); all entries are read in facet order from the other to count them (both).
_INDEXES = (
    "CREATE INDEX ix_catalogue_resources_facets ON catalogue_resources "
    "(provider_id, base_library, topic, sharing_type, open_type, status, code)",
    "CREATE INDEX ix_catalogue_resources_hits ON catalogue_resources "
    "(id, provider_id, base_library, topic, sharing_type, open_type, status, code)",
)
_COUNTS = (
    "CREATE TABLE catalogue_facet_counts (provider_id INTEGER NOT NULL, "
    "base_library VARCHAR(32) NOT NULL, topic VARCHAR(64) NOT NULL, "
    "sharing_type VARCHAR(32) NOT NULL, open_type VARCHAR(32) NOT NULL, "
    "status VARCHAR(32) NOT NULL, n INTEGER NOT NULL, "
    f"CONSTRAINT pk_catalogue_facet_counts PRIMARY KEY ({', '.join(FACETS)}))"
)


def _keys(row: str) -> list[str]:
    """The facet values of ``row`` (new/old/NEW/OLD), no base library or topic written ''."""
    return [
        f"coalesce({row}.{c}, '')" if c in ("base_library", "topic") else f"{row}.{c}"
        for c in FACETS
    ]


def _count(row: str, step: int, table: str = "catalogue_facet_counts") -> str:
    if step > 0:
        return (
            f"INSERT INTO {table} VALUES ({', '.join(_keys(row))}, 1) "
            f"ON CONFLICT ({', '.join(FACETS)}) DO UPDATE SET n = {table}.n + 1;"
        )
    where = " AND ".join(f"{c} = {k}" for c, k in zip(FACETS, _keys(row), strict=True))
    return f"UPDATE {table} SET n = n - 1 WHERE {where};"


_FILL_COUNTS = (
    f"INSERT INTO catalogue_facet_counts SELECT {', '.join(_keys('catalogue_resources'))}, "
    f"count(*) FROM catalogue_resources GROUP BY {', '.join(_keys('catalogue_resources'))}"
)


def _sqlite_lines(value: str) -> str:
    """The three lines of ``search_text`` (names, summary, the rest) as SQLite expressions."""
    rest = f"substr({value}, instr({value}, char(10)) + 1)"
    return ", ".join(
        (
            f"substr({value}, 1, instr({value}, char(10)) - 1)",
            f"substr({rest}, 1, instr({rest}, char(10)) - 1)",
            f"substr({rest}, instr({rest}, char(10)) + 1)",
        )
    )


def _sqlite() -> tuple[str, ...]:
    cols = ", ".join(SECTIONS)
    add = (
        f"INSERT INTO catalogue_fts(rowid, {cols}) "
        f"VALUES (new.id, {_sqlite_lines('new.search_text')});"
    )
    drop = (
        f"INSERT INTO catalogue_fts(catalogue_fts, rowid, {cols}) "
        f"VALUES ('delete', old.id, {_sqlite_lines('old.search_text')});"
    )
    on = "ON catalogue_resources BEGIN"
    facets = ", ".join(FACETS)
    return (
        # contentless, columns only: tokens are looked up, never read back
        f"CREATE VIRTUAL TABLE catalogue_fts USING fts5({cols}, content='', detail='column', "
        "tokenize='unicode61 remove_diacritics 0')",
        f"CREATE TRIGGER catalogue_fts_insert AFTER INSERT {on} {add} END",
        f"CREATE TRIGGER catalogue_fts_delete AFTER DELETE {on} {drop} END",
        f"CREATE TRIGGER catalogue_fts_update AFTER UPDATE OF search_text {on} {drop} {add} END",
        f"INSERT INTO catalogue_fts(rowid, {cols}) "
        f"SELECT id, {_sqlite_lines('search_text')} FROM catalogue_resources",
        *_INDEXES,
        _COUNTS,
        f"CREATE TRIGGER catalogue_facet_counts_insert AFTER INSERT {on} {_count('new', 1)} END",
        f"CREATE TRIGGER catalogue_facet_counts_delete AFTER DELETE {on} {_count('old', -1)} END",
        f"CREATE TRIGGER catalogue_facet_counts_update AFTER UPDATE OF {facets} {on} "
        f"{_count('old', -1)} {_count('new', 1)} END",
        _FILL_COUNTS,
    )


NAMES_MARK, HEAD_MARK = "α", "β"


def pg_vector(table: str = "catalogue_resources") -> str:
    """The tsvector search asks on PostgreSQL: every token, and marked copies of some.

    A token of the names is also there as ``α`` + token, and one of the names or summary as
    ``β`` + token; no query word yields a Greek letter, so ``'β低保' & !'α低保'`` finds the entries
    whose summary but not names hold 低保 from the index alone, in one pass over the matches.
    """
    text = f"{table}.search_text"
    names, summary = (f"split_part({text}, E'\\n', {i})" for i in (1, 2))
    marked = [
        f"regexp_replace({part}, '(\\S+)', '{mark}\\1', 'g')"
        for part, mark in ((names, NAMES_MARK), (f"{names} || ' ' || {summary}", HEAD_MARK))
    ]
    joined = " || E'\\n' || ".join([text, *marked])
    return f"to_tsvector('simple'::regconfig, {joined})"


def _postgresql() -> tuple[str, ...]:
    facets = ", ".join(FACETS)
    return (
        "CREATE INDEX ix_catalogue_resources_search ON catalogue_resources "
        f"USING gin (({pg_vector().replace('catalogue_resources.', '')}))",
        _INDEXES[0],
        _COUNTS,
        "CREATE FUNCTION catalogue_facet_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF TG_OP = 'TRUNCATE' THEN TRUNCATE catalogue_facet_counts; RETURN NULL; END IF; "
        f"IF TG_OP <> 'INSERT' THEN {_count('OLD', -1)} END IF; "
        f"IF TG_OP <> 'DELETE' THEN {_count('NEW', 1)} END IF; RETURN NULL; END $$",
        "CREATE TRIGGER catalogue_facet_counts AFTER INSERT OR DELETE OR UPDATE OF "
        f"{facets} ON catalogue_resources FOR EACH ROW "
        "EXECUTE FUNCTION catalogue_facet_counts_apply()",
        "CREATE TRIGGER catalogue_facet_counts_truncate AFTER TRUNCATE ON catalogue_resources "
        "FOR EACH STATEMENT EXECUTE FUNCTION catalogue_facet_counts_apply()",
        _FILL_COUNTS,
    )


INDEX_DDL: dict[str, tuple[str, ...]] = {"sqlite": _sqlite(), "postgresql": _postgresql()}
"""The statements that create what search needs, per dialect, in order (migration 0003)."""
