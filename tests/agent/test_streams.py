"""Generators and async generators: span lifetime, time to first chunk, usage in chunks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from infermeter.agent import observe, testing
from opentelemetry.trace import StatusCode


def openai_chunks() -> list[SimpleNamespace]:
    """chat.completions.create(stream=True, stream_options={"include_usage": True})."""
    delta = [
        SimpleNamespace(
            model="gpt-4o-mini-2024-07-18",
            usage=None,
            choices=[SimpleNamespace(delta=SimpleNamespace(content=t))],
        )
        for t in ("Hel", "lo")
    ]
    last = SimpleNamespace(
        model="gpt-4o-mini-2024-07-18",
        choices=[],
        usage=SimpleNamespace(
            prompt_tokens=20, completion_tokens=2, prompt_tokens_details={"cached_tokens": 8}
        ),
    )
    return [*delta, last]


def anthropic_events() -> list[SimpleNamespace]:
    return [
        SimpleNamespace(
            type="message_start",
            message=SimpleNamespace(
                model="claude-sonnet-4-5",
                usage=SimpleNamespace(
                    input_tokens=30,
                    output_tokens=1,
                    cache_read_input_tokens=100,
                    cache_creation_input_tokens=0,
                ),
            ),
        ),
        SimpleNamespace(type="content_block_delta", delta=SimpleNamespace(text="Hi")),
        SimpleNamespace(type="message_delta", usage=SimpleNamespace(output_tokens=42)),
        SimpleNamespace(type="message_stop"),
    ]


def test_generator_span_ends_when_exhausted_with_ttft_and_usage() -> None:
    @observe(operation="chat", provider="openai", model="gpt-4o-mini")
    def stream() -> Iterator[SimpleNamespace]:
        testing.advance(0.3)  # waiting for the first token
        for chunk in openai_chunks():
            yield chunk
            testing.advance(0.1)

    with testing.capture() as cap, testing.virtual_time(1000.0):
        chunks = stream()
        assert cap.spans == []  # nothing starts until the first next()
        assert len(list(chunks)) == 3
    span = cap.span("chat gpt-4o-mini")
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.request.stream"] is True
    assert attributes["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.3)
    assert attributes["gen_ai.usage.input_tokens"] == 20
    assert attributes["gen_ai.usage.output_tokens"] == 2
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 8
    assert attributes["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert (span.end_time - span.start_time) / 1e9 == pytest.approx(0.6)  # type: ignore[operator]
    ttft = cap.metric_points("gen_ai.client.operation.time_to_first_chunk")
    assert ttft[0].sum == pytest.approx(0.3)


def test_anthropic_stream_usage_is_merged_across_events() -> None:
    @observe(operation="chat", provider="anthropic", model="claude-sonnet-4-5")
    def stream() -> Iterator[SimpleNamespace]:
        yield from anthropic_events()

    with testing.capture() as cap:
        list(stream())
    attributes = dict(cap.spans[0].attributes or {})
    assert attributes["gen_ai.usage.input_tokens"] == 130
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 100
    assert attributes["gen_ai.usage.output_tokens"] == 42
    assert attributes["gen_ai.response.model"] == "claude-sonnet-4-5"


def test_openai_responses_stream_completed_event() -> None:
    @observe(operation="chat", model="gpt-5")
    def stream() -> Iterator[SimpleNamespace]:
        yield SimpleNamespace(type="response.output_text.delta", delta="Hi")
        yield SimpleNamespace(
            type="response.completed",
            response=SimpleNamespace(
                model="gpt-5-2025",
                usage=SimpleNamespace(
                    input_tokens=50,
                    output_tokens=9,
                    input_tokens_details=SimpleNamespace(cached_tokens=10),
                    output_tokens_details=SimpleNamespace(reasoning_tokens=4),
                ),
            ),
        )

    with testing.capture() as cap:
        list(stream())
    attributes = dict(cap.spans[0].attributes or {})
    assert attributes["gen_ai.usage.input_tokens"] == 50
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 4
    assert attributes["gen_ai.response.model"] == "gpt-5-2025"


def test_closing_a_stream_early_ends_the_span_normally() -> None:
    cleaned_up = []

    @observe(name="tokens")
    def stream() -> Iterator[int]:
        try:
            yield from range(100)
        finally:
            cleaned_up.append(True)

    with testing.capture() as cap:
        for item in stream():
            if item == 2:
                break
    assert cleaned_up == [True]
    span = cap.span("tokens")
    assert span.status.status_code is StatusCode.UNSET
    assert span.end_time is not None


def test_a_failing_stream_records_the_error_and_reraises() -> None:
    @observe(name="tokens")
    def stream() -> Iterator[int]:
        yield 1
        raise ConnectionResetError("peer went away")

    with testing.capture() as cap:
        received = []
        with pytest.raises(ConnectionResetError, match="peer went away"):
            for item in stream():
                received.append(item)
    assert received == [1]
    span = cap.span("tokens")
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "ConnectionResetError"
    assert "gen_ai.response.time_to_first_chunk" in (span.attributes or {})


def test_send_throw_and_return_value_pass_through() -> None:
    @observe(name="echo")
    def echo() -> Any:
        total = 0
        while True:
            try:
                value = yield total
            except ValueError:
                value = 100
            if value is None:
                return total
            total += value

    with testing.capture() as cap:
        generator = echo()
        assert next(generator) == 0
        assert generator.send(5) == 5
        assert generator.throw(ValueError) == 105
        with pytest.raises(StopIteration) as stop:
            generator.send(None)
    assert stop.value.value == 105
    assert cap.span("echo").status.status_code is StatusCode.UNSET


def test_nested_calls_inside_a_stream_are_children_and_consumer_code_is_not() -> None:
    @observe(name="lookup")
    def lookup() -> str:
        return "doc"

    @observe(name="stream")
    def stream() -> Iterator[str]:
        yield lookup()
        yield lookup()

    @observe(name="consumer-side")
    def consumer_side() -> None:
        return None

    with testing.capture() as cap:
        for _ in stream():
            consumer_side()
    stream_span = cap.span("stream")
    for lookup_span in cap.spans_named("lookup"):
        assert lookup_span.parent is not None
        assert lookup_span.parent.span_id == stream_span.context.span_id  # type: ignore[union-attr]
    for other in cap.spans_named("consumer-side"):
        assert other.parent is None  # the stream's span is not current in the consumer


def test_async_generator_exhausted_closed_and_failed() -> None:
    @observe(operation="chat", model="m")
    async def stream(n: int, fail: bool = False) -> AsyncIterator[SimpleNamespace]:
        for i in range(n):
            await asyncio.sleep(0)
            yield SimpleNamespace(index=i)
        if fail:
            raise TimeoutError("upstream")
        yield SimpleNamespace(usage={"input_tokens": 3, "output_tokens": n})

    async def main() -> None:
        assert len([c async for c in stream(2)]) == 3
        partial = stream(10)
        async for chunk in partial:
            if chunk.index == 1:
                break
        await partial.aclose()  # type: ignore[attr-defined]
        with pytest.raises(TimeoutError):
            async for _ in stream(1, fail=True):
                pass

    with testing.capture() as cap:
        asyncio.run(main())
    exhausted, closed, failed = cap.spans
    assert (exhausted.attributes or {})["gen_ai.usage.output_tokens"] == 2
    assert "gen_ai.response.time_to_first_chunk" in (exhausted.attributes or {})
    assert closed.status.status_code is StatusCode.UNSET
    assert failed.status.status_code is StatusCode.ERROR
    assert (failed.attributes or {})["error.type"] == "TimeoutError"


def test_async_generator_asend_and_athrow_pass_through() -> None:
    @observe(name="agen")
    async def accumulate() -> AsyncIterator[int]:
        total = 0
        while True:
            try:
                value = yield total
            except KeyError:
                value = 1000
            total += value or 0

    async def main() -> list[int]:
        agen = accumulate()
        out = [await agen.__anext__(), await agen.asend(2), await agen.athrow(KeyError())]
        await agen.aclose()
        return out

    with testing.capture() as cap:
        assert asyncio.run(main()) == [0, 2, 1002]
    assert cap.span("agen").end_time is not None


def test_an_unstarted_stream_emits_nothing() -> None:
    @observe(name="never")
    def stream() -> Iterator[int]:
        yield 1

    with testing.capture() as cap:
        generator = stream()
        del generator
    assert cap.spans == []


def test_async_generator_delegation_without_telemetry() -> None:
    import infermeter

    @observe(name="agen")
    async def accumulate() -> AsyncIterator[int]:
        total = 0
        while True:
            value = yield total
            total += value or 0

    async def main() -> list[int]:
        agen = accumulate()
        out = [await agen.__anext__(), await agen.asend(5), await agen.asend(6)]
        await agen.aclose()
        return out

    infermeter.configure(sdk_disabled=True)
    assert asyncio.run(main()) == [0, 5, 11]
