"""Per-call overhead of ``@observe`` next to a hand-written OpenTelemetry span.

Run: ``.venv/bin/python benchmarks/bench_decorator.py`` (``--quick`` for a short run,
``--calls N`` for the memory check's length).

Both sides use the same TracerProvider (BatchSpanProcessor + an exporter that drops
spans) and set the same attributes: the baseline passes the final attribute set of the
observed span at start, which is the cheapest hand-written form. The observed function
returns an OpenAI-style response, so token extraction is part of the measured overhead;
metrics are recorded by infermeter's background recorder into an in-memory reader.
Cases run interleaved in one process (medians over rounds); that is repeated in
``--runs`` separate processes (default 5) and the tables show every run's ratio, their
median, the worst run and the spread of per-round ratios. Targets (issue 18, CPU of the
calling thread): <= 1.10x a bare span as the median of runs and <= 1.2x in the worst run,
sync and async; <= 1.3x over the API-only no-op path, where ``@observe`` and a bare span
run with only the OpenTelemetry API present (no SDK provider). The memory check runs N
calls and prints RSS and live objects.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    Case,
    async_case,
    current_rss_mb,
    freeze_heap,
    interleaved,
    median,
    print_table,
    sync_case,
    target,
)
from infermeter.agent import _pipeline
from infermeter.agent._recorder import RECORDER, Instruments
from opentelemetry import trace
from opentelemetry.metrics import NoOpMeter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import infermeter


class DropExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


RESPONSE = SimpleNamespace(
    model="gpt-4o-mini-2024-07-18",
    usage=SimpleNamespace(
        prompt_tokens=812,
        completion_tokens=96,
        prompt_tokens_details=SimpleNamespace(cached_tokens=512),
        completion_tokens_details=SimpleNamespace(reasoning_tokens=0),
    ),
)

TAGS: dict[str, Any] = {
    "operation": "chat",
    "provider": "openai",
    "model": "gpt-4o-mini",
    "prompt_name": "answer",
    "prompt_version": "v3",
    "endpoint": "/answer",
    "runtime": "container",
}


def tenant_of(request: dict[str, str]) -> str:
    return request["tenant"]


@infermeter.observe(tenant=tenant_of, **TAGS)
def observed(request: dict[str, str]) -> object:
    return RESPONSE


@infermeter.observe(tenant=tenant_of, **TAGS)
async def observed_async(request: dict[str, str]) -> object:
    return RESPONSE


def final_attributes() -> dict[str, Any]:
    """The attribute set an observed call ends with (read from one real call)."""
    from infermeter.agent import testing

    with testing.capture() as cap:
        observed({"tenant": "acme"})
    attributes = dict(cap.spans[0].attributes or {})
    attributes["faas.coldstart"] = False
    attributes.pop("infermeter.init_duration", None)
    return attributes


CASES = {
    # case -> its baseline
    "@observe (sync)": "bare span (sync)",
    "@observe (async)": "bare span (async)",
    "@observe, API only": "bare no-op span (API only)",
}
CLOCKS = {
    "thread": "CPU of the calling thread (time.thread_time)",
    "process": "CPU of the whole process, incl. export and metric threads (time.process_time)",
}
# Targets on the calling thread's CPU: (case, median-of-runs limit, worst-run limit).
TARGETS = [
    ("@observe (sync)", 1.10, 1.2),
    ("@observe (async)", 1.10, 1.2),
    ("@observe, API only", 1.3, None),
]


def measure(rounds: int, iterations: int) -> dict[str, dict[str, list[float]]]:
    """µs per call of every case, per clock: one value per interleaved round."""
    config = infermeter.configure(
        service_name="bench",
        span_exporter=DropExporter(),
        metric_reader=InMemoryMetricReader(),
        set_global=False,
        flush_on_return=False,
    )
    attributes = final_attributes()
    sdk_pipeline = _pipeline.active()
    assert config.tracer_provider is not None
    tracer = config.tracer_provider.get_tracer("bench")
    span_name = "chat gpt-4o-mini"
    kind = trace.SpanKind.CLIENT
    request = {"tenant": "acme"}

    noop_pipeline = _pipeline.Pipeline(
        sdk_pipeline.settings,
        sdk_pipeline.runtime,
        trace.NoOpTracer(),
        Instruments.from_meter(NoOpMeter("bench")),
        enabled=True,
        flush_on_return=False,
    )
    noop_tracer = trace.NoOpTracer()

    def bare() -> object:
        with tracer.start_as_current_span(span_name, kind=kind, attributes=attributes):
            return RESPONSE

    async def bare_async() -> object:
        with tracer.start_as_current_span(span_name, kind=kind, attributes=attributes):
            return RESPONSE

    def bare_noop() -> object:
        with noop_tracer.start_as_current_span(span_name, kind=kind, attributes=attributes):
            return RESPONSE

    def with_pipeline(pipeline: _pipeline.Pipeline, case: Case) -> Case:
        def run(n: int) -> float:
            _pipeline.push_override(pipeline)
            try:
                return case(n)
            finally:
                _pipeline.pop_override(pipeline)

        return run

    loop = asyncio.new_event_loop()
    clocks = {"thread": time.thread_time, "process": time.process_time}
    freeze_heap()
    result: dict[str, dict[str, list[float]]] = {}
    for key, clock in clocks.items():
        cases: dict[str, Case] = {
            "bare span (sync)": sync_case(bare, clock),
            "@observe (sync)": sync_case(lambda: observed(request), clock),
            "bare span (async)": async_case(bare_async, loop, clock),
            "@observe (async)": async_case(lambda: observed_async(request), loop, clock),
            "bare no-op span (API only)": sync_case(bare_noop, clock),
            "@observe, API only": with_pipeline(
                noop_pipeline, sync_case(lambda: observed(request), clock)
            ),
        }
        result[key] = interleaved(cases, rounds=rounds, iterations=iterations)
        RECORDER.drain()
    loop.close()
    return result


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def _spawn_run(rounds: int, iterations: int) -> dict[str, dict[str, list[float]]]:
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            "--rounds",
            str(rounds),
            "--iterations",
            str(iterations),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, dict[str, list[float]]] = json.loads(output.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (smoke run)")
    parser.add_argument("--runs", type=int, default=5, help="separate processes (default 5)")
    parser.add_argument("--rounds", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--iterations", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--calls",
        type=int,
        default=1_000_000,
        help="calls in the memory check (default 1,000,000; 0 skips it)",
    )
    args = parser.parse_args(argv)
    rounds, iterations = (5, 500) if args.quick else (21, 2000)
    rounds = args.rounds or rounds
    iterations = args.iterations or iterations
    if args.child:
        print(json.dumps(measure(rounds, iterations)))
        infermeter.agent.shutdown()
        return 0

    runs = [_spawn_run(rounds, iterations) for _ in range(args.runs)]
    for clock, title in CLOCKS.items():
        rows = []
        for case, base in CASES.items():
            per_run = [median(r[clock][case]) / median(r[clock][base]) for r in runs]
            per_round = [
                value / baseline
                for r in runs
                for value, baseline in zip(r[clock][case], r[clock][base], strict=True)
            ]
            rows.append(
                [
                    case,
                    median([median(r[clock][case]) for r in runs]),
                    median([median(r[clock][base]) for r in runs]),
                    " ".join(f"{x:.2f}" for x in per_run),
                    f"{median(per_run):.2f}x",
                    f"{max(per_run):.2f}x",
                    f"{_quantile(per_round, 0.1):.2f}-{_quantile(per_round, 0.9):.2f}",
                ]
            )
        print_table(
            f"{title}: ratio to the baseline in each of {args.runs} runs (separate processes; "
            f"each the median of {rounds} interleaved rounds x {iterations} calls; "
            f"python {sys.version.split()[0]})",
            [
                "case",
                "µs",
                "baseline µs",
                "ratio per run",
                "median",
                "worst run",
                "p10-p90 of rounds",
            ],
            rows,
        )
    print()
    for case, median_limit, worst_limit in TARGETS:
        per_run = [median(r["thread"][case]) / median(r["thread"][CASES[case]]) for r in runs]
        target(
            f"decorator {case} / {CASES[case]}, median of runs",
            f"{median(per_run):.2f}x",
            f"<= {median_limit}x",
            median(per_run) <= median_limit,
        )
        if worst_limit is not None:
            target(
                f"decorator {case} / {CASES[case]}, worst of {args.runs} runs",
                f"{max(per_run):.2f}x",
                f"<= {worst_limit}x",
                max(per_run) <= worst_limit,
            )

    if args.calls > 0:
        infermeter.configure(
            service_name="bench",
            span_exporter=DropExporter(),
            metric_reader=InMemoryMetricReader(),
            set_global=False,
            flush_on_return=False,
        )
        freeze_heap()
        memory_check(args.calls, {"tenant": "acme"})
    infermeter.agent.shutdown()
    return 0


def memory_check(calls: int, request: dict[str, str]) -> None:
    checkpoints = sorted({calls // 10, calls // 2, calls})
    gc.collect()
    rows: list[list[object]] = [["0", current_rss_mb(), len(gc.get_objects()), 0]]
    done = 0
    for checkpoint in checkpoints:
        while done < checkpoint:
            observed(request)
            done += 1
        RECORDER.drain()
        gc.collect()
        rows.append(
            [f"{checkpoint:,}", current_rss_mb(), len(gc.get_objects()), RECORDER.pending()]
        )
    print_table(
        f"memory over {calls:,} observed calls (RSS after draining the metric queue)",
        ["calls", "RSS MiB", "GC-tracked objects", "queued metrics"],
        rows,
    )


if __name__ == "__main__":
    raise SystemExit(main())
