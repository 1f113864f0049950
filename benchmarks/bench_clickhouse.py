"""The weekly metric tables on ClickHouse (chdb in-process) next to the DuckDB file.

    python benchmarks/bench_clickhouse.py                   # 1M and 10M spans
    python benchmarks/bench_clickhouse.py --spans 1000000   # one size

The spans of ``bench_analytics.py`` (3 per request, one week) are generated into a DuckDB
store file and the same rows are written to a chdb ``otel_traces`` table as the
OpenTelemetry Collector's clickhouseexporter would (attributes as strings in a Map),
then ``infermeter clickhouse init`` creates the views and builds ``infermeter_requests``.
Cases, each in its own process (so its peak RSS is its own), rounds interleaved:

- ``duckdb file``: ``open_reader`` + request table + metric tables (the baseline);
- ``chdb step 1``: the window's spans pulled from ``infermeter_spans`` as Arrow into an
  in-memory DuckDB, then the same analytics;
- ``chdb step 2``: request rows merged from ``infermeter_requests`` and the metric tables
  computed inside ClickHouse (exact quantiles).

The metric tables: requests, error rate, p50/p95/p99 and tokens per request by tenant, by
model, by prompt version and by endpoint x runtime. "same numbers" compares them with the
baseline's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _harness import median, peak_rss_mb, print_table, ratio  # noqa: E402

GROUPINGS: list[tuple[str, ...]] = [
    ("tenant",),
    ("model",),
    ("prompt_version",),
    ("endpoint", "runtime"),
]
COLUMNS = ("requests", "error_rate", "p50_ms", "p95_ms", "p99_ms", "input_tokens_per_request")
SINCE, UNTIL = datetime(2026, 11, 16), datetime(2026, 11, 23)


def _attribute_map(container: str) -> str:
    """ClickHouse SQL building the exporter's attribute Map from the store's typed columns."""
    from infermeter.collectors._clickhouse_schema import attribute_columns

    pairs: list[str] = []
    seen: set[str] = set()
    for spec in attribute_columns():
        if spec.source == "secondary" or spec.column in seen:
            continue
        if (spec.source == "resource") != (container == "resource"):
            continue
        seen.add(spec.column)
        col = spec.column
        if spec.kind == "bool":
            text = f"if({col}, 'true', 'false')"
        elif spec.kind == "int" and spec.offset:
            text = f"toString({col} - {spec.offset})"
        elif spec.scale not in (None, 1.0):
            text = f"toString({col} / {spec.scale!r})"
        else:
            text = f"toString({col})"
        pairs.append(f"tuple('{spec.attribute}', if({col} IS NULL, NULL, {text}))")
    kept = f"arrayFilter(kv -> kv.2 IS NOT NULL, [{', '.join(pairs)}])"
    return (
        f"mapFromArrays(arrayMap(kv -> kv.1, {kept}), arrayMap(kv -> assumeNotNull(kv.2), {kept}))"
    )


def load_chdb(store: Path, directory: Path) -> dict[str, float]:
    """The DuckDB store's spans as otel_traces rows in chdb, then ``clickhouse init``."""
    import duckdb
    from infermeter.collectors import parse_store
    from infermeter.collectors._clickhouse_schema import OTEL_TRACES_DDL, clickhouse_init

    parquet = directory.with_suffix(".parquet")
    con = duckdb.connect(str(store), read_only=True)
    con.execute(f"COPY spans TO '{parquet}' (FORMAT parquet)")
    con.close()
    client = parse_store(f"chdb://{directory}").client()
    client.command(OTEL_TRACES_DDL.format(table="otel_traces"))
    started = time.perf_counter()
    client.command(
        f"""INSERT INTO otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, SpanName,
            SpanKind, ServiceName, ResourceAttributes, ScopeName, SpanAttributes, Duration,
            StatusCode, StatusMessage)
        SELECT toDateTime64(start_time, 9, 'UTC'), trace_id, span_id,
            ifNull(parent_span_id, ''), name,
            concat(upper(substring(kind, 1, 1)), lower(substring(kind, 2))),
            ifNull(service_name, ''), {_attribute_map("resource")}, 'infermeter',
            {_attribute_map("span")}, toUInt64(round(duration_ms * 1e6)),
            concat(upper(substring(status_code, 1, 1)), lower(substring(status_code, 2))),
            ifNull(status_message, '')
        FROM file('{parquet}', Parquet)"""
    )
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    clickhouse_init(client)  # views + the request rollup (backfilled)
    rollup = time.perf_counter() - started
    client.close()
    parquet.unlink()
    return {"load_s": loaded, "init_s": rollup}


def _span_path(store: str) -> dict[str, Any]:
    import infermeter.analytics as analytics

    with analytics.open(store, since=SINCE, until=UNTIL) as analysis:
        return {
            ",".join(by): analysis.metrics(by=list(by), since=SINCE, until=UNTIL)
            .select([*by, *COLUMNS])
            .sort(list(by))
            .to_dicts()
            for by in GROUPINGS
        }


def _step2(store: str) -> dict[str, Any]:
    from infermeter.collectors import parse_store
    from infermeter.collectors._clickhouse_requests import request_metrics

    client = parse_store(store).client()
    try:
        return {
            ",".join(by): request_metrics(client, by=by, since=SINCE, until=UNTIL)
            .select([*by, *COLUMNS])
            .sort(list(by))
            .to_dicts()
            for by in GROUPINGS
        }
    finally:
        client.close()


def _child(case: str, store: str) -> None:
    started = time.perf_counter()
    results = _step2(store) if case == "chdb step 2" else _span_path(store)
    elapsed = time.perf_counter() - started
    print(
        json.dumps({"seconds": elapsed, "rss_mb": peak_rss_mb(), "results": results}, default=str)
    )


def _spawn(case: str, store: str) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", case, "--store", store],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    for key, rows in b.items():
        if len(a[key]) != len(rows):
            return False
        for x, y in zip(a[key], rows, strict=True):
            for name, value in y.items():
                other = x[name]
                if isinstance(value, float) or isinstance(other, float):
                    if abs(float(other) - float(value)) > 1e-6 * max(1.0, abs(float(value))):
                        print(f"  mismatch {key} {name}: {other} != {value}")
                        return False
                elif other != value:
                    print(f"  mismatch {key} {name}: {other} != {value}")
                    return False
    return True


def run_size(spans: int, rounds: int) -> None:
    from bench_analytics import generate

    with tempfile.TemporaryDirectory(prefix="infermeter-bench-ch-") as tmp:
        store = Path(tmp) / "spans.duckdb"
        seconds = generate(store, spans)
        print(f"generated {spans:,} spans in {seconds:.1f} s", flush=True)
        directory = Path(tmp) / "chdb"
        setup = _spawn_load(store, directory)
        print(
            f"chdb: otel_traces loaded in {setup['load_s']:.1f} s; "
            f"clickhouse init (views + request rollup) {setup['init_s']:.1f} s",
            flush=True,
        )
        stores = {
            "duckdb file": str(store),
            "chdb step 1": f"chdb://{directory}",
            "chdb step 2": f"chdb://{directory}",
        }
        cases = list(stores)
        samples: dict[str, list[dict[str, Any]]] = {case: [] for case in cases}
        for index in range(rounds):
            shift = index % len(cases)
            for case in cases[shift:] + cases[:shift]:
                samples[case].append(_spawn(case, stores[case]))
                print(
                    f"  round {index + 1} {case}: {samples[case][-1]['seconds']:.2f} s", flush=True
                )
        baseline = samples["duckdb file"][0]["results"]
        base_s = median([s["seconds"] for s in samples["duckdb file"]])
        rows = []
        for case in cases:
            elapsed = median([s["seconds"] for s in samples[case]])
            rss = max(s["rss_mb"] for s in samples[case])
            same = _same(samples[case][0]["results"], baseline)
            rows.append([case, elapsed, ratio(elapsed, base_s), rss, "yes" if same else "NO"])
        print_table(
            f"weekly metric tables (4 groupings) on {spans:,} spans (median of {rounds} rounds, "
            "each case in its own process)",
            ["case", "seconds", "x duckdb file", "peak RSS MiB", "same numbers"],
            rows,
        )


def _spawn_load(store: Path, directory: Path) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--load", str(store), "--store", str(directory)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--spans", type=int, action="append", help="span count (repeatable; default 1M and 10M)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--load", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--store", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.store)
        return 0
    if args.load:
        print(json.dumps(load_chdb(Path(args.load), Path(args.store))))
        return 0
    for spans in args.spans or [1_000_000, 10_000_000]:
        run_size(spans, args.rounds)
    print("targets: step 2 at least as fast as the DuckDB file; its memory flat as spans grow")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
