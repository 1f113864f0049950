"""Explicit binding of relations to the names a SQL text reads.

DuckDB can resolve a table name in SQL to a Python variable of the same name in the
caller's frame (a "replacement scan"). That binds data to SQL by the spelling of local
variables, which a rename or a linter silently breaks. Here every input is registered
under a fresh name on the connection and the SQL's placeholder names are rewritten to
it, so the binding is an argument, visible at the call site, and two queries built
from the same text (this week, last week) never see each other's inputs.
"""

from __future__ import annotations

import itertools
import logging
import re
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import duckdb
    import polars as pl

_log: Final = logging.getLogger(__name__)

__all__ = ["hold", "is_held", "query_frame", "sql_over"]

_ids: Final = itertools.count()
_HELD: Final = "im_held_"


def sql_over(
    con: duckdb.DuckDBPyConnection,
    query: str,
    *,
    params: dict[str, Any] | None = None,
    **inputs: Any,
) -> duckdb.DuckDBPyRelation:
    """``query`` run on ``con`` with each keyword input (a relation, an Arrow table or a
    polars frame) readable under its keyword's name (``im_window=…`` → ``FROM im_window``).

    The inputs stay registered for the connection's lifetime: the returned relation is
    lazy and reads them when it runs.
    """
    renamed: dict[str, str] = {}
    for name, value in inputs.items():
        unique = f"{name}__{next(_ids)}"
        con.register(unique, value)
        renamed[name] = unique
    if renamed:
        pattern = re.compile(r"\b(" + "|".join(map(re.escape, renamed)) + r")\b")
        query = pattern.sub(lambda match: renamed[match.group(1)], query)
    return con.sql(query, params=params)


def hold(relation: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """``relation`` run once into a temporary table of its connection; returns a relation
    reading that table.

    Not ``.materialize()``: that holds the rows in process memory outside DuckDB's
    buffer pool, so a large request table grew the process past any memory limit. A
    temporary table lives in the buffer pool and spills to the connection's
    ``temp_directory`` beyond ``memory_limit`` (readers set both,
    ``collectors._reader``); it is dropped when the connection (cursor) closes. A
    read-only reader allows it: temporary tables are never written to the store.
    """
    name = f"{_HELD}{next(_ids)}"
    # The name is ours (a counter), never user text.
    relation.query(
        "im_source",
        f"CREATE TEMP TABLE {name} AS SELECT * FROM im_source",  # noqa: S608
    )
    held = relation.query("im_source", f"FROM temp.main.{name}")
    assert held is not None
    return held.set_alias(name)


def is_held(relation: duckdb.DuckDBPyRelation) -> bool:
    """Whether ``relation`` reads a table as stored (a base or :func:`hold` table, or
    rows of one filtered): a query may read it twice instead of copying it first."""
    if relation.type == "TABLE_RELATION":
        return True
    # Relations derived from a held one keep its alias; only a filter is as cheap to read.
    return relation.type in ("SUBQUERY_RELATION", "FILTER_RELATION") and relation.alias.startswith(
        _HELD
    )


def query_frame(relation: duckdb.DuckDBPyRelation, name: str, query: str) -> pl.DataFrame:
    """``query`` over ``relation`` (readable as ``name``) as a polars frame.

    A query that runs out of DuckDB's memory with several threads is run again on one:
    holistic aggregates (exact quantiles) keep every value per thread and cannot spill,
    so a pool that feeds two threads on the request table (which spills) may not feed two
    on a metric table of tens of millions of requests (DuckDB's own advice for that error).
    The connection's thread count is restored afterwards."""
    import duckdb

    def run() -> pl.DataFrame:
        result = relation.query(name, query)
        assert result is not None
        frame: pl.DataFrame = result.pl()
        return frame

    try:
        return run()
    except duckdb.OutOfMemoryException:
        setting = relation.query(name, "SELECT current_setting('threads')")
        assert setting is not None
        [(threads,)] = setting.fetchall()
        if int(threads) <= 1:
            raise
        _log.debug("out of memory on %s threads; running the query again on one", threads)
        relation.query(name, "SET threads = 1")
        try:
            return run()
        finally:
            # The setting read back is an integer, never user text.
            relation.query(name, f"SET threads = {int(threads)}")
