"""Live: the real ``openai`` SDK instrumented by the real
``opentelemetry-instrumentation-openai-v2``, calling the fake OpenAI server, exporting
through ``infermeter.configure()`` to the real collector — alone and with
``@infermeter.observe`` around it (the README's pattern, where both spans carry the usage:
tokens and cost must count once)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.interop.conftest import (
    EMBEDDING_3_SMALL_INPUT,
    GPT_4O_MINI_INPUT,
    GPT_4O_MINI_OUTPUT,
    fake_openai,
    requests_of,
)

pytest.importorskip("openai")
pytest.importorskip("opentelemetry.instrumentation.openai_v2")

pytestmark = pytest.mark.slow

APP = textwrap.dedent("""
    import sys

    import infermeter
    import infermeter.agent
    import openai
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    collector, base_url = sys.argv[1], sys.argv[2]
    infermeter.configure(endpoint=collector, service_name="live", metrics_exporter="none")
    OpenAIInstrumentor().instrument()  # onto the global provider configure() installed
    client = openai.OpenAI(base_url=base_url, api_key="sk-fake", max_retries=0)
    hi = [{"role": "user", "content": "hi"}]

    @infermeter.observe(operation="chat", provider="openai", model="gpt-4o-mini",
                        tenant="acme", endpoint="/answer")
    def answer():
        return client.chat.completions.create(model="gpt-4o-mini", messages=hi)

    @infermeter.observe(operation="chat", provider="openai", model="gpt-4o-mini",
                        tenant="acme", endpoint="/stream")
    def stream_answer():
        yield from client.chat.completions.create(
            model="gpt-4o-mini", messages=hi, stream=True,
            stream_options={"include_usage": True})

    @infermeter.observe(operation="embeddings", provider="openai",
                        model="text-embedding-3-small", tenant="acme", endpoint="/embed")
    def embed():
        return client.embeddings.create(model="text-embedding-3-small", input="hello")

    @infermeter.observe(operation="chat", provider="openai", model="gpt-4o-mini",
                        tenant="acme", endpoint="/busy")
    def busy():
        return client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "THROTTLE"}])

    client.chat.completions.create(model="gpt-4o-mini", messages=hi)  # bare: no decorator
    answer()
    for _ in stream_answer():
        pass
    embed()
    try:
        busy()
    except openai.RateLimitError:
        pass
    infermeter.agent.shutdown()
""")

CHAT_COST = 1000 * GPT_4O_MINI_INPUT + 100 * GPT_4O_MINI_OUTPUT


def test_openai_v2_with_and_without_the_decorator_counts_usage_once(tmp_path: Path) -> None:
    from infermeter.collectors import Collector, open_reader

    server = fake_openai()
    store = tmp_path / "live.duckdb"
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "INFERMETER_"))}
    with server.FakeOpenAI() as api, Collector(store, port=0) as collector:
        result = subprocess.run(
            [sys.executable, str(app), collector.url, api.base_url],
            env=env,
            timeout=120,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    rows = requests_of(store).to_dicts()
    assert [r["endpoint"] for r in rows] == [None, "/answer", "/stream", "/embed", "/busy"]
    bare, decorated, streamed, embedded, busy = rows
    for row in (bare, decorated, streamed):
        # 1.0x: the decorator's span and openai-v2's span inside it both carry the usage.
        assert (row["input_tokens"], row["output_tokens"]) == (1000, 100)
        assert row["token_cost_usd"] == pytest.approx(CHAT_COST, rel=1e-9)
        assert not row["untokenized"] and not row["unpriced"]
    assert bare["tenant"] is None
    assert {r["tenant"] for r in rows[1:]} == {"acme"}
    assert (embedded["input_tokens"], embedded["output_tokens"]) == (50, 0)
    assert embedded["token_cost_usd"] == pytest.approx(50 * EMBEDDING_3_SMALL_INPUT, rel=1e-9)
    # The decorator's stream span measures the first chunk (the fake waits 50 ms for it).
    assert server.CHUNK_DELAY_S * 1000 <= streamed["ttft_ms"] <= streamed["duration_ms"]
    # Throttled: both spans say so (429 seen by the decorator, RateLimitError by
    # openai-v2): one throttled request, one throttle event.
    assert busy["throttled"] and busy["throttle_events"] == 1
    assert busy["is_error"]
    # Both spans of a decorated call really carried the usage: the store holds it twice.
    assert sum(r["span_count"] for r in rows) == 1 + 4 * 2
    con = open_reader(store)
    try:
        stored = con.execute(
            "SELECT sum(input_tokens), count(*) FROM spans WHERE input_tokens = 1000"
        ).fetchall()
    finally:
        con.close()
    assert stored == [(5000, 5)]
