"""Per-call overhead of ``@observe`` next to a hand-written OpenTelemetry span.

Run: ``.venv/bin/python benchmarks/bench_decorator.py`` (``--quick`` for a short run,
``--calls N`` for the memory check's length).

Both sides use the same TracerProvider (BatchSpanProcessor + an exporter that drops
spans) and set the same attributes: the baseline passes the final attribute set of the
observed span at start, which is the cheapest hand-written form. The observed function
returns an OpenAI-style response, so token extraction is part of the measured overhead;
metrics are recorded by infermeter's background recorder into an in-memory reader.
Cases run interleaved, one process, medians over rounds; the target is ratio <= 1.2.
The no-op lines compare ``@observe`` and a bare span when only the OpenTelemetry API is
present (no SDK provider). The memory check runs N calls and prints RSS and live objects.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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
    ratio,
    sync_case,
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (smoke run)")
    parser.add_argument(
        "--calls",
        type=int,
        default=1_000_000,
        help="calls in the memory check (default 1,000,000; 0 skips it)",
    )
    args = parser.parse_args(argv)
    rounds, iterations = (5, 500) if args.quick else (21, 2000)

    attributes = final_attributes()
    config = infermeter.configure(
        service_name="bench",
        span_exporter=DropExporter(),
        metric_reader=InMemoryMetricReader(),
        set_global=False,
        flush_on_return=False,
    )
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
    baseline_of = {
        "@observe (sync)": "bare span (sync)",
        "@observe (async)": "bare span (async)",
        "@observe, API only": "bare no-op span (API only)",
    }
    clocks = {
        "CPU of the calling thread (time.thread_time)": time.thread_time,
        "CPU of the whole process, incl. export and metric threads (time.process_time)": (
            time.process_time
        ),
    }
    freeze_heap()
    for title, clock in clocks.items():
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
        samples = interleaved(cases, rounds=rounds, iterations=iterations)
        RECORDER.drain()
        medians = {name: median(values) for name, values in samples.items()}
        rows = []
        for name, value in medians.items():
            base = baseline_of.get(name)
            rows.append(
                [
                    name,
                    value,
                    min(samples[name]),
                    max(samples[name]),
                    f"{ratio(value, medians[base]):.2f}x" if base else "baseline",
                ]
            )
        print_table(
            f"µs per call, {title}; median of {rounds} interleaved rounds x {iterations} "
            f"calls (python {sys.version.split()[0]})",
            ["case", "median µs", "min", "max", "ratio"],
            rows,
        )

    if args.calls > 0:
        memory_check(args.calls, request)
    loop.close()
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
