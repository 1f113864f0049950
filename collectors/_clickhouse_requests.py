"""Step 2 of the scale-out design: the span -> request rollup inside ClickHouse.

A materialized view over ``otel_traces`` itself (a materialized view over a plain view
never fires: it triggers on inserts into the table its query reads) aggregates every
insert block into ``infermeter_requests`` (``AggregatingMergeTree``): per trace and
service the entry span's facts (``argMin`` by start), the main model call's model
(``argMax`` by tokens), the least tenant, prompt name and prompt version of its spans
(each on its own, as the request table), span and throttle counts, and the tokens kept
per (model, response model, provider, kind) in a ``sumMap`` — never priced at ingest. A
trace whose spans arrive in several insert blocks leaves several partial rows; every read
merges them (``…Merge`` grouped by trace), so it is still one request whether or not
ClickHouse merged the parts in the background.

:func:`request_metrics` reads request rows, never spans: request counts, error, cold-start
and throttle rates, exact latency quantiles (``quantileExactInclusive``, which agrees with
DuckDB's ``quantile_cont``; ClickHouse's ``quantile`` samples) and tokens per request per
group, with the token cost priced now from the price book. Traces that enter one service
several times (fan-out) are left to the span path (step 1), which splits them.

Entry-level ``-If`` aggregates are wrapped in ``toNullable``: ``minIf``/``anyIf`` over no
matching row return the type's default (0, 1970-01-01) instead of NULL otherwise.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from infermeter.collectors._clickhouse_schema import DEFAULT_TABLE, TableShape, span_expressions

if TYPE_CHECKING:
    import polars as pl
    from clickhouse_connect.driver.client import Client

__all__ = [
    "REQUESTS_TABLE",
    "REQUESTS_VIEW",
    "request_metrics",
    "requests_statements",
    "rollup_select",
]

REQUESTS_TABLE: Final = "infermeter_requests"
REQUESTS_VIEW: Final = "infermeter_requests_mv"
TOKEN_KINDS: Final = ("input", "output", "cache_read", "cache_write", "reasoning")
_SEP: Final = "\\x1f"  # between the parts of a token key (SQL escape of U+001F)
_NULL: Final = "\\x00"  # a NULL model / provider in a token key
GROUPS: Final = (
    "tenant",
    "model",
    "provider",
    "prompt_name",
    "prompt_version",
    "endpoint",
    "runtime",
    "platform",
    "service_name",
)
# The entry span's facts, in this order in the argMin tuple.
_ENTRY: Final = (
    "duration_ms",
    "tenant",
    "endpoint",
    "runtime",
    "platform",
    "provider",
    "model",
    "prompt_name",
    "prompt_version",
    "status_code",
    "error_type",
    "cold_start",
    "init_duration_ms",
    "initialization_type",
)
_MARGIN: Final = timedelta(days=1)


def rollup_select(shape: TableShape, table: str) -> str:
    e = span_expressions(shape)
    names = (
        "trace_id",
        "start_time",
        "is_entry",
        "throttled",
        "response_model",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        *_ENTRY,
    )
    inner = ",\n            ".join(f"{e[name]} AS {name}" for name in dict.fromkeys(names))
    key = (
        f"concat(ifNull(model, '{_NULL}'), '{_SEP}', ifNull(response_model, '{_NULL}'), "
        f"'{_SEP}', ifNull(provider, '{_NULL}'), '{_SEP}', kind)"
    )
    kinds = "[" + ", ".join(f"'{k}'" for k in TOKEN_KINDS) + "]"
    values = "[" + ", ".join(f"ifNull({k}_tokens, 0)" for k in TOKEN_KINDS) + "]"
    entry = "tuple(" + ", ".join(_ENTRY) + ")"
    return f"""SELECT
    day, service_key, trace_id,
    minStateIf(toNullable(start_time), is_entry_) AS entry_start,
    countStateIf(is_entry_) AS entries,
    argMinStateIf({entry}, start_time, is_entry_) AS entry,
    argMaxStateIf(tuple(model, provider), llm_tokens, is_llm) AS child_llm,
    -- One state per tag, the least of each (min skips NULLs), as the request table: one
    -- tuple taken from whichever span came first depended on row order.
    minState(tenant) AS child_tenant,
    minState(prompt_name) AS child_prompt_name,
    minState(prompt_version) AS child_prompt_version,
    countState() AS spans,
    countStateIf(ifNull(throttled, false)) AS throttle_events,
    sumMapState(arrayMap(kind -> {key}, {kinds}), CAST({values}, 'Array(Int64)')) AS tokens
FROM (
    SELECT *,
        coalesce(is_entry, false) AS is_entry_,
        ifNull(input_tokens, 0) + ifNull(output_tokens, 0) AS llm_tokens,
        model IS NOT NULL OR response_model IS NOT NULL AS is_llm
    FROM (
        SELECT
            toDate(Timestamp) AS day,
            toString(ServiceName) AS service_key,
            {inner}
        FROM `{table}`
    )
)
GROUP BY day, service_key, trace_id"""  # noqa: S608 — constants and generated expressions


def requests_statements(shape: TableShape, *, table: str = DEFAULT_TABLE) -> tuple[str, str]:
    """The ``infermeter_requests`` table and the materialized view that fills it (over
    the table itself: a materialized view over a view would never fire)."""
    select = rollup_select(shape, table)
    create = (
        f"CREATE TABLE IF NOT EXISTS {REQUESTS_TABLE}\n"
        "ENGINE = AggregatingMergeTree\nPARTITION BY toYYYYMM(day)\n"
        f"ORDER BY (day, service_key, trace_id)\nEMPTY AS {select}"
    )
    view = f"CREATE MATERIALIZED VIEW IF NOT EXISTS {REQUESTS_VIEW} TO {REQUESTS_TABLE} AS {select}"
    return create, view


def request_metrics(
    client: Client,
    *,
    by: tuple[str, ...] | list[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    prices: Any = None,
) -> pl.DataFrame:
    """Per group: request rows merged from ``infermeter_requests`` and their metrics
    (see the module docstring). ``prices`` (a PriceBook) adds ``token_cost_usd``."""
    import polars as pl

    unknown = [column for column in by if column not in GROUPS]
    if unknown:
        raise ValueError(f"cannot group requests by {unknown}; choose from {', '.join(GROUPS)}")
    fields = ", ".join(f"e.{i + 1} AS entry_{name}" for i, name in enumerate(_ENTRY))
    where, parameters = [], {}
    if since is not None:
        where.append("day >= {since_day:Date}")
        parameters["since_day"] = (since - _MARGIN).date()
        parameters["since"] = since
    if until is not None:
        where.append("day <= {until_day:Date}")
        parameters["until_day"] = (until + _MARGIN).date()
        parameters["until"] = until
    having = ["entries = 1"]
    if since is not None:
        having.append("start_time >= {since:DateTime64(6, 'UTC')}")
    if until is not None:
        having.append("start_time < {until:DateTime64(6, 'UTC')}")
    group_list = ", ".join(by)
    group_select = f"{group_list}, " if by else ""
    group_clause = f"GROUP BY {group_list} ORDER BY {group_list}" if by else ""
    token = (
        "toFloat64(arraySum(arrayMap((k, v) -> if(endsWith(k, '{sep}{kind}'), v, 0),"
        " tokens.1, tokens.2)))"
    )
    per_request = {kind: token.format(sep=_SEP, kind=kind) for kind in TOKEN_KINDS}
    sql = f"""
WITH merged AS (
    SELECT trace_id, service_key,
        minMerge(entry_start) AS start_time,
        countMerge(entries) AS entries,
        argMinMerge(entry) AS e,
        argMaxMerge(child_llm) AS c,
        minMerge(child_tenant) AS child_tenant_,
        minMerge(child_prompt_name) AS child_prompt_name_,
        minMerge(child_prompt_version) AS child_prompt_version_,
        countMerge(throttle_events) AS throttle_events,
        sumMapMerge(tokens) AS tokens
    FROM {REQUESTS_TABLE}
    {"WHERE " + " AND ".join(where) if where else ""}
    GROUP BY trace_id, service_key
    HAVING {" AND ".join(having)}
),
requests AS (
    SELECT *, {fields},
        coalesce(entry_tenant, child_tenant_) AS tenant,
        coalesce(entry_model, c.1) AS model,
        coalesce(entry_provider, c.2) AS provider,
        coalesce(entry_prompt_name, child_prompt_name_) AS prompt_name,
        coalesce(entry_prompt_version, child_prompt_version_) AS prompt_version,
        entry_endpoint AS endpoint, entry_runtime AS runtime, entry_platform AS platform,
        nullIf(service_key, '') AS service_name,
        entry_status_code = 'ERROR' OR entry_error_type IS NOT NULL AS is_error,
        ifNull(entry_cold_start, false) AS cold,
        -- Latency as the caller feels it, as the request table defines it: a cold request
        -- on a serverless runtime also waited for INIT (not with provisioned concurrency).
        entry_duration_ms + if(
            cold AND entry_runtime IN ('serverless', 'serverless_container')
                AND ifNull(entry_initialization_type, '') != 'provisioned-concurrency',
            greatest(ifNull(entry_init_duration_ms, 0), 0), 0) AS latency_ms,
        {per_request["input"]} AS input_tokens,
        {per_request["output"]} AS output_tokens
    FROM merged
)
SELECT {group_select}
    count() AS requests,
    countIf(is_error) AS errors,
    errors / requests AS error_rate,
    quantileExactInclusive(0.5)(latency_ms) AS p50_ms,
    quantileExactInclusive(0.95)(latency_ms) AS p95_ms,
    quantileExactInclusive(0.99)(latency_ms) AS p99_ms,
    countIf(cold) AS cold_starts,
    cold_starts / requests AS cold_start_rate,
    countIf(throttle_events > 0) AS throttled,
    throttled / requests AS throttle_rate,
    -- Not "AS throttle_events": the alias would shadow the column in countIf above.
    sum(throttle_events) AS throttle_event_count,
    avg(input_tokens) AS input_tokens_per_request,
    avg(output_tokens) AS output_tokens_per_request,
    sumMap(tokens) AS token_sums
FROM requests
{group_clause}
"""  # noqa: S608 — composed from constants and checked group names; values are parameters
    table = client.query_arrow(sql, parameters=parameters, use_strings=True)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    if prices is not None:
        frame = frame.with_columns(
            pl.Series(
                "token_cost_usd",
                [_cost(sums, prices) for sums in frame["token_sums"].to_list()],
                dtype=pl.Float64,
            )
        )
    return frame.drop("token_sums").rename({"throttle_event_count": "throttle_events"})


def _cost(sums: Any, prices: Any) -> float | None:
    """Token cost of summed tokens per (model, response model, provider), priced now."""
    # A (keys, values) tuple; polars gives it as a struct (a dict of its two fields).
    keys, values = list(sums.values()) if isinstance(sums, dict) else sums
    per_model: dict[tuple[str | None, str | None, str | None], dict[str, int]] = {}
    for key, value in zip(keys, values, strict=True):
        model, response_model, provider, kind = (
            None if p == "\x00" else p for p in key.split("\x1f")
        )
        per_model.setdefault((model, response_model, provider), {})[str(kind)] = int(value)
    total = 0.0
    for (model, response_model, provider), tokens in per_model.items():
        if tokens.get("input", 0) + tokens.get("output", 0) == 0:
            continue
        price = prices.token_price(response_model, provider) or prices.token_price(model, provider)
        if price is None:
            return None
        total += price.cost(
            tokens.get("input", 0),
            tokens.get("output", 0),
            tokens.get("cache_read", 0),
            tokens.get("cache_write", 0),
            tokens.get("reasoning", 0),
        )
    return total
