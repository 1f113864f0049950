"""What the weekly report, `recommend` and `compare` cost on top of the metric queries.

Run: ``.venv/bin/python benchmarks/bench_report.py`` (``--spans N``, default 2,000,000;
``--rounds R``, default 3). The store is bench_analytics.py's synthetic week (DuckDB
``range()`` expressions: 3 spans per request, six endpoints on three runtimes, 20 tenants).

Every case starts from the same materialized request table of the week (its cost is shown
once, separately) and runs in this process, rounds interleaved:

- ``metrics x5`` (baseline): the five metric tables bench_analytics.py times against
  hand-written SQL (tenant, model, prompt version, endpoint+runtime, endpoint per day);
- ``weekly_report``: everything the report computes (this week and the previous one per
  dimension, daily trends, workload facts, economics, recommendations, top movers);
- ``write html+md+csv``: rendering a computed report (plotly figures, inlined plotly.js);
- ``recommend`` and ``compare`` (serverless vs container).

The ratio column is each case's median over the baseline's median, measured side by side.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import median, peak_rss_mb, print_table, ratio
from bench_analytics import GROUPINGS, generate


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from datetime import timedelta

    from infermeter.analytics import (
        compare,
        load_deployments,
        load_prices,
        metrics,
        recommend,
        request_table,
        weekly_report,
    )
    from infermeter.analytics.report._weekly import iso_week_bounds
    from infermeter.collectors import open_reader

    with tempfile.TemporaryDirectory(prefix="infermeter-bench-report-") as tmp:
        store = Path(tmp) / "spans.duckdb"
        print(f"generated {args.spans:,} spans in {generate(store, args.spans):.1f} s")
        reader = open_reader(store)
        con = reader.cursor()
        newest = con.execute("SELECT max(start_time) FROM spans").fetchall()[0][0]
        year, week_number, _ = newest.isocalendar()
        week = f"{year}-W{week_number:02d}"
        start, end = iso_week_bounds(week)
        prices = load_prices()
        deployments = load_deployments(None, prices=prices)
        started = time.perf_counter()
        requests = request_table(
            con,
            con.table("spans"),
            prices=prices,
            deployments=deployments,
            since=start - timedelta(days=7),
            until=end,
        ).materialize()
        table_s = time.perf_counter() - started
        report = weekly_report(requests, week=week, prices=prices, deployments=deployments)
        out = Path(tmp) / "out"

        cases: dict[str, Callable[[], Any]] = {
            "metrics x5 (baseline)": lambda: [
                metrics(requests, by=by, bucket=bucket) for by, bucket in GROUPINGS
            ],
            "weekly_report": lambda: weekly_report(
                requests, week=week, prices=prices, deployments=deployments
            ),
            "write html+md+csv": lambda: report.write(out),
            "recommend": lambda: recommend(requests, prices=prices, deployments=deployments),
            "compare": lambda: compare(
                requests, a={"runtime": "serverless"}, b={"runtime": "container"}
            ),
        }
        names = list(cases)
        samples: dict[str, list[float]] = {name: [] for name in names}
        for round_index in range(args.rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(_timed(cases[name]))
            print(f"  round {round_index + 1} done", flush=True)
        base = median(samples["metrics x5 (baseline)"])
        rows: list[list[object]] = [["request table (materialized, shared)", table_s, "", ""]]
        for name in names:
            seconds = median(samples[name])
            rows.append([name, seconds, ratio(seconds, base), len(samples[name])])
        html_mb = (out / f"infermeter-{week}.html").stat().st_size / 1e6
        con.close()
        reader.close()
    print_table(
        f"weekly report {week} on {args.spans:,} spans (median seconds, in-process)",
        ["case", "seconds", "x metrics x5", "rounds"],
        rows,
    )
    print(
        f"\nHTML report: {html_mb:.1f} MB (plotly.js inlined once); "
        f"peak RSS of the run: {peak_rss_mb():.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
