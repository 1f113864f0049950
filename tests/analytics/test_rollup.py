"""The exporter's counters that say where cost and tenancy numbers are incomplete: requests
whose LLM call reported no tokens, and spans of another tenant left out of a request."""

from __future__ import annotations

from datetime import datetime, timedelta

from infermeter.analytics import load_deployments, load_prices
from infermeter.analytics.rollup import Catalog, RollupOptions, compute_snapshot
from infermeter.collectors.testing import insert_spans, span_record, store_in_memory

T0 = datetime(2026, 11, 16, 10, 0, 0)
LLM = {"model": "gpt-4o-mini", "provider": "openai", "operation": "chat", "endpoint": "/chat"}


def test_untokenized_requests_and_foreign_spans_are_counted_per_cohort() -> None:
    con = store_in_memory()
    # acme: three requests; the second's model call reported no usage.
    acme = [
        span_record(start=T0 + timedelta(minutes=i), tenant="acme", **LLM)
        | ({} if i == 1 else {"input_tokens": 100, "output_tokens": 10})
        for i in range(3)
    ]
    # globex: one request, and two spans written under acme's name inside its trace.
    entry = span_record(
        start=T0 + timedelta(minutes=5), tenant="globex", input_tokens=50, output_tokens=5, **LLM
    )
    intruders = [
        span_record(
            start=entry["start_time"] + timedelta(milliseconds=10 * (k + 1)),
            trace_id=entry["trace_id"],
            parent_span_id=entry["span_id"],
            is_entry=False,
            tenant="acme",
            input_tokens=9_000,
            output_tokens=900,
            **LLM,
        )
        for k in range(2)
    ]
    insert_spans(con, [*acme, entry, *intruders])
    prices = load_prices()
    snapshot = compute_snapshot(
        con,
        prices=prices,
        deployments=load_deployments(prices=prices),
        options=RollupOptions(window_end="newest"),
        now=T0 + timedelta(hours=1),
    )
    cohort = {"model": "gpt-4o-mini", "endpoint": "/chat"}
    untokenized = {
        labels["tenant"]: value
        for labels, value in snapshot.series(Catalog.UNTOKENIZED_REQUESTS_TOTAL)
        if labels.get("model") == "gpt-4o-mini"
    }
    assert untokenized == {"acme": 1, "globex": 0}
    foreign = {
        labels["tenant"]: value
        for labels, value in snapshot.series(Catalog.FOREIGN_SPANS_TOTAL)
        if labels.get("endpoint") == cohort["endpoint"]
    }
    assert foreign == {"acme": 0, "globex": 2}
    # The intruders' tokens stay out of globex's request: 50 in, 5 out.
    tokens = {
        labels["type"]: value
        for labels, value in snapshot.series(Catalog.TOKENS_TOTAL)
        if labels.get("tenant") == "globex"
    }
    assert tokens["input"] == 50 and tokens["output"] == 5
