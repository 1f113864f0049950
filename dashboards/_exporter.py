"""The Prometheus exporter: ``/metrics`` over the latest rollups of a store.

A background thread recomputes the rollups every ``refresh_interval``: it opens the store
with ``infermeter.collectors.open_reader`` (never blocking the collector that writes it),
computes a :class:`~infermeter.analytics.rollup._rollup.Snapshot`, closes the store, and swaps
in a ready-made list of metric families. A scrape only returns that list - no query, no
lock held while computing - so a slow refresh never slows Prometheus down. A failed
refresh keeps the previous values, counts ``infermeter_exporter_refresh_errors_total``
and logs one line; ``infermeter_exporter_last_refresh_timestamp_seconds`` tells how stale
the values are.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Self

from infermeter.analytics.rollup import (
    Catalog,
    RollupOptions,
    SealedRequests,
    Snapshot,
    load_budgets,
)

if TYPE_CHECKING:
    import polars as pl
    from prometheus_client.core import Metric

__all__ = ["ExporterConfig", "MetricsExporter", "serve", "serve_forever"]

log = logging.getLogger("infermeter.dashboards")


@dataclass(frozen=True)
class ExporterConfig:
    """The resolved ``SERVE_SETTINGS`` (see ``infermeter.dashboards._settings``)."""

    store: str  # a DuckDB path or a ClickHouse store URL
    options: RollupOptions
    prices: str | None = None
    deployments: str | None = None
    slo_ms: float | None = None
    # On a ClickHouse store: windows longer than this read request rows (analytics'
    # STORE_READ_SETTINGS); None: its environment variable, else its default.
    request_rows_after: str | None = None
    host: str = "127.0.0.1"
    port: int = 9465
    refresh_interval: float = 30.0
    memory_limit: str | None = None  # DuckDB buffer pool of a refresh (None: the reader's)
    # Requests this long before the newest span are sealed (analytics.rollup.SealedRequests);
    # None: every refresh computes every request from its spans.
    seal_after: float | None = 3600.0

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> ExporterConfig:
        from infermeter.agent.settings import ConfigurationError

        if not values.get("store"):
            raise ConfigurationError("no store: pass --store PATH or set INFERMETER_STORE")
        options = RollupOptions(
            window=timedelta(seconds=values["window"]),
            window_end=values["window_end"],
            economics_window=timedelta(seconds=values["economics_window"]),
            top_tenants=values["top_tenants"],
            top_values=values.get("top_values", 20),
            budgets=load_budgets(values.get("budgets")),
        )
        return cls(
            store=str(values["store"]),
            options=options,
            prices=values.get("prices"),
            deployments=values.get("deployments"),
            slo_ms=values.get("slo_ms"),
            request_rows_after=values.get("request_rows_after"),
            host=values.get("host", "127.0.0.1"),
            port=values.get("port", 9465),
            refresh_interval=values.get("refresh_interval", 30.0),
            memory_limit=values.get("memory_limit"),
            seal_after=values.get("seal_after", 3600.0),
        )


def read_drift(store: str | Path) -> pl.DataFrame | None:
    """The latest drift results of ``store`` (None when the drift functions are not
    installed; an empty frame when there are none yet)."""
    try:
        from infermeter.analytics.drift import read_drift_results, results_path
    except ImportError:
        return None
    # Given a path, read_drift_results opens read-only and waits out a writing drift run.
    return read_drift_results(results_path(store))


def _families(snapshot: Snapshot | None, health: Mapping[str, float]) -> list[Metric]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    families: list[Metric] = []
    for spec in Catalog.all():
        family: Metric
        if spec.kind == "counter":
            family = CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
        else:
            family = GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)
        if spec.name in health:
            family.add_metric([], health[spec.name])
        elif snapshot is not None:
            for sample in snapshot.samples.get(spec.name, ()):
                family.add_metric(list(sample.labels), sample.value)
        families.append(family)
    return families


class MetricsExporter:
    """A prometheus-client collector serving the latest rollups of one store.

    ``refresh()`` computes once (the background thread calls it every interval);
    ``collect()`` is what a scrape calls and only returns prepared families.
    """

    def __init__(self, config: ExporterConfig) -> None:
        from infermeter.analytics import load_deployments, load_prices

        self.config = config
        # Fail fast on bad pricing / deployment files, before serving anything.
        self.prices = load_prices(config.prices)
        self.deployments = load_deployments(
            config.deployments, prices=self.prices, slo_ms=config.slo_ms
        )
        self.snapshot: Snapshot | None = None
        self.refresh_errors = 0
        self.last_error: str | None = None
        self._drift: pl.DataFrame | None = None
        self._health: dict[str, float] = {Catalog.EXPORTER_REFRESH_ERRORS_TOTAL.name: 0.0}
        self._prepared: list[Metric] = _families(None, self._health)
        self._refreshed = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._sealed: SealedRequests | None = None
        self._sealing = config.seal_after is not None

    # -- prometheus-client collector protocol -------------------------------------------
    def describe(self) -> list[Metric]:
        return _families(None, {})

    def collect(self) -> Iterator[Metric]:
        yield from self._prepared  # swapped atomically by refresh(); never computed here

    # -- refreshing ---------------------------------------------------------------------
    def refresh(self, now: datetime | None = None) -> bool:
        """Recompute the rollups; on failure keep the previous ones. True on success."""
        from infermeter.analytics import open as open_analysis

        started = time.monotonic()
        try:
            try:
                self._drift = read_drift(self.config.store)
            except Exception as exc:  # noqa: BLE001 - a drift file being written is not fatal
                log.warning(
                    "infermeter serve: drift results unavailable (%s); keeping the previous ones",
                    _one_line(exc),
                )
            with open_analysis(
                self.config.store,
                prices=self.prices,
                deployments=self.deployments,
                request_rows_after=self.config.request_rows_after,
                memory_limit=_buffer_pool(self.config.memory_limit),  # DuckDB stores only
            ) as analysis:
                snapshot = analysis.snapshot(
                    self.config.options,
                    drift=self._drift,
                    now=now,
                    previous_tenants=self.snapshot.named_tenants if self.snapshot else (),
                    previous_values=self.snapshot.named_values if self.snapshot else None,
                    sealed=self._sealed_requests(),
                )
        except Exception as exc:  # noqa: BLE001 - the exporter must keep serving
            self.refresh_errors += 1
            self.last_error = _one_line(exc)
            log.warning(
                "infermeter serve: refresh failed (%s); serving the previous values",
                self.last_error,
            )
            self._health[Catalog.EXPORTER_REFRESH_ERRORS_TOTAL.name] = float(self.refresh_errors)
            self._prepared = _families(self.snapshot, self._health)
            return False
        if snapshot.future_spans and not (self.snapshot and self.snapshot.future_spans):
            log.warning(
                "infermeter serve: %d span(s) start more than a day after this clock; "
                "left out of the newest span",
                snapshot.future_spans,
            )
        self.snapshot = snapshot
        self._health.update(
            {
                Catalog.EXPORTER_LAST_REFRESH_TIMESTAMP_SECONDS.name: time.time(),
                Catalog.EXPORTER_REFRESH_DURATION_SECONDS.name: time.monotonic() - started,
            }
        )
        self._prepared = _families(snapshot, self._health)
        self._refreshed.set()
        return True

    def _sealed_requests(self) -> SealedRequests | None:
        """The sealed request facts kept across refreshes (DuckDB stores; created at the
        first refresh, in a folder of this process's own under the store's sidecar)."""
        if self._sealed is not None or not self._sealing:
            return self._sealed
        from infermeter.collectors import StorePaths, parse_store

        self._sealing = False  # one attempt: a folder that cannot be made stays so
        if parse_store(self.config.store).engine != "duckdb" or self.config.seal_after is None:
            return None
        try:
            directory = _sealed_directory(StorePaths.of(self.config.store).sidecar)
            self._sealed = SealedRequests(
                directory, seal_after=timedelta(seconds=self.config.seal_after)
            )
        except OSError as exc:
            log.warning(
                "infermeter serve: no folder for sealed request facts (%s); every refresh "
                "computes every request from its spans",
                _one_line(exc),
            )
        return self._sealed

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.refresh()
            took = time.monotonic() - started
            self._stop.wait(_refresh_pause(self.config.refresh_interval, took))

    def wait_for_refresh(self, timeout: float = 60.0) -> bool:
        """Block until a refresh has succeeded (True) or ``timeout`` passed (False)."""
        return self._refreshed.wait(timeout)

    # -- serving ------------------------------------------------------------------------
    def start(self) -> Self:
        """Serve ``/metrics`` on the configured host/port and start refreshing."""
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.process_collector import ProcessCollector

        registry = CollectorRegistry()
        registry.register(self)
        ProcessCollector(registry=registry)
        self._server, _thread = start_http_server(
            self.config.port, addr=self.config.host, registry=registry
        )
        self._thread = threading.Thread(target=self._loop, name="infermeter-refresh", daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the exporter is not serving")
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/metrics"

    def close(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=max(self.config.refresh_interval, 30.0))
            self._thread = None
        if self._sealed is not None:
            self._sealed.close()
            self._sealed = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


_folders = itertools.count()


def _sealed_directory(sidecar: Path) -> Path:
    """A folder of this exporter's own under the store's sidecar ``serve/`` folder; those
    of processes no longer running (a crash, ``kill -9``) are removed."""
    parent = sidecar / "serve"
    parent.mkdir(parents=True, exist_ok=True)
    for stale in parent.iterdir():
        pid = stale.name.partition("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return parent / f"{os.getpid()}-{next(_folders)}"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _refresh_pause(interval: float, took: float) -> float:
    """Seconds to wait after a refresh that took ``took``: the rest of the interval, and
    never less than the refresh took. ``serve`` shares its machine with what it measures
    (the collector, often the services): once a refresh takes more than half the interval
    (a store grown large, a busy machine), refreshing back to back would take whole cores
    from them; this keeps it to at most half of the exporter's time, and the values'
    age shows in ``infermeter_exporter_last_refresh_timestamp_seconds``."""
    return max(interval - took, took, 0.0)


def _buffer_pool(setting: str | None) -> str | None:
    """A DuckDB size from the ``memory_limit`` setting (a size, or ``N%`` of the memory
    the process may use)."""
    if setting is None or not setting.endswith("%"):
        return setting
    from infermeter.collectors import reader_memory_limit

    return reader_memory_limit(float(setting[:-1]) / 100)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def serve(store: str | Path, **settings: Any) -> MetricsExporter:
    """Start an exporter for ``store`` and return it (serving, refreshing in the
    background). ``settings`` are ``SERVE_SETTINGS`` names (``port=0``, ``window="15m"``,
    ``refresh_interval=5`` ...), resolved like the CLI: argument > environment > default.
    """
    from infermeter.agent.settings import resolve
    from infermeter.dashboards._settings import SERVE_SETTINGS

    values = resolve(SERVE_SETTINGS, {**settings, "store": str(store)})
    return MetricsExporter(ExporterConfig.from_settings(values)).start()


def serve_forever(values: Mapping[str, Any]) -> int:
    """The ``infermeter serve`` command: serve until SIGINT / SIGTERM."""
    config = ExporterConfig.from_settings(values)
    from infermeter.collectors import parse_store

    location = parse_store(config.store)
    if location.engine == "duckdb" and not Path(config.store).expanduser().exists():
        raise FileNotFoundError(
            f"no store at {config.store} (create one with `infermeter collect`)"
        )
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    exporter = MetricsExporter(config).start()
    try:
        window = config.options.window.total_seconds()
        print(
            f"infermeter serve: {exporter.url} (store {config.store}, window "
            f"{_duration(window)} ending at {config.options.window_end}, refresh every "
            f"{_duration(config.refresh_interval)})",
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        exporter.close()
        signal.signal(signal.SIGTERM, previous)
    return 0


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and math.isclose(seconds % size, 0.0, abs_tol=1e-9):
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
