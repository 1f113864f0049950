"""The weekly metric tables on ClickHouse (chdb in-process) next to the DuckDB file.

    python benchmarks/bench_clickhouse.py                          # 1M and 10M spans
    python benchmarks/bench_clickhouse.py --spans 1000000 --keep /tmp/bench-ch

The spans of ``bench_analytics.py`` (3 per request, one week) are generated into a DuckDB
store file, and the same rows are written to a chdb ``otel_traces`` table as the
OpenTelemetry Collector's clickhouseexporter would (attributes as strings in a Map) in
bulk: the store's spans go once to Parquet and one ``INSERT … SELECT … FROM file()`` runs
inside chdb. ``infermeter clickhouse init`` then creates the views and builds
``infermeter_requests`` (the backfill of the request rollup). ``--keep DIR`` keeps both
stores there and reuses them on the next run (a new migration rebuilds only the rollup).

Cases, each in its own process (so its peak RSS is its own), rounds interleaved; each
opens the store for the week and computes every metric column by tenant, by model, by
prompt version and by endpoint x runtime (the weekly tables) from one request table:

- ``duckdb file``: the baseline;
- ``chdb step 1``: the week's spans pulled from ``infermeter_spans`` as Arrow into an
  in-memory DuckDB, then the same analytics (``request_rows_after=never``);
- ``chdb step 2``: request rows merged inside ClickHouse from ``infermeter_requests``
  (plus the spans of the traces the rollup leaves to the spans), priced and measured in
  DuckDB (``request_rows_after=0``).

"same numbers" compares every metric column with the baseline's (1e-6 relative).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _harness import median, peak_rss_mb, print_table, ratio, target  # noqa: E402

GROUPINGS: list[tuple[str, ...]] = [
    ("tenant",),
    ("model",),
    ("prompt_version",),
    ("endpoint", "runtime"),
]
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
    """The DuckDB store's spans as otel_traces rows in chdb (in bulk: the store's spans
    written once to Parquet, then one ``INSERT … SELECT … FROM file()`` inside chdb), then
    ``clickhouse init`` (views + the request rollup, backfilled). A directory whose
    ``otel_traces`` already holds the store's spans is reused (``--keep``)."""
    import duckdb
    from infermeter.collectors import parse_store
    from infermeter.collectors._clickhouse_schema import OTEL_TRACES_DDL, clickhouse_init

    con = duckdb.connect(str(store), read_only=True)
    ((expected,),) = con.execute("SELECT count(*) FROM spans").fetchall()
    client = parse_store(f"chdb://{directory}").client()
    client.command(OTEL_TRACES_DDL.format(table="otel_traces"))
    have = int(client.query("SELECT count() FROM otel_traces").result_rows[0][0])
    loaded = 0.0
    if have != expected:
        client.command("TRUNCATE TABLE otel_traces")
        parquet = directory.with_suffix(".parquet")
        con.execute(f"COPY spans TO '{parquet}' (FORMAT parquet)")
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
        parquet.unlink()
    con.close()
    started = time.perf_counter()
    clickhouse_init(client)  # views + the request rollup (backfilled by a new migration)
    rollup = time.perf_counter() - started
    client.close()
    return {"load_s": loaded, "init_s": rollup}


def _tables(store: str, request_rows_after: str | None, memory_limit: str) -> dict[str, Any]:
    import infermeter.analytics as analytics
    from infermeter.analytics.query import metric_inputs, metrics

    options: dict[str, Any] = {"memory_limit": memory_limit}
    if request_rows_after is not None:
        options["request_rows_after"] = request_rows_after
    with analytics.open(store, since=SINCE, until=UNTIL, **options) as analysis:
        inputs = metric_inputs(analysis.requests(SINCE, UNTIL))
        return {
            ",".join(by): metrics(inputs, by=list(by)).sort(list(by)).to_dicts() for by in GROUPINGS
        }


_CASES = {"duckdb file": None, "chdb step 1": "never", "chdb step 2": "0"}


def _child(case: str, store: str, memory_limit: str) -> None:
    started = time.perf_counter()
    results = _tables(store, _CASES[case], memory_limit)
    elapsed = time.perf_counter() - started
    print(
        json.dumps({"seconds": elapsed, "rss_mb": peak_rss_mb(), "results": results}, default=str)
    )


def _spawn(case: str, store: str, memory_limit: str) -> dict[str, Any]:
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            case,
            "--store",
            store,
            "--memory-limit",
            memory_limit,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    for key, rows in b.items():
        if len(a[key]) != len(rows):
            print(f"  mismatch {key}: {len(a[key])} rows != {len(rows)}")
            return False
        for x, y in zip(a[key], rows, strict=True):
            for name, value in y.items():
                other = x[name]
                if isinstance(value, float) or isinstance(other, float):
                    if value is None or other is None or math.isnan(value) != math.isnan(other):
                        same = value is None and other is None
                    else:
                        same = math.isnan(value) or abs(other - value) <= 1e-6 * max(
                            1.0, abs(value)
                        )
                else:
                    same = other == value
                if not same:
                    print(f"  mismatch {key} {name}: {other} != {value}")
                    return False
    return True


def run_size(
    spans: int, rounds: int, keep: Path | None, step1_max: int, memory_limit: str
) -> dict[str, tuple[float, float, bool]]:
    """Time (median), peak RSS (max) and "same numbers" per case at ``spans`` spans."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        return _run_in(keep, spans, rounds, step1_max, memory_limit)
    with tempfile.TemporaryDirectory(prefix="infermeter-bench-ch-") as tmp:
        return _run_in(Path(tmp), spans, rounds, step1_max, memory_limit)


def _run_in(
    root: Path, spans: int, rounds: int, step1_max: int, memory_limit: str
) -> dict[str, tuple[float, float, bool]]:
    from bench_analytics import generate

    store = root / f"spans-{spans}.duckdb"
    if store.exists():
        print(f"reusing {store}", flush=True)
    else:
        seconds = generate(store, spans)
        print(f"generated {spans:,} spans in {seconds:.1f} s", flush=True)
    directory = root / f"chdb-{spans}"
    setup = _spawn_load(store, directory)
    print(
        f"chdb: otel_traces loaded in bulk in {setup['load_s']:.1f} s (0 = reused); "
        f"clickhouse init (views + request rollup backfill when new) {setup['init_s']:.1f} s",
        flush=True,
    )
    stores = {
        "duckdb file": str(store),
        "chdb step 1": f"chdb://{directory}",
        "chdb step 2": f"chdb://{directory}",
    }
    if spans > step1_max:
        # Step 1 holds the window's spans in memory (~2.5 GiB per million spans measured).
        print(f"  chdb step 1 not run above {step1_max:,} spans (--step1-max-spans)", flush=True)
        del stores["chdb step 1"]
    cases = list(stores)
    samples: dict[str, list[dict[str, Any]]] = {case: [] for case in cases}
    for index in range(rounds):
        shift = index % len(cases)
        for case in cases[shift:] + cases[:shift]:
            samples[case].append(_spawn(case, stores[case], memory_limit))
            print(
                f"  round {index + 1} {case}: {samples[case][-1]['seconds']:.2f} s, "
                f"{samples[case][-1]['rss_mb']:.0f} MiB",
                flush=True,
            )
    baseline = samples["duckdb file"][0]["results"]
    base_s = median([s["seconds"] for s in samples["duckdb file"]])
    rows = []
    out: dict[str, tuple[float, float, bool]] = {}
    for case in cases:
        elapsed = median([s["seconds"] for s in samples[case]])
        rss = max(s["rss_mb"] for s in samples[case])
        same = _same(samples[case][0]["results"], baseline)
        out[case] = (elapsed, rss, same)
        rows.append([case, elapsed, ratio(elapsed, base_s), rss, "yes" if same else "NO"])
    print_table(
        f"weekly metric tables (every column, 4 groupings) on {spans:,} spans "
        f"(median of {rounds} rounds, each case in its own process, DuckDB buffer pool "
        f"{memory_limit})",
        ["case", "seconds", "x duckdb file", "peak RSS MiB", "same numbers"],
        rows,
    )
    step2_s = out["chdb step 2"][0]
    target(
        f"clickhouse step 2 time vs the DuckDB file, {spans:,} spans",
        f"{step2_s / base_s:.2f}x",
        "<= 1.00x",
        step2_s <= base_s,
    )
    same = all(same for _, _, same in out.values())
    target(
        f"clickhouse {' and '.join(c[5:] for c in cases[1:])} numbers, {spans:,} spans",
        "same" if same else "DIFFERENT",
        "same as the DuckDB file",
        same,
    )
    return out


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
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep (and reuse) the built stores in this dir"
    )
    parser.add_argument(
        "--step1-max-spans",
        type=int,
        default=2_000_000,
        help="run chdb step 1 only up to this size (it holds every span in memory)",
    )
    parser.add_argument(
        "--memory-limit",
        default="512MiB",
        help="every case's DuckDB buffer pool (default 512MiB: half of a 1 GiB process, as "
        "bench_analytics; the product's default is half the machine)",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--load", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--store", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.store, args.memory_limit)
        return 0
    if args.load:
        print(json.dumps(load_chdb(Path(args.load), Path(args.store))))
        return 0
    sizes = sorted(args.spans or [1_000_000, 10_000_000])
    results = {
        size: run_size(size, args.rounds, args.keep, args.step1_max_spans, args.memory_limit)
        for size in sizes
    }
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        rss_small, rss_large = results[small]["chdb step 2"][1], results[large]["chdb step 2"][1]
        exponent = math.log(rss_large / rss_small) / math.log(large / small)
        target(
            f"clickhouse step 2 peak RSS growth {small:,} -> {large:,} spans",
            f"{rss_small:.0f} -> {rss_large:.0f} MiB (exponent {exponent:.2f})",
            "flat (exponent <= 0.2)",
            exponent <= 0.2,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
