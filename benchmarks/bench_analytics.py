"""The weekly report's metric queries on 10M synthetic spans: infermeter vs one hand-written
DuckDB query vs a straightforward pandas implementation.

Run: ``.venv/bin/python benchmarks/bench_analytics.py`` (``--spans N`` for a smaller store,
``--rounds R``; ``--keep PATH`` keeps the generated store).

The store is generated with DuckDB ``range()`` expressions into a temporary DuckDB file:
one request = an entry span + a retrieval span + an LLM span (2 % of requests are
throttled: the retrieval slot becomes a throttled first attempt of the LLM call), spread
over one ISO week, six endpoints on three runtimes, 20 tenants, five models (one unpriced),
four prompt versions, 1 % cold starts, 2 % errors.

Each case reads the store file and computes the metric tables the weekly report groups by:
tenant, model, prompt version, endpoint + runtime, and endpoint per day:

- ``infermeter``: ``infermeter.analytics.open(store)``, ``metric_inputs(request_table(...))``
  (held in a temporary table) then five ``metrics(...)`` calls;
- ``duckdb (hand-written)``: one SQL statement computing the same numbers (request
  attribution, token and compute cost, then every metric of every grouping at once);
- ``pandas``: the spans fetched into a DataFrame and the same numbers with groupby.

Every case runs in its own subprocess (so its peak RSS is its own), rounds interleave the
cases, the table shows medians and the ratio to the hand-written query. Before timing, the
cases' results are compared on every grouping (requests, p95, total cost, peak
concurrency) so the three compute the same numbers. Targets (issue 18): infermeter <= 1.0x
the hand-written query, peak RSS <= 1 GiB, on 10M spans. ``--spans 1000000,10000000,30000000``
runs the growth curve: time and memory at each size and their growth exponents.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import median, print_growth, print_table, ratio, target

GROUPINGS: list[tuple[tuple[str, ...], str | None]] = [
    (("tenant",), None),
    (("model",), None),
    (("prompt_version",), None),
    (("endpoint", "runtime"), None),
    (("endpoint",), "1d"),
]

# --- the synthetic store --------------------------------------------------------------------

GENERATE = """
INSERT INTO spans BY NAME
WITH base AS (
    SELECT range AS i,
        (hash(range * 16 + 1) % 1000000) / 1e6 AS u1,
        (hash(range * 16 + 2) % 1000000) / 1e6 AS u2,
        (hash(range * 16 + 3) % 1000000) / 1e6 AS u3,
        (hash(range * 16 + 4) % 1000000) / 1e6 AS u4,
        (hash(range * 16 + 5) % 1000000) / 1e6 AS u5,
        (hash(range * 16 + 6) % 1000000) / 1e6 AS u6,
        (hash(range * 16 + 7) % 1000000) / 1e6 AS u7,
        (hash(range * 16 + 8) % 1000000) / 1e6 AS u8,
        (hash(range * 16 + 9) % 1000000) / 1e6 AS u9,
        (['chat', 'search', 'summarize', 'classify', 'embed', 'agent'])[range % 6 + 1]
            AS endpoint
    FROM range($requests)
),
r AS (
    SELECT *,
        CASE WHEN endpoint IN ('chat', 'search') THEN 'serverless'
             WHEN endpoint IN ('summarize', 'classify') THEN 'serverless_container'
             ELSE 'container' END AS runtime,
        TIMESTAMP '2026-11-16' + to_microseconds(CAST(u1 * 604800e6 AS BIGINT)) AS t0,
        'tenant-' || CAST(floor(u2 * u2 * 20) AS INTEGER) AS tenant,
        CASE WHEN u3 < 0.40 THEN 'gpt-4o' WHEN u3 < 0.70 THEN 'gpt-4o-mini'
             WHEN u3 < 0.90 THEN 'claude-sonnet-4-5' WHEN u3 < 0.95 THEN 'text-embedding-3-small'
             ELSE 'house-llm' END AS model,
        'v' || (i % 4 + 1) AS prompt_version,
        u4 < 0.01 AS cold,
        u5 < 0.02 AS failed,
        u6 < 0.02 AS throttle,
        20 + floor(u7 * 80) AS retrieval_ms,
        200 + floor(u8 * 2000) AS llm_ms,
        CAST(200 + floor(u9 * 3000) AS BIGINT) AS input_tokens,
        CAST(50 + floor(u2 * 500) AS BIGINT) AS output_tokens
    FROM base
),
spans AS (
    SELECT r.*, k.k,
        CASE WHEN cold AND runtime <> 'container' THEN 800 ELSE 0 END AS init_ms
    FROM r CROSS JOIN (VALUES (0), (1), (2)) AS k(k)
)
SELECT
    printf('%032x', i) AS trace_id,
    printf('%016x', i * 3 + k) AS span_id,
    CASE WHEN k = 0 THEN NULL ELSE printf('%016x', i * 3) END AS parent_span_id,
    CASE k WHEN 0 THEN 'handler' WHEN 1 THEN (CASE WHEN throttle THEN 'llm' ELSE 'retrieve' END)
         ELSE 'llm' END AS name,
    CASE WHEN k = 0 THEN 'SERVER' ELSE 'CLIENT' END AS kind,
    'svc-' || endpoint AS service_name,
    CASE runtime WHEN 'serverless_container' THEN 'run-' || (i % 8)
                 WHEN 'container' THEN 'pod-' || (i % 4) END AS service_instance,
    t0 + to_milliseconds(CASE k WHEN 0 THEN 0 WHEN 1 THEN 5 ELSE 10 + retrieval_ms END)
        AS start_time,
    t0 + to_milliseconds(CASE k WHEN 0 THEN init_ms + 20 + retrieval_ms + llm_ms
                                WHEN 1 THEN 5 + retrieval_ms
                                ELSE 10 + retrieval_ms + llm_ms + init_ms END) AS end_time,
    CAST(CASE k WHEN 0 THEN init_ms + 20 + retrieval_ms + llm_ms WHEN 1 THEN retrieval_ms
                ELSE llm_ms + init_ms END AS DOUBLE) AS duration_ms,
    CASE WHEN k = 0 AND failed THEN 'ERROR' ELSE 'UNSET' END AS status_code,
    CASE WHEN k = 0 AND failed THEN 'TimeoutError' END AS error_type,
    k = 0 AS is_entry,
    tenant,
    CASE WHEN k = 2 OR (k = 1 AND throttle) THEN model END AS model,
    CASE WHEN k = 2 OR (k = 1 AND throttle) THEN
        CASE WHEN model LIKE 'claude%' THEN 'anthropic' ELSE 'openai' END END AS provider,
    CASE WHEN k = 0 THEN 'answer' END AS prompt_name,
    CASE WHEN k = 0 THEN prompt_version END AS prompt_version,
    CASE WHEN k = 0 THEN endpoint END AS endpoint,
    CASE k WHEN 0 THEN NULL WHEN 1 THEN (CASE WHEN throttle THEN 'chat' ELSE 'retrieval' END)
         ELSE 'chat' END AS operation,
    CASE WHEN k = 0 THEN runtime END AS runtime,
    CASE WHEN k = 0 THEN (CASE runtime WHEN 'serverless' THEN 'aws_lambda'
        WHEN 'serverless_container' THEN 'gcp_cloud_run' ELSE 'aws_ecs' END) END AS platform,
    k = 0 AND cold AND runtime <> 'container' AS cold_start,
    CASE WHEN k = 0 AND cold AND runtime <> 'container' THEN 800.0 END AS init_duration_ms,
    CASE WHEN k = 0 AND runtime = 'serverless' THEN 1024.0 END AS memory_mb,
    CASE WHEN k = 2 THEN input_tokens END AS input_tokens,
    CASE WHEN k = 2 THEN output_tokens END AS output_tokens,
    CASE WHEN k = 2 AND u9 < 0.3 THEN input_tokens // 3 END AS cache_read_tokens,
    CASE WHEN k = 2 THEN 100.0 + floor(u7 * 400) END AS ttft_ms,
    k = 1 AND throttle AS throttled,
    CASE WHEN k = 2 AND throttle THEN 2 ELSE 1 END AS attempt
FROM spans
"""


def generate(path: Path, spans: int) -> float:
    import duckdb
    from infermeter.collectors import apply_migrations

    started = time.perf_counter()
    con = duckdb.connect(str(path))
    con.execute("SET enable_progress_bar = false")
    apply_migrations(con)
    con.execute(GENERATE, {"requests": max(spans // 3, 1)})
    con.execute("CHECKPOINT")
    con.close()
    return time.perf_counter() - started


# --- case: infermeter ------------------------------------------------------------------------


def _settings(con: Any, memory_limit: str, *, reader: bool = False) -> None:
    """``memory_limit`` on ``con``; a ``reader`` also gets the threads infermeter's
    readers run with in that buffer pool (``reader_threads``: one per 256 MiB), as in a
    process that may use twice ``memory_limit`` (a 1 GiB container for 512 MiB)."""
    con.execute("SET enable_progress_bar = false")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        if reader:
            from infermeter.agent.settings import memory_size_bytes
            from infermeter.collectors._reader import reader_threads

            con.execute(f"SET threads = {reader_threads(memory_size_bytes(memory_limit))}")


def run_infermeter(store: Path, memory_limit: str) -> dict[str, Any]:
    import infermeter.analytics
    from infermeter.analytics import metric_inputs, metrics, request_table

    # The product's path: open() gives the reader (read-only, its own spill directory),
    # the bundled prices and the default deployments.
    with infermeter.analytics.open(store) as analysis:
        _settings(analysis.con, memory_limit, reader=True)
        # The request table runs once; its metric columns are held (a temporary table,
        # spilled beyond the memory limit) for the five tables.
        requests = metric_inputs(
            request_table(
                analysis.con,
                analysis.spans,
                prices=analysis.prices,
                deployments=analysis.deployments,
            ),
            by=("tenant", "model", "prompt_version", "endpoint", "runtime"),
        )
        return {
            _key(by, bucket): metrics(requests, by=by, bucket=bucket) for by, bucket in GROUPINGS
        }


# --- case: one hand-written DuckDB query -----------------------------------------------------

# Prices and deployment facts as a person would write them for this data: the bundled
# prices of the four priced models and the default deployments of the three runtimes.
HAND_WRITTEN = """
WITH
prices(model, provider, p_in, p_out, p_cache) AS (VALUES
    ('gpt-4o', 'openai', 2.5e-6, 1e-5, 1.25e-6),
    ('gpt-4o-mini', 'openai', 1.5e-7, 6e-7, 7.5e-8),
    ('claude-sonnet-4-5', 'anthropic', 3e-6, 1.5e-5, 3e-7),
    ('text-embedding-3-small', 'openai', 2e-8, 0.0, 2e-8)
),
per_span AS (
    SELECT s.trace_id, s.service_name, s.is_entry, s.start_time, s.ttft_ms, s.throttled,
        s.attempt, s.model,
        coalesce(s.input_tokens, 0) AS input_tokens,
        coalesce(s.output_tokens, 0) AS output_tokens,
        coalesce(s.cache_read_tokens, 0) AS cache_read_tokens,
        coalesce(s.reasoning_tokens, 0) AS reasoning_tokens,
        coalesce(s.input_tokens, 0) + coalesce(s.output_tokens, 0) > 0 AND p.p_in IS NULL
            AS unpriced,
        coalesce((coalesce(s.input_tokens, 0) - coalesce(s.cache_read_tokens, 0)) * p.p_in
            + coalesce(s.cache_read_tokens, 0) * p.p_cache
            + coalesce(s.output_tokens, 0) * p.p_out, 0) AS token_cost
    FROM spans AS s
    LEFT JOIN prices AS p ON s.model = p.model AND s.provider = p.provider
),
sums AS (
    SELECT trace_id, service_name,
        sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
        sum(cache_read_tokens) AS cache_read_tokens, sum(reasoning_tokens) AS reasoning_tokens,
        bool_or(throttled) AS throttled, count(*) FILTER (WHERE throttled) AS throttle_events,
        sum(attempt - 1) AS retries, bool_or(unpriced) AS unpriced,
        sum(token_cost) AS token_cost,
        min(start_time + to_microseconds(CAST(round(ttft_ms * 1000) AS BIGINT))) AS first_chunk,
        arg_max(model, input_tokens + output_tokens) FILTER (WHERE model IS NOT NULL) AS model
    FROM per_span
    GROUP BY trace_id, service_name
),
req AS MATERIALIZED (
    SELECT e.span_id, e.start_time, e.end_time, e.duration_ms, e.tenant, e.endpoint,
        e.runtime, e.prompt_version, e.service_instance, e.cold_start, e.init_duration_ms,
        -- What the caller waited: a cold serverless request also waited for its INIT.
        e.duration_ms + CASE WHEN e.cold_start AND e.runtime <> 'container'
            THEN coalesce(e.init_duration_ms, 0) ELSE 0 END AS latency_ms,
        coalesce(e.model, s.model) AS model,
        e.status_code = 'ERROR' OR e.error_type IS NOT NULL AS is_error,
        s.input_tokens, s.output_tokens, s.cache_read_tokens, s.reasoning_tokens,
        s.throttled, s.throttle_events, s.retries, s.unpriced,
        CASE WHEN s.unpriced THEN NULL ELSE s.token_cost END AS token_cost,
        coalesce(e.ttft_ms, (epoch_us(s.first_chunk) - epoch_us(e.start_time)) / 1000.0)
            AS ttft_ms,
        CASE WHEN e.runtime = 'serverless' THEN 1 WHEN e.runtime = 'serverless_container'
             THEN 80 ELSE 10 END AS conc,
        CASE WHEN e.runtime = 'container' THEN 1 ELSE 0 END AS min_inst,
        -- Lambda 1 GB x86; Cloud Run request-based 1 vCPU / 0.5 GiB; Fargate default fleet.
        CASE e.runtime
            WHEN 'serverless' THEN coalesce(e.memory_mb, 1024) / 1024.0 * (
                ceil(e.duration_ms) / 1000.0 * 0.0000166667
                + CASE WHEN e.cold_start THEN ceil(coalesce(e.init_duration_ms, 0)) / 1000.0
                       * 0.0000166667 ELSE 0 END) + 0.0000002
            WHEN 'serverless_container' THEN (
                sum(greatest(epoch_us(e.end_time) - greatest(epoch_us(e.start_time),
                    coalesce(prev_end, 0)), 0)) OVER inst / 1e6 * e.duration_ms
                    / sum(e.duration_ms) OVER inst
                + CASE WHEN e.cold_start THEN coalesce(e.init_duration_ms, 0) / 1000.0
                       ELSE 0 END) * (0.000024 + 0.5 * 0.0000025) + 0.0000004
            WHEN 'container' THEN greatest(count(DISTINCT e.service_instance) OVER hour, 1)
                * $fleet_hour / count(*) OVER hour
        END AS compute_cost
    FROM (
        SELECT *, max(epoch_us(end_time)) OVER (
            PARTITION BY CASE WHEN runtime = 'serverless_container' THEN service_instance END
            ORDER BY start_time, end_time ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS prev_end
        FROM spans WHERE is_entry
    ) AS e
    JOIN sums AS s ON e.trace_id = s.trace_id AND e.service_name = s.service_name
    WINDOW inst AS (PARTITION BY CASE WHEN e.runtime = 'serverless_container'
                                      THEN e.service_instance END),
           hour AS (PARTITION BY CASE WHEN e.runtime = 'container' THEN e.endpoint END,
                    date_trunc('hour', e.start_time))
),
keyed AS (
    SELECT *, time_bucket(INTERVAL 1 DAY, start_time) AS day FROM req
),
main AS (
    SELECT
        CASE WHEN grouping(tenant) = 0 THEN 'tenant' WHEN grouping(model) = 0 THEN 'model'
             WHEN grouping(prompt_version) = 0 THEN 'prompt_version'
             WHEN grouping(runtime) = 0 THEN 'endpoint,runtime' ELSE 'endpoint@1d' END
            AS grouping,
        coalesce(tenant, model, prompt_version, endpoint) AS k1,
        runtime AS k2, day,
        count(*) AS requests, count(*) FILTER (WHERE is_error) AS errors,
        quantile_cont(latency_ms, [0.5, 0.95, 0.99]) AS q, avg(duration_ms) AS mean_ms,
        quantile_cont(ttft_ms, 0.95) AS ttft_p95,
        count(*) FILTER (WHERE cold_start) AS cold_starts,
        quantile_cont(latency_ms, 0.95) FILTER (WHERE cold_start) AS cold_p95,
        quantile_cont(latency_ms, 0.95) FILTER (WHERE NOT cold_start) AS warm_p95,
        count(*) FILTER (WHERE latency_ms > 3000) AS breaches,
        count(*) FILTER (WHERE latency_ms > 3000 AND cold_start) AS cold_breaches,
        count(*) FILTER (WHERE throttled) AS throttled, sum(throttle_events) AS throttle_events,
        sum(retries) AS retries, sum(input_tokens) AS input_tokens,
        sum(output_tokens) AS output_tokens, sum(cache_read_tokens) AS cache_read_tokens,
        sum(reasoning_tokens) AS reasoning_tokens,
        -- Unknown (NULL), not $0, when every request of the group is unpriced.
        sum(token_cost) AS token_cost, coalesce(sum(compute_cost), 0) AS compute,
        avg(token_cost + coalesce(compute_cost, 0)) AS cost_per_request,
        sum(token_cost + coalesce(compute_cost, 0)) AS priced_cost,
        count(*) FILTER (WHERE NOT is_error AND NOT unpriced) AS priced_successes,
        count(*) FILTER (WHERE unpriced) AS unpriced,
        min(start_time) AS first_seen, max(end_time) AS last_seen,
        sum(duration_ms) / 1000.0 AS busy_s,
        count(DISTINCT service_instance) AS instances, max(min_inst) AS min_inst,
        max(conc) AS conc, mode(runtime) AS main_runtime
    FROM keyed
    GROUP BY GROUPING SETS ((tenant), (model), (prompt_version), (endpoint, runtime),
                            (endpoint, day))
),
-- Peak concurrency needs one sweep per grouping: the events of each grouping, stacked.
events AS (
    SELECT g.grouping, g.k1, g.k2, g.day, e.t, e.d
    FROM keyed AS r
    CROSS JOIN (VALUES (1), (2), (3), (4), (5)) AS n(i)
    CROSS JOIN LATERAL (SELECT
        (['tenant', 'model', 'prompt_version', 'endpoint,runtime', 'endpoint@1d'])[n.i]
            AS grouping,
        ([r.tenant, r.model, r.prompt_version, r.endpoint, r.endpoint])[n.i] AS k1,
        CASE WHEN n.i = 4 THEN r.runtime END AS k2,
        CASE WHEN n.i = 5 THEN r.day END AS day) AS g
    CROSS JOIN (SELECT r.start_time AS t, 1 AS d UNION ALL SELECT r.end_time, -1) AS e
),
peaks AS (
    SELECT grouping, k1, k2, day, max(level) AS peak FROM (
        SELECT grouping, k1, k2, day, sum(d) OVER (PARTITION BY grouping, k1, k2, day
            ORDER BY t, d ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS level
        FROM events)
    GROUP BY ALL
)
SELECT m.grouping, m.k1, m.k2, m.day, m.requests, m.errors, m.errors / m.requests AS error_rate,
    m.q[1] AS p50_ms, m.q[2] AS p95_ms, m.q[3] AS p99_ms, m.mean_ms, m.ttft_p95,
    m.cold_starts / m.requests AS cold_start_rate, m.cold_p95 - m.warm_p95 AS cold_penalty,
    m.breaches / m.requests AS slo_breach_rate,
    m.cold_breaches / nullif(m.breaches, 0) AS slo_breach_cold_share,
    m.throttled / m.requests AS throttle_rate, m.throttle_events,
    m.retries / m.requests AS retries_per_request,
    m.input_tokens / m.requests AS input_per_request,
    m.output_tokens / m.requests AS output_per_request,
    m.cache_read_tokens / m.requests AS cache_read_per_request,
    m.reasoning_tokens / m.requests AS reasoning_per_request,
    m.token_cost, m.compute, m.token_cost + m.compute AS total_cost_usd, m.cost_per_request,
    m.priced_cost / nullif(m.priced_successes, 0) AS cost_per_success, m.unpriced,
    m.first_seen, m.last_seen,
    m.requests / nullif((epoch_us(m.last_seen) - epoch_us(m.first_seen)) / 1e6, 0) AS rps,
    p.peak AS peak_concurrency,
    m.busy_s / nullif((epoch_us(m.last_seen) - epoch_us(m.first_seen)) / 1e6, 0) AS mean_conc,
    least(CASE WHEN m.main_runtime = 'serverless' THEN
        m.busy_s / nullif((epoch_us(m.last_seen) - epoch_us(m.first_seen)) / 1e6, 0) / p.peak
        ELSE m.busy_s / nullif((epoch_us(m.last_seen) - epoch_us(m.first_seen)) / 1e6, 0)
             / nullif(greatest(m.instances, m.min_inst) * m.conc, 0) END, 1) AS utilization
FROM main AS m
JOIN peaks AS p ON m.grouping = p.grouping AND m.k1 IS NOT DISTINCT FROM p.k1
    AND m.k2 IS NOT DISTINCT FROM p.k2 AND m.day IS NOT DISTINCT FROM p.day
"""


def run_duckdb(store: Path, memory_limit: str) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect(str(store), read_only=True)
    _settings(con, memory_limit)
    frame = con.sql(HAND_WRITTEN, params={"fleet_hour": 0.1008}).pl()
    con.close()
    return {"all": frame}


# --- case: pandas ----------------------------------------------------------------------------

PANDAS_COLUMNS = (
    "trace_id, service_name, service_instance, start_time, end_time, duration_ms, "
    "status_code, error_type, is_entry, tenant, model, provider, prompt_version, endpoint, "
    "runtime, cold_start, init_duration_ms, memory_mb, input_tokens, output_tokens, "
    "cache_read_tokens, reasoning_tokens, ttft_ms, throttled, attempt"
)


def run_pandas(store: Path, memory_limit: str) -> dict[str, Any]:
    import duckdb
    import numpy as np
    import pandas as pd

    con = duckdb.connect(str(store), read_only=True)
    _settings(con, memory_limit)
    spans = con.execute(f"SELECT {PANDAS_COLUMNS} FROM spans").df()
    con.close()
    prices = pd.DataFrame(
        {
            "model": ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "text-embedding-3-small"],
            "provider": ["openai", "openai", "anthropic", "openai"],
            "p_in": [2.5e-6, 1.5e-7, 3e-6, 2e-8],
            "p_out": [1e-5, 6e-7, 1.5e-5, 0.0],
            "p_cache": [1.25e-6, 7.5e-8, 3e-7, 2e-8],
        }
    )
    spans = spans.merge(prices, on=["model", "provider"], how="left")
    for column in ("input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens"):
        spans[column] = spans[column].fillna(0)
    tokens = spans["input_tokens"] + spans["output_tokens"]
    spans["unpriced"] = (tokens > 0) & spans["p_in"].isna()
    spans["token_cost"] = (
        (spans["input_tokens"] - spans["cache_read_tokens"]) * spans["p_in"]
        + spans["cache_read_tokens"] * spans["p_cache"]
        + spans["output_tokens"] * spans["p_out"]
    ).fillna(0)
    spans["retries"] = spans["attempt"] - 1
    spans["first_chunk"] = spans["start_time"] + pd.to_timedelta(spans["ttft_ms"], unit="ms")
    spans["llm_tokens"] = tokens
    keys = ["trace_id", "service_name"]
    sums = spans.groupby(keys, sort=False).agg(
        input_tokens=("input_tokens", "sum"),
        output_tokens=("output_tokens", "sum"),
        cache_read_tokens=("cache_read_tokens", "sum"),
        reasoning_tokens=("reasoning_tokens", "sum"),
        throttled=("throttled", "any"),
        throttle_events=("throttled", "sum"),
        retries=("retries", "sum"),
        unpriced=("unpriced", "any"),
        token_cost=("token_cost", "sum"),
        first_chunk=("first_chunk", "min"),
    )
    llm = spans[spans["model"].notna()].sort_values("llm_tokens").groupby(keys).tail(1)
    sums = sums.join(llm.set_index(keys)["model"].rename("child_model"))
    entries = spans.loc[
        spans["is_entry"],
        [
            "trace_id",
            "service_name",
            "service_instance",
            "start_time",
            "end_time",
            "duration_ms",
            "status_code",
            "error_type",
            "tenant",
            "model",
            "prompt_version",
            "endpoint",
            "runtime",
            "cold_start",
            "init_duration_ms",
            "memory_mb",
            "ttft_ms",
        ],
    ]
    del spans, llm
    req = entries.join(sums, on=keys, rsuffix="_sum")
    req["model"] = req["model"].fillna(req["child_model"])
    req["input_tokens"] = (
        req["input_tokens_sum"] if "input_tokens_sum" in req else req["input_tokens"]
    )
    req["is_error"] = (req["status_code"] == "ERROR") | req["error_type"].notna()
    req["ttft_ms"] = req["ttft_ms"].fillna(
        (req["first_chunk"] - req["start_time"]).dt.total_seconds() * 1000
    )
    req.loc[req["unpriced"], "token_cost"] = np.nan
    compute = pd.Series(np.nan, index=req.index)
    lam = req["runtime"] == "serverless"
    init_s = np.where(req["cold_start"], np.ceil(req["init_duration_ms"].fillna(0)) / 1000, 0)
    compute[lam] = (
        req["memory_mb"].fillna(1024)
        / 1024
        * (np.ceil(req["duration_ms"]) / 1000 * 0.0000166667 + init_s * 0.0000166667)
        + 0.0000002
    )[lam]
    run = req[req["runtime"] == "serverless_container"].sort_values(["start_time", "end_time"])
    prev_end = run.groupby("service_instance")["end_time"].transform(lambda s: s.cummax().shift())
    busy = run["end_time"] - np.maximum(run["start_time"], prev_end.fillna(run["start_time"]))
    run_busy = busy.dt.total_seconds().clip(lower=0)
    share = (
        run_busy.groupby(run["service_instance"]).transform("sum")
        * run["duration_ms"]
        / (run["duration_ms"].groupby(run["service_instance"]).transform("sum"))
    )
    cold_s = np.where(run["cold_start"], run["init_duration_ms"].fillna(0) / 1000, 0)
    compute[run.index] = (share + cold_s) * (0.000024 + 0.5 * 0.0000025) + 0.0000004
    box = req[req["runtime"] == "container"]
    hour = box["start_time"].dt.floor("h")
    group = [box["endpoint"], hour]
    instances = box.groupby(group)["service_instance"].transform("nunique").clip(lower=1)
    compute[box.index] = instances * 0.1008 / box.groupby(group)["duration_ms"].transform("size")
    req["compute_cost"] = compute
    req["cost"] = req["token_cost"] + compute.fillna(0)
    # What the caller waited: a cold serverless request also waited for its INIT.
    init = np.where(req["cold_start"] & (req["runtime"] != "container"), 1.0, 0.0)
    req["latency_ms"] = req["duration_ms"] + init * req["init_duration_ms"].fillna(0)
    req["breach"] = req["latency_ms"] > 3000
    req["day"] = req["start_time"].dt.floor("D")
    results = {}
    for by, bucket in GROUPINGS:
        keys_ = [*by, *(["day"] if bucket else [])]
        results[_key(by, bucket)] = _pandas_metrics(req, keys_)
    return results


def _pandas_metrics(req: Any, keys: list[str]) -> Any:
    import pandas as pd

    grouped = req.groupby(keys, dropna=False, sort=True)
    out = grouped.agg(
        requests=("duration_ms", "size"),
        errors=("is_error", "sum"),
        mean_ms=("duration_ms", "mean"),
        cold_starts=("cold_start", "sum"),
        breaches=("breach", "sum"),
        throttled=("throttled", "sum"),
        throttle_events=("throttle_events", "sum"),
        retries=("retries", "sum"),
        # Unknown (NaN), not $0, when every request of the group is unpriced.
        token_cost=("token_cost", lambda values: values.sum(min_count=1)),
        compute=("compute_cost", "sum"),
        cost_per_request=("cost", "mean"),
        unpriced=("unpriced", "sum"),
        first_seen=("start_time", "min"),
        last_seen=("end_time", "max"),
        busy_ms=("duration_ms", "sum"),
        input_tokens=("input_tokens", "mean"),
        output_tokens=("output_tokens", "mean"),
    )
    quantiles = grouped["latency_ms"].quantile([0.5, 0.95, 0.99]).unstack()
    out["p50_ms"], out["p95_ms"], out["p99_ms"] = (quantiles[0.5], quantiles[0.95], quantiles[0.99])
    out["ttft_p95"] = grouped["ttft_ms"].quantile(0.95)
    cold = req[req["cold_start"]].groupby(keys, dropna=False)["latency_ms"].quantile(0.95)
    warm = req[~req["cold_start"]].groupby(keys, dropna=False)["latency_ms"].quantile(0.95)
    out["cold_penalty"] = cold - warm
    out["total_cost_usd"] = out["token_cost"] + out["compute"]
    window = (out["last_seen"] - out["first_seen"]).dt.total_seconds()
    out["mean_conc"] = out["busy_ms"] / 1000 / window
    events = pd.concat(
        [
            req[keys].assign(t=req["start_time"], d=1),
            req[keys].assign(t=req["end_time"], d=-1),
        ]
    ).sort_values([*keys, "t", "d"])
    events["level"] = events.groupby(keys, dropna=False)["d"].cumsum()
    out["peak_concurrency"] = events.groupby(keys, dropna=False)["level"].max()
    return out.reset_index()


# --- comparison and the driver ------------------------------------------------------------------


def _key(by: tuple[str, ...], bucket: str | None) -> str:
    return ",".join(by) + (f"@{bucket}" if bucket else "")


def _summary(case: str, results: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """Per grouping: requests, p95, total cost and peak concurrency per group, in key order."""
    measures = ("requests", "p95_ms", "total_cost_usd", "peak_concurrency")
    summary: dict[str, dict[str, list[float]]] = {}
    if case == "duckdb":
        import polars as pl

        frame = results["all"]
        for by, bucket in GROUPINGS:
            name = ",".join(by) + ("@1d" if bucket else "")
            part = frame.filter(pl.col("grouping") == name).sort(
                ["k1", "k2", "day"], nulls_last=True
            )
            summary[_key(by, bucket)] = {m: [_number(v) for v in part[m]] for m in measures}
        return summary
    for key, frame in results.items():
        summary[key] = {m: [_number(v) for v in frame[m]] for m in measures}
    return summary


def _number(value: Any) -> float:
    """NULL (an unpriced group's cost) as NaN, so it survives JSON and compares equal."""
    try:
        return float("nan") if value is None else float(value)
    except TypeError:  # pandas' NA
        return float("nan")


def _child(case: str, store: str, memory_limit: str) -> None:
    runner = {"infermeter": run_infermeter, "duckdb": run_duckdb, "pandas": run_pandas}[case]
    started = time.perf_counter()
    results = runner(Path(store), memory_limit)
    elapsed = time.perf_counter() - started
    from _harness import peak_rss_mb

    print(
        json.dumps(
            {"seconds": elapsed, "rss_mb": peak_rss_mb(), "summary": _summary(case, results)}
        )
    )


def _spawn(case: str, store: Path, memory_limit: str) -> dict[str, Any]:
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            case,
            "--store",
            str(store),
            "--memory-limit",
            memory_limit,
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    if output.returncode != 0:
        raise RuntimeError(f"case {case} failed: {output.stderr.strip()[-1500:]}")
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


def _same(a: dict[str, dict[str, list[float]]], b: dict[str, dict[str, list[float]]]) -> bool:
    for key, measures in a.items():
        for name, values in measures.items():
            other = b[key][name]
            if len(values) != len(other):
                return False
            for x, y in zip(values, other, strict=True):
                if math.isnan(x) and math.isnan(y):
                    continue
                if math.isnan(x) or math.isnan(y) or abs(x - y) > 1e-6 * max(1.0, abs(x), abs(y)):
                    print(f"  mismatch {key} {name}: {x} != {y}")
                    return False
    return True


def run_size(args: argparse.Namespace, spans: int) -> dict[str, tuple[float, float]]:
    """Every case on a store of ``spans`` spans: case -> (median seconds, peak RSS MiB)."""
    with tempfile.TemporaryDirectory(prefix="infermeter-bench-") as tmp:
        store = Path(tmp) / "spans.duckdb"
        if args.keep is not None:
            store = args.keep / f"spans{spans}.duckdb" if args.keep.is_dir() else args.keep
        if not store.exists():
            seconds = generate(store, spans)
            print(f"generated {spans:,} spans in {seconds:.1f} s -> {store}")
        cases = ["duckdb", "infermeter", *([] if args.no_pandas else ["pandas"])]
        samples: dict[str, list[dict[str, Any]]] = {case: [] for case in cases}
        for round_index in range(args.rounds):
            shift = round_index % len(cases)
            for case in cases[shift:] + cases[:shift]:
                limit = args.baseline_memory_limit if case == "duckdb" else args.memory_limit
                samples[case].append(_spawn(case, store, limit))
                print(
                    f"  round {round_index + 1} {case}: {samples[case][-1]['seconds']:.2f} s",
                    flush=True,
                )
        baseline = samples["duckdb"][0]["summary"]
        agree = {case: _same(samples[case][0]["summary"], baseline) for case in cases}
        base_s = median([s["seconds"] for s in samples["duckdb"]])
        rows = []
        figures: dict[str, tuple[float, float]] = {}
        for case in cases:
            seconds = median([s["seconds"] for s in samples[case]])
            rss = max(s["rss_mb"] for s in samples[case])
            figures[case] = (seconds, rss)
            rows.append(
                [
                    {"duckdb": "duckdb (one hand-written query)"}.get(case, case),
                    seconds,
                    ratio(seconds, base_s),
                    rss,
                    "yes" if agree[case] else "NO",
                ]
            )
        print_table(
            f"weekly report metric tables on {spans:,} spans (median of {args.rounds} "
            f"rounds, each case in its own process, DuckDB memory_limit "
            f"{args.memory_limit or 'default'}, hand-written query "
            f"{args.baseline_memory_limit or 'default'})",
            ["case", "seconds", "x hand-written", "peak RSS MiB", "same numbers"],
            rows,
        )
        if not agree["infermeter"]:
            target(f"analytics on {spans:,} spans: same numbers", "NO", "yes", False)
        return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--spans",
        default="10000000",
        help="store size, or comma-separated sizes for the growth curve (the issue's: "
        "1000000,10000000,30000000); targets are checked at 10M (else the largest)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="keep (and reuse) the store at this path; a directory keeps one store per size",
    )
    parser.add_argument("--no-pandas", action="store_true", help="skip the pandas case")
    parser.add_argument(
        "--memory-limit",
        default="512MiB",
        help="DuckDB memory_limit for every case's connection (default 512MiB: half of the "
        "1 GiB budget, the rule readers use; '' for infermeter's reader default)",
    )
    parser.add_argument(
        "--baseline-memory-limit",
        default="4GiB",
        help="memory_limit of the hand-written query (default 4GiB: 8x infermeter's; at "
        "DuckDB's own default, 80%% of RAM, it took 6.4 GiB on 10M spans, and at 512MiB it "
        "runs out of memory; '' for DuckDB's default)",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--store", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.store, args.memory_limit)
        return 0
    sizes = sorted(int(size) for size in str(args.spans).split(","))
    if len(sizes) > 1 and args.keep is not None and not args.keep.is_dir():
        parser.error("--keep with several sizes takes a directory (one store per size)")
    results = {size: run_size(args, size) for size in sizes}
    if len(sizes) > 1:
        cases = list(results[sizes[0]])
        print_growth(
            "growth: weekly report metric tables",
            "spans",
            {case: [(size, *results[size][case]) for size in sizes] for case in cases},
        )
    at = 10_000_000 if 10_000_000 in results else sizes[-1]
    seconds, rss = results[at]["infermeter"]
    base = results[at]["duckdb"][0]
    print()
    target(
        f"analytics metric tables on {at:,} spans / one hand-written DuckDB query",
        f"{ratio(seconds, base):.2f}x",
        "<= 1.0x",
        ratio(seconds, base) <= 1.0,
    )
    target(
        f"analytics metric tables on {at:,} spans, peak RSS",
        f"{rss:.0f} MiB",
        "<= 1024 MiB",
        rss <= 1024,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
