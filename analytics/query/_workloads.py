"""The metric frames the recommendations and the report start from.

Thin compositions of ``metrics`` (defined once, by the metrics module) with the few
per-workload facts economics needs in addition (``sql/workload_facts.sql``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from infermeter.analytics.query._queries import sql_file

if TYPE_CHECKING:
    import duckdb
    import polars as pl

__all__ = ["arrival_frame", "version_frame", "workload_frame"]

WORKLOAD_KEYS = ("endpoint", "runtime")
VERSION_KEYS = ("endpoint", "model", "prompt_version")


def workload_frame(requests: duckdb.DuckDBPyRelation) -> pl.DataFrame:
    """``metrics`` by (endpoint, runtime) plus ``mean_init_duration_ms``, ``memory_mb`` and
    ``platform`` (the economics inputs)."""
    import polars as pl
    from infermeter.analytics.query._metrics import metrics

    frame = metrics(requests, by=WORKLOAD_KEYS)
    query = requests.query("requests", sql_file("workload_facts"))
    if query is None:  # only statements without a result return None
        raise RuntimeError("workload_facts.sql returned no relation")
    facts = query.pl()
    facts = facts.with_columns(
        pl.col("mean_init_duration_ms").cast(pl.Float64), pl.col("memory_mb").cast(pl.Float64)
    )
    extra = [c for c in facts.columns if c not in WORKLOAD_KEYS and c not in frame.columns]
    return frame.join(
        facts.select([*WORKLOAD_KEYS, *extra]), on=list(WORKLOAD_KEYS), how="left", nulls_equal=True
    )


def version_frame(requests: duckdb.DuckDBPyRelation) -> pl.DataFrame:
    """``metrics`` by (endpoint, model, prompt_version), oldest first (for cost jumps)."""
    from infermeter.analytics.query._metrics import metrics

    return metrics(requests, by=VERSION_KEYS).sort("first_seen")


def arrival_frame(requests: duckdb.DuckDBPyRelation) -> pl.DataFrame:
    """Each request's arrival facts, for the replay that sizes warm capacity and projects
    moves (``_replay``): ``endpoint, runtime, start_s, end_s`` (epoch seconds),
    ``duration_ms, cold_start, init_duration_ms, initialization_type``."""
    query = requests.query("requests", sql_file("arrivals"))
    if query is None:
        raise RuntimeError("arrivals.sql returned no relation")
    frame: pl.DataFrame = query.pl()
    return frame
