"""Run every benchmark, one after another, each in its own process; print their tables,
then every figure that has a target with its target and whether it is met.

    python benchmarks/run.py            # the sizes the issues name (10M spans: ~15 min, ~10 GB
                                        # for the pandas case; the growth curves go to 30M
                                        # spans and 200k vectors; the soak runs 10 min)
    python benchmarks/run.py --quick    # small sizes: a smoke run of every benchmark
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import print_table

HERE = Path(__file__).resolve().parent

# name -> (what it compares, arguments at the size, arguments for a quick run);
# the script is bench_<name>.py unless SCRIPTS says otherwise.
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "decorator": (
        "@observe vs a hand-written OTel span, 5 runs; memory over 1M calls",
        [],
        ["--quick", "--runs", "2", "--calls", "100000"],
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
    "analytics-growth": (
        "growth curve: metric tables at three store sizes (time and memory exponents)",
        ["--spans", "1000000,10000000,30000000", "--rounds", "1", "--no-pandas"],
        ["--spans", "100000,200000,400000", "--rounds", "1", "--no-pandas"],
    ),
    "drift-growth": (
        "growth curve: drift at three window sizes (time and memory exponents)",
        ["--sizes", "5000,50000,200000"],
        ["--sizes", "1000,2000,4000"],
    ),
    "soak": (
        "the real pipeline under steady load: lost spans, RSS and reader latency over time",
        [],
        ["--quick"],
    ),
}
SCRIPTS = {
    "analytics-growth": "bench_analytics.py",
    "drift-growth": "bench_drift.py",
    "soak": "soak.py",
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
    targets: list[list[str]] = []
    for name in args.names or list(BENCHMARKS):
        what, full, quick = BENCHMARKS[name]
        print(f"\n=== {name}: {what}", flush=True)
        started = time.monotonic()
        script = HERE / SCRIPTS.get(name, f"bench_{name}.py")
        with subprocess.Popen(
            [sys.executable, str(script), *(quick if args.quick else full)],
            stdout=subprocess.PIPE,
            text=True,
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                if line.startswith("TARGET\t"):
                    targets.append(line.rstrip("\n").split("\t")[1:])
                print(line, end="", flush=True)
        code = process.returncode
        print(f"=== {name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if targets:
        print_table(
            "every figure with a target" + (" (quick run: small sizes)" if args.quick else ""),
            ["figure", "value", "target", "status"],
            targets,
        )
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
