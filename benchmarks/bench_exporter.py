"""The exporter and the alert evaluator: what a refresh costs, and what a scrape costs.

Run: ``.venv/bin/python benchmarks/bench_exporter.py`` (``--scale S`` multiplies the
synthetic traffic, 1.0 = 14 days of four workloads, ~115k requests; ``--rounds R``).

Two comparisons, each measured side by side in interleaved rounds (medians, ratios):

- **refresh** (background thread, every 30 s by default): ``compute_snapshot`` - the
  counters over the whole store, the rolling window by cohort and workload, last week's
  window, the month to date, 7 days of economics and recommendations - against the floor
  of any rollup: one ``request_table`` over the whole store plus one ``metrics`` by
  workload. Also the built-in alert evaluation on the snapshot.
- **scrape** (what Prometheus waits for): ``GET /metrics`` from a running exporter against
  the same families served from a plain prometheus-client registry (static values) -
  the ratio shows a scrape costs what serialising the samples costs, nothing more.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import interleaved, median, peak_rss_mb, print_table, ratio


def build_store(path: Path, scale: float) -> int:
    import duckdb
    from infermeter.analytics.testing._traffic import synthetic_spans
    from infermeter.collectors import apply_migrations
    from infermeter.collectors.testing import insert_spans

    start = (datetime.now(UTC) - timedelta(days=14)).replace(tzinfo=None, microsecond=0)
    rows = list(synthetic_spans(start, days=14, scale=scale))
    con = duckdb.connect(str(path))
    try:
        apply_migrations(con)
        for i in range(0, len(rows), 50_000):
            insert_spans(con, rows[i : i + 50_000])
    finally:
        con.close()
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from infermeter.alerts import evaluate, load_rules
    from infermeter.analytics import load_deployments, load_prices, metrics, request_table
    from infermeter.analytics.rollup._rollup import RollupOptions, compute_snapshot
    from infermeter.collectors import open_reader
    from infermeter.dashboards._exporter import serve
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.core import GaugeMetricFamily

    directory = Path(tempfile.mkdtemp(prefix="infermeter-bench-exporter-"))
    store = directory / "bench.duckdb"
    started = time.perf_counter()
    spans = build_store(store, args.scale)
    print(f"store: {spans} requests in {time.perf_counter() - started:.1f}s -> {store}")

    prices = load_prices()
    deployments = load_deployments(prices=prices)
    rules = load_rules()
    options = RollupOptions()
    con = open_reader(store)
    snapshot: Any = None

    def floor(n: int) -> float:
        begin = time.perf_counter()
        for _ in range(n):
            table = request_table(
                con, con.table("spans"), prices=prices, deployments=deployments
            ).materialize()
            metrics(table, by=("endpoint", "runtime"))
        return time.perf_counter() - begin

    def refresh(n: int) -> float:
        nonlocal snapshot
        begin = time.perf_counter()
        for _ in range(n):
            snapshot = compute_snapshot(
                con, prices=prices, deployments=deployments, options=options
            )
        return time.perf_counter() - begin

    refresh(1)

    def check(n: int) -> float:
        begin = time.perf_counter()
        for _ in range(n):
            evaluate(rules, snapshot)
        return time.perf_counter() - begin

    results = interleaved(
        {
            "one request_table + metrics (floor)": floor,
            "exporter refresh (compute_snapshot)": refresh,
        },
        rounds=args.rounds,
        iterations=1,
        per=1.0,
    )
    evaluation = interleaved(
        {"alert evaluation": check}, rounds=args.rounds, iterations=20, per=1e-3
    )
    con.close()
    base = median(results["one request_table + metrics (floor)"])
    series = sum(len(s) for s in snapshot.samples.values())
    rows: list[list[object]] = [
        [name, median(values), ratio(median(values), base)] for name, values in results.items()
    ]
    rows.append(
        [
            "alert evaluation (12 rules)",
            median(evaluation["alert evaluation"]) / 1e3,
            ratio(median(evaluation["alert evaluation"]) / 1e3, base),
        ]
    )
    print_table(
        f"refresh: {spans} requests, {series} series exported (medians of {args.rounds} rounds)",
        ["case", "seconds", "x floor"],
        rows,
    )

    # -- scrapes ------------------------------------------------------------------------
    exporter = serve(store, port=0, refresh_interval=3600)
    exporter.wait_for_refresh(600)
    static = CollectorRegistry()
    families = list(exporter.collect())

    class Static:
        def collect(self) -> list[Any]:
            out = []
            for family in families:
                copy = GaugeMetricFamily(family.name, family.documentation)
                copy.samples = list(family.samples)
                out.append(copy)
            return out

    static.register(Static())  # type: ignore[arg-type]
    server, _ = start_http_server(0, addr="127.0.0.1", registry=static)

    def getter(url: str) -> Any:
        def run(n: int) -> float:
            begin = time.perf_counter()
            for _ in range(n):
                with urllib.request.urlopen(url, timeout=30) as response:
                    response.read()
            return time.perf_counter() - begin

        return run

    scrapes = interleaved(
        {
            "prometheus-client, static registry": getter(
                f"http://127.0.0.1:{server.server_port}/metrics"
            ),
            "infermeter serve /metrics": getter(exporter.url),
        },
        rounds=args.rounds * 3,
        iterations=20,
        per=1e-3,
    )
    exporter.close()
    server.shutdown()
    baseline = median(scrapes["prometheus-client, static registry"])
    print_table(
        f"scrape: {series} series (ms per GET, medians)",
        ["case", "ms", "x static"],
        [[name, median(v), ratio(median(v), baseline)] for name, v in scrapes.items()],
    )
    print(f"\npeak RSS {peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
