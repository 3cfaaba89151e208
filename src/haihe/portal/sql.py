"""datastore_search_sql — SQL over open datasets, read-only, checked before it runs.

The statement is parsed with sqlglot (PostgreSQL's dialect, as CKAN's users write it) and must
be exactly one SELECT (set operations and WITH over SELECTs included) whose functions are all on
``ALLOWED_FUNCTIONS`` and whose tables are all datastore resource ids (or its own WITH names).
It then runs on a fresh in-memory DuckDB that sees only those datasets' Parquet, registered as
Arrow datasets, with DuckDB's file access switched off and its configuration locked; a timer
interrupts it at the time limit; at most ``MAX_ROWS`` rows come back (``records_truncated``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from haihe.portal.datastore import FieldErrors
from haihe.portal.materialise import ckan_type

MAX_ROWS = 32000
ALLOWED_FUNCTIONS = frozenset(
    """
    COUNT SUM AVG MIN MAX STDDEV STDDEV_SAMP STDDEV_POP VARIANCE VARIANCE_SAMP VARIANCE_POP
    MEDIAN QUANTILE PERCENTILE_CONT PERCENTILE_DISC APPROX_DISTINCT COUNT_IF
    ROUND ABS CEIL FLOOR SIGN SQRT POW POWER LN LOG EXP MOD GREATEST LEAST
    LOWER UPPER LENGTH SUBSTRING SUBSTR TRIM LTRIM RTRIM CONCAT CONCAT_WS REPLACE LEFT RIGHT
    STRPOS POSITION LPAD RPAD SPLIT_PART REVERSE INITCAP
    COALESCE NULLIF IF CASE CAST TRY_CAST
    DATE_TRUNC TIMESTAMP_TRUNC DATE_PART EXTRACT YEAR MONTH DAY QUARTER WEEK DAYOFWEEK DATE
    TO_CHAR STRFTIME DATE_DIFF DATEDIFF
    ROW_NUMBER RANK DENSE_RANK NTILE LAG LEAD FIRST_VALUE LAST_VALUE
    """.split()
)


@dataclass(frozen=True)
class Checked:
    """A statement that passed the checks: its DuckDB text and the resource ids it reads."""

    sql: str
    tables: list[str]


def check(sql: str) -> Checked:
    """Return the statement, translated for DuckDB, and the tables it reads; FieldErrors
    (``query``) naming what is refused."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="postgres") if s is not None]
    except ParseError as exc:
        raise FieldErrors({"query": [f"cannot parse the SQL: {_first_line(exc)}"]}) from None
    if len(statements) != 1:
        raise FieldErrors({"query": ["Query is not a single statement."]})
    tree = statements[0]
    if not isinstance(tree, exp.Query) or tree.find(exp.Into) is not None:
        raise FieldErrors({"query": ["Only SELECT statements are allowed."]})
    forbidden = (exp.Insert, exp.Update, exp.Delete, exp.Create, exp.Drop, exp.Command, exp.Alter)
    for node in tree.walk():
        if isinstance(node, forbidden):
            raise FieldErrors({"query": ["Only SELECT statements are allowed."]})
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).upper()
            if name not in ALLOWED_FUNCTIONS:
                raise FieldErrors({"query": [f"Function {name.lower()}() is not allowed."]})
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    tables: list[str] = []
    for table in tree.find_all(exp.Table):
        if (
            not isinstance(table.this, exp.Identifier)
            or table.args.get("db")
            or table.args.get("catalog")
        ):
            raise FieldErrors({"query": [f"Table {table.sql()} cannot be queried."]})
        name = table.name
        if name in ctes:
            continue
        if name not in tables:
            tables.append(name)
    if not tables:
        raise FieldErrors({"query": ['The query reads no resource: FROM "<resource id>"']})
    return Checked(sql=tree.sql(dialect="duckdb"), tables=tables)


def run(
    checked: Checked, paths: dict[str, list[str]], *, seconds: float, memory_limit: str
) -> tuple[pa.Table, bool]:
    """Run a checked statement over the given datasets' files; return (rows, truncated).

    FieldErrors (``query``) when it fails or runs past ``seconds``.
    """
    con = duckdb.connect(":memory:", config={"memory_limit": memory_limit, "threads": 1})
    timer = threading.Timer(seconds, _interrupter(con))
    try:
        for name, files in paths.items():
            con.register(name, pads.dataset(files, format="parquet"))
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        timer.start()
        table = con.sql(f"SELECT * FROM ({checked.sql}) AS q LIMIT {MAX_ROWS + 1}").to_arrow_table()
    except duckdb.InterruptException:
        raise FieldErrors({"query": [f"Query took too long (over {seconds:g} s)."]}) from None
    except duckdb.Error as exc:
        raise FieldErrors({"query": [_first_line(exc)]}) from None
    finally:
        timer.cancel()
        con.close()
    truncated = table.num_rows > MAX_ROWS
    return (table.slice(0, MAX_ROWS) if truncated else table), truncated


def _interrupter(con: duckdb.DuckDBPyConnection) -> Callable[[], None]:
    def interrupt() -> None:
        con.interrupt()

    return interrupt


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def records(table: pa.Table) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Rows as objects and CKAN-style field descriptions of a result."""
    fields = [{"id": f.name, "type": ckan_type(f.type)} for f in table.schema]
    rows = table.to_pylist()
    for row in rows:
        for key, value in row.items():
            if hasattr(value, "isoformat"):
                row[key] = value.isoformat()
            elif not isinstance(value, str | int | float | bool | type(None)):
                row[key] = str(value)
    return rows, fields
