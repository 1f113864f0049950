"""@observe, span() and annotate(): exact span names, kinds, attributes and metrics."""

from __future__ import annotations

import asyncio
import inspect
import math
from types import SimpleNamespace
from typing import Any

import pytest
from infermeter.agent import annotate, current_span, observe, span, testing
from infermeter.agent.semconv import BUCKETS_DURATION_S, BUCKETS_TOKENS
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

import infermeter


def chat_response(
    model: str = "gpt-4o-mini-2024-07-18", prompt: int = 12, completion: int = 5
) -> SimpleNamespace:
    return SimpleNamespace(
        model=model,
        usage=SimpleNamespace(prompt_tokens=prompt, completion_tokens=completion),
    )


def test_the_facade_exports_the_agent_api() -> None:
    assert infermeter.observe is observe
    assert infermeter.span is span
    assert infermeter.annotate is annotate
    assert infermeter.configure is infermeter.agent.configure


def test_bare_decorator_names_the_span_after_the_function(cap: testing.Capture) -> None:
    @observe
    def handler(x: int) -> int:
        return x + 1

    assert handler(1) == 2
    spans = cap.spans
    assert len(spans) == 1
    assert spans[0].name == "test_bare_decorator_names_the_span_after_the_function.<locals>.handler"
    assert spans[0].kind is SpanKind.INTERNAL
    attributes = dict(spans[0].attributes or {})
    assert attributes == {
        "infermeter.runtime": "unknown",
        "infermeter.entry": True,
        "faas.coldstart": True,
        "infermeter.init_duration": attributes["infermeter.init_duration"],
        "infermeter.retries": 0,
    }
    assert 0 < attributes["infermeter.init_duration"] < 3600


def test_called_decorator_sets_every_genai_attribute(cap: testing.Capture) -> None:
    @observe(
        operation="chat",
        provider="openai",
        model="gpt-4o-mini",
        tenant="acme",
        prompt_name="answer",
        prompt_version="v3",
        endpoint="/answer",
    )
    def ask() -> SimpleNamespace:
        return chat_response()

    ask()
    span_ = cap.span("chat gpt-4o-mini")
    assert span_.kind is SpanKind.CLIENT
    assert span_.status.status_code is StatusCode.UNSET
    attributes = dict(span_.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert attributes["gen_ai.usage.input_tokens"] == 12
    assert attributes["gen_ai.usage.output_tokens"] == 5
    assert attributes["tenant.id"] == "acme"
    assert attributes["gen_ai.prompt.name"] == "answer"
    assert attributes["gen_ai.prompt.version"] == "v3"
    assert attributes["infermeter.endpoint"] == "/answer"
    assert "gen_ai.system" not in attributes  # deprecated name never written


def test_explicit_name_wins_over_the_genai_default(cap: testing.Capture) -> None:
    @observe(name="answer-question", operation="chat", model="m")
    def ask() -> str:
        return "ok"

    ask()
    assert cap.spans[0].name == "answer-question"


def test_endpoint_only_when_given(cap: testing.Capture) -> None:
    @observe(operation="chat")
    def ask() -> str:
        return "ok"

    ask()
    assert "infermeter.endpoint" not in (cap.spans[0].attributes or {})


def test_callables_receive_the_call_arguments(cap: testing.Capture) -> None:
    request = SimpleNamespace(headers={"x-tenant": "globex"}, path="/v2/answer")

    @observe(
        tenant=lambda request, **_: request.headers["x-tenant"],
        endpoint=lambda request, **_: request.path,
        model=lambda request, *, model: model,
        prompt_version=lambda *args, **kwargs: 7,
    )
    def handler(request: SimpleNamespace, *, model: str) -> str:
        return "ok"

    assert handler(request, model="claude-sonnet") == "ok"
    attributes = dict(cap.spans[0].attributes or {})
    assert attributes["tenant.id"] == "globex"
    assert attributes["infermeter.endpoint"] == "/v2/answer"
    assert attributes["gen_ai.request.model"] == "claude-sonnet"
    assert attributes["gen_ai.prompt.version"] == "7"


def test_a_raising_callable_leaves_the_attribute_out(cap: testing.Capture) -> None:
    @observe(tenant=lambda request: request["missing"], model="m")
    def handler(request: dict[str, str]) -> str:
        return "ok"

    assert handler({}) == "ok"
    attributes = dict(cap.spans[0].attributes or {})
    assert "tenant.id" not in attributes
    assert attributes["gen_ai.request.model"] == "m"


def test_methods_classmethods_and_staticmethods(cap: testing.Capture) -> None:
    class Bot:
        def __init__(self, tenant: str) -> None:
            self.tenant = tenant

        @observe(tenant=lambda self, question: self.tenant)
        def ask(self, question: str) -> str:
            return question.upper()

        @observe
        @classmethod
        def build(cls) -> str:
            return cls.__name__

        @observe
        @staticmethod
        def helper(x: int) -> int:
            return x * 2

    bot = Bot("acme")
    assert bot.ask("hi") == "HI"
    assert Bot.build() == "Bot"
    assert Bot.helper(4) == 8
    names = [s.name.rsplit(".", 1)[-1] for s in cap.spans]
    assert names == ["ask", "build", "helper"]
    assert (cap.spans[0].attributes or {})["tenant.id"] == "acme"


def test_wrapping_keeps_the_function_kind_and_metadata() -> None:
    def plain(x: int) -> int:
        """Doc."""
        return x

    async def coroutine() -> None:
        return None

    def generator() -> Any:
        yield 1

    async def async_generator() -> Any:
        yield 1

    assert observe(plain).__doc__ == "Doc."
    assert observe(plain).__name__ == "plain"
    assert observe(plain).__wrapped__ is plain  # type: ignore[attr-defined]
    assert inspect.iscoroutinefunction(observe(coroutine))
    assert inspect.isgeneratorfunction(observe(generator))
    assert inspect.isasyncgenfunction(observe(async_generator))


def test_async_function(cap: testing.Capture) -> None:
    @observe(operation="chat", model="m", provider="anthropic")
    async def ask() -> SimpleNamespace:
        await asyncio.sleep(0)
        return SimpleNamespace(usage=SimpleNamespace(input_tokens=7, output_tokens=3))

    result = asyncio.run(ask())
    assert result.usage.input_tokens == 7
    attributes = dict(cap.span("chat m").attributes or {})
    assert attributes["gen_ai.usage.input_tokens"] == 7
    assert attributes["gen_ai.usage.output_tokens"] == 3


def test_entry_only_on_the_outermost_span_and_inheritance(cap: testing.Capture) -> None:
    @observe(operation="chat", model="small")
    def llm() -> str:
        return "a"

    @observe(tenant="initech", prompt_name="rag", prompt_version="v9", endpoint="/ask")
    def handler() -> str:
        return llm()

    handler()
    inner, outer = cap.spans
    assert inner.parent is not None and outer.context is not None
    assert inner.parent.span_id == outer.context.span_id
    inner_attributes = dict(inner.attributes or {})
    outer_attributes = dict(outer.attributes or {})
    assert outer_attributes["infermeter.entry"] is True
    assert "infermeter.entry" not in inner_attributes
    assert "faas.coldstart" not in inner_attributes
    assert inner_attributes["tenant.id"] == "initech"
    assert inner_attributes["gen_ai.prompt.name"] == "rag"
    assert inner_attributes["gen_ai.prompt.version"] == "v9"
    # The endpoint describes the request, not each nested call.
    assert "infermeter.endpoint" not in inner_attributes


def test_nested_call_keeps_its_own_values(cap: testing.Capture) -> None:
    @observe(tenant="inner-tenant", prompt_version="v2")
    def inner() -> None:
        return None

    @observe(tenant="outer-tenant", prompt_version="v1")
    def outer() -> None:
        inner()

    outer()
    assert (cap.spans[0].attributes or {})["tenant.id"] == "inner-tenant"
    assert (cap.spans[0].attributes or {})["gen_ai.prompt.version"] == "v2"


def test_inheritance_follows_annotations_of_the_parent(cap: testing.Capture) -> None:
    @observe
    def inner() -> None:
        return None

    @observe
    def outer() -> None:
        annotate(tenant="late-tenant")
        inner()

    outer()
    assert (cap.spans[0].attributes or {})["tenant.id"] == "late-tenant"


def test_cold_start_only_once_per_process(cap: testing.Capture) -> None:
    @observe
    def handler() -> None:
        return None

    handler()
    handler()
    first, second = (dict(s.attributes or {}) for s in cap.spans)
    assert first["faas.coldstart"] is True
    assert "infermeter.init_duration" in first
    assert second["faas.coldstart"] is False
    assert "infermeter.init_duration" not in second
    points = cap.metric_points("faas.coldstarts")
    assert sum(point.value for point in points) == 1
    assert cap.metric_points("faas.init_duration")[0].count == 1


def test_errors_set_status_error_type_and_event(cap: testing.Capture) -> None:
    class QuotaError(RuntimeError):
        pass

    @observe(operation="chat", model="m")
    def ask() -> None:
        raise QuotaError("over quota")

    with pytest.raises(QuotaError, match="over quota"):
        ask()
    span_ = cap.span("chat m")
    assert span_.status.status_code is StatusCode.ERROR
    assert span_.status.description == "QuotaError: over quota"
    attributes = dict(span_.attributes or {})
    assert attributes["error.type"] == (
        f"{__name__}.test_errors_set_status_error_type_and_event.<locals>.QuotaError"
    )
    assert [event.name for event in span_.events] == ["exception"]
    duration = cap.metric_points("gen_ai.client.operation.duration")[0]
    assert duration.attributes["error.type"] == attributes["error.type"]


def test_builtin_error_type_is_the_bare_class_name(cap: testing.Capture) -> None:
    @observe
    def broken() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        broken()
    assert (cap.spans[0].attributes or {})["error.type"] == "KeyError"


def test_result_and_exception_identity() -> None:
    sentinel = object()
    error = ValueError("boom")

    @observe
    def returns() -> object:
        return sentinel

    @observe
    def raises() -> None:
        raise error

    with testing.capture():
        assert returns() is sentinel
        with pytest.raises(ValueError) as caught:
            raises()
    assert caught.value is error
    # The traceback still reaches the raising line of the user's function.
    frames = []
    tb = caught.value.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert frames[-1] == "raises"


def test_retries_count_consecutive_failures_under_one_parent(cap: testing.Capture) -> None:
    attempts = iter([RuntimeError("1"), RuntimeError("2"), None])

    @observe(operation="chat", model="m")
    def call_model() -> str:
        error = next(attempts)
        if error is not None:
            raise error
        return "ok"

    @observe
    def handler() -> str:
        for _ in range(3):
            try:
                return call_model()
            except RuntimeError:
                continue
        return "gave up"

    @observe
    def second_request() -> str:
        return "x"

    assert handler() == "ok"
    retries = [(s.attributes or {})["infermeter.retries"] for s in cap.spans_named("chat m")]
    assert retries == [0, 1, 2]


def test_a_success_resets_the_retry_count(cap: testing.Capture) -> None:
    @observe(name="lookup")
    def lookup() -> str:
        return "ok"

    @observe
    def handler() -> None:
        lookup()
        lookup()

    handler()
    assert [(s.attributes or {})["infermeter.retries"] for s in cap.spans_named("lookup")] == [0, 0]


def test_retries_under_a_foreign_parent_span(cap: testing.Capture) -> None:
    tracer = cap.pipeline.tracer_provider.get_tracer("app")  # type: ignore[union-attr]
    failures = iter([True, False])

    @observe(name="call")
    def call() -> str:
        if next(failures):
            raise TimeoutError
        return "ok"

    with tracer.start_as_current_span("http request"):
        with pytest.raises(TimeoutError):
            call()
        call()
    calls = cap.spans_named("call")
    assert [(s.attributes or {})["infermeter.retries"] for s in calls] == [0, 1]
    assert all((s.attributes or {})["infermeter.entry"] for s in calls)


def test_span_context_manager_sync_and_async(cap: testing.Capture) -> None:
    with span("retrieve", operation="retrieval", tenant=lambda: "acme") as block:
        block.annotate(input_tokens=4)
        assert current_span() is block.otel_span
        block.record_response({"usage": {"input_tokens": 9, "output_tokens": 1}})

    async def run() -> None:
        async with span("rerank", operation="rerank") as block:
            block.annotate(model="rerank-v3")

    asyncio.run(run())
    retrieve = dict(cap.span("retrieve").attributes or {})
    assert retrieve["gen_ai.operation.name"] == "retrieval"
    assert retrieve["tenant.id"] == "acme"
    # annotate() wins over the recorded response.
    assert retrieve["gen_ai.usage.input_tokens"] == 4
    assert retrieve["gen_ai.usage.output_tokens"] == 1
    assert (cap.span("rerank").attributes or {})["gen_ai.request.model"] == "rerank-v3"
    assert block.otel_span is trace.INVALID_SPAN


def test_span_context_manager_records_errors(cap: testing.Capture) -> None:
    with pytest.raises(ZeroDivisionError), span("divide"):
        _ = 1 / 0
    assert cap.span("divide").status.status_code is StatusCode.ERROR
    assert (cap.span("divide").attributes or {})["error.type"] == "ZeroDivisionError"


def test_annotate_sets_and_overrides_by_friendly_name(cap: testing.Capture) -> None:
    @observe(operation="chat", model="requested")
    def ask() -> SimpleNamespace:
        annotate(
            tenant="t1",
            model="actually-used",
            response_model="resp",
            provider="azure",
            prompt_name="p",
            prompt_version="3",
            endpoint="/e",
            input_tokens=100,
            output_tokens=20,
            cache_read_tokens=60,
            cache_write_tokens=5,
            reasoning_tokens=7,
            ttft=0.25,
            throttled=True,
            retry_after=2.5,
            cold_start=True,
            init_duration=1.5,
            attributes={"app.feature": "search", "app.flags": ["a", "b"]},
        )
        return chat_response(prompt=1, completion=1)

    ask()
    span_ = cap.spans[0]
    assert span_.name == "chat actually-used"
    attributes = dict(span_.attributes or {})
    expected = {
        "tenant.id": "t1",
        "gen_ai.request.model": "actually-used",
        "gen_ai.response.model": "resp",
        "gen_ai.provider.name": "azure",
        "gen_ai.prompt.name": "p",
        "gen_ai.prompt.version": "3",
        "infermeter.endpoint": "/e",
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 20,
        "gen_ai.usage.cache_read.input_tokens": 60,
        "gen_ai.usage.cache_creation.input_tokens": 5,
        "gen_ai.usage.reasoning.output_tokens": 7,
        "gen_ai.response.time_to_first_chunk": 0.25,
        "infermeter.throttled": True,
        "infermeter.retry_after": 2.5,
        "faas.coldstart": True,
        "infermeter.init_duration": 1.5,
        "app.feature": "search",
        "app.flags": ("a", "b"),
    }
    assert {key: attributes[key] for key in expected} == expected
    tokens = cap.metric_points("gen_ai.client.token.usage")
    assert sorted((p.attributes["gen_ai.token.type"], p.sum) for p in tokens) == [
        ("input", 100),
        ("output", 20),
    ]
    assert tokens[0].attributes["gen_ai.request.model"] == "actually-used"
    assert tokens[0].attributes["gen_ai.provider.name"] == "azure"


def test_annotate_ignores_bad_values_and_unknown_names(
    cap: testing.Capture, caplog: pytest.LogCaptureFixture
) -> None:
    @observe
    def handler() -> str:
        annotate(
            input_tokens=-3,
            output_tokens=math.nan,
            ttft=-1.0,
            throttled="yes",  # type: ignore[arg-type]
            cold_start=1,
            no_such_field=1,
            attributes={
                "ok": 1,
                "bad": {"nested": 1},  # type: ignore[arg-type]
                "none": None,
                "": 2,
            },
        )
        return "fine"

    with caplog.at_level("DEBUG", logger="infermeter"):
        assert handler() == "fine"
    attributes = dict(cap.spans[0].attributes or {})
    for key in (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.response.time_to_first_chunk",
        "infermeter.throttled",
        "bad",
        "none",
    ):
        assert key not in attributes
    assert attributes["ok"] == 1
    assert attributes["faas.coldstart"] is True  # cold_start=1 was not a bool: ignored
    assert "no_such_field" in caplog.text


def test_annotate_outside_an_observed_call_does_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("DEBUG", logger="infermeter"):
        annotate(tenant="nobody", input_tokens=3)
    assert "outside an observed call" in caplog.text


def test_metrics_names_buckets_and_labels(cap: testing.Capture) -> None:
    @observe(
        operation="chat",
        provider="openai",
        model="gpt-4o",
        tenant="secret-tenant",
        runtime="container",
    )
    def ask() -> SimpleNamespace:
        return chat_response(prompt=300, completion=40)

    ask()
    metrics = cap.metrics()
    duration = metrics["gen_ai.client.operation.duration"][0]
    assert tuple(duration.explicit_bounds) == BUCKETS_DURATION_S
    assert dict(duration.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "infermeter.runtime": "container",
    }
    tokens = metrics["gen_ai.client.token.usage"]
    assert tuple(tokens[0].explicit_bounds) == BUCKETS_TOKENS
    assert {p.attributes["gen_ai.token.type"]: p.sum for p in tokens} == {
        "input": 300,
        "output": 40,
    }
    for points in metrics.values():
        for point in points:
            assert "tenant.id" not in point.attributes  # never a metric label


def test_no_genai_metrics_without_an_operation(cap: testing.Capture) -> None:
    @observe
    def handler() -> SimpleNamespace:
        return chat_response()

    handler()
    handler()
    assert "gen_ai.client.operation.duration" not in cap.metrics()


def test_runtime_argument_overrides_detection(cap: testing.Capture) -> None:
    @observe(runtime="serverless_container")
    def handler() -> None:
        return None

    @observe(runtime="mainframe")  # type: ignore[arg-type]
    def other() -> None:
        return None

    handler()
    other()
    assert (cap.spans[0].attributes or {})["infermeter.runtime"] == "serverless_container"
    assert (cap.spans[1].attributes or {})["infermeter.runtime"] == "unknown"


def test_content_is_not_recorded_by_default(cap: testing.Capture) -> None:
    @observe(operation="chat", model="m")
    def ask(prompt: str) -> str:
        annotate(input_messages="secret question", output_messages="secret answer")
        return "secret answer"

    ask(prompt="secret question")
    for key, value in (cap.spans[0].attributes or {}).items():
        assert "secret" not in str(value), key


def test_content_capture_when_enabled() -> None:
    @observe(operation="chat", model="m")
    def ask(*, messages: list[dict[str, str]]) -> SimpleNamespace:
        return SimpleNamespace(
            choices=[
                SimpleNamespace(
                    message=SimpleNamespace(role="assistant", content="Paris"), finish_reason="stop"
                )
            ]
        )

    with testing.capture(capture_content=True, max_content_chars=1000) as cap:
        ask(
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Capital of France?"},
            ]
        )
    attributes = dict(cap.spans[0].attributes or {})
    import json

    assert json.loads(attributes["gen_ai.input.messages"]) == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Capital of France?"}]},
    ]
    assert json.loads(attributes["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "Paris"}],
            "finish_reason": "stop",
        }
    ]


def test_captured_content_is_cut_but_stays_json() -> None:
    import json

    @observe
    def echo(prompt: str) -> str:
        return prompt

    with testing.capture(capture_content=True, max_content_chars=10) as cap:
        echo("x" * 100)
    messages = json.loads((cap.spans[0].attributes or {})["gen_ai.input.messages"])
    assert messages[0]["parts"][0]["content"] == "x" * 10


def test_virtual_clock_sets_span_times_per_context(cap: testing.Capture) -> None:
    @observe(operation="chat", model="m")
    def ask() -> str:
        testing.advance(0.8)
        return "ok"

    start = 1_800_000_000.0
    with testing.virtual_time(start) as clock:
        ask()
        assert testing.now() == pytest.approx(start + 0.8)
    with testing.virtual_time(start + 0.1):  # overlaps the first in simulated time
        ask()
    first, second = cap.spans
    assert first.start_time == 1_800_000_000_000_000_000
    assert first.end_time == 1_800_000_000_800_000_000
    assert second.start_time == 1_800_000_000_100_000_000
    assert clock.seconds == pytest.approx(start + 0.8)
    duration = cap.metric_points("gen_ai.client.operation.duration")[0]
    assert duration.sum == pytest.approx(1.6)


def test_virtual_clocks_are_context_local_across_tasks(cap: testing.Capture) -> None:
    @observe(name="request")
    async def request(delay: float) -> None:
        testing.advance(delay)
        await asyncio.sleep(0)

    async def simulate(start: float, delay: float) -> None:
        with testing.virtual_time(start):
            await request(delay)

    async def main() -> None:
        await asyncio.gather(simulate(100.0, 1.0), simulate(100.5, 3.0))

    asyncio.run(main())
    durations = sorted((s.end_time - s.start_time) / 1e9 for s in cap.spans)  # type: ignore[operator]
    assert durations == [1.0, 3.0]


def test_disabled_sdk_runs_functions_untouched() -> None:
    infermeter.configure(sdk_disabled=True)

    @observe(operation="chat")
    def handler(x: int) -> int:
        return x * 3

    assert handler(5) == 15
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_without_configure_the_global_provider_is_used() -> None:
    """No configure(): spans go to whatever TracerProvider the application installed."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    @observe(operation="chat", model="m")
    def ask() -> str:
        return "ok"

    # The global provider can be set once per process: patch the API's slot for this test.
    original = trace._TRACER_PROVIDER
    trace._TRACER_PROVIDER = provider
    try:
        ask()
    finally:
        trace._TRACER_PROVIDER = original
    assert [s.name for s in exporter.get_finished_spans()] == ["chat m"]
    assert exporter.get_finished_spans()[0].instrumentation_scope.name == "infermeter"
