"""The request table: one row per request, priced at query time.

A request is an entry span: a root span, a span whose parent is remote (OTLP span flags
0x100|0x200, e.g. a FastAPI server span continuing an upstream ``traceparent``), a SERVER
or CONSUMER span whose parent is no span of its own service (a queue consumer), or a span
with ``infermeter.entry=true`` (the decorator's outermost call). A web framework's server
span around an observed handler is not a second request (see ``SPANS_IN_WINDOW``). Its
tokens, throttles, retries and token cost are summed over every span of its trace in the
same service whose tenant is the entry span's (or unset): a span naming another tenant was
written into this trace by someone else (a token pinned to that tenant can only write its
own tenant) and never changes the request's numbers; such spans are counted in
``foreign_spans``. Usage is counted once (the innermost span with usage wins over the
spans around it: ``@observe`` returning the response around an instrumentation's span is
1x, not 2x). Latency, cold start, runtime, memory, tenant, endpoint and prompt version
come from the entry span (tenant, model, provider and prompt fall back to the nested
spans' values when the entry span has none). When one trace enters a service several
times (fan-out), each span belongs to the latest entry of its service instance that
started at or before it.

Retries: every span of a call is one attempt and carries ``attempt = 1 +
infermeter.retries`` (the attempts before it). A call's retries are the count on its last
attempt, so both emitters that record one span per attempt (1, 2, 3 → 2 retries) and
emitters that record only the final attempt (3 → 2 retries) count right; attempts of a
call share their parent span and name, and a lower attempt number starts a new call.
Throttle events are the throttled spans of the request.

Compute cost per request (list prices from the :class:`PriceBook`, facts from
:class:`Deployments`):

- ``serverless`` (Lambda-like): duration rounded up to 1 ms * memory GB * GB-s price +
  request fee, plus INIT duration * memory * GB-s price on cold starts (Lambda bills INIT
  since 2025-08). Requests served by provisioned concurrency
  (``initialization_type = provisioned-concurrency``) pay the PC duration price and no
  INIT; the PC capacity itself is a fixed cost the economics account for.
- ``serverless_container`` (Cloud Run request-based, Azure Container Apps on
  ``azure_container_apps``): (vCPU * vCPU-s price + GiB * GiB-s price) * billed seconds +
  request fee, where billed seconds are the request's share (by duration) of the busy
  time of its instance (the union of the intervals of its requests; a request without
  ``service_instance`` is its own instance), plus startup time on cold starts.
- ``container``: instances seen in each clock hour of each endpoint (at least
  ``min_instances``, at least one) * ``instance_price_per_hour``, spread evenly over that
  hour's requests. Hours without a request are not observed here (the runtime economics
  price the always-on fleet).
- ``unknown`` runtime: no compute cost (NULL).

Serverless on other platforms (Cloud Functions, Azure Functions) uses the Lambda prices;
override them in a pricing file when that matters.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from infermeter.agent.semconv import (
    PROVIDER_SELF_HOSTED,
    RUNTIME_SERVERLESS,
    RUNTIME_SERVERLESS_CONTAINER,
)
from infermeter.analytics.query import _queries
from infermeter.analytics.query._bind import sql_over

if TYPE_CHECKING:
    import duckdb
    import polars as pl
    from infermeter.analytics.economics._deployments import Deployments
    from infermeter.analytics.pricing._prices import PriceBook

__all__ = [
    "price_coverage",
    "priced_requests",
    "request_facts",
    "request_table",
    "unpriced_models",
]

_FREE = (0.0, 0.0, 0.0, 0.0, 0.0)
_CONTAINER_APPS_PLATFORMS = frozenset({"azure_container_apps", "azure.container_apps"})

_PRICE_COLUMNS = (
    "key_id",
    "model",
    "response_model",
    "provider",
    "matched_model",
    "match",
    "input_price",
    "output_price",
    "cache_read_price",
    "cache_write_price",
    "reasoning_price",
)
_WORKLOAD_COLUMNS = (
    "endpoint",
    "runtime",
    "span_platform",
    "platform",
    "slo_ms",
    "memory_mb",
    "vcpu",
    "concurrency",
    "min_instances",
    "instance_price_per_hour",
    "architecture",
    "gb_s_price",
    "pc_duration_gb_s_price",
    "vcpu_s_price",
    "gib_s_price",
    "request_fee",
)


def _utc_naive(moment: datetime | None) -> datetime | None:
    """The store keeps naive UTC timestamps; aware datetimes are converted, naive kept."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _window(
    con: duckdb.DuckDBPyConnection,
    spans: duckdb.DuckDBPyRelation,
    since: datetime | None,
    until: datetime | None,
) -> tuple[duckdb.DuckDBPyRelation, dict[str, Any]]:
    params = {"since": _utc_naive(since), "until": _utc_naive(until)}
    # The adjustments (entries from foreign spans, usage counted once, untokenized calls)
    # need a recursive walk: computed once and held in memory, since the request table
    # reads the window relation several times.
    adjustments = sql_over(con, _queries.SPAN_ADJUSTMENTS, params=params, im_spans=spans)
    held = adjustments.arrow().read_all()
    window = sql_over(
        con, _queries.SPANS_IN_WINDOW, params=params, im_spans=spans, im_adjustments=held
    )
    return window, params


def _spans_in_window(
    spans: duckdb.DuckDBPyRelation, since: datetime | None, until: datetime | None
) -> duckdb.DuckDBPyRelation:
    """The stored spans SPANS_IN_WINDOW reads (start in ``[since, until + 1 h)``), without
    the adjustments: for reading the keys to look up."""
    import duckdb

    start = duckdb.ColumnExpression("start_time")
    if since is not None:
        spans = spans.filter(start >= duckdb.ConstantExpression(_utc_naive(since)))
    if until is not None:
        limit = _utc_naive(until)
        assert limit is not None
        spans = spans.filter(start < duckdb.ConstantExpression(limit + timedelta(hours=1)))
    return spans


def _frame(rows: list[tuple[Any, ...]], columns: tuple[str, ...], types: dict[str, Any]) -> Any:
    # A polars frame, not pyarrow.array(): converting Python lists, pyarrow imports pandas
    # (a second per command, measured, for a table of a dozen rows).
    import polars as pl

    return pl.DataFrame(
        {
            name: pl.Series(name, [row[i] for row in rows], dtype=types[name])
            for i, name in enumerate(columns)
        }
    )


def _price_rows(
    keys: Iterable[tuple[str | None, str | None, str | None]], prices: PriceBook
) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for key_id, (model, response_model, provider) in enumerate(keys):
        if provider == PROVIDER_SELF_HOSTED:
            # A model the team serves itself costs GPU time, not tokens (the GPU economics
            # price it); a namesake in the API price map must not charge its tokens.
            rows.append(
                (key_id, model, response_model, provider, None, PROVIDER_SELF_HOSTED, *_FREE)
            )
            continue
        # The response model names the snapshot that ran (Azure deployments name the request
        # model anything), so it prices first.
        price = prices.token_price(response_model, provider) or prices.token_price(model, provider)
        if price is None:
            # Kept without prices: every key has a row (and an id the request table picks a
            # request's main model call by); a NULL input price reads as "unpriced".
            rows.append((key_id, model, response_model, provider, *(None,) * 7))
            continue
        rows.append(
            (
                key_id,
                model,
                response_model,
                provider,
                price.model,
                price.match,
                price.input,
                price.output,
                price.cache_read,
                price.cache_write,
                price.reasoning,
            )
        )
    return rows


def _workload_rows(
    keys: Iterable[tuple[str | None, str | None, str | None]],
    prices: PriceBook,
    deployments: Deployments,
) -> list[tuple[Any, ...]]:
    compute = prices.compute
    rows: list[tuple[Any, ...]] = []
    for endpoint, runtime, span_platform in keys:
        deployment = deployments.for_workload(endpoint, runtime)
        platform = span_platform or deployment.platform
        gb_s = pc_gb_s = vcpu_s = gib_s = fee = None
        if runtime == RUNTIME_SERVERLESS:
            gb_s = compute.lambda_gb_s(deployment.architecture)
            pc_gb_s = compute.lambda_pc_duration_gb_s(deployment.architecture)
            fee = compute.lambda_request
        elif runtime == RUNTIME_SERVERLESS_CONTAINER:
            if platform.lower() in _CONTAINER_APPS_PLATFORMS:
                vcpu_s, gib_s = compute.container_apps_active_vcpu_s, compute.container_apps_gib_s
                fee = compute.container_apps_request
            else:
                vcpu_s, gib_s = compute.cloud_run_request_vcpu_s, compute.cloud_run_request_gib_s
                fee = compute.cloud_run_request
        rows.append(
            (
                endpoint,
                runtime,
                span_platform,
                deployment.platform,
                deployment.slo_ms,
                deployment.memory_mb,
                deployment.vcpu,
                deployment.concurrency,
                deployment.min_instances,
                deployment.instance_price_per_hour,
                deployment.architecture,
                gb_s,
                pc_gb_s,
                vcpu_s,
                gib_s,
                fee,
            )
        )
    return rows


def _lookup_tables(
    keys_of: duckdb.DuckDBPyRelation,
    prices: PriceBook,
    deployments: Deployments,
    *,
    bound_as: str = "im_spans",
    query: str = _queries.REQUEST_DISTINCT_KEYS,
) -> tuple[Any, Any]:
    import polars as pl

    keys = keys_of.query(bound_as, query)
    assert keys is not None
    price_keys: list[tuple[str | None, str | None, str | None]] = []
    workload_keys: list[tuple[str | None, str | None, str | None]] = []
    for kind, a, b, c in keys.fetchall():
        (price_keys if kind == "price" else workload_keys).append((a, b, c))
    text, number = pl.String, pl.Float64
    price_table = _frame(
        _price_rows(price_keys, prices),
        _PRICE_COLUMNS,
        {
            name: pl.Int64 if name == "key_id" else text if i < 6 else number
            for i, name in enumerate(_PRICE_COLUMNS)
        },
    )
    workload_types: dict[str, Any] = {name: number for name in _WORKLOAD_COLUMNS}
    for name in ("endpoint", "runtime", "span_platform", "platform", "architecture"):
        workload_types[name] = text
    workload_types["concurrency"] = workload_types["min_instances"] = pl.Int64
    workload_table = _frame(
        _workload_rows(workload_keys, prices, deployments), _WORKLOAD_COLUMNS, workload_types
    )
    return price_table, workload_table


def request_table(
    con: duckdb.DuckDBPyConnection,
    spans: duckdb.DuckDBPyRelation,
    *,
    prices: PriceBook,
    deployments: Deployments,
    since: datetime | None = None,
    until: datetime | None = None,
) -> duckdb.DuckDBPyRelation:
    """One row per request of ``spans`` (a relation with the store's span columns), priced
    with ``prices`` now, never at ingest.

    ``since``/``until`` keep requests whose entry span starts in ``[since, until)`` (naive
    datetimes are UTC). The result is lazy; hold it (a temporary table: ``_bind.hold``,
    as ``Analysis.requests`` does, or :func:`metric_inputs`) before computing several
    metric tables from it. Columns: the analytics contract's
    (``trace_id … slo_ms``) plus ``error_type, initialization_type, span_count, llm_spans,
    vcpu, instance_concurrency, min_instances, instance_price_per_hour, architecture,
    foreign_spans, latency_ms`` (``foreign_spans``: spans of another tenant in the request's
    trace, left out of it). ``duration_ms`` is the entry span's (what serverless bills per request);
    ``latency_ms`` is what the caller waited: on ``serverless`` / ``serverless_container``
    a cold request's span starts after INIT, so its latency is INIT + duration (not on
    provisioned concurrency, whose INIT ran ahead of time); elsewhere it equals
    ``duration_ms``.
    ``token_cost_usd`` is NULL when a span of the request has tokens but no price.

    It is :func:`priced_requests` over :func:`request_facts` of the same spans, in one
    query (the facts computed once).
    """
    window, params = _window(con, spans, since, until)
    price_table, workload_table = _lookup_tables(
        _spans_in_window(spans, since, until), prices, deployments
    )
    return sql_over(
        con,
        _queries.REQUEST_TABLE,
        params=params,
        im_window=window,
        im_prices=price_table,
        im_workloads=workload_table,
    )


def request_facts(
    con: duckdb.DuckDBPyConnection,
    spans: duckdb.DuckDBPyRelation,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> duckdb.DuckDBPyRelation:
    """Stage (a) of the request table: one row per request of ``spans`` with its unpriced
    facts (``_queries.REQUEST_FACT_COLUMNS``: the entry span's columns as ``entry_*``, the
    sums over its spans, the nested spans' model and tags, and ``usage``: token counts per
    model, never priced). A ClickHouse store's request rollup gives the same rows."""
    window, params = _window(con, spans, since, until)
    return sql_over(con, _queries.REQUEST_FACTS, params=params, im_window=window)


def priced_requests(
    con: duckdb.DuckDBPyConnection,
    facts: Any,
    *,
    prices: PriceBook,
    deployments: Deployments,
) -> duckdb.DuckDBPyRelation:
    """Stage (b) of the request table: request ``facts`` (a relation or Arrow table with
    :func:`request_facts`' columns) priced now with ``prices`` and ``deployments``; the
    same rows and columns as :func:`request_table`."""
    facts_relation = sql_over(con, "SELECT * FROM im_facts", im_facts=facts)
    price_table, workload_table = _lookup_tables(
        facts_relation,
        prices,
        deployments,
        bound_as="im_facts",
        query=_queries.REQUEST_FACT_KEYS,
    )
    return sql_over(
        con,
        _queries.PRICED_REQUESTS,
        im_facts=facts,
        im_prices=price_table,
        im_workloads=workload_table,
    )


def unpriced_models(
    con: duckdb.DuckDBPyConnection,
    spans: duckdb.DuckDBPyRelation,
    *,
    prices: PriceBook,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pl.DataFrame:
    """Models whose spans carry tokens but have no price: ``model, response_model,
    provider, spans, traces, input_tokens, output_tokens, first_seen, last_seen`` — add
    them to a pricing file (``[tokens."name"]`` or ``[aliases]``) to price them."""
    from infermeter.analytics.economics._deployments import Deployments

    window, params = _window(con, spans, since, until)
    price_table, _ = _lookup_tables(
        _spans_in_window(spans, since, until), prices, Deployments(prices=prices)
    )
    del params  # the window relation carries them
    frame: pl.DataFrame = sql_over(
        con, _queries.UNPRICED_MODELS, im_window=window, im_prices=price_table
    ).pl()
    return frame


def price_coverage(
    con: duckdb.DuckDBPyConnection,
    spans: duckdb.DuckDBPyRelation,
    *,
    prices: PriceBook,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pl.DataFrame:
    """How every model seen in ``spans`` is priced, to check the cost numbers.

    One row per (model, response_model, provider) with ``spans, traces``, token sums,
    ``first_seen, last_seen`` and the price used: ``priced_by`` (price-map entry),
    ``match`` (exact, alias, normalized, undated, snapshot), ``input_per_million``,
    ``output_per_million``, ``cache_read_per_million``, ``cache_write_per_million``,
    ``reasoning_per_million``, ``source``, ``token_cost_usd``; ``unpriced`` is true where
    tokens were used without a price; ``untokenized_spans`` counts LLM calls that reported
    no readable token count (their cost is unknown); ``emitter_cost_usd`` is what the
    emitting instrumentation priced the calls at (OpenLIT's ``gen_ai.usage.cost``) and
    ``cost_difference_usd`` = ``token_cost_usd`` - ``emitter_cost_usd``. Usage is counted
    once per call (see ``SPANS_IN_WINDOW``). ``ambiguous`` lists the listings a name without
    a provider could mean at different prices when neither the span's provider nor the
    model's maker (``model_maker``) picks one (else null).
    """
    import polars as pl

    window, _ = _window(con, spans, since, until)
    usage = window.query("im_window", _queries.MODEL_USAGE)
    assert usage is not None
    frame: pl.DataFrame = usage.pl()
    resolved: list[dict[str, Any]] = []
    for row in frame.iter_rows(named=True):
        price = prices.token_price(row["response_model"], row["provider"]) or prices.token_price(
            row["model"], row["provider"]
        )
        used = row["input_tokens"] + row["output_tokens"] > 0
        if row["provider"] == PROVIDER_SELF_HOSTED:
            # Served by the team's own GPUs: priced by GPU time, never per token.
            price, used = None, False
        resolved.append(
            {
                "priced_by": price.model if price else None,
                "match": price.match
                if price
                else (PROVIDER_SELF_HOSTED if row["provider"] == PROVIDER_SELF_HOSTED else None),
                "input_per_million": price.input * 1e6 if price else None,
                "output_per_million": price.output * 1e6 if price else None,
                "cache_read_per_million": price.cache_read * 1e6 if price else None,
                "cache_write_per_million": price.cache_write * 1e6 if price else None,
                "reasoning_per_million": price.reasoning * 1e6 if price else None,
                "source": price.source if price else None,
                "token_cost_usd": price.cost(
                    row["input_tokens"],
                    row["output_tokens"],
                    row["cache_read_tokens"],
                    row["cache_write_tokens"],
                    row["reasoning_tokens"],
                )
                if price
                else None,
                "unpriced": used and price is None,
                # A provider-less name several listings could mean at different prices.
                "ambiguous": ", ".join(prices.ambiguous(row["model"], row["provider"])) or None,
            }
        )
        cost = resolved[-1]["token_cost_usd"]
        emitted = row["emitter_cost_usd"]
        resolved[-1]["cost_difference_usd"] = (
            cost - emitted if cost is not None and emitted is not None else None
        )
    schema = {
        "priced_by": pl.String,
        "match": pl.String,
        "input_per_million": pl.Float64,
        "output_per_million": pl.Float64,
        "cache_read_per_million": pl.Float64,
        "cache_write_per_million": pl.Float64,
        "reasoning_per_million": pl.Float64,
        "source": pl.String,
        "token_cost_usd": pl.Float64,
        "unpriced": pl.Boolean,
        "cost_difference_usd": pl.Float64,
        "ambiguous": pl.String,
    }
    return pl.concat([frame, pl.DataFrame(resolved, schema=schema)], how="horizontal")
