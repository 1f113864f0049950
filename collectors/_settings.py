"""The collector's settings: one table feeds ``Collector(...)``, the ``collect`` flags
and the README (explicit argument > ``INFERMETER_COLLECTOR_*`` environment > default).

No OpenTelemetry environment variable covers a receiver, so every name is ours.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Final

from infermeter.agent.settings import (
    Setting,
    parse_memory_size,
    parse_positive_float,
    parse_positive_int,
    parse_str,
)
from infermeter.collectors._conventions import DEFAULT_TENANT_ATTRIBUTES

__all__ = [
    "COLLECTOR_SETTINGS",
    "DEFAULT_TENANT_ATTRIBUTES",
    "ENV_PREFIX",
    "TENANT_ATTRIBUTES_ENV",
    "parse_attribute_names",
    "parse_log_level",
    "parse_memory_size",
    "parse_non_negative_float",
    "parse_path",
    "parse_port",
]

ENV_PREFIX: Final = "INFERMETER_COLLECTOR_"


def parse_port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("expected a TCP port between 0 and 65535 (0 picks a free one)")
    return value


def parse_non_negative_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value < 0:
        raise ValueError("expected a number >= 0")
    return value


def parse_path(raw: str) -> Path:
    return Path(parse_str(raw)).expanduser()


def parse_log_level(raw: str) -> str:
    value = raw.strip().upper()
    if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("expected one of debug, info, warning, error")
    return value


def parse_attribute_names(raw: str) -> tuple[str, ...]:
    """A comma-separated list of attribute names (``user.id, metadata.tenant``)."""
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    if not names:
        raise ValueError("expected attribute names separated by commas")
    return names


TENANT_ATTRIBUTES_ENV: Final = "INFERMETER_TENANT_ATTRIBUTES"


def _setting(name: str, default: Any, parse: Any, help_text: str) -> Setting[Any]:
    return Setting(name, ENV_PREFIX + name.upper(), default, parse, help_text)


COLLECTOR_SETTINGS: Final[tuple[Setting[Any], ...]] = (
    _setting("host", "127.0.0.1", parse_str, "address to listen on"),
    _setting("port", 4318, parse_port, "port to listen on; 0 picks a free one"),
    _setting(
        "auth_file",
        None,
        parse_path,
        "TOML file of bearer tokens (and the tenant each pins); unset = no auth",
    ),
    _setting(
        "max_body_bytes",
        16 * 1024 * 1024,
        parse_positive_int,
        "largest request body accepted, as sent (413 above)",
    ),
    _setting(
        "max_decompressed_bytes",
        32 * 1024 * 1024,
        parse_positive_int,
        "largest body after gzip/deflate decompression (413 above)",
    ),
    _setting(
        "max_attribute_length",
        16_384,
        parse_positive_int,
        "longest string attribute value kept, in characters (longer ones are cut)",
    ),
    _setting(
        "max_vector_dim",
        8_192,
        parse_positive_int,
        "most dimensions an embedding vector may have (larger ones are dropped)",
    ),
    _setting(
        "max_queue_spans",
        100_000,
        parse_positive_int,
        "spans accepted but not yet stored before answering 429 (bounds memory)",
    ),
    _setting(
        "queue_wait",
        2.0,
        parse_non_negative_float,
        "seconds a request may wait for queue room before it gets 429",
    ),
    _setting("batch_spans", 10_000, parse_positive_int, "spans per store insert"),
    _setting(
        "flush_interval",
        1.0,
        parse_positive_float,
        "seconds before queued spans are stored even if a batch is not full",
    ),
    _setting(
        "duckdb_memory_limit",
        "256MB",
        parse_memory_size,
        "DuckDB buffer pool of the store writer (DuckDB's own default is 80% of RAM)",
    ),
    _setting(
        "max_concurrent_requests",
        4,
        parse_positive_int,
        "requests decoded at once; more wait, then get 503 (bounds memory)",
    ),
    _setting(
        "max_connections",
        256,
        parse_positive_int,
        "open client connections; beyond it the longest-waiting idle one is closed, else 503",
    ),
    _setting(
        "idle_timeout",
        30.0,
        parse_positive_float,
        "seconds a connection may sit idle or stall mid-request",
    ),
    _setting(
        "header_timeout",
        10.0,
        parse_positive_float,
        "seconds a client has to send a request's line and headers once it starts one",
    ),
    _setting(
        "body_timeout",
        60.0,
        parse_positive_float,
        "seconds a client has to send a request body (slow senders are cut off)",
    ),
    _setting("log_level", "INFO", parse_log_level, "collector log level"),
    Setting(
        "tenant_attributes",
        TENANT_ATTRIBUTES_ENV,
        DEFAULT_TENANT_ATTRIBUTES,
        parse_attribute_names,
        "span attributes read in order for the tenant when no tenant.id is sent "
        "(comma-separated; a.b also reads key b of a JSON-object attribute a)",
        validate=lambda value: tuple(str(name) for name in value),
    ),
)
