"""Step 2 of the scale-out design: the span -> request rollup inside ClickHouse.

A materialized view over ``otel_traces`` itself (a materialized view over a plain view
never fires: it triggers on inserts into the table its query reads) aggregates every
insert block into ``infermeter_requests`` (``AggregatingMergeTree``, one row per day,
service and trace). Its states are the parts of the analytics' stage (a), the request
facts (``analytics/query/_queries.py`` ``REQUEST_FACTS``): the entry span's columns (one
typed ``any`` state each: a request with several entry spans is left to the spans),
span, model-call and throttle counts, token sums, the first chunk, the nested spans'
model (``argMax`` by tokens) and tags (``min`` each, as the request table), and the
tokens of the request's one span with tokens with its (model, response model, provider),
as the parts each price applies to — never priced at ingest (a request with several
spans with tokens is left to the spans). A trace whose spans arrive in several insert
blocks leaves several partial rows; every read merges them (``…Merge`` grouped by trace
and service), so it is still one request whether or not ClickHouse merged the parts in
the background.

:func:`pull_request_facts` returns, for a window, the request facts ClickHouse computes
exactly and the traces it does not: the request table's span-level rules (usage counted
once across nested spans, a throttle inside a throttle, untokenized calls beside usage
deeper than a parent/child pair, entries handed over by a server span, a service entered
twice, retries, spans of another tenant, spans outside the window, self-hosted model
calls whose load is read from spans, several spans with tokens) need the spans
themselves. Those traces are marked
``needs_spans``; the reader pulls their spans, and the analytics compute their facts with
the same SQL as on a DuckDB store. Every request is computed whole by one of the two, so
the numbers are the DuckDB store's by construction.

``-If`` aggregates of the entry are wrapped in ``toNullable`` where a missing value must
read NULL: ``minIf``/``anyIf`` over no matching row return the type's default otherwise.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from infermeter.collectors._clickhouse_schema import DEFAULT_TABLE, TableShape, span_expressions
from infermeter.collectors._conventions import DEFAULT_TENANT_ATTRIBUTES

if TYPE_CHECKING:
    from collections.abc import Callable

    import pyarrow as pa
    from clickhouse_connect.driver.client import Client

__all__ = [
    "ENTRY_COLUMNS",
    "REQUESTS_TABLE",
    "REQUESTS_VIEW",
    "backfill",
    "pull_request_facts",
    "rebuild",
    "requests_statements",
    "rollup_select",
]

REQUESTS_TABLE: Final = "infermeter_requests"
REQUESTS_VIEW: Final = "infermeter_requests_mv"
# The entry span's columns, in this order in the argMin tuple (stage (a)'s entry_*).
ENTRY_COLUMNS: Final = (
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
# The entry's text columns travel in one String state (one state per column measured
# ~0.1 s and ~30 MB each per 333k requests), split back at read time.
_ENTRY_TEXT: Final = (
    "span_id",
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
    "initialization_type",
)
_TOKENS: Final = ("input", "output", "cache_read", "cache_write", "reasoning")
# The parts of a span's tokens each price applies to, summed per model (stage (a)'s usage).
_USAGE: Final = (
    (
        "billed_input",
        "greatest(ifNull(input_tokens, 0) - ifNull(cache_read_tokens, 0)"
        " - ifNull(cache_write_tokens, 0), 0)",
    ),
    ("cache_read", "ifNull(cache_read_tokens, 0)"),
    ("cache_write", "ifNull(cache_write_tokens, 0)"),
    ("billed_output", "greatest(ifNull(output_tokens, 0) - ifNull(reasoning_tokens, 0), 0)"),
    ("reasoning", "ifNull(reasoning_tokens, 0)"),
    ("used", "toInt64(ifNull(input_tokens, 0) + ifNull(output_tokens, 0) > 0)"),
)
# gen_ai.operation.name values of model calls (analytics' LLM_OPERATIONS; the collectors
# room cannot import analytics, and test_clickhouse_requests checks the two agree).
LLM_OPERATIONS: Final = (
    "chat",
    "text_completion",
    "generate_content",
    "completion",
    "embeddings",
    "embedding",
    "llm",
)
_SPAN_LOOKAHEAD: Final = timedelta(hours=1)  # the request table's child-span look-ahead
_USAGE_KEYS: Final = ("model", "response_model", "provider")
# Hash buckets of trace ids (the rollup's first sort key) and the rollup rows one read
# merges at most at a time (a window with more is read in bucket ranges).
BUCKETS: Final = 256
ROWS_PER_READ: Final = 200_000
_SEP: Final = "\\x1f"  # between model and provider in one state (SQL escape of U+001F)
_NULL: Final = "\\x00"  # a NULL model or provider there


def _packed(columns: tuple[str, ...]) -> str:
    """The text ``columns`` joined by the separator, NULL as its mark."""
    parts = ", ".join(f"ifNull({c}, '{_NULL}')" for c in columns)
    return f"arrayStringConcat([{parts}], '{_SEP}')"


def _unpacked(state: str, columns: tuple[str, ...], prefix: str) -> str:
    return ",\n            ".join(
        f"nullIf(splitByChar('{_SEP}', {state})[{i + 1}], '{_NULL}') AS {prefix}{c}"
        for i, c in enumerate(columns)
    )


def rollup_select(
    shape: TableShape,
    table: str,
    where: str = "",
    *,
    tenant_attributes: tuple[str, ...] = DEFAULT_TENANT_ATTRIBUTES,
) -> str:
    """The rollup of ``table``'s rows (those matching the SQL condition ``where``, over
    its own columns) into ``infermeter_requests`` states; ``tenant_attributes`` as the
    views were generated with (``clickhouse init``)."""
    e = span_expressions(shape, tenant_attributes=tenant_attributes)
    names = (
        "trace_id",
        "span_id",
        "parent_span_id",
        "kind",
        "start_time",
        "is_entry",
        "throttled",
        "attempt",
        "response_model",
        "model_ms",
        "queue_ms",
        *(f"{k}_tokens" for k in _TOKENS),
        *ENTRY_COLUMNS,
    )
    inner = ",\n            ".join(f"{e[name]} AS {name}" for name in dict.fromkeys(names))
    # One typed state per entry column: a request with more than one entry span needs
    # its spans, so ``any`` of the one entry is exact (a tuple in argMin is stored as
    # generic fields: measured several times slower and larger). ``anyIfState``, not
    # ``anyStateIf``: the latter's state drops Nullable (NULL reads back as '' or 0).
    entry = ",\n    ".join(
        [
            f"anyIfState({_packed(_ENTRY_TEXT)}, is_entry_) AS entry_text",
            *(
                f"anyIfState({c}, is_entry_) AS entry_{c}"
                for c in ENTRY_COLUMNS
                if c not in _ENTRY_TEXT
            ),
        ]
    )
    usage_states = ",\n    ".join(
        [
            f"anyIfState({_packed(_USAGE_KEYS)}, has_tokens) AS usage_text",
            *(f"anyIfState(toInt64({expr}), has_tokens) AS usage_{n}" for n, expr in _USAGE),
        ]
    )
    # A text holding the separator or the NULL mark could not be split back: its request
    # is left to the spans.
    unpackable = " OR ".join(
        f"position(ifNull({c}, ''), '{_SEP}') > 0 OR {c} = '{_NULL}'"
        for c in dict.fromkeys((*_ENTRY_TEXT, *_USAGE_KEYS))
    )
    operations = ", ".join(f"'{op}'" for op in LLM_OPERATIONS)
    return f"""SELECT
    day, bucket, service_key, trace_id,
    countStateIf(is_entry_) AS entries,
    {entry},
    minState(start_time) AS first_start,
    maxState(start_time) AS last_start,
    countState() AS spans,
    countStateIf(is_llm) AS llm_spans,
    {", ".join(f"sumState(toInt64(ifNull({k}_tokens, 0))) AS {k}_sum" for k in _TOKENS)},
    countStateIf(throttled_) AS throttle_events,
    minState(first_chunk_at) AS first_chunk,
    -- The main model call: one String state (a tuple is stored as generic fields).
    argMaxStateIf(concat(ifNull(model, '{_NULL}'), '{_SEP}', ifNull(provider, '{_NULL}')),
        llm_tokens, is_llm) AS child_llm,
    minState(tenant) AS child_tenant,
    maxState(tenant) AS last_tenant,
    minState(prompt_name) AS child_prompt_name,
    minState(prompt_version) AS child_prompt_version,
    countStateIf(has_tokens) AS token_spans,
    {usage_states},
    countStateIf(kind IN ('SERVER', 'CONSUMER') AND NOT is_entry_
                 AND parent_span_id IS NOT NULL) AS handed,
    countStateIf(attempt > 1) AS retried,
    countStateIf(has_usage) AS with_usage,
    anyStateIf(tuple(span_id, ifNull(parent_span_id, '')), has_usage) AS usage_span,
    groupArrayStateIf(tuple(span_id, ifNull(parent_span_id, '')), tokenless)
        AS tokenless_spans,
    countStateIf(provider = 'self_hosted' OR model_ms IS NOT NULL OR queue_ms IS NOT NULL)
        AS self_hosted,
    countStateIf(({unpackable}) AND (is_entry_ OR has_tokens)) AS unpackable
FROM (
    SELECT *,
        ifNull(is_entry, false) AS is_entry_,
        ifNull(throttled, false) AS throttled_,
        ifNull(input_tokens, 0) + ifNull(output_tokens, 0) AS llm_tokens,
        model IS NOT NULL OR response_model IS NOT NULL AS is_llm,
        input_tokens IS NOT NULL OR output_tokens IS NOT NULL AS has_usage,
        has_usage OR cache_read_tokens IS NOT NULL OR cache_write_tokens IS NOT NULL
            OR reasoning_tokens IS NOT NULL AS has_tokens,
        -- The request table's rounding (half away from zero; ClickHouse's round() of a
        -- float rounds half to even).
        if(ttft_ms IS NULL, NULL, addMicroseconds(start_time,
            toInt64(if(ttft_ms >= 0, floor(ttft_ms * 1000 + 0.5), ceil(ttft_ms * 1000 - 0.5)))))
            AS first_chunk_at,
        -- A successful model call with no token count (SPAN_ADJUSTMENTS' tokenless_call).
        NOT has_usage
            AND (lower(operation) IN ({operations})
                 OR (operation IS NULL AND is_llm))
            AND NOT throttled_ AND error_type IS NULL
            AND status_code != 'ERROR' AS tokenless
    FROM (
        SELECT
            toDate(Timestamp) AS day,
            toUInt8(cityHash64(TraceId) % {BUCKETS}) AS bucket,
            toString(ServiceName) AS service_key,
            {inner}
        FROM `{table}`
        {"WHERE " + where if where else ""}
    )
)
GROUP BY day, bucket, service_key, trace_id"""  # noqa: S608 — constants and generated expressions


def requests_statements(
    shape: TableShape,
    *,
    table: str = DEFAULT_TABLE,
    tenant_attributes: tuple[str, ...] = DEFAULT_TENANT_ATTRIBUTES,
) -> tuple[str, str]:
    """The ``infermeter_requests`` table and the materialized view that fills it (over
    the table itself: a materialized view over a view would never fire)."""
    select = rollup_select(shape, table, tenant_attributes=tenant_attributes)
    create = (
        f"CREATE TABLE IF NOT EXISTS {REQUESTS_TABLE}\n"
        # A day per partition (the window prunes whole days); sorted by a hash bucket of
        # the trace first, so a read merges the window bucket range by bucket range: every
        # trace's rows in one range, the memory of one range at a time.
        "ENGINE = AggregatingMergeTree\nPARTITION BY day\n"
        f"ORDER BY (bucket, service_key, trace_id)\nEMPTY AS {select}"
    )
    view = f"CREATE MATERIALIZED VIEW IF NOT EXISTS {REQUESTS_VIEW} TO {REQUESTS_TABLE} AS {select}"
    return create, view


# Spans one backfill insert aggregates at most (its memory is its groups').
SPANS_PER_BACKFILL: Final = 1_000_000


def backfill(
    client: Client,
    shape: TableShape,
    table: str,
    *,
    tenant_attributes: tuple[str, ...] = DEFAULT_TENANT_ATTRIBUTES,
) -> int:
    """Fill ``infermeter_requests`` from the spans already in ``table``, a day and a range
    of trace buckets at a time (one insert of all of them held every trace's states in
    memory at once: 11 GiB at 10M spans); returns the inserts run."""
    days = client.query(
        f"SELECT toDate(Timestamp) AS d, count() FROM `{table}` GROUP BY d ORDER BY d"  # noqa: S608
    ).result_rows
    inserts = 0
    for day, spans in days:
        ranges = min(max(-(-int(spans) // SPANS_PER_BACKFILL), 1), BUCKETS)
        bounds = [BUCKETS * i // ranges for i in range(ranges + 1)]
        for low, high in itertools.pairwise(bounds):
            where = (
                f"toDate(Timestamp) = toDate('{day.isoformat()}')"
                f" AND cityHash64(TraceId) % {BUCKETS} >= {low}"
                f" AND cityHash64(TraceId) % {BUCKETS} < {high}"
            )
            select = rollup_select(shape, table, where, tenant_attributes=tenant_attributes)
            client.command(f"INSERT INTO {REQUESTS_TABLE} {select}")
            inserts += 1
    return inserts


def rebuild(
    client: Client,
    shape: TableShape,
    table: str,
    *,
    tenant_attributes: tuple[str, ...] = DEFAULT_TENANT_ATTRIBUTES,
) -> None:
    """(Re)create ``infermeter_requests`` and its view, backfilled from ``table`` (spans
    inserted while this runs are missed: run it before ingest starts, or pause ingest)."""
    client.command(f"DROP VIEW IF EXISTS {REQUESTS_VIEW}")
    client.command(f"DROP TABLE IF EXISTS {REQUESTS_TABLE}")
    create, view = requests_statements(shape, table=table, tenant_attributes=tenant_attributes)
    client.command(create)
    backfill(client, shape, table, tenant_attributes=tenant_attributes)
    client.command(view)


def _window_filter(
    since: datetime | None, until: datetime | None
) -> tuple[list[str], list[str], list[str], dict[str, Any]]:
    parameters: dict[str, Any] = {}
    where: list[str] = []
    outside: list[str] = []
    in_window = ["entries = 1"]
    if since is not None:
        # A span of the window starts on or after since's day; spans of earlier days are
        # outside the window on both engines.
        where.append("day >= {since_day:Date}")
        parameters["since_day"] = since.date()
        parameters["since"] = since
        outside.append("first_start < {since:DateTime64(6, 'UTC')}")
        in_window.append("entry_start_time >= {since:DateTime64(6, 'UTC')}")
    if until is not None:
        horizon = until + _SPAN_LOOKAHEAD
        where.append("day <= {horizon_day:Date}")
        parameters["horizon_day"] = horizon.date()
        parameters["horizon"] = horizon
        parameters["until"] = until
        outside.append("last_start >= {horizon:DateTime64(6, 'UTC')}")
        in_window.append("entry_start_time < {until:DateTime64(6, 'UTC')}")
    return where, outside, in_window, parameters


def _facts_sql(
    since: datetime | None, until: datetime | None, buckets: tuple[int, int] = (0, BUCKETS)
) -> tuple[str, dict[str, Any]]:
    where, outside, in_window, parameters = _window_filter(since, until)
    if buckets != (0, BUCKETS):
        where.append("bucket >= {bucket_low:UInt16} AND bucket < {bucket_high:UInt16}")
        parameters["bucket_low"], parameters["bucket_high"] = buckets
    entry = ",\n            ".join(
        [
            "anyIfMerge(entry_text) AS entry_text",
            *(f"anyIfMerge(entry_{c}) AS entry_{c}" for c in ENTRY_COLUMNS if c not in _ENTRY_TEXT),
        ]
    )
    tokens = ",\n        ".join(f"sumMerge({k}_sum) AS {k}_tokens" for k in _TOKENS)
    usage_merge = ",\n            ".join(
        [
            "anyIfMerge(usage_text) AS usage_text",
            *(f"anyIfMerge(usage_{n}) AS usage_{n}" for n, _ in _USAGE),
        ]
    )
    usage_fields = ", ".join(f"usage_{c}" for c in (*_USAGE_KEYS, *(n for n, _ in _USAGE)))
    child = f"splitByString('{_SEP}', child_llm)"
    sql = f"""
SELECT trace_id, nullIf(service_key, '') AS service_name,
    {", ".join(f"entry_{c}" for c in ENTRY_COLUMNS)},
    spans AS span_count,
    toInt64(0) AS foreign_spans,
    llm_spans,
    {", ".join(f"{k}_tokens" for k in _TOKENS)},
    throttle_events > 0 AS throttled,
    throttle_events,
    with_usage = 0 AND length(tokenless) > 0 AS untokenized,
    first_chunk_at,
    toInt64(0) AS retries,
    if(child_llm = '', NULL, nullIf({child}[1], '{_NULL}')) AS child_model,
    if(child_llm = '', NULL, nullIf({child}[2], '{_NULL}')) AS child_provider,
    child_tenant, child_prompt_name, child_prompt_version,
    -- The usage list is assembled client-side (_with_usage): an Array(Tuple) built here
    -- cost ~0.7 s of 4 s per 333k requests.
    token_spans, {usage_fields},
    needs_spans
FROM (
    SELECT *,
        {_unpacked("entry_text", _ENTRY_TEXT, "entry_")},
        {_unpacked("usage_text", _USAGE_KEYS, "usage_")},
        -- The request table's span-level rules that need the spans (module docstring).
        entries > 1 OR handed > 0 OR retried > 0 OR with_usage > 1 OR throttle_events > 1
        OR token_spans > 1 OR unpackable > 0
        OR self_hosted > 0
        OR (with_usage = 1 AND length(tokenless) > 0
            AND NOT arrayAll(t -> t.1 = usage_span.2 OR t.2 = usage_span.1, tokenless))
        OR (entries = 1 AND entry_tenant IS NOT NULL
            AND (child_tenant != entry_tenant OR last_tenant != entry_tenant))
        {"".join(f" OR {condition}" for condition in outside)} AS needs_spans
    FROM (
        SELECT trace_id, service_key,
            countMerge(entries) AS entries,
            {entry},
            minMerge(first_start) AS first_start,
            maxMerge(last_start) AS last_start,
            countMerge(spans) AS spans,
            countMerge(llm_spans) AS llm_spans,
            {tokens},
            countMerge(throttle_events) AS throttle_events,
            minMerge(first_chunk) AS first_chunk_at,
            argMaxMerge(child_llm) AS child_llm,
            minMerge(child_tenant) AS child_tenant,
            maxMerge(last_tenant) AS last_tenant,
            minMerge(child_prompt_name) AS child_prompt_name,
            minMerge(child_prompt_version) AS child_prompt_version,
            countMerge(token_spans) AS token_spans,
            {usage_merge},
            countMerge(handed) AS handed,
            countMerge(retried) AS retried,
            countMerge(with_usage) AS with_usage,
            anyMerge(usage_span) AS usage_span,
            groupArrayMerge(tokenless_spans) AS tokenless,
            countMerge(self_hosted) AS self_hosted,
            countMerge(unpackable) AS unpackable
        FROM {REQUESTS_TABLE}
        {"WHERE " + " AND ".join(where) if where else ""}
        GROUP BY service_key, trace_id
    )
)
WHERE needs_spans OR ({" AND ".join(in_window)})
"""  # noqa: S608 — composed from constants; values are parameters
    return sql, parameters


def _with_usage(table: pa.Table) -> pa.Table:
    """``table`` with stage (a)'s ``usage`` list (the request's one token span, or empty)
    in place of the flat ``usage_*`` columns and ``token_spans``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = [*_USAGE_KEYS, *(n for n, _ in _USAGE)]
    has = pc.equal(table.column("token_spans"), 1).combine_chunks()
    fields = [pa.field(n, pa.string() if n in _USAGE_KEYS else pa.int64()) for n in names]
    values = pa.StructArray.from_arrays(
        [
            table.column(f"usage_{n}").combine_chunks().filter(has).cast(field.type)
            for n, field in zip(names, fields, strict=True)
        ],
        fields=fields,
    )
    counts = pc.cast(has, pa.int32())
    offsets = pa.concat_arrays(
        [pa.array([0], pa.int32()), pc.cumulative_sum(counts).cast(pa.int32())]
    )
    usage = pa.ListArray.from_arrays(offsets, values)
    position = table.schema.get_field_index("token_spans")
    table = table.drop_columns(["token_spans", *(f"usage_{n}" for n in names)])
    return table.add_column(position, "usage", usage)


def pull_request_facts(
    client: Client,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    sink: Callable[[pa.Table], None] | None = None,
) -> tuple[pa.Table, pa.Table]:
    """The window's request facts merged from ``infermeter_requests`` (requests whose entry
    span starts in ``[since, until)``, naive UTC) and the ids of the traces whose requests
    need their spans (see the module docstring): ``(facts, traces)``. ``facts`` holds
    stage (a)'s columns for every other request; ``traces`` one ``trace_id`` column.

    With ``sink``, each bucket range's facts go to it as soon as they are merged and
    ``facts`` comes back empty: the caller stores them (a DuckDB table that spills)
    instead of every request's facts staying in process memory at once."""
    import pyarrow as pa
    import pyarrow.compute as pc

    where, _, _, parameters = _window_filter(since, until)
    count = f"SELECT count() FROM {REQUESTS_TABLE}" + (  # noqa: S608 — constants
        " WHERE " + " AND ".join(where) if where else ""
    )
    rows = int(client.query(count, parameters=parameters).result_rows[0][0])
    ranges = min(max(-(-rows // ROWS_PER_READ), 1), BUCKETS)
    bounds = [BUCKETS * i // ranges for i in range(ranges + 1)]
    facts_parts, trace_parts = [], []
    for low, high in itertools.pairwise(bounds):
        sql, values = _facts_sql(since, until, (low, high))
        table = _with_usage(client.query_arrow(sql, parameters=values, use_strings=True))
        needs = pc.not_equal(table.column("needs_spans"), 0)  # UInt8 or Bool
        traces = pc.unique(table.filter(needs).column("trace_id"))
        facts = table.filter(pc.invert(needs)).drop_columns(["needs_spans"])
        if len(traces):
            facts = facts.filter(pc.invert(pc.is_in(facts.column("trace_id"), value_set=traces)))
        if sink is None:
            facts_parts.append(facts)
        else:
            sink(facts)
            facts_parts = [facts.schema.empty_table()]
        trace_parts.append(traces)
    return pa.concat_tables(facts_parts), pa.table({"trace_id": pa.concat_arrays(trace_parts)})
