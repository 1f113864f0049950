"""Recorded OTLP exports of real GenAI instrumentation packages, replayed through the real
collector: the requests, tokens, throttles, TTFT, tenant and cost per request must be what
the fake OpenAI server answered, priced at list prices.

Each recording (``recordings/*.json``) was made by ``record.sh`` with the package versions
named in its ``packages`` header; the calls are listed in ``record.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from infermeter.analytics import load_prices, price_coverage
from infermeter.collectors import open_reader

from tests.interop.conftest import (
    EMBEDDING_3_SMALL_INPUT,
    GPT_4O_MINI_INPUT,
    GPT_4O_MINI_OUTPUT,
    replay,
    requests_of,
)

CHAT_COST = 1000 * GPT_4O_MINI_INPUT + 100 * GPT_4O_MINI_OUTPUT  # $0.00021
EMBEDDING_COST = 50 * EMBEDDING_3_SMALL_INPUT  # $0.000001
CHUNK_DELAY_MS = 50.0  # the fake server's wait before the first streamed chunk

# emitter -> (tenant, model the request shows, whether it reports TTFT and the stream flag)
EMITTERS: dict[str, tuple[str | None, str, bool]] = {
    # The official instrumentation records neither TTFT nor the stream flag.
    "openai-v2": (None, "gpt-4o-mini", False),
    # OpenLLMetry: tenant via association properties, TTFT from the first chunk event.
    "traceloop": ("acme", "gpt-4o-mini", True),
    # The same before semconv 1.27 (gen_ai.usage.prompt_tokens, llm.is_streaming, …).
    "traceloop-0.45": ("acme", "gpt-4o-mini", True),
    # OpenInference: llm.model_name is the response's snapshot; tenant in metadata JSON.
    "openinference": ("acme", "gpt-4o-mini-2024-07-18", True),
    # OpenLIT: gen_ai.server.time_to_first_token on streams, its own gen_ai.usage.cost.
    "openlit": (None, "gpt-4o-mini", True),
}


def _stream_spans(store: Path) -> int:
    con = open_reader(store)
    try:
        rows = con.execute("SELECT count(*) FROM spans WHERE stream").fetchall()
        return int(rows[0][0])
    finally:
        con.close()


@pytest.mark.parametrize("emitter", sorted(EMITTERS))
def test_each_emitter_gives_the_served_requests(emitter: str, tmp_path: Path) -> None:
    tenant, model, streams = EMITTERS[emitter]
    store = tmp_path / "spans.duckdb"
    document = replay(emitter, store)
    assert all(document["packages"].values()), document["packages"]
    rows = requests_of(store).to_dicts()

    # 3 chats, 1 stream, 1 embeddings call, 2 throttled chats: one request each.
    assert len(rows) == 7, [r["model"] for r in rows]
    chats, stream, embedding, throttled = rows[:3], rows[3], rows[4], rows[5:]
    for row in [*chats, stream]:
        assert (row["input_tokens"], row["output_tokens"]) == (1000, 100)
        assert row["model"] == model
        assert row["token_cost_usd"] == pytest.approx(CHAT_COST, rel=1e-9)
        assert not row["throttled"] and not row["unpriced"] and not row["untokenized"]
    assert (embedding["input_tokens"], embedding["output_tokens"]) == (50, 0)
    assert embedding["token_cost_usd"] == pytest.approx(EMBEDDING_COST, rel=1e-9)
    for row in throttled:
        assert row["throttled"] and row["throttle_events"] == 1
        assert row["is_error"]
        assert (row["input_tokens"], row["output_tokens"]) == (0, 0)
        assert row["token_cost_usd"] == 0.0  # a 429 bills nothing: known, not unknown
    assert sum(r["throttled"] for r in rows) == 2
    assert {r["tenant"] for r in rows} == {tenant}
    assert {r["provider"] for r in rows} == {"openai"}
    for row in chats:
        # Unstreamed calls have no time to first chunk (OpenLIT's TTFT of an unstreamed
        # call is its whole response time, not a first chunk).
        assert row["ttft_ms"] is None
    if streams:
        assert CHUNK_DELAY_MS <= stream["ttft_ms"] <= stream["duration_ms"]
        assert _stream_spans(store) == 1
    else:
        assert stream["ttft_ms"] is None
        assert _stream_spans(store) == 0


def test_fastapi_server_span_with_a_remote_parent_is_the_request(tmp_path: Path) -> None:
    store = tmp_path / "spans.duckdb"
    replay("fastapi", store)
    rows = requests_of(store).to_dicts()
    # Three HTTP requests whose server spans continue an upstream traceparent; the
    # openai-v2 span inside and the ASGI "http send" spans are not requests.
    assert len(rows) == 3
    for row in rows:
        assert row["service_name"] == "interop-fastapi"
        assert row["endpoint"] == "/v1/answer/{topic}"  # http.route
        assert row["tenant"] == "acme"
        assert row["model"] == "gpt-4o-mini" and row["provider"] == "openai"
    answered, busy = rows[:2], rows[2]
    for row in answered:
        assert (row["input_tokens"], row["output_tokens"]) == (1000, 100)
        assert row["token_cost_usd"] == pytest.approx(CHAT_COST, rel=1e-9)
        assert not row["throttled"]
    # Throttled upstream (RateLimitError on the openai span) and answered 429 (server
    # span): one throttled request, one throttle event.
    assert busy["throttled"] and busy["throttle_events"] == 1
    assert (busy["input_tokens"], busy["output_tokens"]) == (0, 0)


def test_openlit_cost_is_kept_and_compared(tmp_path: Path) -> None:
    store = tmp_path / "spans.duckdb"
    replay("openlit", store)
    con = open_reader(store)
    try:
        frame = price_coverage(con, con.table("spans"), prices=load_prices())
    finally:
        con.close()
    by_model: dict[Any, dict[str, Any]] = {
        (row["model"], row["response_model"]): row for row in frame.to_dicts()
    }
    chat = by_model["gpt-4o-mini", "gpt-4o-mini-2024-07-18"]
    # OpenLIT priced the 4 answered chat calls at the list prices it was given.
    assert chat["token_cost_usd"] == pytest.approx(4 * CHAT_COST, rel=1e-9)
    assert chat["emitter_cost_usd"] == pytest.approx(4 * CHAT_COST, rel=1e-9)
    assert chat["cost_difference_usd"] == pytest.approx(0.0, abs=1e-12)
    assert chat["untokenized_spans"] == 0
