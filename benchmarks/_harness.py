"""Small shared helpers for the benchmarks: interleaved timing, medians, ratios, memory, tables.

Machines here are shared and noisy, so a benchmark never compares numbers taken at
different times: every case runs once per round, rounds interleave the cases, and the
report uses medians over rounds and ratios against a baseline measured in the same run.

A *case* is a callable ``run(n) -> seconds`` that performs ``n`` iterations and returns
the elapsed wall time, so sync code, async code (running its own event loop) and batch
workloads all fit the same loop. ``sync_case`` and ``async_case`` build the common ones.
"""

from __future__ import annotations

import asyncio
import gc
import math
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

__all__ = [
    "Case",
    "async_case",
    "current_rss_mb",
    "freeze_heap",
    "interleaved",
    "median",
    "peak_rss_mb",
    "print_growth",
    "print_table",
    "ratio",
    "sync_case",
    "target",
]

Case = Callable[[int], float]


def sync_case(fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> Case:
    """A case that calls ``fn()`` n times. ``clock=time.thread_time`` measures the CPU time
    of the calling thread only (work handed to background threads excluded)."""

    def run(n: int) -> float:
        start = clock()
        for _ in range(n):
            fn()
        return clock() - start

    return run


def async_case(
    fn: Callable[[], Awaitable[object]],
    loop: asyncio.AbstractEventLoop,
    clock: Callable[[], float] = time.perf_counter,
) -> Case:
    """A case that awaits ``fn()`` n times inside one task on ``loop``."""

    async def body(n: int) -> float:
        start = clock()
        for _ in range(n):
            await fn()
        return clock() - start

    def run(n: int) -> float:
        return loop.run_until_complete(body(n))

    return run


def interleaved(
    cases: Mapping[str, Case],
    *,
    rounds: int = 15,
    iterations: int = 2000,
    warmup: int = 1,
    per: float = 1e-6,
) -> dict[str, list[float]]:
    """Per-iteration time of each case (in units of ``per``; µs by default), one value per round.

    Cases run in a rotated order each round so that none always runs first (after a GC
    pause or a frequency change); warm-up rounds are discarded.
    """
    names = list(cases)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(warmup + rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed = cases[name](iterations)
            if round_index >= warmup:
                samples[name].append(elapsed / iterations / per)
    return samples


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else float("inf")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()
    return pages * resource.getpagesize() / (1024 * 1024)


def freeze_heap() -> None:
    """Move everything allocated so far out of the GC's reach (see DESIGN.md: heavy imports
    slow every span ~45% through GC scans; ``gc.freeze()`` after start-up restores it)."""
    gc.collect()
    gc.freeze()


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a plain aligned table (no extra dependency)."""
    cells = [[_format(value) for value in row] for row in rows]
    widths = [
        max(len(str(header)), *(len(row[i]) for row in cells)) if cells else len(str(header))
        for i, header in enumerate(headers)
    ]
    print(f"\n{title}")
    pairs = zip(headers, widths, strict=True)
    print("  ".join(str(header).ljust(width) for header, width in pairs))
    print("  ".join("-" * width for width in widths))
    for row in cells:
        print(
            "  ".join(
                value.rjust(width) if i else value.ljust(width)
                for i, (value, width) in enumerate(zip(row, widths, strict=True))
            )
        )


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def target(figure: str, value: str, goal: str, met: bool) -> None:
    """Print one figure with its target on a line ``run.py`` collects for its summary."""
    print(f"TARGET\t{figure}\t{value}\t{goal}\t{'met' if met else 'NOT MET'}", flush=True)


def print_growth(
    title: str, unit: str, points: Mapping[str, Sequence[tuple[int, float, float]]]
) -> None:
    """Time and peak memory of each case at each size, and the growth exponent between
    consecutive sizes (log-log slope: 1.0 = linear, above it = super-linear growth)."""
    rows: list[list[object]] = []
    for case, series in points.items():
        ordered = sorted(series)
        for i, (size, seconds, rss) in enumerate(ordered):
            time_slope = memory_slope = ""
            if i:
                before, before_s, before_rss = ordered[i - 1]
                step = math.log(size / before)
                time_slope = f"{math.log(seconds / before_s) / step:.2f}"
                memory_slope = f"{math.log(rss / before_rss) / step:.2f}"
            rows.append([case, f"{size:,}", seconds, rss, time_slope, memory_slope])
    print_table(
        title,
        ["case", unit, "seconds", "peak RSS MiB", "time exponent", "memory exponent"],
        rows,
    )
