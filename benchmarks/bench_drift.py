"""Embedding drift: infermeter's default method against Evidently's correct methods.

    .venv/bin/python benchmarks/bench_drift.py [--rows 50000] [--dim 384] [--rounds 5]

50,000 x 384 reference vectors against 50,000 current ones (unit-normalised, anisotropic,
like real embedding models), once without drift and once with the drift issue's shift
(0.1 sigma per coordinate). Measured side by side in one run, rounds interleaved:

- time per call (median over rounds) of infermeter's default ``classifier`` method, its
  opt-in ``mmd``, and Evidently's two methods that give right answers here — the domain
  classifier (``ModelDriftMethod``, AUC > 0.55) and the bootstrap mean distance
  (``DistanceDriftMethod(bootstrap=True)``) — on the same arrays (Evidently gets the
  pandas frames it requires, built inside its timing);
- the ratio of Evidently's fastest correct method to infermeter's default (target >= 5x);
- peak RSS of each path in a fresh process that loads the same arrays (the ``data only``
  row is that floor), target <= 2 GiB for the default path;
- end to end: ``detect_drift`` reading the vectors from a DuckDB store file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import interleaved, median, print_growth, print_table, ratio, target

os.environ["DO_NOT_TRACK"] = "1"

SHIFT = 2.0  # Mahalanobis distance between the window means: 0.1 sigma x sqrt(384)
EVIDENTLY_CASES = ("evidently model (domain classifier)", "evidently distance (bootstrap)")
DEFAULT_CASE = "infermeter classifier (default)"
END_TO_END = "infermeter end to end (store file -> verdict)"


def _data(rows: int, dim: int, shift: float) -> tuple[Any, Any]:
    from infermeter.analytics.testing._drift import synthetic_embeddings

    return synthetic_embeddings(
        rows, rows, dim, shift=shift, normalise=True, anisotropic=True, seed=7
    )


def _cases(*, evidently: bool = True) -> dict[str, Callable[[Any, Any], tuple[float, bool]]]:
    """name -> fn(reference, current) -> (score, drifted); Evidently's only if asked (its
    import alone adds ~300 MiB to a process)."""

    def ours(reference: Any, current: Any) -> tuple[float, bool]:
        from infermeter.analytics import classifier_drift

        result = classifier_drift(reference, current)
        return result.score, result.drifted

    def ours_mmd(reference: Any, current: Any) -> tuple[float, bool]:
        from infermeter.analytics import mmd_drift

        result = mmd_drift(reference, current)
        return result.score, result.drifted

    ours_cases = {DEFAULT_CASE: ours, "infermeter mmd (opt-in)": ours_mmd}
    if not evidently:
        return ours_cases

    def run_evidently(method: Any) -> Callable[[Any, Any], tuple[float, bool]]:
        def run(reference: Any, current: Any) -> tuple[float, bool]:
            import pandas as pd

            # Current first; fresh frames because Evidently adds a column to them.
            score, drifted, _ = method(pd.DataFrame(current), pd.DataFrame(reference))
            return float(score), bool(drifted)

        return run

    from infermeter.analytics.drift._evidently import import_evidently

    import_evidently()
    from evidently.metrics.embeddings import DistanceDriftMethod, ModelDriftMethod

    return {
        **ours_cases,
        EVIDENTLY_CASES[0]: run_evidently(ModelDriftMethod()),
        EVIDENTLY_CASES[1]: run_evidently(DistanceDriftMethod(bootstrap=True)),
    }


def _store(rows: int, dim: int, directory: Path) -> Path:
    """A store file holding the drifted windows: rows vectors per week."""
    from datetime import datetime, timedelta

    import duckdb
    import numpy as np
    import pyarrow as pa
    from infermeter.collectors import apply_migrations

    reference, current = _data(rows, dim, SHIFT)
    path = directory / "bench.duckdb"
    with duckdb.connect(str(path)) as con:
        apply_migrations(con)
        for start, vectors in (
            (datetime(2026, 11, 9), reference),
            (datetime(2026, 11, 16), current),
        ):
            step = timedelta(days=6) / rows
            flat = pa.array(vectors.ravel(), type=pa.float32())
            batch = pa.table(
                {
                    "trace_id": [f"{i:032x}" for i in range(rows)],
                    "span_id": [f"{i:016x}" for i in range(rows)],
                    "time": pa.array([start + step * i for i in range(rows)], pa.timestamp("us")),
                    "model": ["text-embedding"] * rows,
                    "prompt_version": ["v1"] * rows,
                    "kind": ["query"] * rows,
                    "dim": np.full(rows, dim, dtype=np.int32),
                    "vector": pa.ListArray.from_arrays(
                        pa.array(np.arange(0, rows * dim + 1, dim, dtype=np.int32)), flat
                    ),
                }
            )
            con.register("batch", batch)
            con.execute(
                "INSERT INTO embeddings (trace_id, span_id, time, model, prompt_version, kind,"
                " dim, vector) SELECT trace_id, span_id, time, model, prompt_version, kind,"
                " dim, vector FROM batch"
            )
            con.unregister("batch")
    return path


def _end_to_end(path: Path) -> tuple[float, bool]:
    from infermeter.analytics import detect_drift
    from infermeter.collectors import open_reader

    con = open_reader(path)
    try:
        cursor = con.cursor()
        results = detect_drift(cursor, None, cursor.table("embeddings"))
    finally:
        con.close()
    (row,) = results.iter_rows(named=True)
    return float(row["score"]), row["verdict"] == "drift"


def _peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). getrusage's ru_maxrss survives execve, so a
    child started from a big parent would report the parent's peak."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise OSError("no VmHWM in /proc/self/status")


def _child(case: str, data: Path, store: Path) -> None:
    """Run one case once in this fresh process and print its peak RSS and outcome."""
    import numpy as np

    if case == "end to end":
        start = time.perf_counter()
        score, drifted = _end_to_end(store)
        elapsed = time.perf_counter() - start
    else:
        reference, current = np.load(data / "reference.npy"), np.load(data / "current.npy")
        if case == "data only":
            score, drifted, elapsed = 0.0, False, 0.0
        else:
            fn = _cases(evidently=case.startswith("evidently"))[case]
            start = time.perf_counter()
            score, drifted = fn(reference, current)
            elapsed = time.perf_counter() - start
    print(
        json.dumps(
            {"rss_mb": _peak_rss_mb(), "seconds": elapsed, "score": score, "drifted": drifted}
        )
    )


def _in_child(case: str, data: Path, store: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        case,
        "--data",
        str(data),
        "--store",
        str(store),
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000, help="vectors per window")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--sizes",
        default=None,
        help="growth curve instead: comma-separated vectors per window (the issue's: "
        "5000,50000,200000), infermeter's default path and end to end only",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.data, args.store)
        return
    if args.sizes:
        growth(sorted(int(size) for size in args.sizes.split(",")), args.dim)
        return

    print(
        f"drift: {args.rows:,} x {args.dim} reference vs current, "
        f"{args.rounds} interleaved rounds, {os.cpu_count()} CPUs"
    )
    cases = _cases()
    calm, moved = _data(args.rows, args.dim, 0.0), _data(args.rows, args.dim, SHIFT)

    verdicts: dict[str, tuple[bool, bool]] = {}
    for name, fn in cases.items():
        verdicts[name] = (fn(*calm)[1], fn(*moved)[1])

    def timed(fn: Callable[[], object]) -> Callable[[int], float]:
        def run(n: int) -> float:
            start = time.perf_counter()
            for _ in range(n):
                fn()
            return time.perf_counter() - start

        return run

    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        np.save(data / "reference.npy", moved[0])
        np.save(data / "current.npy", moved[1])
        store = _store(args.rows, args.dim, data)
        timings: dict[str, Callable[[int], float]] = {
            name: timed(lambda fn=fn: fn(*moved)) for name, fn in cases.items()
        }
        timings[END_TO_END] = timed(lambda: _end_to_end(store))
        samples = interleaved(timings, rounds=args.rounds, iterations=1, warmup=1, per=1.0)
        memory = {
            name: _in_child(name, data, store) for name in ("data only", *cases, "end to end")
        }
    seconds = {name: median(values) for name, values in samples.items()}
    correct = [n for n in EVIDENTLY_CASES if verdicts[n] == (False, True)]
    fastest = min(correct, key=seconds.__getitem__) if correct else None

    rows = []
    for name in cases:
        no_drift, drift = verdicts[name]
        rows.append(
            [
                name,
                seconds[name],
                ratio(seconds[name], seconds[DEFAULT_CASE]),
                memory[name]["rss_mb"],
                "yes" if (no_drift, drift) == (False, True) else "NO",
                f"{'drift' if no_drift else 'no_drift'} / {'drift' if drift else 'no_drift'}",
            ]
        )
    rows.append(["data only (floor)", 0.0, 0.0, memory["data only"]["rss_mb"], "", ""])
    rows.append(
        [
            END_TO_END,
            seconds[END_TO_END],
            ratio(seconds[END_TO_END], seconds[DEFAULT_CASE]),
            memory["end to end"]["rss_mb"],
            "yes" if memory["end to end"]["drifted"] else "NO",
            "- / drift",
        ]
    )
    print_table(
        "median seconds per call, x the default's time, peak RSS of a fresh process",
        ["path", "seconds", "x default", "peak RSS MiB", "correct", "verdict (no shift / shift)"],
        rows,
    )
    if fastest is None:
        print("\nno Evidently method was right on both windows")
        return
    speedup = ratio(seconds[fastest], seconds[DEFAULT_CASE])
    rss = memory[DEFAULT_CASE]["rss_mb"]
    print(f"\nEvidently's fastest correct method: {fastest}")
    target(
        f"drift on {args.rows:,} vectors: Evidently's fastest correct method / infermeter",
        f"{speedup:.1f}x",
        ">= 5x",
        speedup >= 5,
    )
    target(
        f"drift on {args.rows:,} vectors: default path peak RSS",
        f"{rss:.0f} MiB",
        "<= 2048 MiB",
        rss <= 2048,
    )


GROWTH_REPEATS = 3  # one call of a fraction of a second is mostly the box's noise


def _seconds(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def growth(sizes: list[int], dim: int) -> None:
    """Seconds (median of 3 calls, after a warm-up call) and peak RSS (fresh process) of the default
    path and of end to end from a store, at each size."""
    import numpy as np

    default = _cases()[DEFAULT_CASE]
    points: dict[str, list[tuple[int, float, float]]] = {DEFAULT_CASE: [], END_TO_END: []}
    for rows in sizes:
        moved = _data(rows, dim, SHIFT)
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp)
            np.save(data / "reference.npy", moved[0])
            np.save(data / "current.npy", moved[1])
            store = _store(rows, dim, data)
            for name, call in (
                (DEFAULT_CASE, lambda moved=moved: default(*moved)),
                (END_TO_END, lambda store=store: _end_to_end(store)),
            ):
                call()
                seconds = statistics.median(_seconds(call) for _ in range(GROWTH_REPEATS))
                child = "end to end" if name == END_TO_END else name
                points[name].append((rows, seconds, _in_child(child, data, store)["rss_mb"]))
        print(f"  {rows:,} vectors done", flush=True)
    print_growth(f"growth: drift, {dim} dimensions", "vectors", points)


if __name__ == "__main__":
    main()
