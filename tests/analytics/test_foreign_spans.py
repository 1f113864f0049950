"""Requests from spans infermeter did not write: which spans are entries, usage and
throttles counted once when spans nest, and LLM calls without tokens never priced at $0.

Prices are list prices: gpt-4o-mini $0.15 / $0.60 per 1M input / output tokens, cached
input $0.075 per 1M.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from infermeter.analytics import Deployments, load_prices, price_coverage, request_table
from infermeter.collectors.testing import insert_spans, span_record, store_in_memory

T0 = datetime(2026, 11, 16, 10, 0, 0)
IN, OUT, CACHED = 0.15e-6, 0.60e-6, 0.075e-6
LLM = {"model": "gpt-4o-mini", "provider": "openai", "operation": "chat"}


def _child(parent: dict[str, Any], at_ms: float, **fields: Any) -> dict[str, Any]:
    fields.setdefault("service_name", parent["service_name"])
    fields.setdefault("is_entry", False)
    return span_record(
        start=parent["start_time"] + timedelta(milliseconds=at_ms),
        trace_id=parent["trace_id"],
        parent_span_id=parent["span_id"],
        **fields,
    )


def _requests(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    con = store_in_memory()
    insert_spans(con, rows)
    prices = load_prices()
    table = request_table(
        con, con.table("spans"), prices=prices, deployments=Deployments(prices=prices)
    )
    return table.order("start_time").pl().to_dicts()


def test_server_or_consumer_span_whose_parent_is_in_another_service_is_a_request() -> None:
    upstream = span_record(start=T0, service_name="gateway", kind="SERVER", name="GET /")
    producer = _child(upstream, 5, kind="PRODUCER", name="publish jobs")
    # An older SDK sent no span flags: the collector could not tell the parent is remote.
    consumer = _child(producer, 20, service_name="worker", kind="CONSUMER", name="process")
    work = _child(consumer, 25, service_name="worker", input_tokens=1000, output_tokens=100, **LLM)
    # A server span whose parent is in its own service (an in-process hop) is not one.
    inner = _child(upstream, 30, kind="SERVER", name="internal dispatch")
    rows = _requests([upstream, producer, consumer, work, inner])
    assert [(r["service_name"], r["span_id"]) for r in rows] == [
        ("gateway", upstream["span_id"]),
        ("worker", consumer["span_id"]),
    ]
    assert rows[1]["input_tokens"] == 1000
    assert rows[1]["token_cost_usd"] == pytest.approx(1000 * IN + 100 * OUT)


def test_framework_server_span_around_an_observed_handler_is_one_request() -> None:
    # FastAPI server span continuing an upstream traceparent (entry), the decorator's
    # entry span inside it: one request, the decorator's.
    server = span_record(start=T0, kind="SERVER", parent_span_id="00000000000000a1")
    observed = _child(server, 1, is_entry=True, scope_name="infermeter", endpoint="/chat")
    rows = _requests([server, observed])
    assert [r["span_id"] for r in rows] == [observed["span_id"]]


def test_usage_on_a_span_and_its_descendant_counts_once() -> None:
    # @observe returning the response (usage read from it, cached tokens too) around an
    # instrumentation span (usage without cached tokens), with a plain span between them.
    entry = span_record(
        start=T0, input_tokens=1000, output_tokens=100, cache_read_tokens=200, **LLM
    )
    middle = _child(entry, 1, name="retry wrapper")
    inner = _child(
        middle,
        2,
        input_tokens=1000,
        output_tokens=100,
        response_model="gpt-4o-mini-2024-07-18",
        **LLM,
    )
    (row,) = _requests([entry, middle, inner])
    assert (row["input_tokens"], row["output_tokens"], row["cache_read_tokens"]) == (
        1000,
        100,
        200,
    )
    assert row["token_cost_usd"] == pytest.approx(800 * IN + 200 * CACHED + 100 * OUT)
    assert not row["untokenized"]


def test_two_calls_inside_one_observed_span_both_count() -> None:
    # The decorator saw the last response's usage only; the two calls inside are the truth.
    entry = span_record(start=T0, input_tokens=1000, output_tokens=100, **LLM)
    first = _child(entry, 1, input_tokens=1000, output_tokens=100, **LLM)
    second = _child(entry, 50, input_tokens=500, output_tokens=10, **LLM)
    (row,) = _requests([entry, first, second])
    assert (row["input_tokens"], row["output_tokens"]) == (1500, 110)
    assert row["token_cost_usd"] == pytest.approx(1500 * IN + 110 * OUT)


def test_a_throttle_seen_by_nested_spans_is_one_event() -> None:
    entry = span_record(start=T0, throttled=True, error_type="RateLimitError", **LLM)
    client = _child(entry, 1, kind="CLIENT", throttled=True, name="POST")
    retry = _child(entry, 300, kind="CLIENT", throttled=True, name="POST", attempt=2)
    (row,) = _requests([entry, client, retry])
    # Two HTTP attempts answered 429 inside one throttled call: two events, not three.
    assert row["throttled"] and row["throttle_events"] == 2


def test_llm_calls_without_tokens_are_untokenized_never_zero() -> None:
    bare = span_record(start=T0, **LLM)  # a model call, no readable usage
    failed = span_record(start=T0 + timedelta(seconds=1), error_type="APIError", **LLM)
    wrapped = span_record(start=T0 + timedelta(seconds=2), **LLM)
    inside = _child(wrapped, 1, input_tokens=10, output_tokens=1, **LLM)
    rows = _requests([bare, failed, wrapped, inside])
    assert [r["untokenized"] for r in rows] == [True, False, False]
    assert rows[0]["token_cost_usd"] is None and rows[0]["cost_usd"] is None
    assert rows[1]["token_cost_usd"] == 0.0  # a failed call bills nothing
    assert rows[2]["token_cost_usd"] == pytest.approx(10 * IN + 1 * OUT)


def test_a_rerank_or_retrieval_span_naming_a_model_is_no_untokenized_call() -> None:
    entry = span_record(start=T0, name="POST /chat")
    rerank = _child(entry, 1, operation="rerank", model="bge-reranker-base")
    chat = _child(entry, 20, input_tokens=1000, output_tokens=100, **LLM)
    (row,) = _requests([entry, rerank, chat])
    assert not row["untokenized"]
    assert row["token_cost_usd"] == pytest.approx(1000 * IN + 100 * OUT)


def test_prices_check_counts_untokenized_calls_once_per_call() -> None:
    con = store_in_memory()
    entry = span_record(start=T0, input_tokens=1000, output_tokens=100, **LLM)
    insert_spans(
        con,
        [
            entry,
            _child(entry, 1, input_tokens=1000, output_tokens=100, **LLM),
            span_record(start=T0 + timedelta(seconds=1), **LLM),
        ],
    )
    frame = price_coverage(con, con.table("spans"), prices=load_prices())
    (usage,) = frame.to_dicts()
    assert (usage["input_tokens"], usage["output_tokens"]) == (1000, 100)
    assert usage["untokenized_spans"] == 1


def test_another_tenants_span_inside_a_request_never_erases_its_usage_or_throttle() -> None:
    """Spans written under acme's name inside globex's trace are left out of globex's
    request; they must not shadow its own usage (nested usage counts once) either."""
    entry = span_record(
        start=T0, tenant="globex", input_tokens=50, output_tokens=5, throttled=True, **LLM
    )
    injected = _child(
        entry, 10, tenant="acme", input_tokens=9_000, output_tokens=900, throttled=True, **LLM
    )
    (row,) = _requests([entry, injected])
    assert row["tenant"] == "globex" and row["foreign_spans"] == 1
    assert (row["input_tokens"], row["output_tokens"]) == (50, 5)
    assert row["token_cost_usd"] == pytest.approx(50 * IN + 5 * OUT)
    assert row["throttled"] and row["throttle_events"] == 1
    # Under an entry with no tenant of its own, a tenant's span is no intruder: the usual
    # nesting rule applies (the innermost usage wins).
    plain = span_record(start=T0 + timedelta(seconds=1), input_tokens=50, output_tokens=5, **LLM)
    inner = _child(plain, 10, tenant="acme", input_tokens=40, output_tokens=4, **LLM)
    (row,) = _requests([plain, inner])
    assert (row["input_tokens"], row["output_tokens"]) == (40, 4)
