"""Sampled embedding vectors as span events: shapes, sampling, bounds, lazy conversion."""

from __future__ import annotations

import math
from collections import OrderedDict
from types import SimpleNamespace
from typing import Any

import pytest
from infermeter.agent import annotate, observe, testing
from infermeter.agent._embeddings import EmbeddingEvent, collect_vectors, trace_sampled

Obj = SimpleNamespace


def vectors_of(span: Any) -> list[tuple[str, tuple[float, ...]]]:
    return [
        (
            event.attributes["infermeter.embedding.kind"],
            event.attributes["infermeter.embedding.vector"],
        )
        for event in span.events
        if event.name == "infermeter.embedding"
    ]


def test_openai_embeddings_response_is_attached() -> None:
    response = Obj(
        model="text-embedding-3-small",
        data=[Obj(embedding=[0.1, 0.2, 0.3], index=0), Obj(embedding=[0.4, 0.5, 0.6], index=1)],
    )

    @observe(operation="embeddings", model="text-embedding-3-small", capture_embeddings=1.0)
    def embed(texts: list[str]) -> Any:
        return response

    with testing.capture() as cap:
        assert embed(["a", "b"]) is response
    assert vectors_of(cap.spans[0]) == [
        ("response", (0.1, 0.2, 0.3)),
        ("response", (0.4, 0.5, 0.6)),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([1.0, 2.0], [[1.0, 2.0]]),
        ([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.0]]),
        ({"data": [{"embedding": [1, 2]}]}, [[1, 2]]),
        ({"embedding": [0.5, 0.25]}, [[0.5, 0.25]]),  # Bedrock Titan
        (Obj(embeddings=[[1.0], [2.0]]), [[1.0], [2.0]]),  # Ollama / Cohere v1
        (Obj(embeddings=Obj(float_=[[9.0, 8.0]])), [[9.0, 8.0]]),  # Cohere v2 by type
        ([Obj(values=[0.1, 0.9])], [[0.1, 0.9]]),  # Vertex TextEmbedding
        ([OrderedDict(values=[0.3, 0.7])], [[0.3, 0.7]]),  # a key named like a dict method
        ("not vectors", []),
        ({"usage": {}}, []),
        ([], []),
    ],
)
def test_shapes(value: Any, expected: list[list[float]]) -> None:
    vectors, beyond = collect_vectors(value, 16)
    assert [list(v) for v in vectors] == expected
    assert beyond == 0


def test_numpy_arrays() -> None:
    numpy = pytest.importorskip("numpy")
    matrix = numpy.arange(6, dtype=numpy.float32).reshape(2, 3)
    vectors, _ = collect_vectors(matrix, 16)
    assert vectors == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    vectors, _ = collect_vectors(numpy.ones(4), 16)
    assert vectors == [[1.0, 1.0, 1.0, 1.0]]


def test_vectors_are_snapshotted_when_returned() -> None:
    vector = [1.0, 2.0]

    @observe(capture_embeddings=1.0)
    def embed() -> list[float]:
        return vector

    with testing.capture() as cap:
        embed()
        vector.append(99.0)  # the caller mutates its list after the call
    assert vectors_of(cap.spans[0]) == [("response", (1.0, 2.0))]


def test_conversion_is_lazy_and_invalid_vectors_export_empty() -> None:
    event = EmbeddingEvent("query", [1, 2.5, "3"], timestamp=1)
    assert event._attributes is None  # nothing converted on the caller's thread
    assert event.attributes["infermeter.embedding.vector"] == (1.0, 2.5, 3.0)
    assert (
        EmbeddingEvent("query", [1.0, math.nan], 1).attributes["infermeter.embedding.vector"] == ()
    )
    assert EmbeddingEvent("query", ["x"], 1).attributes["infermeter.embedding.vector"] == ()


def test_bounds_drop_whole_vectors_and_count_them() -> None:
    @observe(capture_embeddings=1.0)
    def embed() -> list[list[float]]:
        annotate(embeddings=([[0.0] * 9], "query"))  # over max dims: dropped
        return [[float(i)] * 4 for i in range(5)]  # 5 vectors, 3 fit

    with testing.capture(max_embedding_dims=8, max_embeddings_per_span=3) as cap:
        embed()
    span = cap.spans[0]
    assert len(vectors_of(span)) == 3
    assert (span.attributes or {})["infermeter.embedding.dropped"] == 3


def test_annotate_with_kinds() -> None:
    @observe
    def handler() -> str:
        annotate(embeddings=[0.1, 0.2])  # default kind: query
        annotate(embeddings=([[0.3], [0.4]], "document"))
        annotate(embeddings=([0.5], "bogus-kind"))  # ignored
        return "answer"

    with testing.capture(capture_embeddings=1.0) as cap:
        handler()
    assert vectors_of(cap.spans[0]) == [
        ("query", (0.1, 0.2)),
        ("document", (0.3,)),
        ("document", (0.4,)),
    ]


def test_nothing_is_attached_when_the_rate_is_zero() -> None:
    @observe
    def embed() -> list[float]:
        annotate(embeddings=[1.0])
        return [1.0, 2.0]

    with testing.capture() as cap:
        embed()
    assert vectors_of(cap.spans[0]) == []


def test_sampling_is_deterministic_per_trace_and_close_to_the_rate() -> None:
    assert trace_sampled(123, 1.0) and not trace_sampled(123, 0.0)
    ids = [(i * 0x9E3779B97F4A7C15) & ((1 << 128) - 1) for i in range(1, 20001)]
    share = sum(trace_sampled(i, 0.25) for i in ids) / len(ids)
    assert 0.23 < share < 0.27
    assert [trace_sampled(i, 0.25) for i in ids[:100]] == [
        trace_sampled(i, 0.25) for i in ids[:100]
    ]


def test_a_trace_is_captured_all_or_nothing() -> None:
    @observe(operation="embeddings")
    def embed_query() -> list[float]:
        return [1.0, 0.0]

    @observe
    def handler() -> list[float]:
        annotate(embeddings=([0.5, 0.5], "document"))
        return embed_query()

    with testing.capture(capture_embeddings=0.5) as cap:
        for _ in range(200):
            handler()
    by_trace: dict[int, list[int]] = {}
    for span in cap.spans:
        by_trace.setdefault(span.context.trace_id, []).append(len(vectors_of(span)))  # type: ignore[union-attr]
    outcomes = {tuple(counts) for counts in by_trace.values()}
    # The handler returns the nested call's vector: attached once, on the nested span.
    assert outcomes == {(0, 0), (1, 1)}


def test_embedding_events_encode_to_otlp() -> None:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    @observe(capture_embeddings=1.0)
    def embed() -> list[float]:
        return [0.25, 0.5]

    with testing.capture() as cap:
        embed()
    request = encode_spans(cap.spans)
    event = request.resource_spans[0].scope_spans[0].spans[0].events[0]
    assert event.name == "infermeter.embedding"
    values = {a.key: a.value for a in event.attributes}
    assert values["infermeter.embedding.kind"].string_value == "response"
    assert [v.double_value for v in values["infermeter.embedding.vector"].array_value.values] == [
        0.25,
        0.5,
    ]


def test_only_embedding_calls_have_their_return_value_read_as_vectors() -> None:
    @observe(name="retrieve", operation="retrieval")
    def retrieve() -> list[float]:
        return [0.91, 0.87, 0.55]  # similarity scores, not an embedding

    @observe(name="score")
    def score() -> list[float]:
        return [0.1, 0.2]

    @observe(name="embeddings", operation="embeddings")
    def embed() -> list[float]:
        return [0.25, 0.5]

    with testing.capture(capture_embeddings=1.0) as cap:
        retrieve()
        score()
        embed()
    assert vectors_of(cap.span("retrieve")) == []
    assert vectors_of(cap.span("score")) == []
    assert vectors_of(cap.span("embeddings")) == [("response", (0.25, 0.5))]
