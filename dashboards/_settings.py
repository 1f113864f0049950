"""Settings of the exporter (``infermeter serve``) and of the rollups it shares with
``infermeter alerts check``: one declaration for the Python API, the CLI and the docs.

The rolling window ends at *now* by default, not at the newest span: when a service stops
sending spans its gauges then empty out (and the "no recent spans" alert fires) instead
of freezing at the last healthy-looking values. ``--window-end newest`` anchors the
window at the newest span instead, for replaying an imported or historical store.
"""

from __future__ import annotations

import re
from typing import Any, Final

from infermeter.agent.settings import (
    Setting,
    parse_memory_size,
    parse_positive_int,
    parse_str,
)
from infermeter.dashboards.grafana import GRAFANA_SETTINGS

__all__ = [
    "ENV_BUDGETS",
    "ENV_ECONOMICS_WINDOW",
    "ENV_REFRESH_INTERVAL",
    "ENV_SERVE_HOST",
    "ENV_SERVE_MEMORY_LIMIT",
    "ENV_SERVE_PORT",
    "ENV_SERVE_SEAL_AFTER",
    "ENV_STORE",
    "ENV_TOP_TENANTS",
    "ENV_TOP_VALUES",
    "ENV_WINDOW",
    "ENV_WINDOW_END",
    "EXPORT_SETTINGS",
    "ROLLUP_SETTINGS",
    "SERVE_SETTINGS",
    "parse_duration",
    "parse_memory_share_or_size",
    "parse_port",
    "parse_seal_after",
    "parse_window_end",
]

ENV_STORE: Final = "INFERMETER_STORE"
ENV_SERVE_HOST: Final = "INFERMETER_SERVE_HOST"
ENV_SERVE_PORT: Final = "INFERMETER_SERVE_PORT"
ENV_REFRESH_INTERVAL: Final = "INFERMETER_REFRESH_INTERVAL"
ENV_SERVE_MEMORY_LIMIT: Final = "INFERMETER_SERVE_MEMORY_LIMIT"
ENV_SERVE_SEAL_AFTER: Final = "INFERMETER_SERVE_SEAL_AFTER"
# A server runs for months next to other processes: its DuckDB buffer pool is a quarter
# of the memory the process may use, not the half a one-off report takes. Not a fixed
# size: each refresh still prices the whole store's request table (the lifetime counters;
# only the span aggregation of sealed requests is kept between refreshes), so a fixed cap
# could stop a growing store's refreshes.
DEFAULT_SERVE_MEMORY_LIMIT: Final = "25%"


def parse_memory_share_or_size(raw: str) -> str:
    """A DuckDB size (``1GiB``) or a share of the memory the process may use (``25%``)."""
    value = raw.strip()
    if value.endswith("%"):
        number = float(value[:-1])
        if not 0 < number <= 100:
            raise ValueError("expected a share between 0% and 100%")
        return f"{number:g}%"
    return parse_memory_size(value)


ENV_WINDOW: Final = "INFERMETER_WINDOW"
ENV_WINDOW_END: Final = "INFERMETER_WINDOW_END"
ENV_ECONOMICS_WINDOW: Final = "INFERMETER_ECONOMICS_WINDOW"
ENV_TOP_TENANTS: Final = "INFERMETER_TOP_TENANTS"
ENV_TOP_VALUES: Final = "INFERMETER_TOP_VALUES"
ENV_BUDGETS: Final = "INFERMETER_BUDGETS"
ENV_GRAFANA_DASHBOARDS_PATH: Final = "INFERMETER_GRAFANA_DASHBOARDS_PATH"

_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(raw: str) -> float:
    """Seconds from ``90``, ``90s``, ``15m``, ``1h``, ``7d``, ``1w`` or ``1h30m``."""
    text = raw.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        seconds = float(text)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError("expected a duration such as 30s, 15m, 1h or 7d")
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError("expected a positive duration")
    return seconds


def parse_seal_after(raw: str) -> float | None:
    """A duration (``1h``, ``10m``), or ``off``: every refresh computes every request."""
    if raw.strip().lower() == "off":
        return None
    return parse_duration(raw)


def parse_port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("expected a port between 0 and 65535 (0 picks a free one)")
    return value


def parse_window_end(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"now", "newest"}:
        raise ValueError("expected 'now' or 'newest'")
    return value


def _analytics_settings() -> tuple[Setting[Any], ...]:
    # The pricing, deployment and store-read settings are the analytics room's (same flags
    # and env).
    from infermeter.analytics import DEPLOYMENT_SETTINGS, PRICE_SETTINGS, STORE_READ_SETTINGS

    return (*PRICE_SETTINGS, *DEPLOYMENT_SETTINGS, *STORE_READ_SETTINGS)


ROLLUP_SETTINGS: Final[tuple[Setting[Any], ...]] = (
    Setting(
        "store",
        ENV_STORE,
        "",
        parse_str,
        "the store to read: DuckDB file or ClickHouse URL (clickhouse://…, chdb:///…)",
    ),
    Setting(
        "window",
        ENV_WINDOW,
        3600.0,
        parse_duration,
        "rolling window of the gauges (30m, 1h, 1d ...)",
    ),
    Setting(
        "window_end",
        ENV_WINDOW_END,
        "now",
        parse_window_end,
        "where the window ends: 'now' (live services) or 'newest' span (replaying a "
        "historical store)",
    ),
    Setting(
        "economics_window",
        ENV_ECONOMICS_WINDOW,
        7 * 86400.0,
        parse_duration,
        "window the runtime economics and recommendations are computed over",
    ),
    Setting(
        "top_tenants",
        ENV_TOP_TENANTS,
        10,
        parse_positive_int,
        "tenants (by request volume) that keep their own label; the rest become 'other'",
    ),
    Setting(
        "top_values",
        ENV_TOP_VALUES,
        20,
        parse_positive_int,
        "models, endpoints, prompt versions, providers and runtimes (each, by request "
        "volume) that keep their own label; the rest become 'other'",
    ),
    Setting(
        "budgets",
        ENV_BUDGETS,
        None,
        parse_str,
        "YAML/TOML file of monthly budgets in USD per tenant ({tenant: usd})",
    ),
    *_analytics_settings(),
)

SERVE_SETTINGS: Final[tuple[Setting[Any], ...]] = (
    *ROLLUP_SETTINGS,
    Setting(
        "host",
        ENV_SERVE_HOST,
        "127.0.0.1",
        parse_str,
        "address to listen on (0.0.0.0 exposes the metrics to the network)",
    ),
    Setting(
        "port",
        ENV_SERVE_PORT,
        9465,
        parse_port,
        "port to listen on; 0 picks a free one (printed at start)",
    ),
    Setting(
        "refresh_interval",
        ENV_REFRESH_INTERVAL,
        30.0,
        parse_duration,
        "how often the rollups are recomputed in the background (a refresh that takes "
        "longer than half of it is followed by a pause as long as itself)",
    ),
    Setting(
        "memory_limit",
        ENV_SERVE_MEMORY_LIMIT,
        DEFAULT_SERVE_MEMORY_LIMIT,
        parse_memory_share_or_size,
        "DuckDB buffer pool of each refresh: a size (2GiB) or a share of the memory the "
        "process may use (cgroup limit, else RAM); DuckDB stores only",
    ),
    Setting(
        "seal_after",
        ENV_SERVE_SEAL_AFTER,
        3600.0,
        parse_seal_after,
        "a request is sealed (its span aggregation kept between refreshes, not redone) "
        "once the newest span starts this long after it, aligned down to a multiple of it; "
        "a span stored after its request was sealed is counted only after a restart; "
        "'off': every refresh aggregates every span; DuckDB stores only",
    ),
)

# Same names, variables and defaults as ``dashboards push`` (minus the connection).
EXPORT_SETTINGS: Final[tuple[Setting[Any], ...]] = (
    *(
        s
        for s in GRAFANA_SETTINGS
        if s.name in {"prometheus_url", "datasource_uid", "folder_title", "folder_uid"}
    ),
    Setting(
        "grafana_dashboards_path",
        ENV_GRAFANA_DASHBOARDS_PATH,
        "/var/lib/grafana/dashboards/infermeter",
        parse_str,
        "where the dashboard JSON files will be on the Grafana host",
    ),
)
