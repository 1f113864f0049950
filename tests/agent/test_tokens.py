"""Token usage and response model read from SDK-shaped return values (no SDK imports)."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest
from infermeter.agent._tokens import Usage, response_model, stream_usage, usage_from

Obj = SimpleNamespace


def test_openai_chat_completions() -> None:
    result = Obj(
        model="gpt-4o-2024-08-06",
        usage=Obj(
            prompt_tokens=1200,
            completion_tokens=300,
            total_tokens=1500,
            prompt_tokens_details=Obj(cached_tokens=1024, audio_tokens=0),
            completion_tokens_details=Obj(reasoning_tokens=128, audio_tokens=0),
        ),
    )
    assert usage_from(result) == Usage(
        input_tokens=1200, output_tokens=300, cache_read_tokens=1024, reasoning_tokens=128
    )
    assert response_model(result) == "gpt-4o-2024-08-06"


def test_openai_responses_api() -> None:
    result = Obj(
        model="o4-mini",
        usage=Obj(
            input_tokens=900,
            output_tokens=50,
            total_tokens=950,
            input_tokens_details=Obj(cached_tokens=512),
            output_tokens_details=Obj(reasoning_tokens=32),
        ),
    )
    assert usage_from(result) == Usage(
        input_tokens=900, output_tokens=50, cache_read_tokens=512, reasoning_tokens=32
    )


def test_anthropic_messages_count_cache_into_input() -> None:
    """Anthropic's input_tokens excludes cache reads/writes; the convention's includes them."""
    result = Obj(
        model="claude-sonnet-4-5-20250929",
        usage=Obj(
            input_tokens=40,
            output_tokens=200,
            cache_read_input_tokens=3000,
            cache_creation_input_tokens=500,
        ),
    )
    assert usage_from(result) == Usage(
        input_tokens=3540, output_tokens=200, cache_read_tokens=3000, cache_write_tokens=500
    )


def test_anthropic_with_zero_or_null_cache_fields() -> None:
    result = Obj(
        usage=Obj(
            input_tokens=40,
            output_tokens=2,
            cache_read_input_tokens=None,
            cache_creation_input_tokens=0,
        )
    )
    assert usage_from(result) == Usage(input_tokens=40, output_tokens=2, cache_write_tokens=0)


def test_plain_dicts() -> None:
    assert usage_from({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}) == Usage(3, 4)
    assert usage_from(
        {"usage": {"input_tokens": 3, "output_tokens": 4, "cache_read_input_tokens": 1}}
    ) == Usage(4, 4, 1)
    # A handler may return the usage mapping itself.
    assert usage_from({"input_tokens": 8, "output_tokens": 1}) == Usage(8, 1)
    assert response_model({"model": "mistral-large"}) == "mistral-large"


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, "12", 1.5, True, None, [3], {"n": 1}])
def test_malformed_counts_are_ignored_field_by_field(bad: Any) -> None:
    usage = usage_from(Obj(usage=Obj(prompt_tokens=bad, completion_tokens=7)))
    assert usage == Usage(input_tokens=None, output_tokens=7)


def test_integral_floats_and_numpy_integers_are_accepted() -> None:
    assert usage_from({"usage": {"prompt_tokens": 10.0, "completion_tokens": 2}}) == Usage(10, 2)
    numpy = pytest.importorskip("numpy")
    usage = usage_from({"usage": {"input_tokens": numpy.int64(5), "output_tokens": numpy.int32(6)}})
    assert usage == Usage(5, 6)
    assert type(usage.input_tokens) is int  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "value",
    [
        "text",
        3,
        2.5,
        None,
        b"bytes",
        [1, 2],
        {"no": "usage"},
        Obj(usage=None),
        Obj(usage="12 tokens"),
    ],
)
def test_values_without_usage(value: Any) -> None:
    assert usage_from(value) is None


def test_a_usage_property_that_raises_reads_as_absent() -> None:
    class Broken:
        @property
        def usage(self) -> Any:
            raise RuntimeError("lazy field failed")

    assert usage_from(Broken()) is None

    class BrokenFields:
        usage = Obj()

        def __getattr__(self, name: str) -> Any:
            raise ValueError(name)

    assert usage_from(Obj(usage=BrokenFields())) is None


def test_stream_chunks() -> None:
    assert stream_usage("plain text chunk") is None
    assert stream_usage(Obj(usage=None, choices=[])) is None
    assert stream_usage(Obj(usage=Obj(prompt_tokens=5, completion_tokens=6))) == Usage(5, 6)
    start = Obj(
        type="message_start",
        message=Obj(
            usage=Obj(
                input_tokens=10,
                output_tokens=1,
                cache_read_input_tokens=0,
                cache_creation_input_tokens=0,
            )
        ),
    )
    assert stream_usage(start) == Usage(10, 1, 0, 0)
    done = Obj(type="response.completed", response=Obj(usage=Obj(input_tokens=3, output_tokens=4)))
    assert stream_usage(done) == Usage(3, 4)


def test_merge_keeps_earlier_fields_and_takes_later_ones() -> None:
    usage = Usage(input_tokens=10, output_tokens=1, cache_read_tokens=4)
    usage.merge(Usage(output_tokens=42))
    assert usage == Usage(input_tokens=10, output_tokens=42, cache_read_tokens=4)
