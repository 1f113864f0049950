"""What one ``@observe`` decoration (or one ``span()``) fixes: static attributes,
attribute callables, the span name and kind, and per-pipeline attribute templates."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from infermeter.agent._duck import LOGGER, Shown, seconds, text
from infermeter.agent._pipeline import Pipeline
from infermeter.agent.semconv import (
    FAAS_COLDSTART,
    GEN_AI_OPERATION_NAME,
    GEN_AI_PROMPT_NAME,
    GEN_AI_PROMPT_VERSION,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_REQUEST_STREAM,
    INFERMETER_ENDPOINT,
    INFERMETER_ENTRY,
    INFERMETER_RETRIES,
    INFERMETER_RUNTIME,
    RUNTIMES,
    TENANT_ID,
)
from opentelemetry import trace
from opentelemetry.trace import SpanKind

__all__ = ["Spec", "make_spec"]


def _valid_runtime(runtime: object) -> str | None:
    if runtime is None:
        return None
    if isinstance(runtime, str) and runtime in RUNTIMES:
        return runtime
    LOGGER.warning(
        "infermeter: ignoring runtime=%s (expected one of %s)", Shown(runtime), ", ".join(RUNTIMES)
    )
    return None


def _valid_rate(rate: object) -> float | None:
    if rate is None:
        return None
    value = seconds(rate)
    if value is not None and value <= 1.0:
        return value
    LOGGER.warning("infermeter: ignoring capture_embeddings=%s (expected 0..1)", Shown(rate))
    return None


class Spec:
    """What one decoration (or one ``span()``) fixed: static attributes and callables."""

    __slots__ = (
        "capture_embeddings",
        "dynamic",
        "kind",
        "model",
        "name",
        "operation",
        "qualname",
        "runtime",
        "static",
        "static_name",
        "templates",
    )

    def __init__(
        self,
        *,
        qualname: str,
        name: str | None,
        options: Mapping[str, object],
        runtime: object,
        capture_embeddings: object,
        stream: bool,
    ) -> None:
        self.qualname = qualname
        self.name = text(name) if name is not None else None
        self.static: dict[str, Any] = {}
        dynamic: list[tuple[str, Callable[..., object]]] = []
        for key, value in options.items():
            if value is None:
                continue
            if callable(value):
                dynamic.append((key, value))
                continue
            cleaned = text(value)
            if cleaned is not None:
                self.static[key] = cleaned
        self.dynamic = tuple(dynamic)
        if stream:
            self.static[GEN_AI_REQUEST_STREAM] = True
        self.operation: str | None = self.static.get(GEN_AI_OPERATION_NAME)
        self.model: str | None = self.static.get(GEN_AI_REQUEST_MODEL)
        dynamic_keys = {key for key, _ in self.dynamic}
        # The span name when no callable can change it (computed once, not per call).
        self.static_name: str | None = None
        if self.name is not None:
            self.static_name = self.name
        elif not dynamic_keys & {GEN_AI_OPERATION_NAME, GEN_AI_REQUEST_MODEL}:
            self.static_name = self.span_name(self.static)
        has_provider = options.get(GEN_AI_PROVIDER_NAME) is not None
        self.kind = SpanKind.CLIENT if has_provider else SpanKind.INTERNAL
        self.runtime = _valid_runtime(runtime)
        self.capture_embeddings = _valid_rate(capture_embeddings)
        # (pipeline, outermost-call attributes, nested-call attributes): what every call
        # starts from, built once per pipeline instead of key by key on every call.
        self.templates: tuple[Pipeline, dict[str, Any], dict[str, Any]] | None = None

    def make_templates(self, pipeline: Pipeline) -> tuple[Pipeline, dict[str, Any], dict[str, Any]]:
        nested = dict(self.static)
        nested[INFERMETER_RUNTIME] = self.runtime or pipeline.runtime_name
        nested[INFERMETER_RETRIES] = 0
        entry = dict(nested)
        entry.update(pipeline.runtime_attributes_for_entry())
        entry[INFERMETER_ENTRY] = True
        entry[FAAS_COLDSTART] = False
        self.templates = (pipeline, entry, nested)
        return self.templates

    def start_attributes(self, pipeline: Pipeline, outermost: bool) -> dict[str, Any]:
        """A fresh copy of the attributes every call of this spec starts with."""
        templates = self.templates
        # Rebuilt until the pipeline knows what its provider's resource lacks — once the
        # application installs a provider (under the API's proxy nothing is recorded, and
        # rebuilding on every call would cost more than the rest of the call).
        if (
            templates is None
            or templates[0] is not pipeline
            or (
                pipeline.entry_runtime_attributes is None
                and not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
            )
        ):
            templates = self.make_templates(pipeline)
        return (templates[1] if outermost else templates[2]).copy()

    def span_name(self, attributes: Mapping[str, Any]) -> str:
        if self.name is not None:
            return self.name
        operation = attributes.get(GEN_AI_OPERATION_NAME)
        model = attributes.get(GEN_AI_REQUEST_MODEL)
        if operation and model:
            return f"{operation} {model}"
        return self.qualname


def make_spec(
    *,
    qualname: str,
    name: str | None,
    tenant: object,
    model: object,
    provider: object,
    prompt_name: object,
    prompt_version: object,
    endpoint: object,
    operation: object,
    runtime: object,
    capture_embeddings: object,
    stream: bool,
) -> Spec:
    options = {
        GEN_AI_OPERATION_NAME: operation,
        GEN_AI_PROVIDER_NAME: provider,
        GEN_AI_REQUEST_MODEL: model,
        TENANT_ID: tenant,
        GEN_AI_PROMPT_NAME: prompt_name,
        GEN_AI_PROMPT_VERSION: prompt_version,
        INFERMETER_ENDPOINT: endpoint,
    }
    return Spec(
        qualname=qualname,
        name=name,
        options=options,
        runtime=runtime,
        capture_embeddings=capture_embeddings,
        stream=stream,
    )
