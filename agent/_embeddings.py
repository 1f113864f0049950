"""Sampled embedding vectors attached to spans as ``infermeter.embedding`` events.

Sampling is deterministic per trace id (the low 64 bits against the rate, like the SDK's
``TraceIdRatioBased``), so a trace is captured all-or-nothing and every service in it
agrees without coordination.

Cost on the caller's thread: measured on a 2-core box, ``span.add_event`` with a
384-float vector costs ~77 µs (the SDK validates every element in Python), 3.5x a whole
span. So the caller's thread only *snapshots* the vector (``list(v)`` / ``tolist()``,
~0.5 µs for 384 floats) and attaches a lazy event; conversion to a validated float tuple
happens when the exporter first reads the event's attributes (the batch processor's
thread). A vector that turns out not to be numbers, or holds NaN/inf, is exported empty
(``dim`` 0), which the collector skips.

Bounds: at most ``max_vectors`` events per span and ``max_dims`` floats per vector;
vectors over either bound are dropped whole (truncating would corrupt drift statistics)
and counted in ``infermeter.embedding.dropped``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Final

from infermeter.agent._duck import LOGGER, field
from infermeter.agent.semconv import EMBEDDING_EVENT, EMBEDDING_KIND, EMBEDDING_VECTOR
from opentelemetry.sdk.trace import Event
from opentelemetry.trace import Span
from opentelemetry.util.types import Attributes

__all__ = ["EmbeddingEvent", "attach_vectors", "collect_vectors", "trace_sampled"]

_LOW_64: Final = (1 << 64) - 1


def trace_sampled(trace_id: int, rate: float) -> bool:
    if rate <= 0.0:
        return False
    if rate >= 1.0:
        return True
    return (trace_id & _LOW_64) < round(rate * (1 << 64))


def _to_floats(raw: Sequence[object]) -> tuple[float, ...]:
    try:
        vector = tuple(map(float, raw))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return ()
    return vector if all(map(math.isfinite, vector)) else ()


class EmbeddingEvent(Event):
    """A span event whose float array is built on first read (the exporter's thread)."""

    def __init__(self, kind: str, raw: Sequence[object], timestamp: int | None) -> None:
        super().__init__(EMBEDDING_EVENT, None, timestamp)
        self._kind = kind
        self._raw: Sequence[object] | None = raw

    @property
    def attributes(self) -> Attributes:
        if self._attributes is None:
            raw, self._raw = self._raw, None
            vector = _to_floats(raw) if raw is not None else ()
            self._attributes = MappingProxyType(
                {EMBEDDING_KIND: self._kind, EMBEDDING_VECTOR: vector}
            )
        return self._attributes


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _snapshot(value: object) -> Sequence[object] | None:
    """A private copy of one vector (cheap), or None when ``value`` is not vector-like."""
    if isinstance(value, list):
        return list(value)
    if isinstance(value, tuple):
        return value
    tolist = getattr(value, "tolist", None) if not isinstance(value, str | bytes) else None
    if callable(tolist):
        converted = tolist()
        if isinstance(converted, list):
            return converted
    return None


def _vector_items(value: object) -> Sequence[object] | None:
    """Items of a batch: a list of vectors, or a list of objects holding one each."""
    if isinstance(value, list | tuple):
        return value
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        converted = tolist()
        return converted if isinstance(converted, list) else None
    return None


def _item_vector(item: object) -> Sequence[object] | None:
    if isinstance(item, list | tuple) or hasattr(item, "tolist"):
        return _snapshot(item)
    # OpenAI data[i].embedding, Vertex TextEmbedding.values, dict forms of both.
    for name in ("embedding", "values"):
        inner = field(item, name)
        if inner is not None:
            return _snapshot(inner)
    return None


def collect_vectors(value: object, max_vectors: int) -> tuple[list[Sequence[object]], int]:
    """Snapshot up to ``max_vectors`` vectors found in ``value``; also return how many more
    there were. Understands a flat vector, a list of vectors, numpy-like arrays (``tolist``),
    OpenAI ``data[i].embedding``, ``embeddings`` (Cohere, Ollama) and ``embedding`` fields."""
    if isinstance(value, Mapping) or not isinstance(value, list | tuple):
        for name in ("data", "embeddings", "embedding"):
            inner = field(value, name)
            if inner is not None:
                if name == "embeddings" and not isinstance(inner, list | tuple):
                    # Cohere v2 embeds by type: embeddings.float_ (SDK) / ["float"] (JSON).
                    typed = field(inner, "float_")
                    inner = typed if typed is not None else field(inner, "float")
                value = inner
                break
    items = _vector_items(value)
    if not items:
        return [], 0
    if _is_number(items[0]):
        vector = _snapshot(value if isinstance(value, list | tuple) else items)
        return ([vector], 0) if vector is not None else ([], 0)
    vectors: list[Sequence[object]] = []
    for item in items[:max_vectors]:
        vector = _item_vector(item)
        if vector is not None:
            vectors.append(vector)
    return vectors, max(len(items) - max_vectors, 0)


def attach_vectors(
    span: Span,
    vectors: Sequence[Sequence[object]],
    kind: str,
    *,
    max_vectors: int,
    max_dims: int,
    already_attached: int,
    timestamp: int | None,
) -> tuple[int, int]:
    """Attach vectors as lazy events; returns (attached, dropped)."""
    add = getattr(span, "_add_event", None)
    attached = dropped = 0
    for vector in vectors:
        if already_attached + attached >= max_vectors or not 0 < len(vector) <= max_dims:
            dropped += 1
            continue
        if callable(add):
            # The SDK span's internal append skips the eager per-element validation that
            # makes add_event cost ~77 µs for 384 floats (see the module docstring).
            add(EmbeddingEvent(kind, vector, timestamp))
        else:
            LOGGER.debug("infermeter: non-SDK span; attaching embedding eagerly")
            span.add_event(
                EMBEDDING_EVENT,
                {EMBEDDING_KIND: kind, EMBEDDING_VECTOR: _to_floats(vector)},
                timestamp,
            )
        attached += 1
    return attached, dropped
