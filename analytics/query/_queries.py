"""Every metric query of infermeter.analytics, in DuckDB SQL, in one place.

Kept together so that a ClickHouse twin (``_queries_clickhouse.py`` with the same names,
for the ``otel_traces`` schema of the OpenTelemetry Collector's clickhouseexporter) can
sit beside it: exact quantiles agree between DuckDB ``quantile_cont`` and ClickHouse
``quantileExactInclusive``; time buckets and NULL semantics are the parts to port.

The queries read relations that the calling function binds to Python variables named
``im_*`` (DuckDB reads a relation or Arrow table held in a local variable by its name), and
take user values only as ``$parameters``. The only text composed here is from fixed
whitelists: group-by column names and the aggregate list shared by two query paths.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources
from typing import Final

__all__ = [
    "COHORT_SUMS",
    "CONCURRENCY",
    "GROUP_COLUMNS",
    "LLM_OPERATIONS",
    "METRICS",
    "METRIC_MEASURES",
    "MODEL_USAGE",
    "NEWEST_SPAN",
    "PRICED_REQUESTS",
    "REQUESTS_STARTING",
    "REQUEST_DISTINCT_KEYS",
    "REQUEST_FACTS",
    "REQUEST_FACT_COLUMNS",
    "REQUEST_FACT_KEYS",
    "REQUEST_TABLE",
    "SPANS_IN_WINDOW",
    "SPANS_OF_TRACES",
    "SPAN_ADJUSTMENTS",
    "STAGE_BREAKDOWN",
    "SUM_COLUMNS",
    "TRACES_STARTING",
    "TRACE_FIRST_SPAN",
    "UNPRICED_MODELS",
    "concurrency_sql",
    "metrics_sql",
    "sql_file",
    "stage_breakdown_sql",
]

# gen_ai.operation.name values (and OpenLLMetry's llm.request.type, OpenInference's span
# kind, lower-cased) of calls that run a model and so must report tokens.
LLM_OPERATIONS: Final = (
    "chat",
    "text_completion",
    "generate_content",
    "completion",
    "embeddings",
    "embedding",
    "llm",
)

# Columns a metric table may be grouped by (the request table's dimension columns).
GROUP_COLUMNS: Final = (
    "tenant",
    "model",
    "prompt_version",
    "prompt_name",
    "endpoint",
    "runtime",
    "provider",
    "platform",
    "service_name",
)

# Spans of the requests that start in [since, until). Child spans start after their entry
# span; one hour of look-ahead past ``until`` keeps the children of late requests.
#
# Entry spans (one per request): the collector marks root spans, spans with a remote
# parent (OTLP span flags) and infermeter.entry=true; here a SERVER or CONSUMER span whose
# parent is no span of its own service in the trace is one too (the upstream service's
# client span, or a queue producer, started it). One request per observed entry: where a
# service's trace holds an entry span of infermeter's decorator, a foreign entry around it
# (a web framework's server span) is not a second request ('infermeter' is the decorator's
# instrumentation scope, INFERMETER_SCOPE).
#
# Usage counted once: when a span and its descendant in the same service both carry token
# usage (``@observe`` returning the response around an instrumentation's span), the
# innermost span's numbers win and the outer span's tokens become NULL; an innermost span
# missing cache-read/cache-write/reasoning counts takes them from its nearest outer span
# when that outer span wraps only it. Likewise a throttled span with a throttled
# descendant is not a second throttle event (``throttled`` false on the outer one).
# ``untokenized``: a successful LLM call (a model-calling GenAI operation, or a model name
# on a span naming no operation — a rerank or retrieval span names a model but bills no
# tokens; failed and throttled calls bill none either) with no readable token count, no
# usage in a span around it and none in a span inside it: its token cost is unknown, never
# a silent $0.
# The spans of the window whose reading changes (see above), computed once per request
# table and held in memory: (trace_id, span_id) with the new entry verdict (NULL: as
# stored), whether its usage is shadowed by a span inside it, whether a throttled span
# inside it is the throttle event, the cache/reasoning counts it inherits, and
# ``untokenized``. Only the spans concerned are listed.
SPAN_ADJUSTMENTS: Final = """
WITH RECURSIVE in_window AS NOT MATERIALIZED (
    -- Read again by each step (a scan reads only that step's columns): holding it copied
    -- every span (attributes and events too) and spilled gigabytes from 1M spans on.
    SELECT trace_id, span_id, parent_span_id, service_name, tenant, kind, is_entry, scope_name,
        operation, model, response_model, status_code, error_type, throttled,
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens
    FROM im_spans
    WHERE ($since::TIMESTAMP IS NULL OR start_time >= $since::TIMESTAMP)
      AND ($until::TIMESTAMP IS NULL OR start_time < $until::TIMESTAMP + INTERVAL 1 HOUR)
),
handed_candidates AS (
    SELECT trace_id, span_id, parent_span_id, service_name FROM in_window
    WHERE kind IN ('SERVER', 'CONSUMER') AND NOT coalesce(is_entry, false)
      AND parent_span_id IS NOT NULL
),
handed_over AS (
    SELECT f.trace_id, f.span_id FROM handed_candidates AS f
    ANTI JOIN in_window AS p
        ON p.trace_id = f.trace_id AND p.span_id = f.parent_span_id
        AND p.service_name IS NOT DISTINCT FROM f.service_name
),
entries AS (
    SELECT w.trace_id, w.span_id, w.service_name, w.scope_name, w.tenant FROM in_window AS w
    WHERE w.is_entry
    UNION ALL
    SELECT w.trace_id, w.span_id, w.service_name, w.scope_name, w.tenant FROM in_window AS w
    SEMI JOIN handed_over AS h ON w.trace_id = h.trace_id AND w.span_id = h.span_id
),
covered AS (
    SELECT f.trace_id, f.span_id FROM entries AS f
    SEMI JOIN (
        SELECT trace_id, service_name FROM entries WHERE scope_name = 'infermeter'
    ) AS o ON f.trace_id = o.trace_id AND f.service_name IS NOT DISTINCT FROM o.service_name
    WHERE f.scope_name IS DISTINCT FROM 'infermeter'
),
-- Spans whose numbers may repeat (or lack) another span's: usage, throttles, LLM calls.
marked AS (
    SELECT trace_id, span_id, parent_span_id, service_name, tenant,
        input_tokens IS NOT NULL OR output_tokens IS NOT NULL AS has_usage,
        coalesce(throttled, false) AS is_throttled,
        input_tokens IS NULL AND output_tokens IS NULL
            AND (lower(operation) IN ({llm_operations})
                 OR (operation IS NULL
                     AND (model IS NOT NULL OR response_model IS NOT NULL)))
            AND NOT coalesce(throttled, false) AND error_type IS NULL
            AND status_code IS DISTINCT FROM 'ERROR' AS tokenless_call,
        cache_read_tokens, cache_write_tokens, reasoning_tokens
    FROM in_window
    WHERE input_tokens IS NOT NULL OR output_tokens IS NOT NULL OR throttled
        OR model IS NOT NULL OR response_model IS NOT NULL
        OR lower(operation) IN ({llm_operations})
),
-- Traces with more than one marked span, by the hash of their id: an integer key is
-- cheaper to group and join than the 32-character id, and a collision only sends a trace
-- without nesting through the walk below, which finds nothing in it.
nested_traces AS MATERIALIZED (
    SELECT hash(trace_id) AS trace_hash FROM marked GROUP BY ALL HAVING count(*) > 1
),
-- A span of another tenant than its service's entries (written into someone else's trace)
-- never shadows their usage or throttles: it is left out of their request. Only traces
-- with nested marked spans are read (most traces have none).
entry_tenants AS (
    SELECT e.trace_id, e.service_name,
        list(DISTINCT e.tenant) FILTER (WHERE e.tenant IS NOT NULL) AS tenants
    FROM entries AS e
    SEMI JOIN nested_traces AS n ON hash(e.trace_id) = n.trace_hash
    GROUP BY ALL
),
-- Held (few rows): the recursive step below reads it once per level.
tree AS MATERIALIZED (
    SELECT w.trace_id, w.span_id, w.parent_span_id FROM in_window AS w
    SEMI JOIN nested_traces AS n ON hash(w.trace_id) = n.trace_hash
    WHERE w.parent_span_id IS NOT NULL
),
-- Every (marked span, ancestor) pair of those traces, carrying the marked span's facts;
-- depth bounded against cycles.
up(trace_id, span_id, service_name, tenant, has_usage, is_throttled, ancestor_id, depth) AS (
    SELECT m.trace_id, m.span_id, m.service_name, m.tenant, m.has_usage, m.is_throttled,
        m.parent_span_id, 1
    FROM marked AS m SEMI JOIN nested_traces AS n ON hash(m.trace_id) = n.trace_hash
    WHERE m.parent_span_id IS NOT NULL
    UNION ALL
    SELECT u.trace_id, u.span_id, u.service_name, u.tenant, u.has_usage, u.is_throttled,
        t.parent_span_id, u.depth + 1
    FROM up AS u JOIN tree AS t ON t.trace_id = u.trace_id AND t.span_id = u.ancestor_id
    WHERE u.depth < 64
),
pairs AS (
    SELECT a.trace_id, a.span_id AS outer_id, u.span_id AS inner_id, u.depth,
        a.has_usage AS outer_usage, u.has_usage AS inner_usage,
        a.is_throttled AS outer_throttled, u.is_throttled AS inner_throttled,
        a.cache_read_tokens AS outer_cache_read, a.cache_write_tokens AS outer_cache_write,
        a.reasoning_tokens AS outer_reasoning
    FROM up AS u
    JOIN marked AS a ON a.trace_id = u.trace_id AND a.span_id = u.ancestor_id
    LEFT JOIN entry_tenants AS et
        ON et.trace_id = u.trace_id AND et.service_name IS NOT DISTINCT FROM u.service_name
    WHERE a.service_name IS NOT DISTINCT FROM u.service_name
        AND (u.tenant IS NULL
             OR ((a.tenant IS NULL OR a.tenant = u.tenant)
                 AND (coalesce(len(et.tenants), 0) = 0 OR list_contains(et.tenants, u.tenant))))
),
outer_spans AS (
    SELECT trace_id, outer_id AS span_id,
        bool_or(outer_usage AND inner_usage) AS shadowed,
        count(*) FILTER (WHERE outer_usage AND inner_usage) AS usage_inside,
        bool_or(outer_throttled AND inner_throttled) AS throttle_inside,
        bool_or(inner_usage) AS any_usage_inside
    FROM pairs GROUP BY ALL
),
inner_spans AS (
    SELECT p.trace_id, p.inner_id AS span_id,
        bool_or(p.outer_usage) AS usage_around,
        arg_min({{'cache_read': p.outer_cache_read, 'cache_write': p.outer_cache_write,
                  'reasoning': p.outer_reasoning}}, p.depth)
            FILTER (WHERE p.outer_usage AND p.inner_usage AND o.usage_inside = 1
                    AND (p.outer_cache_read IS NOT NULL OR p.outer_cache_write IS NOT NULL
                         OR p.outer_reasoning IS NOT NULL))
            AS inherited
    FROM pairs AS p
    LEFT JOIN outer_spans AS o ON o.trace_id = p.trace_id AND o.span_id = p.outer_id
    GROUP BY ALL
),
facts AS (
    SELECT trace_id, span_id, true AS handed, false AS is_covered, NULL::BOOLEAN AS shadowed,
        NULL::BOOLEAN AS throttle_inside, NULL::BOOLEAN AS any_usage_inside,
        NULL::BOOLEAN AS usage_around, NULL AS inherited, NULL::BOOLEAN AS tokenless
    FROM handed_over
    UNION ALL
    SELECT trace_id, span_id, false, true, NULL, NULL, NULL, NULL, NULL, NULL FROM covered
    UNION ALL
    SELECT trace_id, span_id, false, false, shadowed, throttle_inside, any_usage_inside,
        NULL, NULL, NULL
    FROM outer_spans
    UNION ALL
    SELECT trace_id, span_id, false, false, NULL, NULL, NULL, usage_around, inherited, NULL
    FROM inner_spans
    UNION ALL
    SELECT trace_id, span_id, false, false, NULL, NULL, NULL, NULL, NULL, true
    FROM marked WHERE tokenless_call
),
merged AS (
    SELECT trace_id, span_id, bool_or(handed) AS handed, bool_or(is_covered) AS is_covered,
        bool_or(shadowed) AS shadowed, bool_or(throttle_inside) AS throttle_inside,
        bool_or(any_usage_inside) AS any_usage_inside, bool_or(usage_around) AS usage_around,
        any_value(inherited) AS inherited, bool_or(tokenless) AS tokenless
    FROM facts
    GROUP BY trace_id, span_id
)
SELECT trace_id, span_id,
    CASE WHEN is_covered THEN false WHEN handed THEN true END AS entry,
    coalesce(shadowed, false) AS shadowed,
    coalesce(throttle_inside, false) AS throttle_inside,
    inherited,
    coalesce(tokenless, false) AND NOT coalesce(any_usage_inside, false)
        AND NOT coalesce(usage_around, false) AS untokenized
FROM merged
WHERE is_covered OR handed OR shadowed OR throttle_inside OR inherited IS NOT NULL
    OR (tokenless AND NOT coalesce(any_usage_inside, false)
        AND NOT coalesce(usage_around, false))
""".format(llm_operations=", ".join(f"'{op}'" for op in LLM_OPERATIONS))  # noqa: S608

# The window's spans as analytics read them: im_adjustments (SPAN_ADJUSTMENTS of the same
# window) applied; one cheap join, so relations reading the window several times stay fast.
SPANS_IN_WINDOW: Final = """
SELECT w.* REPLACE (
    coalesce(a.entry, w.is_entry) AS is_entry,
    CASE WHEN a.shadowed THEN NULL ELSE w.input_tokens END AS input_tokens,
    CASE WHEN a.shadowed THEN NULL ELSE w.output_tokens END AS output_tokens,
    CASE WHEN a.shadowed THEN NULL
         ELSE coalesce(w.cache_read_tokens, a.inherited.cache_read) END AS cache_read_tokens,
    CASE WHEN a.shadowed THEN NULL
         ELSE coalesce(w.cache_write_tokens, a.inherited.cache_write) END AS cache_write_tokens,
    CASE WHEN a.shadowed THEN NULL
         ELSE coalesce(w.reasoning_tokens, a.inherited.reasoning) END AS reasoning_tokens,
    CASE WHEN a.throttle_inside THEN false ELSE w.throttled END AS throttled
),
    coalesce(a.untokenized, false) AS untokenized
FROM im_spans AS w
LEFT JOIN im_adjustments AS a ON w.trace_id = a.trace_id AND w.span_id = a.span_id
WHERE ($since::TIMESTAMP IS NULL OR w.start_time >= $since::TIMESTAMP)
  AND ($until::TIMESTAMP IS NULL OR w.start_time < $until::TIMESTAMP + INTERVAL 1 HOUR)
"""

# The (model, response model, provider) triples to price and the (endpoint, runtime,
# platform) workloads to look up, read once so prices resolve in Python (one normalizer).
# Read from the spans as stored (im_spans, the window's rows): the adjustments change no
# model, and every span's workload is a superset of the entry spans' (an entry verdict
# the adjustments change is covered), read without the adjustments' join.
REQUEST_DISTINCT_KEYS: Final = """
SELECT DISTINCT 'price' AS kind, model AS a, response_model AS b, provider AS c
FROM im_spans
WHERE model IS NOT NULL OR response_model IS NOT NULL
UNION ALL
SELECT DISTINCT 'workload', endpoint, runtime, platform
FROM im_spans
"""

# The entry span's own columns. Joined back to the aggregate of the trace's spans:
# aggregating them in the same pass measured slower (DuckDB copies every string state).
_ENTRY_COLUMNS: Final = (
    "span_id",
    "start_time",
    "end_time",
    "duration_ms",
    "service_instance",
    "tenant",
    "endpoint",
    "runtime",
    "platform",
    "provider",
    "model",
    "prompt_name",
    "prompt_version",
    "operation",
    "status_code",
    "error_type",
    "cold_start",
    "init_duration_ms",
    "initialization_type",
    "memory_mb",
    "ttft_ms",
)
_ENTRY_SELECT: Final = ", ".join(f"w.{c} AS entry_{c}" for c in _ENTRY_COLUMNS)


# Aggregates over the spans of one request (or one trace and service), shared by the path
# for traces with one entry per service and the path for traces with several.
# Spans of another tenant than their request's entry (``is_foreign``, written under another
# tenant's token into this trace) add nothing to the request; they are only counted. With
# ``tenant_rule`` false the spans are known to carry one tenant (or none), so nothing is
# foreign and the filters are left out (most traces: one aggregation pass, no join).
# ``usage``: the request's token counts per span that reported any, with the model that
# priced them, kept unpriced (stage (b) prices them now): the parts each price applies to
# (input beyond cache reads and writes, output beyond reasoning, floored at 0 per span, as
# a span is billed) and ``used`` (1 when the span used input or output tokens: priced or
# "unpriced"). ``priced``: the spans are priced already (``span_token_cost`` and
# ``span_unpriced`` of a price join, the request table from spans), so the request gets the
# sum and the flag instead of the list stage (b) would price (building a list per request
# was the costliest aggregate).
def _request_sums(*, tenant_rule: bool, priced: bool) -> str:
    own = "NOT is_foreign" if tenant_rule else "true"
    only_own = f" FILTER (WHERE {own})" if tenant_rule else ""
    and_own = f" AND {own}" if tenant_rule else ""
    # Priced spans carry their price key's id (every (model, response model, provider) has
    # a row in im_prices): an integer state is much cheaper than a struct of two strings
    # (2.8 s of 5.9 s of this aggregate on 10M spans), and the key gives model and provider
    # of one span, as the struct did.
    child_llm = (
        "arg_max(price_key, llm_tokens)"
        if priced
        else "arg_max({'model': model, 'provider': provider}, llm_tokens)"
    )
    if priced:
        usage = f"""coalesce(bool_or(span_unpriced) FILTER (WHERE has_tokens{and_own}), false)
        AS unpriced,
    sum(span_token_cost) FILTER (WHERE has_tokens{and_own}) AS token_cost,"""
    else:
        usage = f"""list({{'model': model, 'response_model': response_model, 'provider': provider,
          'billed_input': greatest(input_tokens - cache_read_tokens - cache_write_tokens, 0),
          'cache_read': cache_read_tokens, 'cache_write': cache_write_tokens,
          'billed_output': greatest(output_tokens - reasoning_tokens, 0),
          'reasoning': reasoning_tokens,
          'used': CAST(input_tokens + output_tokens > 0 AS BIGINT)}})
        FILTER (WHERE has_tokens{and_own}) AS usage,"""
    return f"""
    count(*){only_own} AS span_count,
    {"count(*) FILTER (WHERE is_foreign)" if tenant_rule else "CAST(0 AS BIGINT)"} AS foreign_spans,
    count(*) FILTER (WHERE is_llm{and_own}) AS llm_spans,
    CAST(sum(input_tokens){only_own} AS BIGINT) AS input_tokens,
    CAST(sum(output_tokens){only_own} AS BIGINT) AS output_tokens,
    CAST(sum(cache_read_tokens){only_own} AS BIGINT) AS cache_read_tokens,
    CAST(sum(cache_write_tokens){only_own} AS BIGINT) AS cache_write_tokens,
    CAST(sum(reasoning_tokens){only_own} AS BIGINT) AS reasoning_tokens,
    coalesce(bool_or(throttled){only_own}, false) AS throttled,
    count(*) FILTER (WHERE throttled{and_own}) AS throttle_events,
    coalesce(bool_or(untokenized){only_own}, false) AS untokenized,
    min(first_chunk_at){only_own} AS first_chunk_at,
    {usage}
    -- The main model call's model and provider, and a nested span's tenant and prompt, for
    -- entry spans that carry none (one state each: string states are the costly ones).
    {child_llm}
        FILTER (WHERE is_llm{and_own}) AS child_llm,
    -- Each tag on its own and the least of them: one struct picked from whichever nested
    -- span came first made the result depend on row order (a span with only a tenant hid
    -- another's prompt version).
    {{'tenant': min(tenant){only_own},
     'prompt_name': min(prompt_name){only_own},
     'prompt_version': min(prompt_version){only_own}}} AS child_tags
"""


# The columns of stage (a), the request facts, in this order (the ClickHouse rollup of
# step 2 gives exactly these; ``collectors._clickhouse_requests``).
REQUEST_FACT_COLUMNS: Final = (
    "trace_id",
    "service_name",
    *(f"entry_{c}" for c in _ENTRY_COLUMNS),
    "span_count",
    "foreign_spans",
    "llm_spans",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "throttled",
    "throttle_events",
    "untokenized",
    "first_chunk_at",
    "retries",
    "child_model",
    "child_provider",
    "child_tenant",
    "child_prompt_name",
    "child_prompt_version",
    "usage",
)


# A usage row (alias ``row``) and its price in im_prices (alias ``p``): the same
# (model, response model, provider) key, NULLs equal.
def _price_key_matches(row: str) -> str:
    return (
        f"{row}.model IS NOT DISTINCT FROM p.model"
        f" AND {row}.response_model IS NOT DISTINCT FROM p.response_model"
        f" AND {row}.provider IS NOT DISTINCT FROM p.provider"
    )


# What one span's tokens cost at the prices of ``p`` (a joined im_prices row): the parts
# each price applies to (input beyond cache reads and writes, output beyond reasoning,
# floored at 0) times their prices; $0 when the key has no price (``unpriced`` says so).
def _token_bill(
    billed_input: str, cache_read: str, cache_write: str, billed_output: str, reasoning: str
) -> str:
    return f"""CASE WHEN p.input_price IS NULL THEN 0.0 ELSE
            {billed_input} * p.input_price + {cache_read} * p.cache_read_price
            + {cache_write} * p.cache_write_price + {billed_output} * p.output_price
            + {reasoning} * p.reasoning_price
        END"""


# Rows (alias ``row``) of the (trace, service) pairs listed in the CTE ``pairs``.
def _of_pairs(row: str, pairs: str) -> str:
    return f"""
    SEMI JOIN {pairs} AS o
        ON {row}.trace_id = o.trace_id AND {row}.service_name IS NOT DISTINCT FROM o.service_name"""


# The entry spans of the requests (entry start in [since, until)) of the window's spans
# (im_window), of the (trace, service) pairs in the CTE ``only`` when given: written out for
# each reader, as ``span_facts`` (a CTE of them was copied whole for its second reader).
def _entry_spans(only: str = "") -> str:
    semi = _of_pairs("w", only) if only else ""
    return f"""(
    SELECT w.trace_id, w.service_name, {_ENTRY_SELECT}
    FROM im_window AS w{semi}
    WHERE w.is_entry
      AND ($since::TIMESTAMP IS NULL OR w.start_time >= $since::TIMESTAMP)
      AND ($until::TIMESTAMP IS NULL OR w.start_time < $until::TIMESTAMP)
)"""  # noqa: S608 - composed from constants and CTE names of this module only


# Stage (a): the window's spans (SPANS_IN_WINDOW, bound as im_window) -> one row per
# request with its unpriced facts (REQUEST_FACT_COLUMNS): the entry span's own columns
# (``entry_*``), what its spans add up to (counts, tokens, throttles, retries, first
# chunk), the nested spans' model and tags to fall back on, and the token usage per model
# to price. Nothing here reads a price or a deployment: stage (b) does, at query time.
# ``priced`` (the request table from spans, where the prices are bound in the same query as
# im_prices): each span is priced as it is read and the request carries ``unpriced`` and
# ``token_cost`` instead of ``usage``; the same formula as stage (b)'s, per span.
# Composed from the constants above only (no user text).
def _request_facts(*, priced: bool) -> str:
    price_join = (
        f"""
    LEFT JOIN im_prices AS p ON {_price_key_matches("s")}"""
        if priced
        else ""
    )
    bill = _token_bill(
        "greatest(coalesce(s.input_tokens, 0) - coalesce(s.cache_read_tokens, 0)"
        " - coalesce(s.cache_write_tokens, 0), 0)",
        "coalesce(s.cache_read_tokens, 0)",
        "coalesce(s.cache_write_tokens, 0)",
        "greatest(coalesce(s.output_tokens, 0) - coalesce(s.reasoning_tokens, 0), 0)",
        "coalesce(s.reasoning_tokens, 0)",
    )
    span_price = (
        f"""
        coalesce(s.input_tokens, 0) + coalesce(s.output_tokens, 0) > 0
            AND p.input_price IS NULL AS span_unpriced,
        {bill} AS span_token_cost,
        p.key_id AS price_key,"""
        if priced
        else ""
    )
    multi_price = "p.span_unpriced, p.span_token_cost, p.price_key, " if priced else ""
    usage_columns = "unpriced, token_cost" if priced else "coalesce(usage, []) AS usage"
    child_columns = (
        "k.model AS child_model, k.provider AS child_provider"
        if priced
        else "child_llm.model AS child_model, child_llm.provider AS child_provider"
    )
    child_join = "\nLEFT JOIN im_prices AS k ON joined.child_llm = k.key_id" if priced else ""

    def span_facts(only: str = "") -> str:
        """Every span's facts (tokens kept unpriced unless ``priced``: then each span's
        cost), of the (trace, service) pairs in ``only`` when given. A subquery written out
        for each reader, not a CTE: DuckDB copied a CTE read twice, every span of it."""
        semi = _of_pairs("s", only) if only else ""
        return f"""(
    SELECT
        s.trace_id, s.span_id, s.service_name, s.service_instance, s.start_time,
        coalesce(s.is_entry, false) AS is_entry,
        s.tenant, s.provider, s.model, s.response_model, s.prompt_name, s.prompt_version,
        coalesce(s.input_tokens, 0) AS input_tokens,
        coalesce(s.output_tokens, 0) AS output_tokens,
        coalesce(s.cache_read_tokens, 0) AS cache_read_tokens,
        coalesce(s.cache_write_tokens, 0) AS cache_write_tokens,
        coalesce(s.reasoning_tokens, 0) AS reasoning_tokens,
        s.input_tokens IS NOT NULL OR s.output_tokens IS NOT NULL
            OR s.cache_read_tokens IS NOT NULL OR s.cache_write_tokens IS NOT NULL
            OR s.reasoning_tokens IS NOT NULL AS has_tokens,
        coalesce(s.input_tokens, 0) + coalesce(s.output_tokens, 0) AS llm_tokens,
        s.model IS NOT NULL OR s.response_model IS NOT NULL AS is_llm,
        coalesce(s.throttled, false) AS throttled,{span_price}
        s.start_time + to_microseconds(CAST(round(s.ttft_ms * 1000) AS BIGINT)) AS first_chunk_at,
        coalesce(s.untokenized, false) AS untokenized
    FROM im_window AS s{price_join}{semi}
)"""  # noqa: S608 - composed from constants and CTE names of this module only

    return f"""
WITH
-- Per trace and service: the sums over all its spans, as if every span were the request's
-- own, and whether its spans name more than one tenant (``mixed``). Only a mixed one can
-- hold spans of another tenant than its entries'; it is summed again under the tenant rule.
per_trace_any AS (
    SELECT trace_id, service_name, count(*) FILTER (WHERE is_entry) AS entries,
        min(tenant) <> max(tenant) AS mixed,
{_request_sums(tenant_rule=False, priced=priced)}
    FROM {span_facts()} AS s
    GROUP BY trace_id, service_name
),
-- The few (trace, service) pairs that need more than the sums above, read out in one pass:
-- several tenants, or several entries (fan-out).
special AS MATERIALIZED (
    SELECT trace_id, service_name, mixed, entries
    FROM per_trace_any
    WHERE mixed OR entries > 1
),
mixed_traces AS MATERIALIZED (
    SELECT trace_id, service_name FROM special WHERE mixed
),
-- The tenants of each mixed trace's entry spans per service: a span naming another tenant
-- was written by someone else (a token pinned to that tenant) and is foreign to the request.
entry_tenants AS (
    SELECT w.trace_id, w.service_name,
        list(DISTINCT w.tenant) FILTER (WHERE w.tenant IS NOT NULL) AS tenants
    FROM im_window AS w
    SEMI JOIN mixed_traces AS m
        ON w.trace_id = m.trace_id AND w.service_name IS NOT DISTINCT FROM m.service_name
    WHERE w.is_entry
    GROUP BY ALL
),
per_trace_mixed AS (
    SELECT trace_id, service_name, count(*) FILTER (WHERE is_entry) AS entries,
{_request_sums(tenant_rule=True, priced=priced)}
    FROM (
        SELECT s.*,
            s.tenant IS NOT NULL AND coalesce(len(et.tenants), 0) > 0
                AND NOT list_contains(et.tenants, s.tenant) AS is_foreign
        FROM {span_facts("mixed_traces")} AS s
        LEFT JOIN entry_tenants AS et
            ON s.trace_id = et.trace_id AND s.service_name IS NOT DISTINCT FROM et.service_name
    )
    GROUP BY trace_id, service_name
),
per_trace AS (
    SELECT * EXCLUDE (mixed) FROM per_trace_any WHERE NOT coalesce(mixed, false)
    UNION ALL BY NAME
    SELECT * FROM per_trace_mixed
),
-- Retries: each span of a call is one attempt and says how many came before it
-- (attempt = 1 + infermeter.retries). A call's retries are its last attempt's count, so a
-- span adds what its attempt adds over the previous attempt of the same call (same parent
-- and name; a lower or equal attempt number starts a new call). Only traces with a retry
-- are sorted; another tenant's attempts are not the request's.
retry_traces AS (
    SELECT DISTINCT trace_id FROM im_window WHERE attempt > 1
),
retry_spans AS (
    SELECT trace_id, span_id, service_name, service_instance, start_time,
        attempt - CASE WHEN previous < attempt THEN previous ELSE 1 END AS retries
    FROM (
        SELECT w.trace_id, w.span_id, w.service_name, w.service_instance, w.start_time,
            w.attempt,
            lag(w.attempt) OVER (
                PARTITION BY w.trace_id, w.parent_span_id, w.name
                ORDER BY w.start_time, w.attempt
            ) AS previous
        FROM im_window AS w
        SEMI JOIN retry_traces AS r ON w.trace_id = r.trace_id
        LEFT JOIN entry_tenants AS et
            ON w.trace_id = et.trace_id AND w.service_name IS NOT DISTINCT FROM et.service_name
        WHERE w.tenant IS NULL OR coalesce(len(et.tenants), 0) = 0
            OR list_contains(et.tenants, w.tenant)
    )
    WHERE attempt > 1
),
retries_per_trace AS (
    SELECT trace_id, service_name, CAST(sum(retries) AS BIGINT) AS retries
    FROM retry_spans
    GROUP BY ALL
),
single AS (
    SELECT e.*, t.* EXCLUDE (trace_id, service_name, entries),
        coalesce(r.retries, 0) AS retries
    FROM {_entry_spans()} AS e
    JOIN per_trace AS t
        ON e.trace_id = t.trace_id AND e.service_name IS NOT DISTINCT FROM t.service_name
    LEFT JOIN retries_per_trace AS r
        ON t.trace_id = r.trace_id AND t.service_name IS NOT DISTINCT FROM r.service_name
    WHERE t.entries = 1
),
-- A service entered several times in one trace (fan-out): each span belongs to the latest
-- entry of its process (service instance) that started at or before it: the latest of its
-- own tenant when there is one (an entry another tenant wrote into the trace cannot take
-- this tenant's spans), else the latest of any; it is foreign when it names another
-- tenant than that entry.
multi_traces AS MATERIALIZED (
    SELECT trace_id, service_name FROM special WHERE entries > 1
),
multi_owned AS (
    SELECT p.trace_id, p.span_id, p.service_name, p.is_llm, p.input_tokens, p.output_tokens,
        p.cache_read_tokens, p.cache_write_tokens, p.reasoning_tokens, p.llm_tokens,
        p.has_tokens, p.throttled, p.untokenized, p.first_chunk_at, p.model,
        p.response_model, p.provider, {multi_price}
        p.tenant, p.prompt_name, p.prompt_version,
        last_value(CASE WHEN p.is_entry THEN {{'id': p.span_id, 'tenant': p.tenant}} END
                   IGNORE NULLS) OVER (
            PARTITION BY p.trace_id, p.service_name, p.service_instance
            ORDER BY p.start_time, p.is_entry DESC
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS entry,
        last_value(CASE WHEN p.is_entry THEN p.span_id END IGNORE NULLS) OVER (
            PARTITION BY p.trace_id, p.service_name, p.service_instance, p.tenant
            ORDER BY p.start_time, p.is_entry DESC
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS own_entry_id
    FROM {span_facts("multi_traces")} AS p
),
multi_spans AS (
    SELECT * EXCLUDE (entry, own_entry_id),
        CASE WHEN tenant IS NOT NULL AND own_entry_id IS NOT NULL THEN own_entry_id
             ELSE entry.id END AS entry_id,
        tenant IS NOT NULL AND own_entry_id IS NULL AND entry.tenant IS NOT NULL
            AND tenant <> entry.tenant AS is_foreign
    FROM multi_owned
),
per_entry AS (
    SELECT s.trace_id, s.service_name, s.entry_id,
{_request_sums(tenant_rule=True, priced=priced)},
        CAST(coalesce(sum(r.retries) FILTER (WHERE NOT s.is_foreign), 0) AS BIGINT) AS retries
    FROM multi_spans AS s
    LEFT JOIN retry_spans AS r ON s.trace_id = r.trace_id AND s.span_id = r.span_id
    WHERE s.entry_id IS NOT NULL
    GROUP BY s.trace_id, s.service_name, s.entry_id
),
multi AS (
    SELECT e.*, t.* EXCLUDE (trace_id, service_name, entry_id)
    FROM {_entry_spans("multi_traces")} AS e
    JOIN per_entry AS t
        ON e.trace_id = t.trace_id AND e.service_name IS NOT DISTINCT FROM t.service_name
        AND e.entry_span_id = t.entry_id
),
joined AS (
    SELECT * FROM single
    UNION ALL BY NAME
    SELECT * FROM multi
)
SELECT {", ".join(REQUEST_FACT_COLUMNS[: REQUEST_FACT_COLUMNS.index("retries") + 1])},
    {child_columns},
    child_tags.tenant AS child_tenant, child_tags.prompt_name AS child_prompt_name,
    child_tags.prompt_version AS child_prompt_version,
    {usage_columns}
FROM joined{child_join}
"""  # noqa: S608


REQUEST_FACTS: Final = _request_facts(priced=False)

# Serve's sealed request facts (``analytics.rollup._sealed``). Stage (a) is a computation
# per trace: every join, window and aggregate of SPAN_ADJUSTMENTS and REQUEST_FACTS stays
# within one trace_id. So REQUEST_FACTS over every span of a set of traces gives their
# requests exactly the rows it gives them over the whole store. A slice of requests (entry
# span starting in [$since, $until); a NULL bound is open) is computed from the traces
# that have a span starting in it (its entry spans are among them); spans without a start
# time belong to the open-ended slice, as their requests do.
TRACES_STARTING: Final = """
SELECT DISTINCT trace_id FROM im_spans
WHERE (($since::TIMESTAMP IS NULL OR start_time >= $since::TIMESTAMP)
       AND ($until::TIMESTAMP IS NULL OR start_time < $until::TIMESTAMP))
   OR ($until::TIMESTAMP IS NULL AND start_time IS NULL)
"""

# The earliest start of the spans of those traces (bound as im_traces): only the trace_id
# and start_time columns of the store are read, so the spans themselves are then read from
# there on (the store is in time order: older row groups are skipped by their min/max).
TRACE_FIRST_SPAN: Final = """
SELECT min(s.start_time) FROM im_spans AS s SEMI JOIN im_traces AS t ON s.trace_id = t.trace_id
"""

# Every span of those traces: from $first on, and those without a start time.
SPANS_OF_TRACES: Final = """
SELECT s.* FROM im_spans AS s SEMI JOIN im_traces AS t ON s.trace_id = t.trace_id
WHERE s.start_time >= $first::TIMESTAMP
UNION ALL
SELECT s.* FROM im_spans AS s SEMI JOIN im_traces AS t ON s.trace_id = t.trace_id
WHERE s.start_time IS NULL
"""

# The request facts (bound as im_facts) of one slice (see TRACES_STARTING).
REQUESTS_STARTING: Final = """
SELECT * FROM im_facts
WHERE (($since::TIMESTAMP IS NULL OR entry_start_time >= $since::TIMESTAMP)
       AND ($until::TIMESTAMP IS NULL OR entry_start_time < $until::TIMESTAMP))
   OR ($until::TIMESTAMP IS NULL AND entry_start_time IS NULL)
"""

# The (model, response model, provider) triples request facts used tokens of and the
# (endpoint, runtime, platform) workloads of their entry spans, read once so prices
# resolve in Python (one normalizer), for request facts not computed from spans here.
REQUEST_FACT_KEYS: Final = """
SELECT DISTINCT 'price' AS kind, u.model AS a, u.response_model AS b, u.provider AS c
FROM (SELECT unnest(usage) AS u FROM im_facts)
WHERE u.model IS NOT NULL OR u.response_model IS NOT NULL
UNION ALL
SELECT DISTINCT 'workload', entry_endpoint, entry_runtime, entry_platform
FROM im_facts
"""

# Stage (b): request facts (bound as im_facts, or stage (a) in the same query) -> the
# priced request table: token cost from the price book (im_prices) and compute cost from
# the deployments (im_workloads), both at query time, latency, and the request columns.
# Composed from constants only.
_PRICED_REQUESTS: Final = """
WITH
facts AS {facts},
{usage_costs}
-- Serverless containers bill instance time while at least one request runs: each request
-- pays its duration's share of its instance's busy time (the union of its requests'
-- intervals); a request without service_instance is its own instance.
sc_busy AS (
    SELECT entry_service_instance AS service_instance,
        greatest(entry_duration_ms, 0) AS duration_ms,
        greatest(epoch_us(entry_end_time) - greatest(epoch_us(entry_start_time), coalesce(
            max(epoch_us(entry_end_time)) OVER (
                PARTITION BY entry_service_instance ORDER BY entry_start_time, entry_end_time
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)), 0) / 1e6 AS busy_s
    FROM {entry_rows}
    WHERE entry_runtime = 'serverless_container' AND entry_service_instance IS NOT NULL
),
sc_instances AS (
    SELECT service_instance, sum(busy_s) / nullif(sum(duration_ms), 0) AS busy_per_ms
    FROM sc_busy
    GROUP BY ALL
),
-- Containers cost instance-hours: instances seen in the clock hour (at least the minimum),
-- spread evenly over the endpoint's requests of that hour.
container_hours AS (
    SELECT entry_endpoint AS endpoint, date_trunc('hour', entry_start_time) AS hour,
        count(DISTINCT entry_service_instance) AS instances, count(*) AS hour_requests
    FROM {entry_rows}
    WHERE entry_runtime = 'container'
    GROUP BY ALL
),
requests AS (
    SELECT
        j.trace_id, j.entry_span_id AS span_id, j.entry_start_time AS start_time,
        j.entry_end_time AS end_time, j.entry_duration_ms AS duration_ms,
        j.service_name, j.entry_service_instance AS service_instance,
        coalesce(j.entry_tenant, j.child_tenant) AS tenant,
        j.entry_endpoint AS endpoint,
        coalesce(j.entry_runtime, 'unknown') AS runtime,
        coalesce(j.entry_platform, w.platform) AS platform,
        coalesce(j.entry_provider, j.child_provider) AS provider,
        coalesce(j.entry_model, j.child_model) AS model,
        coalesce(j.entry_prompt_name, j.child_prompt_name) AS prompt_name,
        coalesce(j.entry_prompt_version, j.child_prompt_version) AS prompt_version,
        j.entry_operation AS operation,
        j.entry_status_code = 'ERROR' OR j.entry_error_type IS NOT NULL AS is_error,
        j.entry_error_type AS error_type,
        coalesce(j.entry_cold_start, false) AS cold_start,
        j.entry_init_duration_ms AS init_duration_ms,
        j.entry_initialization_type AS initialization_type,
        coalesce(j.entry_memory_mb, w.memory_mb) AS memory_mb,
        j.throttled, j.throttle_events, j.retries,
        j.input_tokens, j.output_tokens, j.cache_read_tokens, j.cache_write_tokens,
        j.reasoning_tokens,
        coalesce(j.entry_ttft_ms, (epoch_us(j.first_chunk_at)
                 - epoch_us(j.entry_start_time)) / 1000.0) AS ttft_ms,
        coalesce({usage}.unpriced, false) AS unpriced,
        -- Unknown, not $0, when a model had no price or a call reported no tokens.
        CASE WHEN coalesce({usage}.unpriced, false) OR j.untokenized THEN NULL
             ELSE coalesce({usage}.token_cost, 0.0) END AS token_cost_usd,
        j.untokenized,
        j.span_count, j.llm_spans, j.foreign_spans,
        w.slo_ms, w.vcpu, w.concurrency AS instance_concurrency, w.min_instances,
        w.instance_price_per_hour, w.architecture,
        w.gb_s_price, w.pc_duration_gb_s_price, w.vcpu_s_price, w.gib_s_price, w.request_fee,
        coalesce(i.busy_per_ms, 0.001) * greatest(j.entry_duration_ms, 0) AS billed_s,
        h.instances AS hour_instances, h.hour_requests
    FROM facts AS j{usage_join}
    LEFT JOIN im_workloads AS w
        ON j.entry_endpoint IS NOT DISTINCT FROM w.endpoint
        AND j.entry_runtime IS NOT DISTINCT FROM w.runtime
        AND j.entry_platform IS NOT DISTINCT FROM w.span_platform
    LEFT JOIN sc_instances AS i
        ON j.entry_runtime = 'serverless_container'
        AND j.entry_service_instance = i.service_instance
    LEFT JOIN container_hours AS h
        ON j.entry_runtime = 'container'
        AND j.entry_endpoint IS NOT DISTINCT FROM h.endpoint
        AND date_trunc('hour', j.entry_start_time) = h.hour
),
costed AS (
    SELECT *,
        CASE runtime
            -- Lambda: 1 ms billing granularity; INIT billed since 2025-08 except on
            -- provisioned concurrency, whose invocations pay the PC duration price.
            WHEN 'serverless' THEN memory_mb / 1024.0 * (
                ceil(greatest(duration_ms, 0)) / 1000.0 * CASE
                    WHEN initialization_type = 'provisioned-concurrency'
                        THEN pc_duration_gb_s_price
                    ELSE gb_s_price END
                + CASE WHEN cold_start
                            AND coalesce(initialization_type, '') <> 'provisioned-concurrency'
                       THEN ceil(coalesce(init_duration_ms, 0)) / 1000.0 * gb_s_price
                       ELSE 0 END
            ) + request_fee
            WHEN 'serverless_container' THEN
                (billed_s + CASE WHEN cold_start THEN coalesce(init_duration_ms, 0) / 1000.0
                                 ELSE 0 END)
                * (vcpu * vcpu_s_price + memory_mb / 1024.0 * gib_s_price) + request_fee
            WHEN 'container' THEN
                greatest(hour_instances, min_instances, 1) * instance_price_per_hour
                    / hour_requests
        END AS compute_cost_usd
    FROM requests
)
SELECT
    trace_id, span_id, start_time, end_time, duration_ms, service_name, service_instance,
    tenant, endpoint, runtime, platform, provider, model, prompt_name, prompt_version,
    operation, is_error, cold_start, init_duration_ms, memory_mb, throttled, throttle_events,
    retries, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
    reasoning_tokens, ttft_ms, token_cost_usd, unpriced, compute_cost_usd,
    token_cost_usd + coalesce(compute_cost_usd, 0) AS cost_usd,
    slo_ms,
    error_type, initialization_type, span_count, llm_spans, vcpu, instance_concurrency,
    min_instances, instance_price_per_hour, architecture, foreign_spans, untokenized,
    -- Latency as the caller feels it: on serverless runtimes the handler's span starts
    -- after INIT, yet a cold request waited for it (provisioned concurrency ran INIT
    -- ahead of time). Elsewhere a new process starts before it takes traffic.
    duration_ms + CASE
        WHEN cold_start AND runtime IN ('serverless', 'serverless_container')
            AND coalesce(initialization_type, '') <> 'provisioned-concurrency'
        THEN greatest(coalesce(init_duration_ms, 0), 0) ELSE 0 END AS latency_ms
FROM costed
"""

# Every usage entry of request facts priced now: the formula of each span's bill, summed
# per request.
_USAGE_BILL: Final = _token_bill(
    "u.billed_input", "u.cache_read", "u.cache_write", "u.billed_output", "u.reasoning"
)
_USAGE_COSTS: Final = f"""
usage_costs AS (
    SELECT u.trace_id, u.span_id,
        bool_or(u.used > 0 AND p.input_price IS NULL) AS unpriced,
        sum({_USAGE_BILL}) AS token_cost
    FROM (
        SELECT trace_id, entry_span_id AS span_id, unnest(usage, recursive := true)
        FROM facts
        WHERE len(usage) > 0
    ) AS u
    LEFT JOIN im_prices AS p ON {_price_key_matches("u")}
    GROUP BY u.trace_id, u.span_id
),
"""  # noqa: S608 - composed from constants of this module only
_USAGE_JOIN: Final = """
    LEFT JOIN usage_costs AS c ON j.trace_id = c.trace_id AND j.entry_span_id = c.span_id"""

# Stage (b) over request facts held elsewhere (rows bound as im_facts: ClickHouse's
# request rollup, step 2).
PRICED_REQUESTS: Final = _PRICED_REQUESTS.format(
    facts="NOT MATERIALIZED (SELECT * FROM im_facts)",
    entry_rows="facts",
    usage_costs=_USAGE_COSTS,
    usage_join=_USAGE_JOIN,
    usage="c",
)

# The request table from spans: stage (b) over stage (a) with its spans priced as they are
# read. Stage (b) reads the facts once (its per-instance and per-hour costs read the entry
# spans, the same rows), so stage (a) runs once without being held.
REQUEST_TABLE: Final = _PRICED_REQUESTS.format(
    facts=f"NOT MATERIALIZED ({_request_facts(priced=True)})",
    entry_rows=f"{_entry_spans()} AS e",
    usage_costs="",
    usage_join="",
    usage="j",
)

UNPRICED_MODELS: Final = f"""
SELECT model, response_model, provider,
    count(*) AS spans,
    count(DISTINCT trace_id) AS traces,
    CAST(sum(coalesce(input_tokens, 0)) AS BIGINT) AS input_tokens,
    CAST(sum(coalesce(output_tokens, 0)) AS BIGINT) AS output_tokens,
    min(start_time) AS first_seen,
    max(start_time) AS last_seen
FROM im_window AS s
ANTI JOIN (SELECT * FROM im_prices WHERE input_price IS NOT NULL) AS p
    ON {_price_key_matches("s")}
WHERE coalesce(input_tokens, 0) + coalesce(output_tokens, 0) > 0
GROUP BY ALL
ORDER BY spans DESC, model
"""  # noqa: S608 - composed from constants of this module only


# Token usage per (model, response model, provider), to show how each one is priced.
MODEL_USAGE: Final = """
SELECT model, response_model, provider,
    count(*) AS spans,
    count(DISTINCT trace_id) AS traces,
    CAST(sum(coalesce(input_tokens, 0)) AS BIGINT) AS input_tokens,
    CAST(sum(coalesce(output_tokens, 0)) AS BIGINT) AS output_tokens,
    CAST(sum(coalesce(cache_read_tokens, 0)) AS BIGINT) AS cache_read_tokens,
    CAST(sum(coalesce(cache_write_tokens, 0)) AS BIGINT) AS cache_write_tokens,
    CAST(sum(coalesce(reasoning_tokens, 0)) AS BIGINT) AS reasoning_tokens,
    count(*) FILTER (WHERE untokenized) AS untokenized_spans,
    -- The emitter's own price of its calls (OpenLIT's gen_ai.usage.cost), to compare.
    sum(TRY_CAST(json_extract_string(attributes, '$."gen_ai.usage.cost"') AS DOUBLE))
        AS emitter_cost_usd,
    min(start_time) AS first_seen,
    max(start_time) AS last_seen
FROM im_window
WHERE model IS NOT NULL OR response_model IS NOT NULL OR untokenized
    OR coalesce(input_tokens, 0) + coalesce(output_tokens, 0) > 0
GROUP BY ALL
ORDER BY spans DESC, model
"""


def _keys(by: Sequence[str], bucket: bool) -> list[str]:
    return [*by, "bucket"] if bucket else list(by)


def _select_keys(by: Sequence[str], bucket: bool) -> str:
    keys = _keys(by, bucket)
    return (", ".join(keys) + ",") if keys else ""


def _join_on(by: Sequence[str], bucket: bool, left: str, right: str) -> str:
    keys = _keys(by, bucket)
    if not keys:
        return "true"
    return " AND ".join(f"{left}.{k} IS NOT DISTINCT FROM {right}.{k}" for k in keys)


# Peak concurrency by a sweep over start (+1) and end (-1) events in time order; an end
# sorts before a start at the same instant, so back-to-back requests do not overlap. Mean
# concurrency is busy time over the observed window (Little's law: L = λ·W).
# The request columns metric queries read. The query reads them more than once: a base
# table is read again (cheap), anything else (a lazy request table, rows held in client
# memory, which DuckDB reads slowly more than once) is copied once into the CTE.
METRIC_MEASURES: Final = (
    "start_time",
    "end_time",
    "duration_ms",
    "latency_ms",
    "is_error",
    "ttft_ms",
    "cold_start",
    "slo_ms",
    "throttled",
    "throttle_events",
    "retries",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "reasoning_tokens",
    "token_cost_usd",
    "compute_cost_usd",
    "unpriced",
    "untokenized",
    "service_instance",
    "min_instances",
    "instance_concurrency",
    "runtime",
)
_REQ: Final = """req AS {materialized} (
    SELECT {keys}
        start_time, end_time, duration_ms, latency_ms, is_error, ttft_ms, cold_start, slo_ms,
        throttled, throttle_events, retries, input_tokens, output_tokens,
        cache_read_tokens, reasoning_tokens, token_cost_usd, compute_cost_usd, unpriced,
        untokenized, service_instance, min_instances, instance_concurrency,
        runtime AS request_runtime,
        token_cost_usd + coalesce(compute_cost_usd, 0) AS cost_usd
    FROM im_requests
)"""

CONCURRENCY: Final = """
WITH
-- Each group numbered: one sort by (group number, time) over every group's events is
-- cheaper than a sort partitioned by the group's text columns (measured 2.4x on 10M
-- spans). A group's events add up to 0, so the running sum over all groups in that order
-- is each group's own level.
groups AS MATERIALIZED (
    -- A 32-bit number: the sort's key is 4 bytes narrower (measured 26 % faster on 3.3M
    -- requests); more than 4 billion groups would fail the cast, not miscount.
    SELECT {keys} CAST(row_number() OVER () AS UINTEGER) AS group_number
    FROM (SELECT DISTINCT {key_list} FROM req)
),
-- Time as one integer: 2 * microseconds, + 1 for a start, so an end sorts before a start
-- at the same instant. Each half joins the (few) groups again rather than holding the
-- numbered requests: nothing but the sort's runs takes memory (both events out of one row,
-- by unnest, measured 10 % faster but ran a metric table out of memory in 512 MiB). A
-- request without a start or an end has no place in time.
events AS (
    SELECT g.group_number, epoch_us(r.start_time) * 2 + 1 AS edge, 1 AS delta
    FROM req AS r JOIN groups AS g ON {join_rg}
    WHERE r.start_time IS NOT NULL AND r.end_time IS NOT NULL
    UNION ALL
    SELECT g.group_number, epoch_us(r.end_time) * 2 AS edge, -1 AS delta
    FROM req AS r JOIN groups AS g ON {join_rg}
    WHERE r.start_time IS NOT NULL AND r.end_time IS NOT NULL
),
running AS (
    SELECT group_number, sum(delta) OVER (
        ORDER BY group_number, edge ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS level
    FROM events
),
peaks AS (
    SELECT {g_keys} CAST(max(r.level) AS BIGINT) AS peak_concurrency
    FROM running AS r JOIN groups AS g ON r.group_number = g.group_number
    GROUP BY r.group_number, {g_key_list}
),
busy AS (
    SELECT {keys}
        sum(greatest(duration_ms, 0)) / 1000.0 AS busy_s,
        (epoch_us(max(end_time)) - epoch_us(min(start_time))) / 1e6 AS window_s
    FROM req {group_by}
)
SELECT {b_keys} p.peak_concurrency,
    b.busy_s / nullif(b.window_s, 0) AS mean_concurrency
FROM busy AS b JOIN peaks AS p ON {join_on}
"""

# Without group columns: one group, one sort by time.
_CONCURRENCY_ALL: Final = """
WITH
events AS (
    SELECT epoch_us(start_time) * 2 + 1 AS edge, 1 AS delta FROM req
    WHERE start_time IS NOT NULL AND end_time IS NOT NULL
    UNION ALL
    SELECT epoch_us(end_time) * 2 AS edge, -1 AS delta FROM req
    WHERE start_time IS NOT NULL AND end_time IS NOT NULL
),
peaks AS (
    SELECT CAST(max(level) AS BIGINT) AS peak_concurrency FROM (
        SELECT sum(delta) OVER (
            ORDER BY edge ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS level
        FROM events
    )
),
busy AS (
    SELECT sum(greatest(duration_ms, 0)) / 1000.0 AS busy_s,
        (epoch_us(max(end_time)) - epoch_us(min(start_time))) / 1e6 AS window_s
    FROM req
)
SELECT p.peak_concurrency, b.busy_s / nullif(b.window_s, 0) AS mean_concurrency
FROM busy AS b, peaks AS p
"""


def _req(by: Sequence[str], bucket: bool, table: bool) -> str:
    materialized = "NOT MATERIALIZED" if table else "MATERIALIZED"
    return _REQ.format(keys=_select_keys(by, bucket), materialized=materialized)


def concurrency_sql(
    by: Sequence[str], *, bucket: bool, standalone: bool = True, table: bool = False
) -> str:
    """The CONCURRENCY query for these group columns (and a ``bucket`` column if set);
    ``standalone=False`` gives the subquery METRICS embeds (reading its ``req``);
    ``table`` says the input is a base table (read again instead of copied)."""
    keys = _keys(by, bucket)
    if keys:
        query = CONCURRENCY.format(
            keys=_select_keys(by, bucket),
            key_list=", ".join(keys),
            join_rg=_join_on(by, bucket, "r", "g"),
            g_keys=", ".join(f"g.{k}" for k in keys) + ",",
            g_key_list=", ".join(f"g.{k}" for k in keys),
            b_keys=", ".join(f"b.{k}" for k in keys) + ",",
            group_by=f"GROUP BY {', '.join(keys)}",
            join_on=_join_on(by, bucket, "b", "p"),
        )
    else:
        query = _CONCURRENCY_ALL
    if standalone:
        return f"WITH {_req(by, bucket, table)}\nSELECT * FROM ({query})"
    return query


METRICS: Final = """
WITH
{req},
base AS (
    SELECT *,
        NOT is_error AS success,
        slo_ms IS NOT NULL AND latency_ms > slo_ms AS breach
    FROM req
),
main AS (
    SELECT {keys}
        count(*) AS requests,
        count(*) FILTER (WHERE is_error) AS errors,
        quantile_cont(latency_ms, [0.5, 0.95, 0.99]) AS q,
        avg(duration_ms) AS mean_duration_ms,
        avg(latency_ms) AS mean_latency_ms,
        quantile_cont(ttft_ms, 0.95) AS ttft_p95_ms,
        count(*) FILTER (WHERE cold_start) AS cold_starts,
        quantile_cont(latency_ms, 0.95) FILTER (WHERE cold_start) AS cold_p95_ms,
        quantile_cont(latency_ms, 0.95) FILTER (WHERE NOT cold_start) AS warm_p95_ms,
        max(slo_ms) AS slo_ms,
        count(*) FILTER (WHERE breach) AS slo_breaches,
        count(*) FILTER (WHERE breach AND cold_start) AS cold_breaches,
        count(*) FILTER (WHERE throttled) AS throttled,
        CAST(sum(throttle_events) AS BIGINT) AS throttle_events,
        CAST(sum(retries) AS BIGINT) AS retries,
        CAST(sum(input_tokens) AS BIGINT) AS input_tokens,
        CAST(sum(output_tokens) AS BIGINT) AS output_tokens,
        CAST(sum(cache_read_tokens) AS BIGINT) AS cache_read_tokens,
        CAST(sum(reasoning_tokens) AS BIGINT) AS reasoning_tokens,
        -- NULL when every request of the group that used tokens is unpriced (never a
        -- silent $0); else the priced requests' sum, with unpriced_requests saying what
        -- it leaves out.
        sum(token_cost_usd) AS token_cost_usd,
        coalesce(sum(compute_cost_usd), 0) AS compute_cost_usd,
        avg(cost_usd) AS cost_per_request_usd,
        sum(cost_usd) AS priced_cost_usd,
        count(*) FILTER (WHERE success AND NOT unpriced AND NOT untokenized)
            AS priced_successes,
        count(*) FILTER (WHERE unpriced) AS unpriced_requests,
        count(*) FILTER (WHERE untokenized) AS untokenized_requests,
        min(start_time) AS first_seen,
        max(end_time) AS last_seen,
        count(DISTINCT service_instance) AS instances,
        max(min_instances) AS min_instances,
        max(instance_concurrency) AS instance_concurrency,
        -- The most frequent runtime, ties to the first by name: mode() breaks ties by
        -- whichever value its (parallel) scan met first, so a tie flipped utilization.
        map_keys(histogram(request_runtime))[list_position(
            map_values(histogram(request_runtime)),
            list_max(map_values(histogram(request_runtime))))] AS main_runtime
    FROM base
    {group_by}
)
SELECT {m_keys}
    m.requests,
    m.errors,
    m.errors / m.requests AS error_rate,
    m.requests - m.errors AS successes,
    m.q[1] AS p50_ms, m.q[2] AS p95_ms, m.q[3] AS p99_ms,
    m.mean_duration_ms,
    m.mean_latency_ms,
    m.ttft_p95_ms,
    m.cold_starts,
    m.cold_starts / m.requests AS cold_start_rate,
    m.cold_p95_ms, m.warm_p95_ms,
    m.cold_p95_ms - m.warm_p95_ms AS cold_start_penalty_ms,
    m.slo_ms,
    m.slo_breaches,
    m.slo_breaches / m.requests AS slo_breach_rate,
    m.cold_breaches / nullif(m.slo_breaches, 0) AS slo_breach_cold_share,
    m.throttled,
    m.throttled / m.requests AS throttle_rate,
    m.throttle_events,
    m.retries / m.requests AS retries_per_request,
    m.input_tokens / m.requests AS input_tokens_per_request,
    m.output_tokens / m.requests AS output_tokens_per_request,
    m.cache_read_tokens / m.requests AS cache_read_tokens_per_request,
    m.reasoning_tokens / m.requests AS reasoning_tokens_per_request,
    m.token_cost_usd,
    m.compute_cost_usd,
    m.token_cost_usd + m.compute_cost_usd AS total_cost_usd,
    m.cost_per_request_usd,
    m.priced_cost_usd / nullif(m.priced_successes, 0) AS cost_per_successful_request_usd,
    m.unpriced_requests,
    m.untokenized_requests,
    m.first_seen,
    m.last_seen,
    (epoch_us(m.last_seen) - epoch_us(m.first_seen)) / 1e6 AS window_s,
    m.requests / nullif((epoch_us(m.last_seen) - epoch_us(m.first_seen)) / 1e6, 0)
        AS requests_per_s,
    c.peak_concurrency,
    c.mean_concurrency,
    nullif(m.instances, 0) AS instances,
    -- Serverless gives each environment one request at a time and bills only busy time,
    -- so its utilization is how busy a fleet sized to the observed peak would be; other
    -- runtimes: busy share of the instances seen times their per-instance concurrency.
    least(CASE WHEN m.main_runtime = 'serverless'
        THEN c.mean_concurrency / nullif(c.peak_concurrency, 0)
        ELSE c.mean_concurrency / nullif(
            greatest(m.instances, coalesce(m.min_instances, 0))
            * coalesce(m.instance_concurrency, 1), 0)
    END, 1.0) AS utilization
FROM main AS m
LEFT JOIN ({concurrency}) AS c ON {join_on}
"""


def metrics_sql(by: Sequence[str], *, bucket: bool, table: bool = False) -> str:
    """The METRICS query for these group columns (and a ``bucket`` column if set);
    ``table`` says the input is a base table (read again instead of copied)."""
    keys = _keys(by, bucket)
    return METRICS.format(
        req=_req(by, bucket, table),
        keys=_select_keys(by, bucket),
        m_keys=(", ".join(f"m.{k}" for k in keys) + ",") if keys else "",
        group_by=f"GROUP BY {', '.join(keys)}" if keys else "",
        concurrency=concurrency_sql(by, bucket=bucket, standalone=False),
        join_on=_join_on(by, bucket, "m", "c"),
    )


# Latency share per stage. A request's time in a stage is the union of its spans of that
# stage, clipped to the request; shares of parallel stages may add up to more than 1, and
# "unattributed" is the request time no nested span covers.
STAGE_BREAKDOWN: Final = """
WITH
stage_spans AS (
    SELECT r.span_id AS request_id, r.duration_ms AS request_ms {r_keys},
        CASE
            -- OpenInference span kinds (LLM, RETRIEVER, RERANKER) arrive as operations too.
            WHEN lower(s.operation) IN ('chat', 'text_completion', 'generate_content',
                                        'completion', 'inference', 'generate', 'llm')
                THEN 'inference'
            WHEN lower(s.operation) IN ('embeddings', 'embedding', 'embed') THEN 'embedding'
            WHEN lower(s.operation) IN ('retrieval', 'retrieve', 'search', 'vector_search',
                                        'retriever')
                THEN 'retrieval'
            WHEN lower(s.operation) IN ('rerank', 'reranking', 'reranker') THEN 'rerank'
            WHEN lower(s.operation) IN ('execute_tool', 'tool') THEN 'tool'
            WHEN s.operation IS NOT NULL THEN lower(s.operation)
            ELSE 'other'
        END AS stage,
        epoch_us(greatest(s.start_time, r.start_time)) AS start_us,
        epoch_us(least(s.end_time, r.end_time)) AS end_us
    FROM im_stage_spans AS s
    JOIN im_requests AS r
        ON s.trace_id = r.trace_id AND s.service_name IS NOT DISTINCT FROM r.service_name
        AND s.start_time >= r.start_time AND s.start_time <= r.end_time
        AND s.span_id <> r.span_id
    WHERE NOT coalesce(s.is_entry, false)
),
clipped AS (
    SELECT *,
        greatest(end_us - greatest(start_us, coalesce(max(end_us) OVER (
            PARTITION BY request_id, stage ORDER BY start_us, end_us
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)), 0) / 1000.0 AS stage_new_ms,
        greatest(end_us - greatest(start_us, coalesce(max(end_us) OVER (
            PARTITION BY request_id ORDER BY start_us, end_us
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)), 0) / 1000.0 AS any_new_ms
    FROM stage_spans
    WHERE end_us > start_us
),
per_request AS (
    SELECT request_id {keys}, stage, any_value(request_ms) AS request_ms,
        sum(stage_new_ms) AS stage_ms
    FROM clipped
    GROUP BY request_id {keys}, stage
    UNION ALL
    SELECT request_id {keys}, 'unattributed', any_value(request_ms),
        greatest(any_value(request_ms) - sum(any_new_ms), 0)
    FROM clipped
    GROUP BY request_id {keys}
),
nested AS (
    SELECT 1 AS one {keys}, count(*) AS nested_requests, sum(request_ms) AS nested_request_ms
    FROM (SELECT DISTINCT request_id {keys}, request_ms FROM per_request)
    GROUP BY ALL
)
SELECT {p_keys} p.stage,
    count(*) AS requests,
    avg(p.stage_ms) AS mean_ms,
    quantile_cont(p.stage_ms, 0.95) AS p95_ms,
    sum(p.stage_ms) AS total_ms,
    sum(p.stage_ms) / any_value(n.nested_request_ms) AS share,
    avg(p.stage_ms / nullif(p.request_ms, 0)) AS mean_share,
    any_value(n.nested_requests) AS nested_requests
FROM per_request AS p
JOIN nested AS n ON {join_on}
WHERE p.stage <> 'unattributed' OR p.stage_ms > 0
GROUP BY {p_keys} p.stage
ORDER BY {p_keys} share DESC, p.stage
"""


def stage_breakdown_sql(by: Sequence[str]) -> str:
    """The STAGE_BREAKDOWN query for these group columns."""
    keys = list(by)
    return STAGE_BREAKDOWN.format(
        r_keys="".join(f", r.{k}" for k in keys),
        keys="".join(f", {k}" for k in keys),
        p_keys="".join(f"p.{k}, " for k in keys),
        join_on=_join_on(by, False, "p", "n"),
    )


# "The newest span" of a store, in every command alike: the newest start. A request
# belongs to the window its entry span starts in, so windows end at a start time. Spans
# starting after $limit (the reader's clock + a tolerance, ``query._clock``) are from the
# far future (a wrong clock, a hostile year 2262): they are left out and counted, or they
# would move every window that ends at the newest data.
NEWEST_SPAN: Final = """
SELECT max(start_time) FILTER (WHERE start_time <= $limit),
    count(*) FILTER (WHERE start_time > $limit)
FROM spans
"""

# Columns COHORT_SUMS returns besides the cohort keys.
SUM_COLUMNS: Final = (
    "requests",
    "errors",
    "throttled",
    "throttle_events",
    "cold_starts",
    "retries",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "reasoning_tokens",
    "token_cost_usd",
    "compute_cost_usd",
    "unpriced_requests",
    "untokenized_requests",
    "foreign_spans",
)

# The exporter's counters and window sums: per-request facts of the request table (each
# defined once there) added up per cohort, so a sum always agrees with metrics().
# Over a request-table relation bound as ``im_requests``; one row per cohort.
COHORT_SUMS: Final = """
SELECT tenant, model, prompt_version, endpoint, runtime, provider,
    count(*) AS requests,
    count(*) FILTER (WHERE is_error) AS errors,
    count(*) FILTER (WHERE throttled) AS throttled,
    coalesce(sum(throttle_events), 0) AS throttle_events,
    count(*) FILTER (WHERE cold_start) AS cold_starts,
    coalesce(sum(retries), 0) AS retries,
    coalesce(sum(input_tokens), 0) AS input_tokens,
    coalesce(sum(output_tokens), 0) AS output_tokens,
    coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens,
    coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens,
    coalesce(sum(token_cost_usd), 0) AS token_cost_usd,
    coalesce(sum(compute_cost_usd), 0) AS compute_cost_usd,
    count(*) FILTER (WHERE unpriced) AS unpriced_requests,
    count(*) FILTER (WHERE untokenized) AS untokenized_requests,
    coalesce(sum(foreign_spans), 0) AS foreign_spans
FROM im_requests
GROUP BY tenant, model, prompt_version, endpoint, runtime, provider
"""


@functools.cache
def sql_file(name: str) -> str:
    """The text of ``sql/<name>.sql`` (the longer queries, kept as files beside this one)."""
    return (
        resources.files("infermeter.analytics.query")
        .joinpath("sql", f"{name}.sql")
        .read_text(encoding="utf-8")
    )
