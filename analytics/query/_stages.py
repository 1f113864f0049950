"""Where request latency goes: the share of each stage (retrieval, rerank, inference …)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from infermeter.analytics.query import _queries
from infermeter.analytics.query._bind import sql_over
from infermeter.analytics.query._buckets import check_group_columns

if TYPE_CHECKING:
    import duckdb
    import polars as pl

__all__ = ["stage_breakdown"]


def stage_breakdown(
    con: duckdb.DuckDBPyConnection,
    spans: duckdb.DuckDBPyRelation,
    requests: duckdb.DuckDBPyRelation,
    *,
    by: Sequence[str] = (),
) -> pl.DataFrame:
    """Latency per stage for requests with nested spans, per group of ``by``.

    A nested span belongs to the request of its trace and service whose entry span it
    starts within. Its stage comes from ``operation`` (``gen_ai.operation.name``): chat,
    text_completion, generate_content → ``inference``; embeddings → ``embedding``;
    retrieval/search → ``retrieval``; rerank → ``rerank``; execute_tool → ``tool``; other
    names as they are; none → ``other``. A request's time in a stage is the union of its
    spans of that stage clipped to the request; ``unattributed`` is the request time no
    nested span covers. Columns: group columns, ``stage, requests`` (requests with that
    stage), ``mean_ms, p95_ms, total_ms, share`` (stage time / time of the requests with
    nested spans), ``mean_share`` (mean of per-request shares), ``nested_requests``.
    Parallel stages overlap, so shares may add up to more than 1.
    """
    columns = check_group_columns(by)
    query = sql_over(
        con, _queries.stage_breakdown_sql(columns), im_requests=requests, im_stage_spans=spans
    )
    frame: pl.DataFrame = query.pl()
    return frame
