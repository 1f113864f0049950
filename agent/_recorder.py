"""GenAI and FaaS metrics, and the end of every observed call, done off the caller's thread.

Recording one histogram point with the SDK costs ~6.5 µs on a 2-core box; a chat call
records three (duration, input tokens, output tokens), which alone would be ~80% of a
bare span. Reading the return value (usage, response model, content) and setting the
final attributes costs as much again (the SDK validates each attribute under a lock). So
the caller's thread only appends one job to a deque (~0.1 µs) and a daemon thread runs
it: the span ends with the end time taken on the caller's thread, so durations are exact.
When the thread is far behind (the queue is full) the caller runs the job itself: bounded
memory and nothing lost, at the price of that call's latency.

Points carry no exemplars: recording from this thread, the SDK's trace-based exemplar
filter sees no sampled span. Passing each call's span context would restore them at ~25%
more recording CPU (measured); the spans themselves carry the same numbers per request.

``drain()`` runs everything queued so far on the calling thread; it runs before a flush
(FaaS return, ``shutdown()``, ``force_flush()``, ``testing.capture``) and at interpreter
exit, so whoever flushes sees every call that returned before.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Final

from infermeter.agent._duck import LOGGER
from infermeter.agent.semconv import (
    BUCKETS_DURATION_S,
    BUCKETS_INIT_DURATION_S,
    BUCKETS_TOKENS,
    GEN_AI_TOKEN_TYPE,
    METRIC_FAAS_COLDSTARTS,
    METRIC_FAAS_INIT_DURATION,
    METRIC_OPERATION_DURATION,
    METRIC_TIME_TO_FIRST_CHUNK,
    METRIC_TOKEN_USAGE,
    TOKEN_TYPE_INPUT,
    TOKEN_TYPE_OUTPUT,
)
from opentelemetry.metrics import Counter, Histogram, Meter
from opentelemetry.util.types import Attributes

__all__ = ["RECORDER", "Instruments", "Measurement", "MetricRecorder", "record"]

# A queued call holds its span, attributes and result (~2 KB): 10,000 bound it at ~20 MB;
# beyond, the caller ends its own spans (the background thread is behind anyway).
_QUEUE_LIMIT: Final = 10_000
_IDLE_WAKE_S: Final = 0.1


@dataclass(frozen=True, slots=True)
class Instruments:
    duration: Histogram
    tokens: Histogram
    time_to_first_chunk: Histogram
    coldstarts: Counter
    init_duration: Histogram

    @classmethod
    def from_meter(cls, meter: Meter) -> Instruments:
        # Bucket advice travels with the instruments, so an application's own
        # MeterProvider gets the convention's buckets without configuring views.
        return cls(
            duration=meter.create_histogram(
                METRIC_OPERATION_DURATION,
                unit="s",
                description="GenAI operation duration.",
                explicit_bucket_boundaries_advisory=BUCKETS_DURATION_S,
            ),
            tokens=meter.create_histogram(
                METRIC_TOKEN_USAGE,
                unit="{token}",
                description="Number of input and output tokens used.",
                explicit_bucket_boundaries_advisory=BUCKETS_TOKENS,
            ),
            time_to_first_chunk=meter.create_histogram(
                METRIC_TIME_TO_FIRST_CHUNK,
                unit="s",
                description="Time to receive the first chunk of a streamed response.",
                explicit_bucket_boundaries_advisory=BUCKETS_DURATION_S,
            ),
            coldstarts=meter.create_counter(
                METRIC_FAAS_COLDSTARTS,
                unit="{coldstart}",
                description="Number of invocation cold starts.",
            ),
            init_duration=meter.create_histogram(
                METRIC_FAAS_INIT_DURATION,
                unit="s",
                description="Duration of the function's initialization (process start to "
                "first invocation).",
                explicit_bucket_boundaries_advisory=BUCKETS_INIT_DURATION_S,
            ),
        )


# (instruments, attributes, duration_s, input_tokens, output_tokens, ttft_s, cold_start,
#  init_duration_s); a tuple because the caller's thread builds one per call.
Measurement = tuple[
    Instruments,
    Attributes,
    float | None,
    int | None,
    int | None,
    float | None,
    bool,
    float | None,
]


def record(item: Measurement) -> None:
    """Record one finished call's measurements now (on the background thread)."""
    instruments, attributes, duration, input_tokens, output_tokens, ttft, cold, init = item
    if duration is not None:
        instruments.duration.record(duration, attributes)
    if input_tokens is not None or output_tokens is not None:
        base = dict(attributes or {})
        if input_tokens is not None:
            base[GEN_AI_TOKEN_TYPE] = TOKEN_TYPE_INPUT
            instruments.tokens.record(input_tokens, dict(base))
        if output_tokens is not None:
            base[GEN_AI_TOKEN_TYPE] = TOKEN_TYPE_OUTPUT
            instruments.tokens.record(output_tokens, base)
    if ttft is not None:
        instruments.time_to_first_chunk.record(ttft, attributes)
    if cold:
        instruments.coldstarts.add(1, attributes)
        if init is not None:
            instruments.init_duration.record(init, attributes)


class MetricRecorder:
    """A bounded queue of jobs (ends of observed calls, measurements), run by one daemon
    thread in the order they were queued."""

    def __init__(self, limit: int = _QUEUE_LIMIT) -> None:
        self._limit = limit
        self._queue: deque[Callable[[], None]] = deque()
        self._lock = threading.Lock()
        # Held while draining, so a drain that returns has seen every earlier item
        # recorded, including one the daemon thread had already popped.
        self._drain_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        if hasattr(os, "register_at_fork"):
            # The parent's thread does not exist in a forked child: start a new one there.
            # (Checking os.getpid() per call instead would cost a syscall, ~0.5 µs.)
            os.register_at_fork(after_in_child=self._forget_thread)

    def _forget_thread(self) -> None:
        self._thread = None
        self._queue.clear()  # the parent records what it queued
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()

    def submit(self, item: Measurement) -> None:
        """Record ``item``'s measurements on the background thread."""
        self.defer(partial(record, item))

    def defer(self, job: Callable[[], None]) -> None:
        """Run ``job`` on the background thread (on this one when the queue is full).

        ``job`` must not raise (failures are logged at debug and dropped)."""
        queue = self._queue
        if len(queue) >= self._limit:
            self._run_job(job)
            return
        queue.append(job)
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, name="infermeter-metrics", daemon=True
            )
            self._thread.start()
            self.register_exit_hook()

    def register_exit_hook(self) -> None:
        """Drain at interpreter exit. atexit runs hooks last-in first-out, so this must be
        registered after the MeterProvider (whose own hook shuts it down): called again
        whenever infermeter builds one."""
        atexit.unregister(self.drain)
        atexit.register(self.drain)

    def _run(self) -> None:
        while True:
            self._wake.wait(_IDLE_WAKE_S)
            self._wake.clear()
            self.drain()

    def drain(self) -> int:
        """Run everything queued so far on this thread; returns how many jobs."""
        queue = self._queue
        count = 0
        with self._drain_lock:
            while True:
                try:
                    job = queue.popleft()
                except IndexError:
                    return count
                count += 1
                self._run_job(job)

    @staticmethod
    def _run_job(job: Callable[[], None]) -> None:
        try:
            job()
        except Exception:  # noqa: BLE001 - a failing meter or span must not stop the queue
            LOGGER.debug("infermeter: background telemetry job failed", exc_info=True)

    def pending(self) -> int:
        return len(self._queue)


RECORDER: Final = MetricRecorder()
