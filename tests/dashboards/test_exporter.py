"""The exporter: what /metrics shows for a store, bounded tenants, refresh behaviour, CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from infermeter.analytics.rollup import choose_named_tenants
from infermeter.dashboards import Catalog
from infermeter.dashboards._exporter import MetricsExporter, serve
from prometheus_client.parser import text_string_to_metric_families

NOW = datetime.now(UTC).replace(tzinfo=None, microsecond=0)

Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        v
        for have, v in samples.get(name, [])
        if all(have.get(k) == want for k, want in labels.items())
    )


@pytest.fixture
def store(
    tmp_path: Path, write_store: Callable[..., Path], traffic: Callable[..., list[dict[str, Any]]]
) -> Path:
    rows = traffic(NOW - timedelta(seconds=5))
    rows += traffic(NOW - timedelta(days=7), minutes=40, seed=2)  # last week's window
    return write_store(tmp_path / "store.duckdb", rows)


@pytest.fixture
def exporter(store: Path) -> Iterator[MetricsExporter]:
    with serve(
        store, port=0, refresh_interval=3600, window="1h", top_tenants=10, economics_window="8d"
    ) as running:
        assert running.wait_for_refresh(60), running.last_error
        yield running


def test_metrics_reflect_the_store(exporter: MetricsExporter) -> None:
    samples = scrape(exporter.url)
    # 300 requests in the window, 240 a week earlier: the counters cover the whole store.
    assert total(samples, "infermeter_requests_total") == 540
    assert total(samples, "infermeter_window_requests") == 300
    assert total(samples, "infermeter_window_requests", endpoint="/chat") == 225
    assert total(samples, "infermeter_window_cold_starts") == 30  # every 10th request
    assert total(samples, "infermeter_window_throttled_requests") == 18  # 13k, not /embed
    p95 = samples["infermeter_workload_request_latency_seconds"]
    chat = [
        v
        for labels, v in p95
        if labels == {"endpoint": "/chat", "runtime": "serverless", "quantile": "0.95"}
    ]
    assert len(chat) == 1 and 1.5 < chat[0] < 5.0
    assert total(samples, "infermeter_slo_seconds", endpoint="/chat") == 3.0
    assert total(samples, "infermeter_workload_cost_per_request_usd", endpoint="/chat") > 0
    assert total(samples, "infermeter_workload_cost_per_request_week_ago_usd", endpoint="/chat") > 0
    assert total(samples, "infermeter_cost_usd_total", component="tokens") > 0
    assert samples["infermeter_time_to_first_chunk_seconds"]
    assert total(samples, "infermeter_serverless_monthly_cost_usd", endpoint="/embed") > 0
    assert samples["infermeter_exporter_last_refresh_timestamp_seconds"][0][1] > 0
    newest = samples["infermeter_newest_span_timestamp_seconds"][0][1]
    assert 0 < NOW.replace(tzinfo=UTC).timestamp() - newest < 30  # the last /embed span
    assert "process_resident_memory_bytes" in samples


def test_every_catalogue_family_is_declared(exporter: MetricsExporter) -> None:
    with urllib.request.urlopen(exporter.url, timeout=10) as response:
        text = response.read().decode()
    declared = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    assert {spec.name for spec in Catalog.all()} <= declared


def test_tenants_beyond_the_top_n_become_other(
    tmp_path: Path,
    write_store: Callable[..., Path],
    traffic: Callable[..., list[dict[str, Any]]],
) -> None:
    tenants = [f"t{i:02d}" for i in range(30)]
    # t00 has the most traffic, then t01 ...: three full rounds plus a descending tail
    rows = traffic(NOW, minutes=45, tenants=tenants)
    rows += traffic(NOW, minutes=10, tenants=tenants[:5], seed=3)
    path = write_store(tmp_path / "many.duckdb", rows)
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text("t29: 100\n")
    with serve(path, port=0, refresh_interval=3600, top_tenants=3, budgets=str(budgets)) as running:
        assert running.wait_for_refresh(60), running.last_error
        samples = scrape(running.url)
    for name in (
        "infermeter_requests_total",
        "infermeter_window_requests",
        "infermeter_request_latency_seconds",
        "infermeter_tenant_month_spend_usd",
    ):
        seen = {labels["tenant"] for labels, _ in samples[name]}
        assert seen <= {"t00", "t01", "t02", "t29", "other"}, (name, seen)
        assert "other" in seen
    assert total(samples, "infermeter_requests_total") == len(rows)
    assert total(samples, "infermeter_tenant_month_budget_usd", tenant="t29") == 100


@given(
    volumes=st.dictionaries(st.text(min_size=1, max_size=5), st.integers(0, 10**6), max_size=60),
    top=st.integers(1, 12),
    budgets=st.lists(st.text(min_size=1, max_size=5), max_size=4),
    previous=st.lists(st.text(min_size=1, max_size=5), max_size=40),
)
def test_named_tenant_set_is_bounded(
    volumes: dict[str, int], top: int, budgets: list[str], previous: list[str]
) -> None:
    named = choose_named_tenants(volumes, top=top, budgets=budgets, previous=previous)
    assert len(named) <= max(2 * top, top + len(set(budgets)))
    assert set(budgets) - {"other"} <= named
    ranked = sorted(volumes, key=lambda t: (-volumes[t], t))
    assert set(ranked[:top]) - {"other"} <= named


def test_scrapes_never_recompute(
    exporter: MetricsExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    from infermeter.analytics import Analysis

    real = Analysis.snapshot
    monkeypatch.setattr(Analysis, "snapshot", lambda *a, **k: calls.append(1) or real(*a, **k))
    for _ in range(5):
        scrape(exporter.url)
    assert calls == []
    assert exporter.refresh()
    assert calls == [1]


def _allowed_memory() -> int:
    """What the process may use: the cgroup's limit, else the machine's RAM."""
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cgroup = Path("/sys/fs/cgroup/memory.max")
    text = cgroup.read_text().strip() if cgroup.exists() else "max"
    return min(machine, int(text)) if text.isdigit() else machine


def _shown_bytes(shown: str) -> float:
    # DuckDB prints the limit in binary units, e.g. "11.7 GiB".
    number, unit = shown.split()
    return float(number) * {"MiB": 2**20, "GiB": 2**30, "TiB": 2**40}[unit]


@pytest.mark.parametrize(
    ("settings", "env", "expected"),
    [
        ({}, None, 0.25),  # a quarter of what the process may use (a report takes half)
        ({}, "300MiB", 300 * 2**20),  # INFERMETER_SERVE_MEMORY_LIMIT
        ({}, "10%", 0.10),  # a share of what the process may use
        ({"memory_limit": "200MiB"}, "300MiB", 200 * 2**20),  # the argument wins
    ],
)
def test_a_refresh_reads_with_the_configured_buffer_pool(
    store: Path,
    monkeypatch: pytest.MonkeyPatch,
    settings: dict[str, Any],
    env: str | None,
    expected: float,
) -> None:
    import infermeter.collectors

    if env is not None:
        monkeypatch.setenv("INFERMETER_SERVE_MEMORY_LIMIT", env)
    seen: list[str] = []
    real = infermeter.collectors.open_reader

    def recording(*args: Any, **kwargs: Any) -> Any:
        con = real(*args, **kwargs)
        [(limit,)] = con.execute(
            "SELECT value FROM duckdb_settings() WHERE name = 'memory_limit'"
        ).fetchall()
        seen.append(str(limit))
        return con

    monkeypatch.setattr(infermeter.collectors, "open_reader", recording)
    with serve(store, port=0, refresh_interval=3600, **settings) as running:
        assert running.wait_for_refresh(60), running.last_error
    wanted = expected * _allowed_memory() if expected <= 1 else expected
    assert seen
    for shown in seen:
        # DuckDB shows one decimal, truncated: up to 0.1 of the unit (GiB) below.
        assert abs(_shown_bytes(shown) - wanted) <= 0.01 * wanted + 0.1 * 2**30, (shown, wanted)


def test_failed_refresh_keeps_previous_values(exporter: MetricsExporter, store: Path) -> None:
    before = scrape(exporter.url)
    store.rename(store.with_suffix(".moved"))
    assert exporter.refresh() is False
    after = scrape(exporter.url)
    assert total(after, "infermeter_exporter_refresh_errors_total") == 1
    assert total(after, "infermeter_window_requests") == total(before, "infermeter_window_requests")
    assert "no store at" in (exporter.last_error or "")


def test_counters_grow_with_the_store(
    exporter: MetricsExporter,
    store: Path,
    write_store: Callable[..., Path],
    traffic: Callable[..., list[dict[str, Any]]],
) -> None:
    before = total(scrape(exporter.url), "infermeter_requests_total")
    write_store(store, traffic(NOW, minutes=5, seed=9))  # appends to the same file
    assert exporter.refresh()
    assert total(scrape(exporter.url), "infermeter_requests_total") == before + 30


def test_cli_serve_prints_its_port_and_stops_on_sigterm(store: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, infermeter; sys.exit(infermeter.main())",
            "serve",
            "--store",
            str(store),
            "--port",
            "0",
            "--refresh-interval",
            "1h",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "INFERMETER_WINDOW": "2h"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("infermeter serve: http://127.0.0.1:"), line
        assert "window 2h" in line
        url = line.split()[2]
        samples: Samples = {}
        for _ in range(100):
            samples = scrape(url)
            if "infermeter_window_requests" in samples:
                break
            import time

            time.sleep(0.2)
        assert total(samples, "infermeter_window_requests") == 300
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0


def test_cli_serve_missing_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from infermeter import main

    assert main(["serve", "--store", str(tmp_path / "nope.duckdb"), "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("infermeter serve: error: no store at ") and err.count("\n") == 1


def test_drift_without_a_verdict_is_not_reported_as_no_drift(store: Path, tmp_path: Path) -> None:
    import polars as pl
    from infermeter.analytics import DRIFT_RESULT_COLUMNS, load_deployments, load_prices
    from infermeter.collectors import open_reader
    from infermeter.dashboards import compute_snapshot

    base = dict.fromkeys(DRIFT_RESULT_COLUMNS)
    rows = [
        {
            **base,
            "model": "m",
            "prompt_version": "v1",
            "kind": "embedding",
            "feature": "query",
            "method": "classifier",
            "score": 0.91,
            "threshold": 0.55,
            "drifted": True,
            "verdict": "drift",
            "current_n": 400,
        },
        {
            **base,
            "model": "m",
            "prompt_version": "v2",
            "kind": "embedding",
            "feature": "query",
            "method": "classifier",
            "score": None,
            "threshold": 0.55,
            "drifted": None,
            "verdict": "insufficient_data",
            "current_n": 12,
        },
        {
            **base,
            "model": "m",
            "prompt_version": "v3",
            "kind": "embedding",
            "feature": "query",
            "method": "classifier",
            "score": None,
            "threshold": 0.55,
            "drifted": None,
            "verdict": "error",
            "current_n": 300,
        },
    ]
    drift = pl.DataFrame(rows, schema_overrides={"score": pl.Float64, "drifted": pl.Boolean})
    prices = load_prices()
    with open_reader(store) as con:
        snapshot = compute_snapshot(
            con,
            prices=prices,
            deployments=load_deployments(prices=prices),
            drift=drift,
            now=NOW.replace(tzinfo=UTC),
        )
    detected = {
        labels["prompt_version"]: value for labels, value in snapshot.series(Catalog.DRIFT_DETECTED)
    }
    assert detected == {"v1": 1.0}
    samples = {
        labels["prompt_version"]: value
        for labels, value in snapshot.series(Catalog.DRIFT_CURRENT_SAMPLES)
    }
    assert samples == {"v1": 400, "v2": 12, "v3": 300}


def test_label_cardinality_and_length_are_bounded(
    tmp_path: Path, write_store: Callable[..., Path]
) -> None:
    from infermeter.collectors.testing import span_record

    # 240 requests, each with its own huge model, endpoint, prompt version, provider and
    # tenant: without caps, 240 series per cohort metric with 5,000-character labels.
    n, top, top_tenants = 240, 5, 3
    rows = [
        span_record(
            start=NOW - timedelta(minutes=30, seconds=i),
            tenant=f"t{i}",
            model=f"m{i}-" + "x" * 5000,
            provider=f"p{i}",
            endpoint=f"e{i}-" + "y" * 5000,
            prompt_version=f"v{i}",
            runtime="container",
            input_tokens=10,
        )
        for i in range(n)
    ]
    store = write_store(tmp_path / "store.duckdb", rows)
    with serve(
        store, port=0, refresh_interval=3600, top_tenants=top_tenants, top_values=top
    ) as running:
        assert running.wait_for_refresh(60), running.last_error
        with urllib.request.urlopen(running.url, timeout=10) as response:
            text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    limits = {"tenant": top_tenants, "model": top, "endpoint": top, "prompt_version": top}
    limits |= {"provider": top}
    for name, series in samples.items():
        for label, limit in limits.items():
            values = {labels[label] for labels, _ in series if label in labels}
            # A fresh exporter names the top N (ties broken by name) and sums the rest.
            assert len(values - {"", "other"}) <= limit, (name, label, len(values))
        for labels, _ in series:
            assert all(len(v) <= 128 for v in labels.values()), name
    assert total(samples, "infermeter_requests_total") == n  # nothing lost, only merged
    assert total(samples, "infermeter_requests_total", model="other") == n - top
    assert len(text) < 2_000_000


def test_the_buffer_pool_setting_takes_a_size_or_a_share() -> None:
    from infermeter.dashboards._settings import parse_memory_share_or_size

    assert parse_memory_share_or_size("2GiB") == "2GiB"
    assert parse_memory_share_or_size(" 12.5% ") == "12.5%"
    for bad in ("0%", "150%", "lots", "-1GiB"):
        with pytest.raises(ValueError):
            parse_memory_share_or_size(bad)


def test_a_slow_refresh_waits_as_long_as_it_took_before_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refreshes keep at most half of serve's time: after one longer than half the
    interval, the exporter waits as long as it took (not back to back)."""
    from types import SimpleNamespace

    from infermeter.analytics.rollup import RollupOptions
    from infermeter.dashboards import _exporter

    exporter = MetricsExporter(
        _exporter.ExporterConfig(
            store=str(tmp_path / "s.duckdb"), options=RollupOptions(), refresh_interval=30.0
        )
    )
    clock = [1000.0]
    durations = iter([5.0, 20.0, 45.0])  # quick, over half the interval, over the interval
    waits: list[float] = []

    def refresh() -> bool:
        clock[0] += next(durations)
        return True

    def wait(timeout: float) -> bool:
        waits.append(timeout)
        if len(waits) == 3:
            exporter._stop.set()
        return exporter._stop.is_set()

    monkeypatch.setattr(_exporter, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(exporter, "refresh", refresh)
    monkeypatch.setattr(exporter._stop, "wait", wait)
    exporter._loop()
    assert waits == [25.0, 20.0, 45.0]
