"""The collector: spans/s end to end (HTTP + decode + write-ahead log + DuckDB) against
decode-only on the same payloads, measured side by side.

Run: ``.venv/bin/python benchmarks/bench_collector.py`` (``--rounds R``, ``--batches B``
batches of 512 spans per round, ``--connections C`` concurrent exporters).

Payloads are what the real OpenTelemetry SDK sends: batches of 512 spans with ~15
attributes (GenAI, FaaS and tenant), encoded by the SDK's own OTLP encoder. Cases, in
interleaved rounds (medians over rounds):

- **decode only**: ``FromString`` + flatten to the store's columns + Arrow tables — the
  exact work the receiver does per request before it queues the rows, on one thread
  in this process. The baseline.
- **end to end**: a real ``infermeter collect`` process; C keep-alive connections POST
  the batches; the clock stops when the collector reports every span *stored* in
  DuckDB (acknowledged means durable in its log; stored means queryable) — asked with
  ``POST /v1/flush`` rather than waiting out the flush interval.
- the same with gzip bodies, and OTLP/JSON (decode only and end to end).

Target (issue 3): end to end / decode only >= 0.5. Also printed: the collector
process's peak RSS.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import interleaved, median, peak_rss_mb, print_table, ratio

SPANS_PER_BATCH = 512


def sdk_payloads(count: int) -> list[bytes]:
    """``count`` distinct OTLP protobuf bodies of 512 spans each, encoded by the SDK."""
    import random

    from infermeter.agent import semconv as sc
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    rnd = random.Random(7)
    resource = Resource.create(
        {
            sc.SERVICE_NAME: "chat",
            sc.CLOUD_PROVIDER: "aws",
            sc.CLOUD_PLATFORM: "aws_lambda",
            sc.CLOUD_REGION: "eu-west-1",
            sc.FAAS_NAME: "chat-fn",
            sc.FAAS_MAX_MEMORY: 1 << 30,
        }
    )
    bodies = []
    for _ in range(count):
        memory = InMemorySpanExporter()
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(SimpleSpanProcessor(memory))
        tracer = provider.get_tracer("infermeter")
        for i in range(SPANS_PER_BATCH):
            with tracer.start_as_current_span(
                "chat gpt-4o",
                attributes={
                    sc.GEN_AI_OPERATION_NAME: "chat",
                    sc.GEN_AI_PROVIDER_NAME: "openai",
                    sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
                    sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06",
                    sc.GEN_AI_USAGE_INPUT_TOKENS: rnd.randint(10, 4000),
                    sc.GEN_AI_USAGE_OUTPUT_TOKENS: rnd.randint(10, 800),
                    sc.GEN_AI_PROMPT_NAME: "support",
                    sc.GEN_AI_PROMPT_VERSION: f"v{rnd.randint(1, 4)}",
                    sc.TENANT_ID: f"tenant-{rnd.randint(1, 40)}",
                    sc.INFERMETER_ENDPOINT: "/chat",
                    sc.INFERMETER_RUNTIME: "serverless",
                    sc.FAAS_COLDSTART: i % 50 == 0,
                    sc.INFERMETER_THROTTLED: rnd.random() < 0.02,
                    sc.GEN_AI_REQUEST_STREAM: True,
                    sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: rnd.random(),
                    "http.route": "/v1/chat",
                },
            ):
                pass
        bodies.append(encode_spans(memory.get_finished_spans()).SerializeToString())
        provider.shutdown()
    return bodies


def decode_case(bodies: list[bytes], content_type: str) -> Callable[[int], float]:
    from infermeter.collectors._decode import decode_request
    from infermeter.collectors._flatten import flatten_request, to_arrow

    def run(n: int) -> float:
        start = time.perf_counter()
        for i in range(n):
            to_arrow(flatten_request(decode_request(bodies[i % len(bodies)], content_type)))
        return time.perf_counter() - start

    return run


class _Collector:
    """A real ``infermeter collect`` process and keep-alive clients posting to it."""

    def __init__(self, folder: Path, connections: int) -> None:
        from infermeter.collectors.testing import collector_process

        self._context = collector_process(folder / "bench.duckdb")
        self.proc = self._context.__enter__()
        self.connections = connections
        self.sent = 0

    def flush(self) -> None:
        request = urllib.request.Request(
            self.proc.url + "/v1/flush",
            data=b"",
            headers={"Authorization": f"Bearer {self.proc.control_token}"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()

    def stored(self) -> int:
        with urllib.request.urlopen(self.proc.url + "/healthz", timeout=30) as response:
            value: int = json.loads(response.read())["stored_spans"]
        return value

    def case(self, bodies: list[bytes], headers: dict[str, str]) -> Callable[[int], float]:
        import http.client

        port = int(self.proc.url.rsplit(":", 1)[1])

        def post(indices: list[int], errors: list[str]) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            for i in indices:
                conn.request("POST", "/v1/traces", body=bodies[i % len(bodies)], headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors.append(f"HTTP {response.status}")
            conn.close()

        def run(n: int) -> float:
            base = self.stored()
            errors: list[str] = []
            start = time.perf_counter()
            threads = [
                threading.Thread(target=post, args=(list(range(c, n, self.connections)), errors))
                for c in range(self.connections)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.flush()  # returns once every acknowledged span is stored
            elapsed = time.perf_counter() - start
            if self.stored() < base + n * SPANS_PER_BATCH:
                raise RuntimeError("the collector stored fewer spans than it acknowledged")
            if errors:
                raise RuntimeError(f"collector refused batches: {errors[:3]}")
            return elapsed

        return run

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def close(self) -> None:
        self._context.__exit__(None, None, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=40, help="batches of 512 spans per round")
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()

    from infermeter.collectors._collector import tune_gc_for_ingest
    from infermeter.collectors.testing import otlp_json
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    bodies = sdk_payloads(8)
    gzipped = [gzip.compress(b) for b in bodies]
    json_bodies = [
        json.dumps(otlp_json(ExportTraceServiceRequest.FromString(b))).encode() for b in bodies
    ]
    print(
        f"payload: {SPANS_PER_BATCH} spans/batch, {len(bodies[0]) // 1024} KiB protobuf "
        f"({len(gzipped[0]) // 1024} KiB gzip, {len(json_bodies[0]) // 1024} KiB JSON)"
    )
    # Decode-only runs with the same GC settings as the `infermeter collect` process.
    tune_gc_for_ingest()
    with tempfile.TemporaryDirectory() as tmp:
        collector = _Collector(Path(tmp), args.connections)
        try:
            cases: dict[str, Any] = {
                "decode only (protobuf)": decode_case(bodies, "application/x-protobuf"),
                "end to end (protobuf)": collector.case(
                    bodies, {"Content-Type": "application/x-protobuf"}
                ),
                "end to end (protobuf + gzip)": collector.case(
                    gzipped,
                    {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
                ),
                "decode only (OTLP/JSON)": decode_case(json_bodies, "application/json"),
                "end to end (OTLP/JSON)": collector.case(
                    json_bodies, {"Content-Type": "application/json"}
                ),
            }
            samples = interleaved(
                cases, rounds=args.rounds, iterations=args.batches, warmup=1, per=1.0
            )
            collector_rss = collector.peak_rss_mb()
        finally:
            collector.close()

    baseline = median(samples["decode only (protobuf)"])
    rows = []
    for name, values in samples.items():
        per_batch = median(values)
        rows.append(
            [
                name,
                round(SPANS_PER_BATCH / per_batch),
                ratio(baseline, per_batch),
                f"{SPANS_PER_BATCH / max(values):.0f}-{SPANS_PER_BATCH / min(values):.0f}",
            ]
        )
    print_table(
        f"collector ingest, {args.rounds} rounds x {args.batches} batches, "
        f"{args.connections} connections (medians)",
        ["case", "spans/s", "vs decode only", "range spans/s"],
        rows,
    )
    e2e = ratio(baseline, median(samples["end to end (protobuf)"]))
    verdict = "met" if e2e >= 0.5 else "MISSED"
    print(f"\nend to end / decode only = {e2e:.2f} (target >= 0.5: {verdict})")
    print(
        f"peak RSS: collector process {collector_rss:.0f} MiB, "
        f"benchmark process {peak_rss_mb():.0f} MiB"
    )


if __name__ == "__main__":
    main()
