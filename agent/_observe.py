"""``@observe``, ``span()`` and ``annotate()``: one observed call = one span + metrics.

Never break the host: the user's function is always called outside every telemetry
``try``; its result is returned as the same object and its exception re-raised with a
bare ``raise`` (same object, same traceback). Each telemetry step (``begin``,
``Call.finish``, ``Call.fail``, ``Call.on_chunk``, ``annotate_call``) swallows its own
failures and logs them at debug on the ``infermeter`` logger; if ``begin`` fails the
function simply runs unobserved.

Where things are: ``_wrap`` (the wrappers), ``_begin`` (the start of a call: attributes,
cold start, retries, the span), ``_call`` (a call in flight and its end, most of it on the
background thread of ``_recorder``), ``_spec`` (what a decoration fixes), ``_annotate``
(``annotate()`` and embeddings). The hot path of a plain call is ``_wrap_function`` →
``begin`` → ``Call.enter`` / ``Call.finish``.

Callables for ``tenant``, ``model``, ``prompt_version``, ``endpoint`` (and the other string
options) are called with exactly the arguments the observed function received —
``tenant=lambda request, **_: request.headers["x-tenant"]`` — including ``self`` for
methods; for ``span()`` they are called with no arguments. A callable that raises, or
returns None, leaves the attribute out.

Retries: ``infermeter.retries`` counts the *consecutive failed* attempts of the same
observed function immediately before this one under the same parent (the enclosing
observed call, or the enclosing foreign span for outermost calls). A failure is an
exception or a throttled result; a success resets the count, so two independent calls
in one request are not mistaken for a retry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar, cast, overload

from infermeter.agent._annotate import annotate_call
from infermeter.agent._begin import begin
from infermeter.agent._call import CURRENT, Call
from infermeter.agent._duck import LOGGER
from infermeter.agent._spec import Spec, make_spec
from infermeter.agent._wrap import decorate
from opentelemetry.trace import INVALID_SPAN, Span

__all__ = ["ObservedSpan", "annotate", "current_span", "observe", "span"]

F = TypeVar("F", bound=Callable[..., Any])


@overload
def observe(func: F, /) -> F: ...


@overload
def observe(
    *,
    name: str | None = None,
    tenant: str | Callable[..., object] | None = None,
    model: str | Callable[..., object] | None = None,
    provider: str | Callable[..., object] | None = None,
    prompt_name: str | Callable[..., object] | None = None,
    prompt_version: str | Callable[..., object] | None = None,
    endpoint: str | Callable[..., object] | None = None,
    operation: str | Callable[..., object] | None = None,
    runtime: str | None = None,
    capture_embeddings: float | None = None,
) -> Callable[[F], F]: ...


def observe(
    func: Any = None,
    /,
    *,
    name: str | None = None,
    tenant: str | Callable[..., object] | None = None,
    model: str | Callable[..., object] | None = None,
    provider: str | Callable[..., object] | None = None,
    prompt_name: str | Callable[..., object] | None = None,
    prompt_version: str | Callable[..., object] | None = None,
    endpoint: str | Callable[..., object] | None = None,
    operation: str | Callable[..., object] | None = None,
    runtime: str | None = None,
    capture_embeddings: float | None = None,
) -> Any:
    """Observe every call of a function: one span, GenAI and FaaS metrics.

    Works as ``@observe`` and ``@observe(...)`` on functions, methods, coroutines,
    generators and async generators (streams: the span ends when the stream is exhausted,
    closed or fails, and the time to first chunk is recorded). String options may be
    callables receiving the call's arguments. ``capture_embeddings`` is the share (0..1) of
    traces whose returned or annotated embedding vectors are attached.
    """
    options: dict[str, Any] = {
        "name": name,
        "tenant": tenant,
        "model": model,
        "provider": provider,
        "prompt_name": prompt_name,
        "prompt_version": prompt_version,
        "endpoint": endpoint,
        "operation": operation,
        "runtime": runtime,
        "capture_embeddings": capture_embeddings,
    }
    if func is not None:
        return decorate(func, options)

    def decorator(inner: F) -> F:
        return cast(F, decorate(inner, options))

    return decorator


class ObservedSpan:
    """A span around a block that is not a function (``with`` or ``async with``).

    Single-use like an OpenTelemetry span; ``annotate`` sets attributes,
    ``record_response`` hands over a response whose usage, model, throttle status and
    embeddings are read when the block ends (as for a decorated function's return value).
    """

    __slots__ = ("_call", "_response", "_spec")

    def __init__(self, spec: Spec) -> None:
        self._spec = spec
        self._call: Call | None = None
        self._response: object = None

    def __enter__(self) -> ObservedSpan:
        self._call = begin(self._spec, (), {}, True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        call, self._call = self._call, None
        if call is None:
            return
        if exc is None:
            call.finish(self._response)
        else:
            call.fail(exc)

    async def __aenter__(self) -> ObservedSpan:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, traceback)

    def annotate(self, **fields: object) -> None:
        """Like ``infermeter.annotate`` but for this span, wherever it is called from."""
        if self._call is not None:
            annotate_call(self._call, fields)

    def record_response(self, response: object) -> None:
        self._response = response

    @property
    def otel_span(self) -> Span:
        """The underlying OpenTelemetry span (a non-recording one outside the block)."""
        return self._call.span if self._call is not None else INVALID_SPAN


def span(
    name: str,
    *,
    tenant: str | Callable[[], object] | None = None,
    model: str | Callable[[], object] | None = None,
    provider: str | Callable[[], object] | None = None,
    prompt_name: str | Callable[[], object] | None = None,
    prompt_version: str | Callable[[], object] | None = None,
    endpoint: str | Callable[[], object] | None = None,
    operation: str | Callable[[], object] | None = None,
    runtime: str | None = None,
    capture_embeddings: float | None = None,
) -> ObservedSpan:
    """An observed span for a block: ``with infermeter.span("retrieve", operation=...) as s``.

    Same options as ``observe`` (callables are called with no arguments)."""
    spec = make_spec(
        qualname=name,
        name=name,
        tenant=tenant,
        model=model,
        provider=provider,
        prompt_name=prompt_name,
        prompt_version=prompt_version,
        endpoint=endpoint,
        operation=operation,
        runtime=runtime,
        capture_embeddings=capture_embeddings,
        stream=False,
    )
    return ObservedSpan(spec)


def annotate(
    *,
    tenant: str | None = None,
    model: str | None = None,
    response_model: str | None = None,
    provider: str | None = None,
    prompt_name: str | None = None,
    prompt_version: str | None = None,
    endpoint: str | None = None,
    operation: str | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    reasoning_tokens: int | None = None,
    ttft: float | None = None,
    throttled: bool | None = None,
    retry_after: float | None = None,
    cold_start: bool | None = None,
    init_duration: float | None = None,
    embeddings: object = None,
    input_messages: object = None,
    output_messages: object = None,
    attributes: Mapping[str, object] | None = None,
    response_id: str | None = None,
    retrieved_ids: Sequence[str] | None = None,
    used_ids: Sequence[str] | None = None,
    retrieval_scores: Sequence[float] | None = None,
    query_fingerprint: str | None = None,
    index_version: str | None = None,
    **unknown: object,
) -> None:
    """Set or override attributes of the current observed call's span by friendly name.

    Values set here win over those read from the return value. Outside an observed call
    it does nothing; invalid values and unknown names are ignored (debug log), never raised.
    ``embeddings`` takes vectors or ``(vectors, kind)`` with kind query|document|response
    (default query); ``input_messages``/``output_messages`` are kept only when content
    capture is on; ``attributes`` sets raw OpenTelemetry attributes.
    Retrieval: ``retrieved_ids`` (rank order), ``used_ids`` (the ones the answer used or
    cited: a hit), ``retrieval_scores``, ``query_fingerprint`` (compares the top-k of one
    query across versions), ``index_version``; ``response_id`` is ``gen_ai.response.id``.
    """
    call = CURRENT.get()
    if call is None:
        LOGGER.debug("infermeter: annotate() outside an observed call; ignored")
        return
    fields = {
        "tenant": tenant,
        "model": model,
        "response_model": response_model,
        "provider": provider,
        "prompt_name": prompt_name,
        "prompt_version": prompt_version,
        "endpoint": endpoint,
        "operation": operation,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_tokens": cache_read_tokens,
        "cache_write_tokens": cache_write_tokens,
        "reasoning_tokens": reasoning_tokens,
        "ttft": ttft,
        "throttled": throttled,
        "retry_after": retry_after,
        "cold_start": cold_start,
        "init_duration": init_duration,
        "embeddings": embeddings,
        "input_messages": input_messages,
        "output_messages": output_messages,
        "attributes": attributes,
        "response_id": response_id,
        "retrieved_ids": retrieved_ids,
        "used_ids": used_ids,
        "retrieval_scores": retrieval_scores,
        "query_fingerprint": query_fingerprint,
        "index_version": index_version,
        **unknown,
    }
    annotate_call(call, fields)


def current_span() -> Span:
    """The OpenTelemetry span of the current observed call (INVALID_SPAN outside one)."""
    call = CURRENT.get()
    return call.span if call is not None else INVALID_SPAN
