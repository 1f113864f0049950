"""serve's incremental refresh: sealed request facts reused across refreshes, the same
numbers as a snapshot computed from scratch, and the one documented limit (late spans)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from infermeter.agent.settings import resolve
from infermeter.analytics import load_prices
from infermeter.analytics.rollup import Snapshot, by_name, compute_snapshot
from infermeter.collectors import open_reader
from infermeter.collectors.testing import span_record
from infermeter.dashboards._exporter import ExporterConfig, MetricsExporter
from infermeter.dashboards._settings import SERVE_SETTINGS

SEAL = timedelta(minutes=10)
T = datetime(2026, 12, 7, 10, 30)  # the first batch starts here
MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)
VCPU, MEMORY_MB = 2.0, 1024.0  # the /render deployment (a file below)


def _at(minutes: float) -> datetime:
    return T + timedelta(minutes=minutes)


def _render(start: datetime, seconds: float) -> dict[str, Any]:
    """A Cloud Run (request-based) request on instance run-a."""
    return span_record(
        start=start,
        duration_ms=seconds * 1000,
        service_name="renderer",
        service_instance="run-a",
        endpoint="/render",
        runtime="serverless_container",
        platform="gcp_cloud_run",
        memory_mb=MEMORY_MB,
        tenant="acme",
        status_code="OK",
    )


def _batch_job(start: datetime, pod: str) -> dict[str, Any]:
    """A request of a container workload (billed by instance-hour)."""
    return span_record(
        start=start,
        duration_ms=200,
        service_name="batch",
        service_instance=pod,
        endpoint="/batch",
        runtime="container",
        platform="aws_ec2",
        tenant="globex",
        status_code="OK",
    )


def _retrying_call(entry_start: datetime) -> list[dict[str, Any]]:
    """An agent request whose model call is throttled once and retried: two attempt spans
    of one call (same parent and name), the second 6 s later."""
    entry = span_record(
        start=entry_start,
        duration_ms=10_000,
        service_name="agent",
        endpoint="/agent",
        runtime="serverless",
        platform="aws_lambda",
        memory_mb=512.0,
        tenant="initech",
        status_code="OK",
    )
    trace, parent = entry["trace_id"], entry["span_id"]

    def attempt(number: int, start: datetime, duration_ms: float, **outcome: Any) -> dict[str, Any]:
        return span_record(
            start=start,
            duration_ms=duration_ms,
            trace_id=trace,
            parent_span_id=parent,
            is_entry=False,
            name="chat gpt-4o-mini",
            service_name="agent",
            tenant="initech",
            model="gpt-4o-mini",
            provider="openai",
            operation="chat",
            attempt=number,
            **outcome,
        )

    first = attempt(
        1,
        entry_start + SEC,
        500,
        throttled=True,
        status_code="ERROR",
        error_type="RateLimitError",
    )
    second = attempt(
        2, entry_start + 6 * SEC, 900, input_tokens=1000, output_tokens=100, status_code="OK"
    )
    return [entry, first, second]


def _fan_out(first_entry: datetime, trace_id: str) -> list[dict[str, Any]]:
    """One trace entering service 'fan' (instance fan-1) twice, 15 s apart: each call's
    child span (100 and 200 input tokens) belongs to the entry before it."""
    rows = []
    for offset, tokens in ((0, 100), (15, 200)):
        start = first_entry + offset * SEC
        entry = span_record(
            start=start,
            duration_ms=4000,
            trace_id=trace_id,
            service_name="fan",
            service_instance="fan-1",
            endpoint="/fan",
            runtime="container",
            platform="aws_ec2",
            kind="SERVER",
            tenant="acme",
            status_code="OK",
        )
        child = span_record(
            start=start + 2 * SEC,
            duration_ms=1000,
            trace_id=trace_id,
            parent_span_id=entry["span_id"],
            is_entry=False,
            service_name="fan",
            service_instance="fan-1",
            tenant="acme",
            model="gpt-4o-mini",
            provider="openai",
            operation="chat",
            input_tokens=tokens,
            output_tokens=10,
            status_code="OK",
        )
        rows += [entry, child]
    return rows


def _batches(traffic: Callable[..., list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """Three deliveries; with 10-minute seals the watermarks are 11:00, 11:20 and 11:50,
    and each hand-made request below straddles one of them."""
    one = traffic(_at(50), minutes=50, per_minute=2, seed=1)  # tenants, retries, colds
    one += [_render(_at(29.5), 60), _render(_at(30) + 10 * SEC, 40)]  # busy 10:59:30-11:00:50
    one += _retrying_call(_at(30) - 5 * SEC)  # entry before 11:00, the retry after it
    one += [_batch_job(_at(20), "pod-a"), _batch_job(_at(28), "pod-a")]
    one += [_batch_job(_at(35), "pod-b")]
    two = traffic(_at(70), minutes=20, per_minute=2, seed=2)
    two += [_render(_at(55) + 5 * SEC, 20)]  # the instance's third request, 20 s busy
    two += _fan_out(_at(50) - 10 * SEC, "f" * 32)  # entries at 11:19:50 and 11:20:05
    two += [_batch_job(_at(60), "pod-a")]
    three = traffic(_at(100), minutes=30, per_minute=2, seed=3)  # across 12:00
    three += [_batch_job(_at(95), "pod-b")]
    return [one, two, three]


@pytest.fixture
def deployments_file(tmp_path: Path) -> Path:
    path = tmp_path / "deployments.toml"
    path.write_text(
        '[[workloads]]\nendpoint = "/render"\nruntime = "serverless_container"\n'
        f"vcpu = {VCPU}\nmemory_mb = {MEMORY_MB}\n"
    )
    return path


@pytest.fixture
def exporter_for(deployments_file: Path) -> Iterator[Callable[[Path], MetricsExporter]]:
    """A refresh-on-demand exporter (no thread, no port) with 10-minute seals."""
    made: list[MetricsExporter] = []

    def make(store: Path) -> MetricsExporter:
        values = resolve(
            SERVE_SETTINGS,
            {
                "store": str(store),
                "seal_after": "10m",
                "window": "30m",
                "economics_window": "1d",
                "deployments": str(deployments_file),
            },
        )
        exporter = MetricsExporter(ExporterConfig.from_settings(values))
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.close()


def _from_scratch(store: Path, exporter: MetricsExporter, now: datetime) -> Snapshot:
    """compute_snapshot over the whole store, as a refresh without sealed facts does."""
    con = open_reader(store)
    try:
        return compute_snapshot(
            con,
            prices=exporter.prices,
            deployments=exporter.deployments,
            options=exporter.config.options,
            now=now,
        )
    finally:
        con.close()


def _assert_same(have: Snapshot, want: Snapshot) -> None:
    assert set(have.samples) == set(want.samples)
    for name, samples in want.samples.items():
        got = {s.labels: s.value for s in have.samples[name]}
        expected = {s.labels: s.value for s in samples}
        assert set(got) == set(expected), name
        for labels, value in expected.items():
            # Only the order of a float sum may differ (DuckDB adds in parallel).
            assert math.isclose(got[labels], value, rel_tol=1e-12, abs_tol=1e-15), (
                name,
                labels,
                got[labels],
                value,
            )


def _total(snapshot: Snapshot, name: str, **labels: str) -> float:
    """The sum of the samples of metric ``name`` whose labels include ``labels``."""
    return sum(
        value
        for have, value in snapshot.series(by_name(name))
        if all(have.get(k) == v for k, v in labels.items())
    )


def _spans_of_traces_starting(rows: list[dict[str, Any]], since: datetime | None) -> int:
    """How many spans the traces with a span starting at or after ``since`` have in all."""
    traces = {r["trace_id"] for r in rows if since is None or r["start_time"] >= since}
    return sum(r["trace_id"] in traces for r in rows)


def test_refreshes_reuse_sealed_facts_and_match_a_snapshot_from_scratch(
    tmp_path: Path,
    write_store: Callable[..., Path],
    traffic: Callable[..., list[dict[str, Any]]],
    exporter_for: Callable[[Path], MetricsExporter],
) -> None:
    store = tmp_path / "store.duckdb"
    batches = _batches(traffic)
    nows = [_at(50), _at(70), _at(100)]
    watermarks = [_at(30), _at(50), _at(80)]  # newest - 10 min, down to 10 minutes
    written: list[dict[str, Any]] = []
    exporter: MetricsExporter | None = None
    for batch, now, watermark in zip(batches, nows, watermarks, strict=True):
        write_store(store, batch)
        previous_watermark = watermarks[nows.index(now) - 1] if written else None
        written += batch
        exporter = exporter or exporter_for(store)
        reads_before = exporter._sealed.span_reads if exporter._sealed else 0
        assert exporter.refresh(now=now), exporter.last_error
        sealed = exporter._sealed
        assert sealed is not None and sealed.watermark == watermark
        assert exporter.snapshot is not None
        _assert_same(exporter.snapshot, _from_scratch(store, exporter, now))

        # Stage (a) read the spans of the traces with a span from the previous watermark on
        # (the whole store the first time): never a sealed request's spans again, unless
        # its trace also has a span that late.
        assert sealed.span_reads - reads_before == _spans_of_traces_starting(
            written, previous_watermark
        )
        # One request per entry span written.
        entries = sum(bool(r["is_entry"]) for r in written)
        assert _total(exporter.snapshot, "infermeter_requests_total") == entries
    assert exporter is not None and exporter.snapshot is not None
    snapshot = exporter.snapshot
    assert len(exporter._sealed.files) == 3 if exporter._sealed else False

    # The retried call: 1 retry, one throttle event, the second attempt's tokens.
    agent = {"endpoint": "/agent"}
    assert _total(snapshot, "infermeter_tokens_total", type="input", **agent) == 1000
    assert _total(snapshot, "infermeter_throttle_events_total", **agent) == 1
    # The fan-out: two requests, 100 and 200 input tokens (one each, not 300 twice).
    assert _total(snapshot, "infermeter_requests_total", endpoint="/fan") == 2
    assert _total(snapshot, "infermeter_tokens_total", type="input", endpoint="/fan") == 300
    # Cloud Run request-based: the instance was busy 80 s (10:59:30-11:00:50, two requests)
    # + 20 s; its three requests share that by duration and each pays the request fee. The
    # first two were sealed before the third arrived: their share is priced now.
    compute = load_prices(None).compute
    rate = (
        VCPU * compute.cloud_run_request_vcpu_s + MEMORY_MB / 1024 * compute.cloud_run_request_gib_s
    )
    render = _total(snapshot, "infermeter_cost_usd_total", endpoint="/render", component="compute")
    assert math.isclose(render, 100 * rate + 3 * compute.cloud_run_request, rel_tol=1e-9)
    # Containers: the instances seen in each clock hour (at least min_instances), billed
    # by the hour: 10:00 pod-a (1), 11:00 pod-a and pod-b (2), 12:00 pod-b (1).
    deployment = exporter.deployments.for_workload("/batch", "container")
    hours = max(2, deployment.min_instances, 1) + 2 * max(1, deployment.min_instances, 1)
    batch = _total(snapshot, "infermeter_cost_usd_total", endpoint="/batch", component="compute")
    assert math.isclose(batch, hours * deployment.instance_price_per_hour, rel_tol=1e-9)


def test_a_span_stored_after_its_request_was_sealed_counts_only_after_a_restart(
    tmp_path: Path,
    write_store: Callable[..., Path],
    traffic: Callable[..., list[dict[str, Any]]],
    exporter_for: Callable[[Path], MetricsExporter],
) -> None:
    store = tmp_path / "store.duckdb"
    one = traffic(_at(50), minutes=50, per_minute=1, seed=4)
    retry = _retrying_call(_at(10))  # 10:40, sealed at the first refresh (watermark 11:00)
    write_store(store, one + retry)
    exporter = exporter_for(store)
    assert exporter.refresh(now=_at(50)), exporter.last_error
    before = exporter.snapshot
    assert before is not None
    agent_input = _total(before, "infermeter_tokens_total", type="input", endpoint="/agent")
    assert agent_input == 1000

    # Delivered late: another model call of the sealed request (300 input tokens), and a
    # whole request that started before the watermark.
    late_call = span_record(
        start=_at(10) + 8 * SEC,
        duration_ms=300,
        trace_id=retry[0]["trace_id"],
        parent_span_id=retry[0]["span_id"],
        is_entry=False,
        name="rerank call",
        service_name="agent",
        tenant="initech",
        model="gpt-4o-mini",
        provider="openai",
        operation="chat",
        input_tokens=300,
        output_tokens=5,
        status_code="OK",
    )
    late_request = _batch_job(_at(5), "pod-z")
    write_store(store, [late_call, late_request])
    assert exporter.refresh(now=_at(50)), exporter.last_error
    running = exporter.snapshot
    assert running is not None
    scratch = _from_scratch(store, exporter, _at(50))
    # The running serve keeps the sealed facts: neither late span is counted ...
    assert _total(running, "infermeter_tokens_total", type="input", endpoint="/agent") == 1000
    assert _total(running, "infermeter_requests_total", endpoint="/batch") == 0
    # ... while the store holds them (a snapshot from scratch counts them) ...
    assert _total(scratch, "infermeter_tokens_total", type="input", endpoint="/agent") == 1300
    assert _total(scratch, "infermeter_requests_total", endpoint="/batch") == 1
    # ... and a restarted serve (new sealed facts) counts them: its numbers are the store's.
    restarted = exporter_for(store)
    assert restarted.refresh(now=_at(50)), restarted.last_error
    assert restarted.snapshot is not None
    _assert_same(restarted.snapshot, scratch)


def test_the_seal_setting_resolves_like_every_serve_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def seal_after(**given: Any) -> float:
        values = resolve(SERVE_SETTINGS, {"store": "x.duckdb", **given})
        found = ExporterConfig.from_settings(values).seal_after
        return 0.0 if found is None else found

    assert seal_after() == 3600.0  # the request table's own look-ahead for child spans
    monkeypatch.setenv("INFERMETER_SERVE_SEAL_AFTER", "15m")
    assert seal_after() == 900.0
    assert seal_after(seal_after="2h") == 7200.0  # an argument beats the environment
    assert seal_after(seal_after="off") == 0.0  # None: no sealed facts
    with pytest.raises(Exception, match="duration"):
        seal_after(seal_after="soon")


def test_a_restart_deletes_the_facts_of_a_previous_run(
    tmp_path: Path,
    write_store: Callable[..., Path],
    traffic: Callable[..., list[dict[str, Any]]],
    exporter_for: Callable[[Path], MetricsExporter],
) -> None:
    store = write_store(tmp_path / "store.duckdb", traffic(_at(50), minutes=50, seed=5))
    folder = store.with_name(store.name + ".infermeter") / "serve"
    folder.mkdir(parents=True)
    stale = folder / "999999999-0"  # no such process
    stale.mkdir()
    (stale / "slice-000001.parquet").write_bytes(b"not the facts of this store")
    exporter = exporter_for(store)
    assert exporter.refresh(now=_at(50)), exporter.last_error
    assert not stale.exists()
    assert exporter._sealed is not None
    own = exporter._sealed.directory
    assert own.parent == folder and own.exists()
    exporter.close()
    assert not own.exists()
