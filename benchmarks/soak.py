"""Soak: the real pipeline under steady load for a while — does anything leak, grow or get lost?

Run: ``.venv/bin/python benchmarks/soak.py`` (10 minutes at 70 % of the collector's
measured capacity), ``--minutes M``, ``--rate SPANS_PER_S``, ``--services N``,
``--quick`` (60 s, readers every 15 s: the CI smoke run), ``--json`` (one JSON summary on
the last line).

What runs, all real processes on loopback:

- one ``infermeter collect`` (the collector under test) on a fresh store;
- N service processes calling an ``@observe``-decorated function at a steady pace, with
  ``infermeter.configure()`` exporting OTLP/HTTP to the collector through the SDK's
  BatchSpanProcessor; each counts spans sent (calls), acknowledged (exports the
  collector answered 200) and the latency of every export;
- ``infermeter serve`` on the same store, refreshing its rollups every 10 s;
- every minute (``--read-every``) ``infermeter report`` and ``infermeter recommend``
  read the store (through the collector's snapshots) and are timed.

Before the soak, the collector's capacity is measured on a separate store: SDK-encoded
batches of 512 spans posted as fast as two connections can, until every span is stored.
The default rate is 70 % of it (what a service processes can generate on a busy box may
be less: the achieved rate is printed).

Printed: spans sent / acknowledged / stored (lost = acknowledged - stored, and sent -
acknowledged), the collector's RSS over time, reader latency over time, p99 export
latency, every error. Goals: 0 lost, RSS flat after warm-up, reader latency flat. The
exit status is 1 when a span was lost or an error occurred — never because of a time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import print_table, target

# The installed console script's entry point, run by this interpreter.
CLI = [sys.executable, "-c", "import sys, infermeter; sys.exit(infermeter.main())"]

SERVICE = """
import json, sys, time, random
from types import SimpleNamespace
import infermeter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

url, name, rate, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
stats = {"sent": 0, "acked": 0, "failed": 0, "latencies": []}

class TimedExporter(OTLPSpanExporter):
    def export(self, spans):
        started = time.perf_counter()
        result = super().export(spans)
        stats["latencies"].append((time.time(), time.perf_counter() - started))
        stats["acked" if result is SpanExportResult.SUCCESS else "failed"] += len(spans)
        return result

infermeter.configure(
    service_name=name,
    span_exporter=TimedExporter(endpoint=url + "/v1/traces"),
    metrics_exporter="none",
    set_global=False,
    flush_on_return=False,
)
RESPONSE = SimpleNamespace(
    model="gpt-4o-mini-2024-07-18",
    usage=SimpleNamespace(prompt_tokens=812, completion_tokens=96),
)

@infermeter.observe(
    operation="chat", provider="openai", model="gpt-4o-mini", endpoint="/answer",
    prompt_name="answer", prompt_version="v3", runtime="container",
    tenant=lambda request: request["tenant"],
)
def answer(request):
    return RESPONSE

tenants = [{"tenant": f"t{i}"} for i in range(20)]
tick = 0.05
start = time.monotonic()
due = 0.0
while True:
    elapsed = time.monotonic() - start
    if elapsed >= seconds:
        break
    due = rate * elapsed
    while stats["sent"] < due:
        answer(tenants[stats["sent"] % 20])
        stats["sent"] += 1
    time.sleep(tick)
infermeter.agent.shutdown(timeout=600)
latencies = stats.pop("latencies")
stats["latencies"] = latencies
print(json.dumps(stats))
"""


def _post(url: str, token: str, path: str) -> None:
    request = urllib.request.Request(
        url + path, data=b"", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        response.read()


def _stored(url: str) -> int:
    with urllib.request.urlopen(url + "/healthz", timeout=60) as response:
        value: int = json.loads(response.read())["stored_spans"]
    return value


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def measure_capacity(folder: Path, seconds: float) -> float:
    """Spans/s the collector stores end to end (2 keep-alive connections, 512-span batches)."""
    import http.client

    from bench_collector import SPANS_PER_BATCH, sdk_payloads
    from infermeter.collectors.testing import collector_process

    bodies = sdk_payloads(8)
    headers = {"Content-Type": "application/x-protobuf"}
    with collector_process(folder / "capacity.duckdb") as proc:
        port = int(proc.url.rsplit(":", 1)[1])
        # Warm-up (first requests import the decoder, create the tables): not timed.
        warm = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for body in bodies:
            warm.request("POST", "/v1/traces", body=body, headers=headers)
            warm.getresponse().read()
        warm.close()
        _post(proc.url, proc.control_token, "/v1/flush")
        posted = [0, 0]
        stop = time.monotonic() + seconds

        def post(slot: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            while time.monotonic() < stop:
                conn.request("POST", "/v1/traces", body=bodies[posted[slot] % 8], headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    posted[slot] += 1
            conn.close()

        started = time.perf_counter()
        threads = [threading.Thread(target=post, args=(slot,)) for slot in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        _post(proc.url, proc.control_token, "/v1/flush")
        elapsed = time.perf_counter() - started
        return sum(posted) * SPANS_PER_BATCH / elapsed


class Serve:
    """``infermeter serve`` on the store (port 0: the port is read from its first line)."""

    def __init__(self, store: Path, log: Path) -> None:
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [
                *CLI,
                "serve",
                "--store",
                str(store),
                "--port",
                "0",
                "--refresh-interval",
                "10",
                "--window",
                "1h",
            ],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.url: str | None = None
        assert self.process.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.url is None:
            line = self.process.stdout.readline()
            if not line:
                break
            found = re.search(r"http://127\.0\.0\.1:\d+", line)
            if found:
                self.url = found.group(0)

    def scrape(self) -> int:
        """Bytes of one /metrics response (raises when serve does not answer)."""
        if self.url is None:
            raise RuntimeError("serve did not start (see serve.log)")
        with urllib.request.urlopen(self.url + "/metrics", timeout=60) as response:
            return len(response.read())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def read_once(store: Path, folder: Path) -> dict[str, Any]:
    """Time ``infermeter report`` and ``infermeter recommend`` on the live store."""
    timings: dict[str, Any] = {}
    for name, command in (
        (
            "report",
            [
                "report",
                "--store",
                str(store),
                "--out",
                str(folder / "report"),
                "--no-drift",
                "--week",
                time.strftime("%G-W%V", time.gmtime()),
            ],
        ),
        ("recommend", ["recommend", "--store", str(store), "--json"]),
    ):
        started = time.perf_counter()
        done = subprocess.run(
            [*CLI, *command],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        timings[name] = time.perf_counter() - started
        if done.returncode != 0:
            timings.setdefault("errors", []).append(
                f"{name} exited {done.returncode}: {done.stderr.strip()[-300:]}"
            )
    return timings


def soak(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from infermeter.collectors.testing import collector_process

    capacity = None
    rate = args.rate
    if rate is None:
        capacity = measure_capacity(folder, args.capacity_seconds)
        rate = 0.7 * capacity
    seconds = args.minutes * 60
    errors: list[str] = []
    store = folder / "soak.duckdb"
    with collector_process(store) as collector:
        serve = Serve(store, folder / "serve.log")
        # Exports every 0.5 s from a queue that holds a minute of spans; a 60 s export
        # timeout so that a latency spike on a busy box shows as latency (measured below),
        # not as an abandoned export the collector may have stored all the same.
        env = {
            **os.environ,
            "OTEL_BSP_SCHEDULE_DELAY": "500",
            "OTEL_BSP_MAX_QUEUE_SIZE": "65536",
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "60",
        }
        wall_start = time.time()
        services = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    SERVICE,
                    collector.url,
                    f"soak-{i}",
                    str(rate / args.services),
                    str(seconds),
                ],
                stdout=subprocess.PIPE,
                stderr=(folder / f"service-{i}.log").open("w"),
                text=True,
                env=env,
            )
            for i in range(args.services)
        ]
        started = time.monotonic()
        rss: list[tuple[float, float]] = []
        reads: list[tuple[float, dict[str, Any]]] = []
        finished = threading.Event()

        def reader() -> None:
            # Its own thread: a slow read must not stop the RSS samples.
            while not finished.wait(args.read_every):
                if time.monotonic() - started >= seconds:
                    return
                at = time.monotonic() - started
                timing = read_once(store, folder)
                errors.extend(timing.pop("errors", []))
                reads.append((at, timing))

        reading = threading.Thread(target=reader, daemon=True)
        reading.start()
        while any(service.poll() is None for service in services):
            rss.append((time.monotonic() - started, _rss_mb(collector.pid)))
            time.sleep(args.sample_every)
        drained = time.monotonic() - started - seconds
        finished.set()
        reading.join()
        outputs = []
        for i, service in enumerate(services):
            out = service.stdout.read() if service.stdout else ""
            if service.returncode != 0 or not out.strip():
                errors.append(f"service {i} exited {service.returncode} (see service-{i}.log)")
                continue
            outputs.append(json.loads(out.strip().splitlines()[-1]))
        _post(collector.url, collector.control_token, "/v1/flush")
        stored = _stored(collector.url)
        try:
            serve.scrape()
        except Exception as exc:
            errors.append(f"serve did not answer /metrics: {exc}")
        if serve.process.poll() is not None:
            errors.append(f"serve exited {serve.process.returncode} (see serve.log)")
        serve.stop()
        rss.append((time.monotonic() - started, _rss_mb(collector.pid)))
    sent = sum(o["sent"] for o in outputs)
    acked = sum(o["acked"] for o in outputs)
    failed = sum(o["failed"] for o in outputs)
    if failed:
        errors.append(f"{failed} spans were refused or failed to export")
    timeline = sorted((t - wall_start, x) for o in outputs for t, x in o["latencies"])
    latencies = sorted(x for _, x in timeline)
    p99 = latencies[min(int(0.99 * len(latencies)), len(latencies) - 1)] if latencies else None
    return {
        "capacity_spans_per_s": capacity,
        "rate_spans_per_s": rate,
        "achieved_spans_per_s": sent / seconds if seconds else 0.0,
        "seconds": seconds,
        "sent": sent,
        "acked": acked,
        "stored": stored,
        # The store starts empty: whatever was sent and is not stored is lost (an export
        # the client gave up on may still have been stored: acknowledged <= stored then).
        "lost": max(sent - stored, 0),
        "drain_s": drained,
        "p99_export_s": p99,
        "rss_mb": rss,
        "export_s": timeline,
        "reads": reads,
        "errors": errors,
    }


def _slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope (per minute) of the points' second value over the first."""
    if len(points) < 3:
        return None
    xs = [p[0] / 60 for p in points]
    ys = [p[1] for p in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    if var == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var


def report(result: dict[str, Any]) -> None:
    capacity = result["capacity_spans_per_s"]
    print(
        f"\nsoak: {result['seconds'] / 60:.1f} min at {result['rate_spans_per_s']:,.0f} spans/s"
        + (f" (70 % of the measured capacity {capacity:,.0f} spans/s)" if capacity else "")
        + f"; achieved {result['achieved_spans_per_s']:,.0f} spans/s; the services needed "
        f"{result['drain_s']:.0f} s after the end to export their queues"
    )
    print_table(
        "spans",
        ["sent", "acknowledged", "stored", "lost", "p99 export s"],
        [
            [
                result["sent"],
                result["acked"],
                result["stored"],
                result["lost"],
                result["p99_export_s"] if result["p99_export_s"] is not None else "n/a",
            ]
        ],
    )
    rss = result["rss_mb"]
    step = max(len(rss) // 10, 1)
    print_table(
        "collector RSS over time",
        ["minute", "RSS MiB"],
        [[f"{t / 60:.1f}", value] for t, value in [*rss[::step], rss[-1]]],
    )
    warm = [p for p in rss if p[0] >= min(60.0, result["seconds"] / 3)]
    slope = _slope(warm)
    print(f"RSS slope after warm-up: {slope:+.2f} MiB/min" if slope is not None else "")
    exports = result["export_s"]
    if exports:
        width = max(result["seconds"] / 10, 1.0)
        buckets: dict[int, list[float]] = {}
        for t, latency in exports:
            buckets.setdefault(int(t // width), []).append(latency)
        print_table(
            "export latency over time (s)",
            ["minute", "exports", "median", "p99", "max"],
            [
                [
                    f"{i * width / 60:.1f}",
                    len(v),
                    sorted(v)[len(v) // 2],
                    sorted(v)[min(int(0.99 * len(v)), len(v) - 1)],
                    max(v),
                ]
                for i, v in sorted(buckets.items())
            ],
        )
    print_table(
        "reader latency over time (s)",
        ["minute", "report", "recommend"],
        [
            [f"{t / 60:.1f}", r.get("report", float("nan")), r.get("recommend", float("nan"))]
            for t, r in result["reads"]
        ],
    )
    print("errors: " + ("; ".join(result["errors"]) if result["errors"] else "none"))
    print()
    minutes = f"{result['seconds'] / 60:.0f} min soak"
    target(f"{minutes}: spans lost", str(result["lost"]), "0", result["lost"] == 0)
    target(f"{minutes}: errors", str(len(result["errors"])), "0", not result["errors"])
    rss_growth = _growth([(t, v) for t, v in rss if t <= result["seconds"]])
    if rss_growth is not None:
        target(
            f"{minutes}: collector RSS, last third / middle third",
            f"{rss_growth:.2f}x",
            "<= 1.2x (flat)",
            rss_growth <= 1.2,
        )
    reads = [(t, r["report"] + r["recommend"]) for t, r in result["reads"] if "report" in r]
    read_growth = _growth(reads)
    if read_growth is not None:
        target(
            f"{minutes}: reader latency, last third / middle third",
            f"{read_growth:.2f}x",
            "<= 1.2x (flat)",
            read_growth <= 1.2,
        )


def _growth(points: list[tuple[float, float]]) -> float | None:
    """Median of the last third of the points over that of the middle third (the first
    third is warm-up); None with too few points."""
    if len(points) < 3:
        return None
    third = len(points) // 3
    middle = sorted(v for _, v in points[third : 2 * third] or points[third : third + 1])
    last = sorted(v for _, v in points[2 * third :])
    base = middle[len(middle) // 2]
    return last[len(last) // 2] / base if base else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--rate", type=float, default=None, help="spans/s (default: 70 %% of capacity)"
    )
    parser.add_argument("--services", type=int, default=2, help="service processes (default 2)")
    parser.add_argument("--read-every", type=float, default=60.0, help="seconds between reads")
    parser.add_argument(
        "--sample-every", type=float, default=5.0, help="seconds between RSS samples"
    )
    parser.add_argument("--capacity-seconds", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="60 s, reads every 15 s (CI)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary last")
    parser.add_argument("--keep", type=Path, default=None, help="keep the files in this folder")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.read_every, args.capacity_seconds = 1.0, 15.0, 3.0
    with tempfile.TemporaryDirectory(prefix="infermeter-soak-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        result = soak(args, folder)
    report(result)
    if args.json:
        print(json.dumps(result))
    return 1 if result["lost"] or result["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
