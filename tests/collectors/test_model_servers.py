"""Spans of self-hosted model servers → typed columns: vLLM / SGLang GenAI latency names,
Hugging Face TGI / TEI duration strings, Triton events, and GPU resource facts.

Attribute names and value shapes are the servers' own (vLLM ``vllm/tracing.py``
``SpanAttributes`` and its output processor; TGI/TEI ``span.record("queue_time",
format!("{:?}", duration))``; Triton ``triton.model_name`` and QUEUE_START / COMPUTE_START /
COMPUTE_END timestamps)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from infermeter.agent import semconv as sc
from infermeter.collectors._flatten import flatten_request, to_arrow
from infermeter.collectors.testing import otlp_request, otlp_span


def one_row(resource: dict[str, Any] | None = None, **span_kwargs: Any) -> dict[str, Any]:
    flat = flatten_request(otlp_request([otlp_span(**span_kwargs)], resource=resource))
    spans, _ = to_arrow(flat)
    (row,) = spans.to_pylist()
    return dict(row)


def test_a_vllm_llm_request_span_fills_queue_model_ttft_and_tokens() -> None:
    # vLLM v1 output processor: SERVER span "llm_request", seconds as doubles, token counts
    # under the pre-1.27 names, the served model as gen_ai.response.model.
    row = one_row(
        name="llm_request",
        kind=2,
        attributes={
            "gen_ai.response.model": "meta-llama/Llama-3.1-8B-Instruct",
            "gen_ai.request.id": "cmpl-1",
            "gen_ai.usage.prompt_tokens": 812,
            "gen_ai.usage.completion_tokens": 190,
            "gen_ai.latency.time_in_queue": 0.125,
            "gen_ai.latency.time_to_first_token": 0.25,
            "gen_ai.latency.e2e": 2.5,
            "gen_ai.latency.time_in_model_prefill": 0.1,
            "gen_ai.latency.time_in_model_decode": 2.2,
            "gen_ai.latency.time_in_model_inference": 2.3,
        },
        resource={sc.INFERMETER_GPU_TYPE: "nvidia-l4", sc.INFERMETER_GPU_COUNT: 1},
    )
    assert row["response_model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert (row["input_tokens"], row["output_tokens"]) == (812, 190)
    assert row["queue_ms"] == pytest.approx(125.0)
    assert row["model_ms"] == pytest.approx(2300.0)
    assert row["ttft_ms"] == pytest.approx(250.0)
    assert (row["gpu_type"], row["gpu_count"]) == ("nvidia-l4", 1)
    rest = json.loads(row["attributes"])
    # Stored once: what went to a typed column left the JSON; the rest stays.
    for moved in (
        "gen_ai.usage.prompt_tokens",
        "gen_ai.latency.time_in_queue",
        "gen_ai.latency.time_in_model_inference",
        "gen_ai.latency.time_to_first_token",
    ):
        assert moved not in rest
    assert rest["gen_ai.latency.e2e"] == 2.5
    assert rest["gen_ai.request.id"] == "cmpl-1"


def test_current_names_win_over_deprecated_and_inference_over_forward() -> None:
    row = one_row(
        attributes={
            sc.GEN_AI_USAGE_INPUT_TOKENS: 10,
            "gen_ai.usage.prompt_tokens": 99,
            "gen_ai.latency.time_in_model_forward": 0.5,
            "gen_ai.latency.time_in_model_execute": 0.75,
        }
    )
    assert row["input_tokens"] == 10
    assert json.loads(row["attributes"])["gen_ai.usage.prompt_tokens"] == 99
    # vLLM v0 with detailed traces: execute (forward + sync + sampling) is preferred.
    assert row["model_ms"] == pytest.approx(750.0)
    assert json.loads(row["attributes"])["gen_ai.latency.time_in_model_forward"] == 0.5


@pytest.mark.parametrize(
    ("debug", "ms"),
    [("1.5ms", 1.5), ("250µs", 0.25), ("2.25s", 2250.0), ("800ns", 0.0008), ("3us", 0.003)],
)
def test_hugging_face_duration_strings(debug: str, ms: float) -> None:
    row = one_row(
        name="embed",
        attributes={"queue_time": "4ms", "inference_time": debug, "compute_tokens": 42},
    )
    assert row["model_ms"] == pytest.approx(ms)
    assert row["queue_ms"] == pytest.approx(4.0)
    assert row["input_tokens"] == 42


def test_tgi_debug_formatted_token_counts_and_unrelated_fields_stay_raw() -> None:
    row = one_row(
        name="generate",
        attributes={
            "inference_time": "1.2s",
            "queue_time": "30ms",
            "prompt_tokens": "120",
            "generated_tokens": "64",
            "seed": "None",
        },
    )
    assert (row["input_tokens"], row["output_tokens"]) == (120, 64)
    assert row["model_ms"] == pytest.approx(1200.0)
    # A user attribute that happens to be called inference_time but is no duration is kept.
    other = one_row(attributes={"inference_time": "fast", "queue_time": 3})
    assert other["model_ms"] is None and other["queue_ms"] is None
    assert json.loads(other["attributes"]) == {"inference_time": "fast", "queue_time": 3}


def test_triton_model_name_and_compute_events() -> None:
    span = otlp_span(name="simple", attributes={"triton.model_name": "bge-small"})
    base = span.start_time_unix_nano
    for name, offset_ms in (("QUEUE_START", 1), ("COMPUTE_START", 6), ("COMPUTE_END", 26)):
        event = span.events.add()
        event.name = name
        event.time_unix_nano = base + offset_ms * 1_000_000
    flat = flatten_request(otlp_request([span]))
    spans, _ = to_arrow(flat)
    (row,) = spans.to_pylist()
    assert row["model"] == "bge-small"
    assert row["queue_ms"] == pytest.approx(5.0)
    assert row["model_ms"] == pytest.approx(20.0)


def test_gpu_count_of_the_wrong_type_or_range_stays_raw() -> None:
    row = one_row(resource={sc.INFERMETER_GPU_COUNT: 2**40, sc.INFERMETER_GPU_TYPE: "a10g"})
    assert row["gpu_count"] is None
    assert row["gpu_type"] == "a10g"
    assert json.loads(row["resource_attributes"])[sc.INFERMETER_GPU_COUNT] == 2**40
    # A span attribute overrides the resource (a multi-GPU process naming its device).
    row = one_row(attributes={sc.INFERMETER_GPU_COUNT: 4}, resource={sc.INFERMETER_GPU_COUNT: 1})
    assert row["gpu_count"] == 4
