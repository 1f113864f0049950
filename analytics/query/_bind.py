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
import re
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import duckdb

__all__ = ["sql_over"]

_ids: Final = itertools.count()


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
