"""Overload: a collector with a tiny queue answers 429 + Retry-After, the real SDK
exporter retries, memory stays bounded, and in the end every span is stored."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from infermeter.collectors._store import StoreWriter
from infermeter.collectors.testing import collector_process, otlp_request, otlp_span, send_otlp
from opentelemetry.sdk.trace import TracerProvider

pytestmark = pytest.mark.slow

MAX_QUEUE = 700


def _health(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url + "/healthz", timeout=30) as response:
        health: dict[str, object] = json.loads(response.read())
    return health


def test_an_overloaded_collector_pushes_back_and_loses_nothing(
    tmp_path: Path, sdk: Callable[..., TracerProvider]
) -> None:
    store = tmp_path / "store.duckdb"
    StoreWriter(store).close()
    # A reader holds the store file, so the collector cannot store anything yet: its
    # small queue fills and the three apps below get pushed back.
    blocker = duckdb.connect(str(store), read_only=True)
    with collector_process(store, max_queue_spans=MAX_QUEUE, queue_wait=0.5) as proc:
        peak = 0
        watching = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not watching.wait(0.02):
                queued = _health(proc.url)["queued_spans"]
                assert isinstance(queued, int)
                peak = max(peak, queued)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            providers = [sdk(proc.traces_endpoint, timeout=120, batch=256) for _ in range(3)]

            def emit(provider: TracerProvider, app: int) -> None:
                tracer = provider.get_tracer("load")
                for i in range(1000):
                    with tracer.start_as_current_span("op", attributes={"app": app, "i": i}):
                        pass
                assert provider.force_flush(120_000)

            apps = [threading.Thread(target=emit, args=(p, n)) for n, p in enumerate(providers)]
            for app in apps:
                app.start()
            deadline = time.monotonic() + 60
            while _health(proc.url)["overloaded_requests"] == 0:
                assert time.monotonic() < deadline, "the apps never hit the full queue"
                time.sleep(0.05)
            time.sleep(1.0)  # a few more rounds of 429 + retry
            blocker.close()  # the store frees up; the backlog drains
            for app in apps:
                app.join()
        finally:
            watching.set()
            watcher.join()
            blocker.close()
        health = _health(proc.url)
        assert proc.stop() == 0, proc.log_text()

    overloaded = health["overloaded_requests"]
    assert isinstance(overloaded, int) and overloaded > 0
    assert health["responses"]["429"] > 0  # type: ignore[index]
    assert peak <= MAX_QUEUE, f"queue grew to {peak} spans past its {MAX_QUEUE}-span bound"
    con = duckdb.connect(str(store), read_only=True)
    stored = con.execute(
        "SELECT count(*), count(DISTINCT (attributes->>'$.app', attributes->>'$.i')) FROM spans"
    ).fetchone()
    con.close()
    assert stored == (3000, 3000)


def test_429_carries_retry_after_and_nothing_is_stored_from_it(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    with collector_process(
        store, max_queue_spans=100, batch_spans=1_000_000, flush_interval=600, queue_wait=0
    ) as proc:
        first = send_otlp(proc.traces_endpoint, otlp_request([otlp_span() for _ in range(80)]))
        refused = send_otlp(proc.traces_endpoint, otlp_request([otlp_span() for _ in range(80)]))
        assert first.status == 200
        assert refused.status == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert proc.stop() == 0
    con = duckdb.connect(str(store), read_only=True)
    assert con.execute("SELECT count(*) FROM spans").fetchone() == (80,)
    con.close()
