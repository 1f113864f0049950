"""The OTLP/HTTP endpoints: ``POST /v1/traces`` and ``POST /v1/logs`` (protobuf and
JSON; log records become ``events`` rows, see ``collectors._logs``), ``POST /v1/metrics``
(accepted and dropped, counted in the log: metrics are computed from spans), plus
``POST /v1/snapshot`` for readers, ``POST /v1/flush`` (both need the control token) and
``GET /healthz``.

Server choice: the stdlib ``ThreadingHTTPServer``. The work per request is CPU-bound
Python (decode and flatten hold the GIL), so an asyncio server would add a dependency
without adding throughput; threads overlap exactly the parts that release the GIL —
socket reads, the log's fsync and DuckDB inserts. The benchmark measures the whole
path against decode-only (``benchmarks/bench_collector.py``).

Answers follow the OTLP/HTTP spec: 200 with an ``ExportTraceServiceResponse`` in the
request's encoding (``partial_success`` counts rejected spans and carries warnings such
as truncated values); 400 for malformed bodies, 401 without a valid token when auth is
on, 413 over the size limits, 415 for unknown content types or encodings, 429 when the
queue is full and 503 when the collector cannot accept (both with ``Retry-After``, the
signal OpenTelemetry exporters retry on); error bodies are ``google.rpc.Status``.
Every error is one line in the log at most — never a header, so never a token.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final

from infermeter.collectors._decode import (
    JSON,
    PROTOBUF,
    BodyError,
    BodyLimits,
    count_metrics_json,
    count_metrics_protobuf,
    decode_protobuf,
    decompress,
    json_for_flattening,
    media_type,
    parse_json,
)
from infermeter.collectors._flatten import Flattened, Limits, flatten_request, to_arrow
from infermeter.collectors._ingest import Overloaded, Unavailable
from infermeter.collectors._logs import (
    LOGS_PATH,
    decode_logs_json,
    decode_logs_protobuf,
    events_to_arrow,
    flatten_logs,
    logs_response,
)

if TYPE_CHECKING:
    from pathlib import Path

    from infermeter.collectors._auth import Principal, TokenTable
    from infermeter.collectors._ingest import IngestPipeline

__all__ = ["METRICS_PATH", "TRACES_PATH", "OTLPServer"]

_log = logging.getLogger("infermeter.collectors")

TRACES_PATH: Final = "/v1/traces"
METRICS_PATH: Final = "/v1/metrics"
SNAPSHOT_PATH: Final = "/v1/snapshot"
FLUSH_PATH: Final = "/v1/flush"
HEALTH_PATHS: Final = frozenset({"/healthz", "/health"})
# google.rpc.Code for each HTTP status the receiver sends.
_GRPC_CODE: Final = {
    400: 3,
    401: 16,
    403: 7,
    404: 5,
    405: 12,
    411: 3,
    413: 8,
    415: 3,
    429: 8,
    500: 13,
    501: 12,
    503: 14,
}
# Bodies of refused requests are read and dropped up to this size so the client sees
# the answer instead of a connection reset; bigger ones end the connection.
_DRAIN_LIMIT: Final = 64 * 1024 * 1024
_SLOT_WAIT_S: Final = 5.0
# A query string may carry a credential (``?token=…``, ``?api_key=…``): never logged.
_QUERY: Final = re.compile(r"\?[^\s\"']*")
# Control characters from the request line are escaped so a client cannot forge log lines.
_CONTROL: Final = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F]}


def _loggable(message: str) -> str:
    return _QUERY.sub("?…", message).translate(_CONTROL)


class _ClientGoneError(Exception):
    """The client closed the connection or stalled past the idle timeout mid-body."""


@dataclass(slots=True)
class _Connection:
    """What one connection is doing, and until when it may (see ``OTLPServer``)."""

    phase: str  # idle | headers | body | busy
    since: float
    deadline: float | None  # monotonic; None while the server itself works


class OTLPServer(ThreadingHTTPServer):
    """The HTTP server of one collector (its handler threads share these fields).

    Slow clients (slowloris) cannot hold the server: every connection has a deadline
    for its current phase — ``idle_timeout`` between requests, ``header_timeout`` for a
    request line and headers once the first byte arrived, ``body_timeout`` for the
    body — enforced by the accept loop (``service_actions``), which shuts down the
    socket of any connection past it (a per-read socket timeout alone lets a client
    send a byte every few seconds forever). An ingest slot is taken only once a whole
    body has arrived, so slow senders never hold one. When ``max_connections`` are
    open, a new connection evicts the one that has waited longest for a request (idle
    or still sending headers) rather than being refused, so ``/healthz`` and real
    clients get through an attack of idle connections.
    """

    daemon_threads = True
    allow_reuse_address = True
    # The listen backlog: with socketserver's default of 5, a burst of new connections
    # (many exporters starting at once, or an attack) overflows it while the accept loop
    # waits for the GIL, and the kernel drops SYNs that clients resend only after 1-3 s.
    request_queue_size = 1024

    def __init__(
        self,
        address: tuple[str, int],
        *,
        pipeline: IngestPipeline,
        tokens: TokenTable,
        body_limits: BodyLimits,
        flatten_limits: Limits,
        max_concurrent_requests: int,
        max_connections: int,
        idle_timeout: float,
        snapshot_dir: Path,
        header_timeout: float = 10.0,
        body_timeout: float = 60.0,
    ) -> None:
        self.pipeline = pipeline
        self.tokens = tokens
        self.body_limits = body_limits
        self.flatten_limits = flatten_limits
        self.slots = threading.BoundedSemaphore(max_concurrent_requests)
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.snapshot_dir = snapshot_dir
        self.responses: Counter[int] = Counter()
        self.rejected_spans = 0
        self.dropped_metric_points = 0
        self.timed_out_connections = 0
        self.evicted_connections = 0
        self._connections: dict[socket.socket, _Connection] = {}
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    # Connections are tracked so that shutdown can end idle keep-alive ones at once, and
    # so that slow ones can be cut off.
    def process_request(self, request: Any, client_address: Any) -> None:
        now = time.monotonic()
        evict: socket.socket | None = None
        with self._connections_lock:
            full = len(self._connections) >= self.max_connections
            if full:
                waiting = [
                    (state.since, id(conn), conn)
                    for conn, state in self._connections.items()
                    if state.phase in ("idle", "headers")
                ]
                if waiting:
                    evict = min(waiting)[2]
                    del self._connections[evict]
                    full = False
            if not full:
                self._connections[request] = _Connection("idle", now, now + self.idle_timeout)
        if evict is not None:
            self.evicted_connections += 1
            _cut(evict)
        if full:
            self.responses[503] += 1
            with contextlib.suppress(OSError):
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def phase(self, request: socket.socket, phase: str, timeout: float | None) -> None:
        """Record what ``request``'s handler does now, with a deadline ``timeout``
        seconds from now (None: no deadline, the server is working)."""
        now = time.monotonic()
        with self._connections_lock:
            state = self._connections.get(request)
            if state is not None:
                state.phase = phase
                state.since = now
                state.deadline = None if timeout is None else now + timeout

    def service_actions(self) -> None:
        """Cut off connections past their phase's deadline (runs in the accept loop)."""
        now = time.monotonic()
        expired = []
        with self._connections_lock:
            for conn, state in self._connections.items():
                if state.deadline is not None and now > state.deadline:
                    state.deadline = None  # cut once
                    expired.append((conn, state.phase))
        for conn, phase in expired:
            if phase != "idle":
                self.timed_out_connections += 1
                _log.info("cut off a connection that was too slow sending its request %s", phase)
            _cut(conn)

    def end_connections(self) -> None:
        """Stop reading from every client: idle connections end, requests in progress
        still get their answer."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RD)

    def count(self, status: int) -> None:
        self.responses[status] += 1


def _cut(conn: socket.socket) -> None:
    """End a connection from another thread: its handler's next read sees the end."""
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: OTLPServer
    protocol_version = "HTTP/1.1"
    server_version = "infermeter-collector"
    sys_version = ""

    def setup(self) -> None:
        # A per-read backstop; the phase deadlines (``OTLPServer``) bound whole phases.
        self.request.settimeout(self.server.idle_timeout)
        super().setup()
        self._body_unread = False

    def handle_one_request(self) -> None:
        server = self.server
        server.phase(self.request, "idle", server.idle_timeout)
        try:
            # Wait for the request's first byte as an idle connection; from then on the
            # line and headers have ``header_timeout`` in all.
            started = self.rfile.peek(1)  # type: ignore[attr-defined]
        except OSError:
            started = b""
        if not started:
            self.close_connection = True
            return
        server.phase(self.request, "headers", server.header_timeout)
        super().handle_one_request()

    def _working(self) -> None:
        self.server.phase(self.request, "busy", None)

    # Access logs at debug level, never with headers or query strings (credentials
    # travel in both).
    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s %s", self.address_string(), _loggable(format % args))

    def log_error(self, format: str, *args: Any) -> None:
        _log.info("%s %s", self.address_string(), _loggable(format % args))

    # -- routing -----------------------------------------------------------------------

    def do_GET(self) -> None:
        self._working()
        path = self.path.split("?", 1)[0]
        if path in HEALTH_PATHS:
            self._health()
        else:
            self._fail(404, f"no such endpoint {path!r}", JSON)

    def do_POST(self) -> None:
        self._working()
        self._body_unread = True
        if not self._framing_ok():
            return
        path = self.path.split("?", 1)[0]
        if path == TRACES_PATH:
            self._traces()
        elif path == LOGS_PATH:
            self._traces(logs=True)
        elif path == METRICS_PATH:
            self._traces(metrics=True)
        elif path == SNAPSHOT_PATH:
            self._snapshot()
        elif path == FLUSH_PATH:
            self._flush()
        else:
            self._fail(
                404,
                f"no such endpoint {path!r}; OTLP traces go to {TRACES_PATH}, logs to {LOGS_PATH}",
                JSON,
            )

    def do_PUT(self) -> None:
        self._working()
        self._body_unread = True
        if self._framing_ok():
            self._fail(405, f"use POST {TRACES_PATH}", JSON)

    def _framing_ok(self) -> bool:
        """RFC 9112 §6: a body's length must be unambiguous. Two ``Content-Length``
        fields, or ``Transfer-Encoding`` beside ``Content-Length``, are how requests are
        smuggled past a proxy that reads the framing differently: refuse them (400) and
        close the connection, whose remaining bytes can no longer be trusted."""
        lengths = self.headers.get_all("Content-Length") or []
        encodings = self.headers.get_all("Transfer-Encoding") or []
        codings = [c.strip().lower() for field in encodings for c in field.split(",")]
        status, problem = 0, ""
        if encodings and lengths:
            status, problem = 400, "both Transfer-Encoding and Content-Length"
        elif len(lengths) > 1:
            status, problem = 400, "more than one Content-Length"
        elif codings and codings[-1] != "chunked":
            status, problem = 400, "Transfer-Encoding that does not end in chunked"
        elif len(codings) > 1:
            status, problem = 501, f"unsupported Transfer-Encoding {', '.join(codings)!r}"
        if not status:
            return True
        self._body_unread = False
        self.close_connection = True
        _log.info("%s: %d ambiguous request framing: %s", self.address_string(), status, problem)
        self._fail(status, f"ambiguous request framing: {problem}", JSON)
        return False

    # -- endpoints -----------------------------------------------------------------------

    def _traces(self, *, logs: bool = False, metrics: bool = False) -> None:
        server = self.server
        principal = server.tokens.authenticate(self.headers.get("Authorization"))
        if principal is None:
            _log.info("%s: refused: missing or unknown bearer token", self.address_string())
            self._fail(
                401,
                "missing or invalid bearer token",
                JSON,
                {"WWW-Authenticate": 'Bearer realm="infermeter"'},
            )
            return
        try:
            kind = media_type(self.headers.get("Content-Type"))
        except BodyError as exc:
            self._fail(exc.status, str(exc), JSON)
            return
        body = self._receive(kind, precheck=not metrics)
        if body is None:
            return
        # The slot (bounding decode memory and CPU) only once the body is here: a client
        # trickling its body holds nothing but its own connection.
        if not server.slots.acquire(timeout=_SLOT_WAIT_S):
            self._fail(503, "too many requests in progress", kind, retry_after=1)
            return
        try:
            if logs:
                self._export_logs(principal, kind, body)
            elif metrics:
                self._export_metrics(principal, kind, body)
            else:
                self._export(principal, kind, body)
        finally:
            server.slots.release()

    def _export_metrics(self, principal: Principal, kind: str, body: bytes) -> None:
        """Accept OTLP metrics and drop them, counted in the log: infermeter computes its
        metrics from spans, but emitters that also export metrics (OpenLIT, OpenLLMetry)
        must not see an error every export interval."""
        server = self.server
        try:
            raw = decompress(
                body,
                self.headers.get("Content-Encoding"),
                server.body_limits.max_decompressed_bytes,
            )
            del body
            metrics, points = (
                count_metrics_protobuf(raw) if kind == PROTOBUF else count_metrics_json(raw)
            )
        except BodyError as exc:
            _log.info("%s: %d %s", self.address_string(), exc.status, exc)
            self._fail(exc.status, str(exc), kind)
            return
        except _ClientGoneError:
            self.close_connection = True
            return
        server.dropped_metric_points += points
        _log.info(
            "%s (%s): dropped %d metric data point(s) of %d metric(s) sent to %s (%d so far); "
            "infermeter computes its metrics from spans",
            self.address_string(),
            principal.name,
            points,
            metrics,
            METRICS_PATH,
            server.dropped_metric_points,
        )
        self._send(200, b"{}" if kind == JSON else b"", kind)

    def _receive(self, kind: str, *, precheck: bool = True) -> bytes | None:
        """The request body, or None once the request has been answered (refused)."""
        server = self.server
        try:
            if precheck:  # data for the queue: refused early while the line is long
                server.pipeline.precheck()
            return self._read_body(server.body_limits.max_body_bytes)
        except BodyError as exc:
            _log.info("%s: %d %s", self.address_string(), exc.status, exc)
            self._fail(exc.status, str(exc), kind)
        except Overloaded as exc:
            self._fail(429, str(exc), kind, retry_after=exc.retry_after)
        except Unavailable as exc:
            self._fail(503, str(exc), kind, retry_after=exc.retry_after)
        except _ClientGoneError:
            self.close_connection = True
        return None

    def _export(self, principal: Principal, kind: str, body: bytes) -> None:
        server = self.server
        try:
            raw = decompress(
                body,
                self.headers.get("Content-Encoding"),
                server.body_limits.max_decompressed_bytes,
            )
            del body
            request = (
                decode_protobuf(raw) if kind == PROTOBUF else json_for_flattening(parse_json(raw))
            )
            del raw
            flat = flatten_request(request, limits=server.flatten_limits, tenant=principal.tenant)
            del request
            spans, embeddings = to_arrow(flat)
            events = events_to_arrow(flat.events) if flat.events else None
            if spans.num_rows or embeddings.num_rows:
                server.pipeline.submit(spans, embeddings, events)
        except Exception as exc:  # noqa: BLE001 — answered by kind; never the server's end
            self._refuse(exc, kind, "spans")
            return
        message = flat.message()
        if flat.rejected_spans or message:
            server.rejected_spans += flat.rejected_spans
            _log.info(
                "%s (%s): %d span(s) rejected; %s",
                self.address_string(),
                principal.name,
                flat.rejected_spans,
                message,
            )
        self._send(200, _export_response(kind, flat.rejected_spans, message), kind)

    def _export_logs(self, principal: Principal, kind: str, body: bytes) -> None:
        """``POST /v1/logs``: the same limits, durability and answers as spans."""
        server = self.server
        try:
            raw = decompress(
                body,
                self.headers.get("Content-Encoding"),
                server.body_limits.max_decompressed_bytes,
            )
            del body
            request = (
                decode_logs_protobuf(raw) if kind == PROTOBUF else decode_logs_json(parse_json(raw))
            )
            del raw
            flat = flatten_logs(request, limits=server.flatten_limits, tenant=principal.tenant)
            del request
            if flat.rows:
                spans, embeddings = to_arrow(Flattened([], []))
                server.pipeline.submit(spans, embeddings, events_to_arrow(flat.rows))
        except Exception as exc:  # noqa: BLE001 — answered by kind; never the server's end
            self._refuse(exc, kind, "logs")
            return
        message = flat.message()
        if flat.rejected or message:
            _log.info(
                "%s (%s): %d log record(s) rejected; %s",
                self.address_string(),
                principal.name,
                flat.rejected,
                message,
            )
        self._send(200, logs_response(kind == JSON, flat.rejected, message), kind)

    def _refuse(self, exc: Exception, kind: str, what: str) -> None:
        """Answer an ingest request that failed with ``exc`` (call inside ``except``): the
        client's fault 4xx, backpressure 429/503 with Retry-After (which OTLP exporters
        retry), a vanished client nothing, and a bug 500 — one request, never the server."""
        if isinstance(exc, BodyError):
            _log.info("%s: %d %s", self.address_string(), exc.status, exc)
            self._fail(exc.status, str(exc), kind)
        elif isinstance(exc, Overloaded):
            self._fail(429, str(exc), kind, retry_after=exc.retry_after)
        elif isinstance(exc, Unavailable):
            self._fail(503, str(exc), kind, retry_after=exc.retry_after)
        elif isinstance(exc, _ClientGoneError):
            self.close_connection = True
        else:
            _log.exception("%s: internal error while ingesting %s", self.address_string(), what)
            self._fail(500, "internal error while ingesting; see the collector log", kind)

    def _control(self, what: str) -> bool:
        """Whether the request carries the control token (else it is answered 401)."""
        principal = self.server.tokens.authenticate(self.headers.get("Authorization"))
        if principal is not None and principal.control:
            return True
        self._fail(
            401,
            f"{what} need the collector's control token (see collector.json)",
            JSON,
            {"WWW-Authenticate": 'Bearer realm="infermeter"'},
        )
        return False

    def _flush(self) -> None:
        """Answer once everything acknowledged so far is in the store (for tools and
        benchmarks that must not wait for the flush interval)."""
        if not self._control("flushes"):
            return
        try:
            self._read_body(1024 * 1024)
        except BodyError as exc:
            self._fail(exc.status, str(exc), JSON)
            return
        except _ClientGoneError:
            self.close_connection = True
            return
        if not self.server.pipeline.flush():
            self._fail(503, "timed out storing the queue", JSON, retry_after=1)
            return
        stats = self.server.pipeline.stats()
        self._send(200, json.dumps({"stored_spans": stats["stored_spans"]}).encode(), JSON)

    def _snapshot(self) -> None:
        if not self._control("snapshots"):
            return
        try:
            self._read_body(1024 * 1024)
            info = self.server.pipeline.snapshot(self.server.snapshot_dir)
        except BodyError as exc:
            self._fail(exc.status, str(exc), JSON)
            return
        except _ClientGoneError:
            self.close_connection = True
            return
        except Unavailable as exc:
            self._fail(503, str(exc), JSON, retry_after=exc.retry_after)
            return
        except Exception:  # noqa: BLE001 — reported as 500, the server keeps serving
            _log.exception("snapshot failed")
            self._fail(500, "snapshot failed; see the collector log", JSON)
            return
        document = {
            "path": str(info.path),
            "created_at": info.created_at.isoformat(),
            "seq": info.seq,
            "spans": info.spans,
        }
        self._send(200, json.dumps(document).encode(), JSON)

    def _health(self) -> None:
        server = self.server
        stats = server.pipeline.stats()
        stats["responses"] = {str(k): v for k, v in sorted(server.responses.items())}
        stats["rejected_spans"] = server.rejected_spans
        reason = server.pipeline.health_reason()
        healthy = reason is None
        stats["status"] = "ok" if healthy else "failing"
        stats["reason"] = reason
        self._send(200 if healthy else 503, json.dumps(stats).encode(), JSON)

    # -- plumbing --------------------------------------------------------------------------

    def _read_body(self, limit: int) -> bytes:
        self.server.phase(self.request, "body", self.server.body_timeout)
        try:
            return self._read_body_now(limit)
        finally:
            self._working()

    def _read_body_now(self, limit: int) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        declared = self.headers.get("Content-Length")
        if declared is None:
            self._body_unread = False  # nothing declared: nothing to read
            raise BodyError(411, "Content-Length or chunked Transfer-Encoding required")
        try:
            length = int(declared)
        except ValueError:
            self.close_connection = True
            raise BodyError(400, f"invalid Content-Length {declared[:20]!r}") from None
        if length < 0:
            self.close_connection = True
            raise BodyError(400, "negative Content-Length")
        if length > limit:
            raise BodyError(413, f"body of {length} bytes exceeds the {limit}-byte limit")
        try:
            data = self.rfile.read(length)
        except OSError:
            raise _ClientGoneError from None
        if len(data) < length:
            raise _ClientGoneError
        self._body_unread = False
        return data

    def _read_chunked(self, limit: int) -> bytes:
        out = bytearray()
        try:
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise _ClientGoneError
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    self.close_connection = True
                    raise BodyError(400, "malformed chunked body") from None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                if len(out) + size > limit:
                    self.close_connection = True
                    raise BodyError(413, f"chunked body exceeds the {limit}-byte limit")
                chunk = self.rfile.read(size)
                if len(chunk) < size:
                    raise _ClientGoneError
                out += chunk
                self.rfile.readline(3)
        except OSError:
            raise _ClientGoneError from None
        self._body_unread = False
        return bytes(out)

    def _drain(self) -> None:
        """Read and drop an unread request body so the client gets the answer, or
        close the connection when the body is too big (or chunked) to bother."""
        if not self._body_unread:
            return
        self._body_unread = False
        declared = self.headers.get("Content-Length")
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        try:
            length = int(declared) if declared is not None and not chunked else -1
        except ValueError:
            length = -1
        if not 0 <= length <= _DRAIN_LIMIT:
            self.close_connection = True
            return
        self.server.phase(self.request, "body", self.server.body_timeout)
        try:
            while length > 0:
                chunk = self.rfile.read(min(length, 1024 * 1024))
                if not chunk:
                    break
                length -= len(chunk)
        except OSError:
            self.close_connection = True

    def _fail(
        self,
        status: int,
        message: str,
        kind: str,
        extra: dict[str, str] | None = None,
        *,
        retry_after: int | None = None,
    ) -> None:
        self._drain()
        headers = dict(extra or {})
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        self._send(status, _status_body(kind, status, message), kind, headers)

    def _send(
        self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        self.server.count(status)
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True


def _export_response(kind: str, rejected: int, message: str) -> bytes:
    if kind == JSON:
        if not rejected and not message:
            return b"{}"
        partial = {"rejectedSpans": str(rejected), "errorMessage": message}
        return json.dumps({"partialSuccess": partial}).encode()
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    return response.SerializeToString()


def _status_body(kind: str, status: int, message: str) -> bytes:
    code = _GRPC_CODE.get(status, 2)
    if kind == PROTOBUF:
        from google.rpc.status_pb2 import Status

        return bytes(Status(code=code, message=message).SerializeToString())
    return json.dumps({"code": code, "message": message}).encode()
