"""The agent's settings table and their resolution into one validated ``AgentSettings``.

Precedence, like the OpenTelemetry SDK: explicit ``configure()`` argument > environment
variable > default. Standard ``OTEL_*`` variables are used where one exists; the rest are
``INFERMETER_*``. Every value is parsed and checked here, at configuration time, so a bad
value raises ``ConfigurationError`` naming the variable — never later on a request path.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from infermeter.agent._duck import LOGGER
from infermeter.agent.semconv import RUNTIMES
from infermeter.agent.settings import (
    ConfigurationError,
    Setting,
    parse_bool,
    parse_choice,
    parse_fraction,
    parse_positive_float,
    parse_positive_int,
    parse_str,
    resolve,
)

__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_SPAN_QUEUE_SIZE",
    "ENV_CAPTURE_CONTENT",
    "ENV_CAPTURE_EMBEDDINGS",
    "ENV_FLUSH_ON_RETURN",
    "ENV_FLUSH_TIMEOUT",
    "ENV_MAX_CONTENT_CHARS",
    "ENV_MAX_EMBEDDINGS_PER_SPAN",
    "ENV_MAX_EMBEDDING_DIMS",
    "ENV_RUNTIME",
    "ENV_SPAN_QUEUE_SIZE",
    "SAMPLERS",
    "SETTINGS",
    "AgentSettings",
    "resolve_settings",
]

DEFAULT_ENDPOINT: Final = "http://127.0.0.1:4318"  # the local infermeter collector

# infermeter's own variables (no OpenTelemetry standard exists for these).
ENV_CAPTURE_EMBEDDINGS: Final = "INFERMETER_CAPTURE_EMBEDDINGS"
ENV_MAX_EMBEDDING_DIMS: Final = "INFERMETER_MAX_EMBEDDING_DIMS"
ENV_MAX_EMBEDDINGS_PER_SPAN: Final = "INFERMETER_MAX_EMBEDDINGS_PER_SPAN"
ENV_MAX_CONTENT_CHARS: Final = "INFERMETER_MAX_CONTENT_CHARS"
ENV_FLUSH_ON_RETURN: Final = "INFERMETER_FLUSH_ON_RETURN"
ENV_FLUSH_TIMEOUT: Final = "INFERMETER_FLUSH_TIMEOUT"
ENV_RUNTIME: Final = "INFERMETER_RUNTIME"
# OpenTelemetry's variable for the BatchSpanProcessor's queue (read here so that our
# default applies when it is unset; the SDK's other OTEL_BSP_* variables it reads itself).
ENV_SPAN_QUEUE_SIZE: Final = "OTEL_BSP_MAX_QUEUE_SIZE"
# Four times the SDK's 2048: a service ending thousands of spans per second rides out a
# few seconds of slow exports (a busy collector, a network blip) instead of dropping
# spans after one; ~3 KiB per queued span (measured), so ~25 MiB at most.
DEFAULT_SPAN_QUEUE_SIZE: Final = 8192
# The variable OpenTelemetry's own GenAI instrumentations read for message content.
ENV_CAPTURE_CONTENT: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

SAMPLERS: Final = (
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
    "always_on",
    "always_off",
    "traceidratio",
)
_EXPORTERS: Final = ("otlp", "console", "none")
_PROTOCOL: Final = "http/protobuf"


def parse_url(raw: str) -> str:
    value = raw.strip()
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("expected an http:// or https:// URL")
    return value


def parse_key_values(raw: str) -> dict[str, str]:
    """W3C-baggage-like ``key=value,key2=value2`` (values percent-decoded), as the OTel
    spec defines ``OTEL_EXPORTER_OTLP_HEADERS`` and ``OTEL_RESOURCE_ATTRIBUTES``."""
    result: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError("expected comma-separated key=value pairs")
        result[unquote(key.strip())] = unquote(value.strip())
    return result


def _check_str_mapping(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise TypeError("expected a mapping of strings to strings")
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or not isinstance(item, str):
            raise TypeError("expected a mapping of non-empty strings to strings")
        result[key] = item
    return result


def _check_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("expected True or False")
    return value


def _check_fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("expected a number between 0 and 1")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError("expected a number between 0 and 1")
    return float(value)


def _check_positive_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("expected a positive number")
    if not math.isfinite(value) or value <= 0:
        raise ValueError("expected a positive number")
    return float(value)


def _check_positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("expected a positive integer")
    if value <= 0:
        raise ValueError("expected a positive integer")
    return value


def _wrong_type(kind: str) -> Any:
    def check(value: Any) -> Any:
        raise TypeError(f"expected {kind}")

    return check


SETTINGS: Final[tuple[Setting[Any], ...]] = (
    Setting(
        "service_name",
        "OTEL_SERVICE_NAME",
        None,
        parse_str,
        "service.name of the resource (default: the function/service name detected on "
        "FaaS and Cloud Run, else unknown_service:python)",
        validate=_wrong_type("a non-empty string"),
    ),
    Setting(
        "endpoint",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        DEFAULT_ENDPOINT,
        parse_url,
        "OTLP/HTTP base URL; /v1/traces, /v1/metrics and /v1/logs are appended",
        validate=_wrong_type("an http(s) URL"),
    ),
    Setting(
        "traces_endpoint",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        None,
        parse_url,
        "full OTLP/HTTP URL for spans (overrides endpoint)",
        validate=_wrong_type("an http(s) URL"),
    ),
    Setting(
        "metrics_endpoint",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        None,
        parse_url,
        "full OTLP/HTTP URL for metrics (overrides endpoint)",
        validate=_wrong_type("an http(s) URL"),
    ),
    Setting(
        "logs_endpoint",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        None,
        parse_url,
        "full OTLP/HTTP URL for log records: evaluations and feedback (overrides endpoint)",
        validate=_wrong_type("an http(s) URL"),
    ),
    Setting(
        "headers",
        "OTEL_EXPORTER_OTLP_HEADERS",
        None,
        parse_key_values,
        "headers sent with every export, key=value,... (e.g. an ingest token)",
        validate=_check_str_mapping,
        secret=True,
    ),
    Setting(
        "protocol",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        _PROTOCOL,
        parse_choice(_PROTOCOL),
        "OTLP transport; only http/protobuf is supported",
        validate=_wrong_type("'http/protobuf'"),
    ),
    Setting(
        "traces_exporter",
        "OTEL_TRACES_EXPORTER",
        "otlp",
        parse_choice(*_EXPORTERS),
        "where spans go: otlp, console or none",
        validate=_wrong_type("'otlp', 'console' or 'none'"),
    ),
    Setting(
        "metrics_exporter",
        "OTEL_METRICS_EXPORTER",
        "otlp",
        parse_choice(*_EXPORTERS),
        "where metrics go: otlp, console or none",
        validate=_wrong_type("'otlp', 'console' or 'none'"),
    ),
    Setting(
        "metric_export_interval",
        "OTEL_METRIC_EXPORT_INTERVAL",
        60000,
        parse_positive_int,
        "milliseconds between metric exports",
        validate=_check_positive_int,
    ),
    Setting(
        "sdk_disabled",
        "OTEL_SDK_DISABLED",
        False,
        parse_bool,
        "disable telemetry: observed functions run untouched",
        validate=_check_bool,
    ),
    Setting(
        "traces_sampler",
        "OTEL_TRACES_SAMPLER",
        "parentbased_always_on",
        parse_choice(*SAMPLERS),
        "head sampler (OpenTelemetry names)",
        validate=_wrong_type("a sampler name"),
    ),
    Setting(
        "traces_sampler_arg",
        "OTEL_TRACES_SAMPLER_ARG",
        None,
        parse_fraction,
        "ratio for the traceidratio samplers (default 1.0)",
        validate=_check_fraction,
    ),
    Setting(
        "resource_attributes",
        "OTEL_RESOURCE_ATTRIBUTES",
        None,
        parse_key_values,
        "extra resource attributes, key=value,...",
        validate=_check_str_mapping,
    ),
    Setting(
        "capture_content",
        ENV_CAPTURE_CONTENT,
        False,
        parse_bool,
        "record prompt and response text (gen_ai.input/output.messages)",
        validate=_check_bool,
    ),
    Setting(
        "capture_embeddings",
        ENV_CAPTURE_EMBEDDINGS,
        0.0,
        parse_fraction,
        "default share of traces whose embedding vectors are attached (0..1)",
        validate=_check_fraction,
    ),
    Setting(
        "max_embedding_dims",
        ENV_MAX_EMBEDDING_DIMS,
        4096,
        parse_positive_int,
        "longer vectors are dropped (counted in infermeter.embedding.dropped)",
        validate=_check_positive_int,
    ),
    Setting(
        "max_embeddings_per_span",
        ENV_MAX_EMBEDDINGS_PER_SPAN,
        16,
        parse_positive_int,
        "vectors beyond this many per span are dropped (counted)",
        validate=_check_positive_int,
    ),
    Setting(
        "max_content_chars",
        ENV_MAX_CONTENT_CHARS,
        16384,
        parse_positive_int,
        "captured message text is cut to this many characters per span",
        validate=_check_positive_int,
    ),
    Setting(
        "flush_on_return",
        ENV_FLUSH_ON_RETURN,
        None,
        parse_bool,
        "flush spans and metrics before an entry call returns (default: on for "
        "serverless functions, whose sandbox freezes after return)",
        validate=_check_bool,
    ),
    Setting(
        "flush_timeout",
        ENV_FLUSH_TIMEOUT,
        2.0,
        parse_positive_float,
        "seconds a flush on return may take at most",
        validate=_check_positive_float,
    ),
    Setting(
        "span_queue_size",
        ENV_SPAN_QUEUE_SIZE,
        DEFAULT_SPAN_QUEUE_SIZE,
        parse_positive_int,
        "ended spans waiting for export; more are dropped (the SDK's default is 2048: "
        "under a second at thousands of calls/s; ~3 KiB each)",
        validate=_check_positive_int,
    ),
    Setting(
        "runtime",
        ENV_RUNTIME,
        None,
        parse_choice(*RUNTIMES),
        "override the detected runtime: " + ", ".join(RUNTIMES),
        validate=_wrong_type("a runtime name"),
    ),
)


@dataclass(frozen=True)
class AgentSettings:
    """Every agent setting, resolved and validated."""

    service_name: str | None
    traces_url: str
    metrics_url: str
    headers: Mapping[str, str] | None
    traces_exporter: str
    metrics_exporter: str
    metric_export_interval: int
    sdk_disabled: bool
    traces_sampler: str
    traces_sampler_arg: float | None
    resource_attributes: Mapping[str, str]
    capture_content: bool
    capture_embeddings: float
    max_embedding_dims: int
    max_embeddings_per_span: int
    max_content_chars: int
    flush_on_return: bool | None
    flush_timeout: float
    runtime: str | None
    span_queue_size: int = DEFAULT_SPAN_QUEUE_SIZE
    # Where evaluate()/feedback() send their log records.
    logs_url: str = ""

    def __repr__(self) -> str:
        # Headers usually carry credentials: never print them.
        shown = {name: getattr(self, name) for name in self.__dataclass_fields__}
        if shown["headers"]:
            shown["headers"] = {key: "<redacted>" for key in shown["headers"]}
        return "AgentSettings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"


def _signal_url(
    signal: str,
    explicit: Mapping[str, Any],
    resolved: Mapping[str, Any],
) -> str:
    """explicit signal URL > explicit base + path > env signal URL > env/default base + path."""
    specific = f"{signal}_endpoint"
    if explicit.get(specific) is not None:
        return str(resolved[specific])
    base = str(resolved["endpoint"]).rstrip("/")
    if explicit.get("endpoint") is not None or resolved[specific] is None:
        return f"{base}/v1/{signal}"
    return str(resolved[specific])


def resolve_settings(
    explicit: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    lenient: bool = False,
) -> AgentSettings:
    """Resolve the table; ``lenient`` replaces invalid environment values by defaults
    (used when no ``configure()`` ran and an error must not reach a request path)."""
    explicit = dict(explicit or {})
    env = os.environ if environ is None else environ
    if lenient:
        resolved: dict[str, Any] = {}
        for setting in SETTINGS:
            try:
                resolved.update(resolve((setting,), explicit, env))
            except ConfigurationError as exc:
                LOGGER.debug("infermeter: ignoring %s; using the default", exc)
                resolved[setting.name] = setting.default
    else:
        unknown = set(explicit) - {setting.name for setting in SETTINGS}
        if unknown:
            raise ConfigurationError("unknown settings: " + ", ".join(sorted(unknown)))
        resolved = resolve(SETTINGS, explicit, env)
    if resolved["protocol"] != _PROTOCOL and not lenient:
        raise ConfigurationError("only the http/protobuf OTLP protocol is supported")
    sampler_arg = resolved["traces_sampler_arg"]
    return AgentSettings(
        service_name=resolved["service_name"],
        traces_url=_signal_url("traces", explicit, resolved),
        metrics_url=_signal_url("metrics", explicit, resolved),
        headers=resolved["headers"],
        traces_exporter=resolved["traces_exporter"],
        metrics_exporter=resolved["metrics_exporter"],
        metric_export_interval=resolved["metric_export_interval"],
        sdk_disabled=resolved["sdk_disabled"],
        traces_sampler=resolved["traces_sampler"],
        traces_sampler_arg=None if sampler_arg is None else float(sampler_arg),
        resource_attributes=dict(resolved["resource_attributes"] or {}),
        capture_content=resolved["capture_content"],
        capture_embeddings=resolved["capture_embeddings"],
        max_embedding_dims=resolved["max_embedding_dims"],
        max_embeddings_per_span=resolved["max_embeddings_per_span"],
        max_content_chars=resolved["max_content_chars"],
        flush_on_return=resolved["flush_on_return"],
        flush_timeout=resolved["flush_timeout"],
        runtime=resolved["runtime"],
        span_queue_size=resolved["span_queue_size"],
        logs_url=_signal_url("logs", explicit, resolved),
    )
