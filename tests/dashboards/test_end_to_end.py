"""The whole path with real parts: @observe in an app process -> OTLP/HTTP -> the
collector -> the DuckDB store -> the exporter (reading a collector snapshot while the
collector runs) -> a real Prometheus -> the dashboards' queries."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from infermeter.collectors import Collector, open_reader
from infermeter.dashboards import dashboards
from infermeter.dashboards._exporter import serve
from infermeter.dashboards.testing import PrometheusServer, ScrapeTarget, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not PrometheusServer.available() and not os.environ.get("CI"),
        reason="prometheus binary not installed (apt-get install prometheus)",
    ),
]

APP = textwrap.dedent("""
    import sys, time
    import infermeter
    import infermeter.agent

    infermeter.configure(endpoint=sys.argv[1], service_name="chat-api",
                         metrics_exporter="none", runtime="serverless")

    @infermeter.observe(endpoint="/chat", model="gpt-4o-mini", provider="openai",
                        prompt_version="v3", tenant=lambda tenant, i: tenant)
    def handler(tenant, i):
        time.sleep(0.02 if i else 0.3)
        return {"model": "gpt-4o-mini",
                "usage": {"prompt_tokens": 900 + i, "completion_tokens": 120}}

    for i in range(int(sys.argv[2])):
        handler(sys.argv[3], i)
    infermeter.agent.shutdown()
""")


def _count(store: Path) -> int:
    con = open_reader(store)
    try:
        rows = con.execute("SELECT count(*) FROM spans").fetchall()
        return int(rows[0][0])
    finally:
        con.close()


def test_spans_from_observe_reach_prometheus(tmp_path: Path) -> None:
    store = tmp_path / "live.duckdb"
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "INFERMETER_"))}
    with Collector(store, port=0) as collector:
        # Two processes, so two cold starts (the first call of each).
        for tenant, calls in (("acme", 25), ("globex", 15)):
            result = subprocess.run(
                [sys.executable, str(app), collector.url, str(calls), tenant],
                env=env,
                timeout=60,
                capture_output=True,
                text=True,
            )
            assert result.returncode == 0, result.stderr[-3000:]
        wait_for(lambda: _count(store) == 40, timeout=60, what="40 spans in the store")

        with serve(store, port=0, refresh_interval=1, window="1h") as exporter:
            assert exporter.wait_for_refresh(60), exporter.last_error
            target = ScrapeTarget("infermeter", [f"127.0.0.1:{exporter.port}"])
            with PrometheusServer([target], scrape_interval="1s") as prometheus:
                wait_for(
                    lambda: prometheus.query("sum(infermeter_window_requests) == 40"),
                    timeout=60,
                    what="the requests in Prometheus",
                )
                wait_for(
                    lambda: prometheus.query(
                        "count_over_time(infermeter_requests_total[15s]) >= 3"
                    ),
                    timeout=60,
                    what="three scrapes (for rate())",
                )
                (cold,) = prometheus.query("sum(infermeter_cold_starts_total)")
                assert float(cold["value"][1]) == 2
                by_tenant = {
                    r["metric"]["tenant"]: float(r["value"][1])
                    for r in prometheus.query("sum by (tenant) (infermeter_window_requests)")
                }
                assert by_tenant == {"acme": 25, "globex": 15}
                (tokens,) = prometheus.query('sum(infermeter_tokens_total{type="output"})')
                assert float(tokens["value"][1]) == 40 * 120
                (p95,) = prometheus.query(
                    'infermeter_workload_request_latency_seconds{quantile="0.95",endpoint="/chat"}'
                )
                assert 0.02 < float(p95["value"][1]) < 1.0
                overview = dashboards()[0]
                for panel in overview["panels"][1:6]:  # the "Now" stats
                    expr = panel["targets"][0]["expr"]
                    expr = expr.replace("$__rate_interval", "15s")
                    for name in ("endpoint", "runtime", "model", "tenant"):
                        expr = expr.replace(f"${name}", ".*")
                    assert prometheus.query(expr), panel["title"]
