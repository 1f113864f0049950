"""Run every benchmark, one after another, each in its own process; print their tables.

    python benchmarks/run.py            # the sizes the issues name (10M spans: ~15 min, ~10 GB
                                        # for the pandas case)
    python benchmarks/run.py --quick    # small sizes: a smoke run of every benchmark in ~3 min
    python benchmarks/run.py decorator drift   # only some

Every benchmark measures its cases side by side in one run (interleaved rounds, medians)
and prints ratios against a baseline from that same run: these machines are shared and
noisy, so an absolute time means little.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (what it compares, arguments at the size, arguments for a quick run)
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "decorator": (
        "@observe vs a hand-written OTel span; memory over 1M calls",
        [],
        ["--quick", "--calls", "100000"],
    ),
    "collector": (
        "collector end to end (HTTP + decode + store) vs decode only",
        [],
        ["--rounds", "2", "--batches", "10"],
    ),
    "analytics": (
        "weekly report metric tables vs one hand-written DuckDB query vs pandas",
        [],
        ["--spans", "200000", "--rounds", "1"],
    ),
    "report": (
        "weekly report, recommend, compare vs the metric tables they need",
        [],
        ["--spans", "200000", "--rounds", "1"],
    ),
    "drift": (
        "default drift path vs Evidently's fastest correct method",
        [],
        ["--rows", "5000", "--rounds", "1"],
    ),
    "clickhouse": (
        "weekly metric tables on chdb (step 1 spans, step 2 request rollup) vs the DuckDB file",
        [],
        ["--spans", "100000", "--rounds", "1"],
    ),
    "exporter": (
        "exporter refresh and scrape vs request table + metrics / a static registry",
        [],
        ["--scale", "0.1", "--rounds", "2"],
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    failed: list[str] = []
    for name in args.names or list(BENCHMARKS):
        what, full, quick = BENCHMARKS[name]
        print(f"\n=== {name}: {what}", flush=True)
        started = time.monotonic()
        code = subprocess.call(
            [sys.executable, str(HERE / f"bench_{name}.py"), *(quick if args.quick else full)]
        )
        print(f"=== {name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
