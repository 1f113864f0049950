"""The metric table: every request metric per group and time bucket.

Definitions (one row per group; rates are fractions in [0, 1], durations ms, costs USD):

- ``requests``, ``errors`` (entry span status ERROR or an ``error.type``), ``error_rate``,
  ``successes``; ``p50_ms``/``p95_ms``/``p99_ms`` exact (``quantile_cont``, linear
  interpolation, = ClickHouse ``quantileExactInclusive``) of ``latency_ms``, the latency
  callers feel (a cold serverless request's span starts after INIT, so its latency is INIT +
  span duration); ``mean_duration_ms`` (the span, what serverless bills per request) and
  ``mean_latency_ms``; ``ttft_p95_ms`` over requests with a time to first chunk.
- ``cold_starts``, ``cold_start_rate``; ``cold_p95_ms`` / ``warm_p95_ms`` and
  ``cold_start_penalty_ms`` = their difference (NULL without both kinds), all of latency.
- ``slo_ms`` (the group's largest SLO), ``slo_breaches`` (latency > SLO),
  ``slo_breach_rate``, ``slo_breach_cold_share`` = cold breaches / breaches.
- ``throttled`` (requests with a throttled span), ``throttle_rate``, ``throttle_events``
  (throttled spans), ``retries_per_request``, ``*_tokens_per_request``.
- ``token_cost_usd`` (priced requests; NULL - "unpriced" - when no request of the group
  that used tokens has a price), ``compute_cost_usd``, ``total_cost_usd`` (their sum; NULL
  with the token cost; a lower bound while ``unpriced_requests`` or ``untokenized_requests``
  > 0 - requests with an LLM call whose model has no price, or that reported no readable
  token count),
  ``cost_per_request_usd`` (mean over priced requests),
  ``cost_per_successful_request_usd`` (cost of priced requests over their successes, so
  failures' cost loads onto what succeeded).
- ``first_seen``/``last_seen`` (first start, last end), ``window_s`` between them,
  ``requests_per_s`` over it; ``peak_concurrency`` from a sweep over start/end events
  (a request without a start or end time has no place in it),
  ``mean_concurrency`` = busy time / window (Little's law).
- ``instances``: distinct ``service_instance`` values; ``utilization``: for serverless
  (one request per environment, only busy time billed) mean / peak concurrency — how busy
  a fleet sized to the observed peak would be; otherwise mean concurrency / (max(instances,
  min_instances) * per-instance concurrency). Capped at 1.

With a bucket, a request belongs to the bucket its entry span starts in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from infermeter.analytics.query import _queries
from infermeter.analytics.query._bind import hold, is_held, query_frame
from infermeter.analytics.query._buckets import check_group_columns, parse_bucket

if TYPE_CHECKING:
    import duckdb
    import polars as pl

__all__ = ["METRIC_COLUMNS", "metric_inputs", "metrics", "with_bucket"]

METRIC_COLUMNS = (
    "requests",
    "errors",
    "error_rate",
    "successes",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "mean_duration_ms",
    "mean_latency_ms",
    "ttft_p95_ms",
    "cold_starts",
    "cold_start_rate",
    "cold_p95_ms",
    "warm_p95_ms",
    "cold_start_penalty_ms",
    "slo_ms",
    "slo_breaches",
    "slo_breach_rate",
    "slo_breach_cold_share",
    "throttled",
    "throttle_rate",
    "throttle_events",
    "retries_per_request",
    "input_tokens_per_request",
    "output_tokens_per_request",
    "cache_read_tokens_per_request",
    "reasoning_tokens_per_request",
    "token_cost_usd",
    "compute_cost_usd",
    "total_cost_usd",
    "cost_per_request_usd",
    "cost_per_successful_request_usd",
    "unpriced_requests",
    "untokenized_requests",
    "first_seen",
    "last_seen",
    "window_s",
    "requests_per_s",
    "peak_concurrency",
    "mean_concurrency",
    "instances",
    "utilization",
)


def metric_inputs(
    requests: duckdb.DuckDBPyRelation, *, by: Sequence[str] = _queries.GROUP_COLUMNS
) -> duckdb.DuckDBPyRelation:
    """The columns of ``requests`` that metric tables grouped by ``by`` read, run once and
    held in a temporary table of its connection (DuckDB's buffer pool, which spills to
    disk beyond the connection's ``memory_limit``; see :func:`~._bind.hold`): hand it to
    several :func:`metrics` / :func:`concurrency` calls (a weekly report) instead of the
    wide request table."""
    import duckdb

    columns = check_group_columns(by)
    # Counts fit 32 bits per request; halving them keeps millions of held rows smaller.
    narrow = {
        "throttle_events",
        "retries",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "reasoning_tokens",
        "min_instances",
        "instance_concurrency",
    }
    measures = [
        duckdb.ColumnExpression(c).cast(duckdb.sqltypes.INTEGER).alias(c)
        if c in narrow
        else duckdb.ColumnExpression(c)
        for c in _queries.METRIC_MEASURES
    ]
    return hold(requests.select(*columns, *measures))


def with_bucket(
    requests: duckdb.DuckDBPyRelation, bucket: str | timedelta
) -> duckdb.DuckDBPyRelation:
    """``requests`` plus a ``bucket`` column: the start of the bucket each request starts in."""
    import duckdb

    width = parse_bucket(bucket)
    start = duckdb.FunctionExpression(
        "time_bucket", duckdb.ConstantExpression(width), duckdb.ColumnExpression("start_time")
    )
    return requests.select(duckdb.StarExpression(), start.alias("bucket"))


def metrics(
    requests: duckdb.DuckDBPyRelation,
    *,
    by: Sequence[str] = (),
    bucket: str | timedelta | None = None,
) -> pl.DataFrame:
    """The metric table of ``requests`` (a :func:`request_table` relation) grouped by the
    columns ``by`` (from tenant, model, prompt_version, prompt_name, endpoint, runtime,
    provider, platform, service_name) and, with ``bucket`` ("1h", "1d", "1w"), by a
    ``bucket`` column (naive UTC TIMESTAMP). Rows are sorted by the group columns.

    ``requests`` is run once per call (its needed columns copied into the query); for
    several tables of one request table, pass :func:`metric_inputs` of it (or a table)."""
    columns = check_group_columns(by)
    table = is_held(requests)
    source = requests if bucket is None else with_bucket(requests, bucket)
    frame = query_frame(
        source,
        "im_requests",
        _queries.metrics_sql(columns, bucket=bucket is not None, table=table),
    )
    keys = [*columns, *(["bucket"] if bucket is not None else [])]
    return frame.sort(keys, nulls_last=True) if keys else frame
