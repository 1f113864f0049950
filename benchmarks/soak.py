"""Soak: the real pipeline under steady load for a while — does anything leak, grow or get lost?

Run: ``.venv/bin/python benchmarks/soak.py`` (10 minutes at 70 % of the pipeline's
measured capacity), ``--minutes M``, ``--rate SPANS_PER_S``, ``--services N``,
``--quick`` (60 s, readers every 15 s: the CI smoke run), ``--json`` (one JSON summary on
the last line).

What runs, all real processes on loopback:

- one ``infermeter collect`` (the collector under test) on a fresh store;
- N service processes (default: one per core) calling an ``@observe``-decorated function
  at a steady pace, with ``infermeter.configure()``'s own exporter settings (OTLP/HTTP
  through the SDK's BatchSpanProcessor; nothing overridden); each counts spans sent
  (calls), acknowledged (exports the collector answered 200), failed, and dropped (sent
  but never exported: the BatchSpanProcessor's queue was full, or shutdown ran out of
  time) and the latency of every export;
- ``infermeter serve`` on the same store, refreshing its rollups at its default interval
  (30 s) over a fixed trailing window (``--reader-window``, default a third of the soak);
- every minute (``--read-every``) ``infermeter report`` (the ISO week: it grows with the
  store by design, so its time is also shown per 100k spans of the week) and
  ``infermeter recommend`` over the same fixed trailing window read the store (through
  the collector's snapshots) and are timed: wall seconds and their own CPU seconds.

Capacity, measured before the soak unless ``--rate`` is given, three ways (``--quick``: the
first two), each on its own store:

- the collector alone, fed the way the services feed it: OTLP protobuf bodies encoded by
  the SDK from this very decorated function, as many spans per request as the
  BatchSpanProcessor sends (512), on as many concurrent connections as there are
  services (each BatchSpanProcessor exports one batch at a time), uncompressed (the
  exporter's default);
- the whole pipeline: the N service processes offered a climbing rate, with ``serve``
  refreshing, until what they send is no longer all stored within seconds — span
  creation, export, collector and serve share the machine's cores, as in the soak;
- the whole pipeline again, with ``report`` and ``recommend`` reading back to back, on a
  store as large as the soak would build at 70 % of the smaller capacity so far (copies
  of the services' spans, each its own trace, spread over the soak's length).

The default rate is 70 % of the smallest of the three. Printed: spans sent / acknowledged /
stored / lost, the collector's and serve's RSS over time, reader latency over time, p99
export latency, every error (a dropped span is one), and (except ``--quick``) serve's
``infermeter_requests_total`` after a refresh that began once everything was stored, which
must equal the stored requests (serve's sealed refresh loses none). Goals: 0 lost, RSS flat after
warm-up, reader latency flat (for readers of a fixed window). The exit status is 1 when a
span was lost or an error occurred — never because of a time.
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
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import print_table, target

# The installed console script's entry point, run by this interpreter.
CLI = [sys.executable, "-c", "import sys, infermeter; sys.exit(infermeter.main())"]

SERVICE = """
import json, sys, time
from types import SimpleNamespace
import infermeter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

url, name, seconds = sys.argv[1], sys.argv[2], float(sys.argv[4])
# A rate, or a ramp "r1,r2,...": equal steps, each ending with a "step K sent N" line.
steps = [float(r) for r in sys.argv[3].split(",")]
rate = steps[0]
dump = sys.argv[5] if len(sys.argv) > 5 else None  # write encoded export bodies instead
stats = {"sent": 0, "acked": 0, "failed": 0, "latencies": []}
bodies = []

class TimedExporter(OTLPSpanExporter):
    def export(self, spans):
        if dump is not None:
            from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
            bodies.append(encode_spans(spans).SerializeToString())
            stats["acked"] += len(spans)
            return SpanExportResult.SUCCESS
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
print("ready", flush=True)
tick = 0.05
start = time.monotonic()
step_seconds = seconds / len(steps)
step, step_start, step_due = 0, 0.0, 0.0
while True:
    elapsed = time.monotonic() - start
    if elapsed >= seconds:
        break
    if elapsed - step_start >= step_seconds:
        print(f"step {step} sent {stats['sent']}", flush=True)
        step_due += rate * step_seconds
        step, step_start = step + 1, step_start + step_seconds
        rate = steps[min(step, len(steps) - 1)]
    # rate <= 0: as fast as this process can (encoding the capacity bodies).
    due = step_due + rate * (elapsed - step_start) if rate > 0 else stats["sent"] + 100
    while stats["sent"] < due:
        answer(tenants[stats["sent"] % 20])
        stats["sent"] += 1
    if rate > 0:
        time.sleep(tick)
infermeter.agent.shutdown(timeout=600)
if dump is not None:
    with open(dump, "wb") as out:
        for body in bodies:
            out.write(len(body).to_bytes(4, "little") + body)
# Ended but never exported: dropped by a full BatchSpanProcessor queue, or still queued
# when shutdown gave up.
stats["dropped"] = stats["sent"] - stats["acked"] - stats["failed"]
latencies = stats.pop("latencies")
stats["latencies"] = latencies
print(json.dumps(stats))
"""


def _service(url: str, name: str, rate: str, seconds: float, log: Path, *extra: str) -> Any:
    return subprocess.Popen(
        [sys.executable, "-c", SERVICE, url, name, rate, str(seconds), *extra],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )


def _post(url: str, token: str, path: str) -> None:
    request = urllib.request.Request(
        url + path, data=b"", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        response.read()


def _stored(url: str, errors: list[str] | None = None) -> int:
    """Spans the collector has stored (an unhealthy collector still says: its 503 is
    recorded in ``errors`` when given)."""
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=60) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
        if errors is not None:
            errors.append(f"collector unhealthy (HTTP {exc.code}): {body[:300]!r}")
    value: int = json.loads(body)["stored_spans"]
    return value


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def service_bodies(folder: Path) -> list[bytes]:
    """OTLP export bodies exactly as a soak service sends them (the SDK's encoder, the
    BatchSpanProcessor's batches of this decorated function's spans)."""
    path = folder / "bodies.bin"
    # 8 full batches (the tail of the last one, a partial batch, is dropped below).
    done = subprocess.run(
        [sys.executable, "-c", SERVICE, "http://127.0.0.1:9", "bodies", "0", "0.5", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"could not encode service batches: {done.stderr[-500:]}")
    data = path.read_bytes()
    bodies, at = [], 0
    while at < len(data):
        size = int.from_bytes(data[at : at + 4], "little")
        bodies.append(data[at + 4 : at + 4 + size])
        at += 4 + size
    full = [b for b in bodies if len(b) >= 0.9 * max(len(x) for x in bodies)]
    return full[:16]


def measure_collector_capacity(folder: Path, seconds: float, connections: int) -> float:
    """Spans/s the collector stores end to end when fed like the services feed it."""
    import http.client

    from infermeter.collectors.testing import collector_process

    bodies = service_bodies(folder)
    per_body = _spans_in(bodies[0])
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
        posted = [0] * connections
        stop = time.monotonic() + seconds

        def post(slot: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            while time.monotonic() < stop:
                body = bodies[(posted[slot] + slot) % len(bodies)]
                conn.request("POST", "/v1/traces", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    posted[slot] += 1
            conn.close()

        started = time.perf_counter()
        threads = [threading.Thread(target=post, args=(slot,)) for slot in range(connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        _post(proc.url, proc.control_token, "/v1/flush")
        elapsed = time.perf_counter() - started
        return sum(posted) * per_body / elapsed


def _spans_in(body: bytes) -> int:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest.FromString(body)
    return sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)


# The ramp of the pipeline probe, as shares of the collector's capacity.
RAMP = (0.02, 0.04, 0.07, 0.1, 0.15, 0.2, 0.3, 0.45, 0.7)


def measure_pipeline_capacity(
    folder: Path,
    seconds: float,
    services: int,
    ceiling: float,
    window: float,
    seal_after: str = "1m",
    read_every: float | None = None,
    store: Path | None = None,
) -> float:
    """The highest rate N decorated service processes sustain end to end on this machine
    (span creation, export, the collector and a refreshing ``serve`` sharing its cores,
    as in the soak): the offered rate climbs in steps (shares of ``ceiling``, the
    collector's capacity) and a step counts when everything sent by its end is stored
    ``grace`` seconds later. With ``read_every``, ``report``/``recommend`` read the store
    that often during the ramp too, as they do in the soak: a ramp without them measured a
    capacity the quick soak (reads every 15 s) could not sustain (10-26 % dropped).

    A ramp, not "as fast as possible": a service calling flat out holds its interpreter
    lock so much that its own export thread (and, with one service per core, the
    collector) barely runs — that measures starvation, not capacity.

    ``store``: a store to ramp on (see :func:`prefill`); default a fresh one."""
    from infermeter.collectors.testing import collector_process

    grace = 3.0  # an export (batches fill within a step) plus the collector's 1 s flush
    step = max(seconds, 3.0)
    rates = [share * ceiling for share in RAMP]
    best = 0.0
    with (
        collector_process(store or folder / "pipeline.duckdb") as proc,
        Serve(proc.store, folder / f"{proc.store.stem}-serve.log", window, seal_after),
    ):
        ramp_done = threading.Event()

        def readers() -> None:
            while read_every is not None and not ramp_done.is_set():
                read_once(proc.store, folder / "pipeline-reads", window)
                ramp_done.wait(read_every)

        reading = threading.Thread(target=readers, daemon=True)
        reading.start()
        probes = [
            _service(
                proc.url,
                f"probe-{i}",
                # One step more than measured: a step's line is printed when the next begins.
                ",".join(f"{rate / services:.1f}" for rate in [*rates, rates[-1]]),
                step * (len(rates) + 1),
                folder / f"probe-{i}.log",
            )
            for i in range(services)
        ]
        try:
            for probe in probes:  # each has imported and configured
                assert probe.stdout is not None
                probe.stdout.readline()
            for rate in rates:
                sent = 0
                for probe in probes:
                    assert probe.stdout is not None
                    line = probe.stdout.readline().split()  # "step K sent N"
                    sent += int(line[-1]) if line else 0
                time.sleep(grace)
                if _stored(proc.url) < sent:
                    break  # fell behind: the previous step is the capacity
                best = rate
        finally:
            ramp_done.set()
            for probe in probes:
                probe.kill()
                probe.wait(30)
            reading.join(600)
    return best


def prefill(store: Path, source: Path, spans: int, seconds: float) -> None:
    """A new store of ``spans`` spans: copies of the spans the collector stored in
    ``source`` (the services' own, from the capacity run, which posts the same few batches
    again and again), each span a trace of its own as each of the services' calls is,
    their starts spread evenly over the ``seconds`` before now - what a soak of that
    length leaves behind, for readers to read."""
    import duckdb
    from infermeter.collectors import apply_migrations

    con = duckdb.connect(str(store))
    try:
        apply_migrations(con)
        con.execute("SET enable_progress_bar = false")
        con.execute("ATTACH ? AS source (READ_ONLY)", [str(source)])
        ((have,),) = con.execute("SELECT count(*) FROM source.spans").fetchall()
        if not have:
            raise RuntimeError(f"no spans in {source} to copy")
        end = datetime.now(UTC).replace(tzinfo=None)
        con.execute(
            """
            INSERT INTO spans BY NAME
            SELECT * EXCLUDE (copy, n) REPLACE (
                md5(trace_id || '-' || n) AS trace_id,
                $end::TIMESTAMP - to_microseconds(CAST((n + 1) * $step AS BIGINT)) AS start_time,
                $end::TIMESTAMP - to_microseconds(CAST((n + 1) * $step AS BIGINT))
                    + (end_time - start_time) AS end_time
            )
            FROM (
                -- Whole copies first, then the first rows of one more: position n of the
                -- spans is copy * have + k, each position once.
                SELECT s.* EXCLUDE (k), c.copy, c.copy * $have + s.k AS n
                FROM (SELECT *, row_number() OVER () - 1 AS k FROM source.spans) AS s,
                    range(CAST(ceil($spans / $have) AS BIGINT)) AS c(copy)
                WHERE c.copy * $have + s.k < $spans
            )
            """,
            {"end": end, "step": seconds * 1e6 / spans, "spans": spans, "have": have},
        )
        con.execute("DETACH source")
    finally:
        con.close()


class Serve:
    """``infermeter serve`` on the store (port 0: the port is read from its first line)."""

    def __init__(self, store: Path, log: Path, window: float, seal_after: str = "1m") -> None:
        self.log = log.open("w")
        # The gauges and the economics over the same fixed trailing window: once the soak
        # has run that long, every refresh reads about as many spans. The refresh
        # interval is serve's default (30 s), as a user runs it.
        self.process = subprocess.Popen(
            [
                *CLI,
                "serve",
                "--store",
                str(store),
                "--port",
                "0",
                "--window",
                f"{window:.0f}s",
                "--economics-window",
                f"{window:.0f}s",
                # A soak compresses hours into minutes: at serve's default (1 h) a 10-minute
                # store would be all tail and every refresh would aggregate every span.
                "--seal-after",
                seal_after,
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

    def scrape(self) -> dict[str, float]:
        """The exporter's own gauges of one /metrics response (raises when serve does
        not answer)."""
        if self.url is None:
            raise RuntimeError("serve did not start (see serve.log)")
        with urllib.request.urlopen(self.url + "/metrics", timeout=60) as response:
            text = response.read().decode()
        values = {}
        for line in text.splitlines():
            if line.startswith("infermeter_exporter_") and " " in line:
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def requests_after(self, moment: float, timeout: float) -> float | None:
        """``infermeter_requests_total`` summed, from the first refresh that began after
        ``moment`` (epoch seconds); None if none finished within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            gauges = self.scrape()
            at = gauges.get("infermeter_exporter_last_refresh_timestamp_seconds", 0.0)
            took = gauges.get("infermeter_exporter_refresh_duration_seconds", 0.0)
            if at - took > moment:
                assert self.url is not None
                with urllib.request.urlopen(self.url + "/metrics", timeout=60) as response:
                    text = response.read().decode()
                return sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith("infermeter_requests_total{")
                )
            time.sleep(2.0)
        return None

    def __enter__(self) -> Serve:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        self.log.close()


def run_timed(command: list[str], timeout: float) -> tuple[int, str, float, float]:
    """Run ``command``; its exit status, stderr, wall seconds and CPU seconds (user +
    system, its own threads included, from ``wait4``). On a shared 2-core machine wall
    time also counts the waits for a core; CPU time is the reader's own work."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    return proc.returncode, stderr, wall, usage.ru_utime + usage.ru_stime


def read_once(store: Path, folder: Path, window: float) -> dict[str, Any]:
    """Time ``infermeter report`` (the ISO week) and ``infermeter recommend`` (the fixed
    trailing window) on the live store."""
    timings: dict[str, Any] = {}
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - window))
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
        ("recommend", ["recommend", "--store", str(store), "--json", "--since", since]),
    ):
        returncode, stderr, timings[name], timings[f"{name}_cpu"] = run_timed(
            [*CLI, *command], timeout=600
        )
        if returncode != 0:
            timings.setdefault("errors", []).append(
                f"{name} exited {returncode}: {stderr.strip()[-300:]}"
            )
    return timings


def soak(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from infermeter.collectors.testing import collector_process

    seconds = args.minutes * 60
    window = args.reader_window or max(seconds / 3, 10.0)
    capacity: dict[str, float] = {}
    full_store_spans = 0  # the third capacity's store
    rate = args.rate
    if rate is None:
        capacity["collector"] = measure_collector_capacity(
            folder, args.capacity_seconds, args.services
        )
        capacity["pipeline"] = measure_pipeline_capacity(
            folder,
            args.capacity_seconds,
            args.services,
            capacity["collector"],
            window,
            args.serve_seal_after,
            args.read_every,
        )
        if not args.quick:
            # The readers' work grows with the store (report reads the week so far, serve
            # keeps lifetime counters): measured again with them reading, back to back, a
            # store already as large as the soak can build at 70 % of the capacity so far.
            full_store_spans = int(0.7 * min(capacity.values()) * seconds)
            prefilled = folder / "pipeline-end.duckdb"
            prefill(prefilled, folder / "capacity.duckdb", full_store_spans, seconds)
            capacity["pipeline_full_store"] = measure_pipeline_capacity(
                folder,
                args.capacity_seconds,
                args.services,
                capacity["collector"],
                window,
                args.serve_seal_after,
                0.0,
                store=prefilled,
            )
        rate = 0.7 * min(capacity.values())
        if rate <= 0:
            raise RuntimeError(f"no capacity measured: {capacity} (see the probe logs)")
    errors: list[str] = []
    store = folder / "soak.duckdb"
    with (
        collector_process(store) as collector,
        Serve(store, folder / "serve.log", window, args.serve_seal_after) as serve,
    ):
        wall_start = time.time()
        # configure()'s own exporter settings: what the soak tests is what users get.
        services = [
            _service(
                collector.url,
                f"soak-{i}",
                str(rate / args.services),
                seconds,
                folder / f"service-{i}.log",
            )
            for i in range(args.services)
        ]
        started = time.monotonic()
        # Each service's stdout is read while it runs: its final JSON (every export's
        # latency) outgrows a pipe's buffer, and a service blocked writing it never exits.
        printed: list[list[str]] = [[] for _ in services]
        pipes = [
            threading.Thread(target=lambda s=s, out=out: out.append(s.stdout.read()), daemon=True)
            for s, out in zip(services, printed, strict=True)
        ]
        for pipe in pipes:
            pipe.start()
        rss: list[tuple[float, float]] = []
        serve_rss: list[tuple[float, float]] = []
        refreshes: dict[float, float] = {}  # refresh timestamp -> its duration
        reads: list[tuple[float, dict[str, Any]]] = []
        finished = threading.Event()

        def reader() -> None:
            # Its own thread: a slow read must not stop the RSS samples.
            while not finished.wait(args.read_every):
                if time.monotonic() - started >= seconds:
                    return
                at = time.monotonic() - started
                stored_before = _stored(collector.url)
                began = time.time() - wall_start
                timing = read_once(store, folder, window)
                timing["stored"] = stored_before
                timing["span"] = (began, time.time() - wall_start)
                errors.extend(timing.pop("errors", []))
                reads.append((at, timing))

        probe_latencies: list[tuple[float, float]] = []
        probe_sent = [0, 0]  # spans sent, acknowledged

        def probe() -> None:
            # The collector's own acknowledgement latency, apart from the services' export
            # time (which includes their encoding on a shared CPU): one span a second.
            from infermeter.collectors.testing import otlp_request, otlp_span, send_otlp

            while not finished.wait(1.0):
                body = otlp_request(
                    [otlp_span(start=datetime.now(UTC))], resource={"service.name": "probe"}
                )
                probe_sent[0] += 1
                began = time.perf_counter()
                try:
                    status = send_otlp(collector.traces_endpoint, body, timeout=120).status
                except OSError as exc:
                    errors.append(f"probe request failed: {exc}")
                    continue
                if probe_sent[0] > 1:  # the first request pays the collector's lazy imports
                    probe_latencies.append((time.time() - wall_start, time.perf_counter() - began))
                if status == 200:
                    probe_sent[1] += 1
                else:
                    errors.append(f"probe request answered {status}")

        reading = threading.Thread(target=reader, daemon=True)
        reading.start()
        probing = threading.Thread(target=probe, daemon=True)
        probing.start()
        while any(service.poll() is None for service in services):
            now = time.monotonic() - started
            rss.append((now, _rss_mb(collector.pid)))
            serve_rss.append((now, _rss_mb(serve.process.pid)))
            try:
                gauges = serve.scrape()
                at = gauges.get("infermeter_exporter_last_refresh_timestamp_seconds")
                took = gauges.get("infermeter_exporter_refresh_duration_seconds")
                if at and took is not None:
                    refreshes[at - wall_start] = took
            except Exception:  # serve is checked once more at the end
                pass
            time.sleep(args.sample_every)
        drained = time.monotonic() - started - seconds
        finished.set()
        reading.join()
        probing.join()
        outputs = []
        for pipe in pipes:
            pipe.join()
        for i, service in enumerate(services):
            out = "".join(printed[i])
            if service.returncode != 0 or not out.strip():
                errors.append(f"service {i} exited {service.returncode} (see service-{i}.log)")
                continue
            outputs.append(json.loads(out.strip().splitlines()[-1]))
            dropped = outputs[-1]["dropped"]
            if dropped:
                log = (folder / f"service-{i}.log").read_text(errors="replace")
                errors.append(
                    f"service {i} dropped {dropped} spans before export (its "
                    f"BatchSpanProcessor queue was full: {log.count('Queue full')} "
                    "'Queue full' warnings in its log, or shutdown ran out of time)"
                )
        _post(collector.url, collector.control_token, "/v1/flush")
        stored = _stored(collector.url, errors)
        counted = None
        try:
            serve.scrape()
            if not args.quick:
                # serve's lifetime counter after a refresh that began once everything was
                # stored: with sealed requests it must still count every one (each soak
                # span is a request of its own: a decorated call, or a probe).
                counted = serve.requests_after(time.time(), timeout=300.0)
                if counted is not None and counted != stored:
                    errors.append(
                        f"serve counts {counted:,.0f} requests, the store holds {stored:,}"
                    )
        except Exception as exc:
            errors.append(f"serve did not answer /metrics: {exc}")
        if serve.process.poll() is not None:
            errors.append(f"serve exited {serve.process.returncode} (see serve.log)")
        serve.stop()
        rss.append((time.monotonic() - started, _rss_mb(collector.pid)))
    sent = sum(o["sent"] for o in outputs) + probe_sent[0]
    acked = sum(o["acked"] for o in outputs) + probe_sent[1]
    failed = sum(o["failed"] for o in outputs)
    if failed:
        errors.append(f"{failed} spans were refused or failed to export")
    timeline = sorted((t - wall_start, x) for o in outputs for t, x in o["latencies"])
    latencies = sorted(x for _, x in timeline)
    p99 = latencies[min(int(0.99 * len(latencies)), len(latencies) - 1)] if latencies else None
    return {
        "capacity_spans_per_s": capacity,
        "capacity_store_spans": full_store_spans,
        "rate_spans_per_s": rate,
        "services": args.services,
        "achieved_spans_per_s": sent / seconds if seconds else 0.0,
        "seconds": seconds,
        "reader_window_s": window,
        "serve_seal_after": args.serve_seal_after,
        "serve_requests_total": counted,
        "sent": sent,
        "acked": acked,
        "stored": stored,
        "dropped": sum(o["dropped"] for o in outputs),
        # The store starts empty: whatever was sent and is not stored is lost (an export
        # the client gave up on may still have been stored: acknowledged <= stored then).
        "lost": max(sent - stored, 0),
        "drain_s": drained,
        "p99_export_s": p99,
        "rss_mb": rss,
        "serve_rss_mb": serve_rss,
        "serve_refresh_s": sorted(refreshes.items()),
        "export_s": timeline,
        "probe_s": probe_latencies,
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
    measured = ""
    if capacity:
        full = (
            f", and with the readers on a store of {result['capacity_store_spans']:,} spans "
            f"{capacity['pipeline_full_store']:,.0f}"
            if "pipeline_full_store" in capacity
            else ""
        )
        measured = (
            f" (70 % of the measured capacity: collector fed like the services "
            f"{capacity['collector']:,.0f} spans/s, whole pipeline "
            f"{capacity['pipeline']:,.0f}{full})"
        )
    print(
        f"\nsoak: {result['seconds'] / 60:.1f} min at {result['rate_spans_per_s']:,.0f} spans/s"
        f" from {result['services']} service processes{measured}; achieved "
        f"{result['achieved_spans_per_s']:,.0f} spans/s; the services needed "
        f"{result['drain_s']:.0f} s after the end to export their queues; serve "
        f"--seal-after {result.get('serve_seal_after', '1h')}"
    )
    if result.get("serve_requests_total") is not None:
        print(
            f"serve's infermeter_requests_total after the last refresh: "
            f"{result['serve_requests_total']:,.0f} (stored: {result['stored']:,})"
        )
    elif result["seconds"] > 60:
        print("serve's infermeter_requests_total: not checked (no refresh within 300 s)")
    print_table(
        "spans",
        ["sent", "acknowledged", "stored", "dropped in services", "lost", "p99 export s"],
        [
            [
                result["sent"],
                result["acked"],
                result["stored"],
                result["dropped"],
                result["lost"],
                result["p99_export_s"] if result["p99_export_s"] is not None else "n/a",
            ]
        ],
    )
    rss, serve_rss = result["rss_mb"], dict(result["serve_rss_mb"])
    step = max(len(rss) // 10, 1)
    print_table(
        "RSS over time",
        ["minute", "collector MiB", "serve MiB"],
        [
            [f"{t / 60:.1f}", value, serve_rss.get(t, float("nan"))]
            for t, value in [*rss[::step], rss[-1]]
        ],
    )
    warm = [p for p in rss if p[0] >= min(60.0, result["seconds"] / 3)]
    slope = _slope(warm)
    print(f"collector RSS slope after warm-up: {slope:+.2f} MiB/min" if slope is not None else "")
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
    reading = [r["span"] for _, r in result["reads"] if "span" in r]
    during = sorted(x for t, x in result["probe_s"] if any(a <= t <= b for a, b in reading))
    outside = sorted(x for t, x in result["probe_s"] if not any(a <= t <= b for a, b in reading))
    print_table(
        "collector acknowledgement latency, one 1-span request a second (s)",
        ["when", "requests", "median", "p99", "max"],
        [
            [
                name,
                len(v),
                v[len(v) // 2] if v else "n/a",
                v[min(int(0.99 * len(v)), len(v) - 1)] if v else "n/a",
                v[-1] if v else "n/a",
            ]
            for name, v in (("while report/recommend ran", during), ("otherwise", outside))
        ],
    )
    window = result["reader_window_s"]
    print_table(
        f"reader latency over time (s; recommend and serve over the last {window:.0f} s,"
        " report over the ISO week so far)",
        [
            "minute",
            "spans stored",
            "report",
            "report s/100k spans",
            "report CPU s",
            "recommend",
            "recommend CPU s",
        ],
        [
            [
                f"{t / 60:.1f}",
                r.get("stored", 0),
                r.get("report", float("nan")),
                r.get("report", float("nan")) / max(r.get("stored", 0), 1) * 1e5,
                r.get("report_cpu", float("nan")),
                r.get("recommend", float("nan")),
                r.get("recommend_cpu", float("nan")),
            ]
            for t, r in result["reads"]
        ],
    )
    # Wall time on a shared 2-core machine also counts the waits for a core (the services,
    # the collector and serve run meanwhile); CPU time is the reader's own work.
    own = _growth([(t, r["recommend_cpu"]) for t, r in result["reads"] if "recommend_cpu" in r])
    if own is not None:
        print(
            f"recommend CPU seconds ({window:.0f} s window), last third / middle third:"
            f" {own:.2f}x (its latency above also counts its waits for a core)"
        )
    refreshes = result["serve_refresh_s"]
    step = max(len(refreshes) // 10, 1)
    print_table(
        "serve refresh duration over time (s)",
        ["minute", "refresh s"],
        [[f"{t / 60:.1f}", took] for t, took in refreshes[::step]],
    )
    print("errors: " + ("; ".join(result["errors"]) if result["errors"] else "none"))
    print()
    minutes = f"{result['seconds'] / 60:.0f} min soak"
    target(f"{minutes}: spans lost", str(result["lost"]), "0", result["lost"] == 0)
    target(f"{minutes}: errors", str(len(result["errors"])), "0", not result["errors"])
    for name, points in (
        ("collector RSS", rss),
        ("serve RSS", list(serve_rss.items())),
        (
            f"recommend latency ({window:.0f} s window)",
            [(t, r["recommend"]) for t, r in result["reads"] if "recommend" in r],
        ),
        (f"serve refresh ({window:.0f} s window)", refreshes),
        (
            "report latency per span of the week",
            [(t, r["report"] / r["stored"]) for t, r in result["reads"] if r.get("stored")],
        ),
    ):
        growth = _growth([(t, v) for t, v in points if t <= result["seconds"]])
        if growth is not None:
            target(
                f"{minutes}: {name}, last third / middle third",
                f"{growth:.2f}x",
                "<= 1.2x (flat)",
                growth <= 1.2,
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
    parser.add_argument(
        "--services",
        type=int,
        default=os.cpu_count() or 2,
        help="service processes (default: one per core)",
    )
    parser.add_argument("--read-every", type=float, default=60.0, help="seconds between reads")
    parser.add_argument(
        "--reader-window",
        type=float,
        default=None,
        help="seconds that recommend and serve read back (default: a third of the soak)",
    )
    parser.add_argument(
        "--sample-every", type=float, default=5.0, help="seconds between RSS samples"
    )
    parser.add_argument("--capacity-seconds", type=float, default=10.0)
    parser.add_argument(
        "--serve-seal-after",
        default="1m",
        help="serve's --seal-after (default 1m: a soak compresses hours into minutes; "
        "'off' aggregates every span on every refresh, as serve did before)",
    )
    parser.add_argument("--quick", action="store_true", help="60 s, reads every 15 s (CI)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary last")
    parser.add_argument("--keep", type=Path, default=None, help="keep the files in this folder")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.read_every, args.capacity_seconds = 1.0, 15.0, 5.0
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
