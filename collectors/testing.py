"""Test helpers for the store and for anything that sends OTLP.

- Store rows: :func:`span_record`, :func:`insert_spans`, :func:`embedding_record`,
  :func:`insert_embeddings`, :func:`store_in_memory` — for tests and benchmarks of
  everything that reads the store (analytics, exporter, alerts), so none of them
  hand-writes INSERT statements against the schema.
- OTLP messages: :func:`otlp_span` and :func:`otlp_request` build an
  ``ExportTraceServiceRequest`` from plain Python values; :func:`otlp_json` renders one
  as OTLP/JSON (hex ids, 64-bit integers as strings).
- A real collector: :func:`collector_process` runs ``infermeter collect`` as a
  subprocess on a free port and stops it (SIGTERM, then SIGKILL) when done.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import http.client
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infermeter.collectors._schema import (
    EMBEDDING_COLUMNS,
    EVALUATION_COLUMNS,
    SPAN_COLUMNS,
    apply_migrations,
)

if TYPE_CHECKING:
    import duckdb
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

__all__ = [
    "CollectorProcess",
    "OTLPResponse",
    "collector_command",
    "collector_process",
    "embedding_record",
    "evaluation_record",
    "insert_embeddings",
    "insert_evaluations",
    "insert_spans",
    "otlp_json",
    "otlp_request",
    "otlp_span",
    "send_otlp",
    "span_record",
    "store_in_memory",
]

_ids = itertools.count(1)
_EPOCH = datetime(2026, 11, 16, tzinfo=UTC)  # a Monday (ISO week 2026-W47)


def span_record(
    *,
    start: datetime | None = None,
    duration_ms: float = 100.0,
    **fields: Any,
) -> dict[str, Any]:
    """One span row; unspecified columns are NULL, ids and times are filled in.

    ``start`` defaults to 2026-11-16 00:00 UTC; ``end_time`` follows from ``duration_ms``.
    A row is an entry span (one request) unless ``is_entry=False`` is passed.
    """
    unknown = set(fields) - {name for name, _ in SPAN_COLUMNS}
    if unknown:
        raise ValueError(f"unknown span columns: {sorted(unknown)}")
    n = next(_ids)
    start = start or _EPOCH
    row: dict[str, Any] = dict.fromkeys(name for name, _ in SPAN_COLUMNS)
    row.update(
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
        name="handler",
        kind="INTERNAL",
        service_name="svc",
        start_time=start.replace(tzinfo=None),
        end_time=(start + timedelta(milliseconds=duration_ms)).replace(tzinfo=None),
        duration_ms=duration_ms,
        status_code="UNSET",
        is_entry=True,
        cold_start=False,
        throttled=False,
        attempt=1,
    )
    row.update(fields)
    for key in ("attributes", "resource_attributes"):
        if isinstance(row[key], Mapping):
            row[key] = json.dumps(row[key])
    return row


def embedding_record(vector: Iterable[float], **fields: Any) -> dict[str, Any]:
    """One ``embeddings`` row; ``time`` defaults to 2026-11-16 00:00 UTC."""
    values = [float(v) for v in vector]
    row: dict[str, Any] = dict.fromkeys(name for name, _ in EMBEDDING_COLUMNS)
    n = next(_ids)
    row.update(
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
        time=_EPOCH.replace(tzinfo=None),
        kind="query",
        dim=len(values),
        vector=values,
    )
    unknown = set(fields) - set(row)
    if unknown:
        raise ValueError(f"unknown embedding columns: {sorted(unknown)}")
    row.update(fields)
    return row


def _insert(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: tuple[tuple[str, str], ...],
    rows: Iterable[Mapping[str, Any]],
) -> int:
    import pyarrow as pa

    rows = list(rows)
    if not rows:
        return 0
    names = [name for name, _ in columns]
    batch = pa.Table.from_pylist([{k: r.get(k) for k in names} for r in rows])
    con.register("_infermeter_batch", batch)
    try:
        select = ", ".join(f"CAST({name} AS {sql_type})" for name, sql_type in columns)
        con.execute(f"INSERT INTO {table} SELECT {select} FROM _infermeter_batch")  # noqa: S608
    finally:
        con.unregister("_infermeter_batch")
    return len(rows)


def insert_spans(con: duckdb.DuckDBPyConnection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Append span rows (from :func:`span_record`) in one columnar insert."""
    return _insert(con, "spans", SPAN_COLUMNS, rows)


def insert_embeddings(con: duckdb.DuckDBPyConnection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Append embedding rows (from :func:`embedding_record`) in one columnar insert."""
    return _insert(con, "embeddings", EMBEDDING_COLUMNS, rows)


def evaluation_record(name: str, **fields: Any) -> dict[str, Any]:
    """One ``evaluations`` row (unspecified columns NULL; ``time`` 2026-11-16 UTC)."""
    unknown = set(fields) - {column for column, _ in EVALUATION_COLUMNS}
    if unknown:
        raise ValueError(f"unknown evaluation columns: {sorted(unknown)}")
    row: dict[str, Any] = dict.fromkeys(column for column, _ in EVALUATION_COLUMNS)
    row.update(time=_EPOCH.replace(tzinfo=None), name=name, source="log")
    row.update(fields)
    return row


def insert_evaluations(con: duckdb.DuckDBPyConnection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Append evaluation rows (from :func:`evaluation_record`) in one columnar insert."""
    return _insert(con, "evaluations", EVALUATION_COLUMNS, rows)


def store_in_memory() -> duckdb.DuckDBPyConnection:
    """A fresh in-memory store at the current schema version."""
    import duckdb

    con = duckdb.connect(":memory:")
    apply_migrations(con)
    return con


# -- OTLP messages ---------------------------------------------------------------------------


def _set_any(target: AnyValue, value: Any) -> None:
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, bytes):
        target.bytes_value = value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            kv = target.kvlist_value.values.add()
            kv.key = key
            _set_any(kv.value, item)
    elif isinstance(value, Sequence):
        target.array_value.SetInParent()
        for item in value:
            _set_any(target.array_value.values.add(), item)
    elif value is not None:
        raise TypeError(f"no OTLP value for {type(value).__name__}")


def _set_attributes(container: Any, attributes: Mapping[str, Any]) -> None:
    for key, value in attributes.items():
        kv = container.add()
        kv.key = key
        _set_any(kv.value, value)


def otlp_span(
    name: str = "handler",
    *,
    attributes: Mapping[str, Any] | None = None,
    events: Sequence[tuple[str, Mapping[str, Any]]] = (),
    trace_id: bytes | None = None,
    span_id: bytes | None = None,
    parent_span_id: bytes = b"",
    start: datetime | None = None,
    duration_ms: float = 100.0,
    kind: int = 1,
    status_code: int = 0,
    status_message: str = "",
    flags: int = 0,
) -> Span:
    """One OTLP ``Span``; ids are unique unless given, times default to 2026-11-16 UTC.
    ``flags`` are the OTLP span flags (0x300: the parent is remote).

    ``events`` are ``(name, attributes)`` pairs, stamped at the span's start.
    """
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    n = next(_ids)
    start_ns = int((start or _EPOCH).timestamp() * 1_000_000) * 1000
    span = Span(
        trace_id=trace_id if trace_id is not None else n.to_bytes(16, "big"),
        span_id=span_id if span_id is not None else n.to_bytes(8, "big"),
        parent_span_id=parent_span_id,
        name=name,
        kind=kind,  # type: ignore[arg-type]
        start_time_unix_nano=start_ns,
        end_time_unix_nano=start_ns + int(duration_ms * 1_000_000),
        flags=flags,
    )
    span.status.code = status_code  # type: ignore[assignment]
    span.status.message = status_message
    _set_attributes(span.attributes, attributes or {})
    for event_name, event_attributes in events:
        event = span.events.add()
        event.name = event_name
        event.time_unix_nano = start_ns
        _set_attributes(event.attributes, event_attributes)
    return span


def otlp_request(
    spans: Iterable[Span],
    *,
    resource: Mapping[str, Any] | None = None,
    scope: str = "infermeter",
) -> ExportTraceServiceRequest:
    """An ``ExportTraceServiceRequest`` with one resource and one scope holding ``spans``;
    ``service.name`` defaults to ``svc``."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    _set_attributes(resource_spans.resource.attributes, {"service.name": "svc", **(resource or {})})
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = scope
    scope_spans.spans.extend(spans)
    return request


_HEX_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def otlp_json(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """``request`` as an OTLP/JSON document (what OTLP/HTTP JSON clients send)."""
    from google.protobuf import json_format

    document = json_format.MessageToDict(request)

    def hexify(obj: dict[str, Any]) -> None:
        for key in _HEX_ID_KEYS:
            if key in obj:
                obj[key] = base64.b64decode(obj[key]).hex()

    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                hexify(span)
                for link in span.get("links", []):
                    hexify(link)
    return document


# -- a real collector process ------------------------------------------------------------


@dataclass
class CollectorProcess:
    """A running ``infermeter collect`` subprocess (see :func:`collector_process`)."""

    process: subprocess.Popen[bytes]
    store: Path
    url: str
    control_token: str
    log: Path

    @property
    def traces_endpoint(self) -> str:
        return self.url + "/v1/traces"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait: the collector stores everything and exits (its code)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: the crash the write-ahead log exists for."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


_CLI = "import sys; from infermeter import main; sys.exit(main(sys.argv[1:]))"


def collector_command(store: str | os.PathLike[str], **settings: Any) -> list[str]:
    """The argv of ``infermeter collect`` for ``store`` with ``settings`` as flags."""
    argv = [sys.executable, "-c", _CLI, "collect", "--store", str(store)]
    for name, value in settings.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not False and value is not None:
            argv += [flag, str(value)]
    return argv


@contextlib.contextmanager
def collector_process(
    store: str | os.PathLike[str],
    *,
    log: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    start_timeout: float = 60.0,
    **settings: Any,
) -> Iterator[CollectorProcess]:
    """Run ``infermeter collect --store STORE --port 0`` (plus ``settings`` as flags)
    until the block ends; yields once it listens. Its stderr goes to ``log`` (default
    ``STORE.log``). The process is always stopped, even if the block raises."""
    from infermeter.collectors._sidecar import StorePaths

    paths = StorePaths.of(store)
    log_path = Path(log) if log is not None else paths.store.with_name(paths.store.name + ".log")
    settings.setdefault("port", 0)
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            collector_command(paths.store, **settings),
            stdout=log_file,
            stderr=log_file,
            env={**os.environ, **(env or {})},
        )
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            info = _runtime_of(paths.runtime, process.pid)
            if info is not None:
                break
            if process.poll() is not None:
                raise RuntimeError(
                    f"collector exited with {process.returncode}: "
                    + log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
                )
            if time.monotonic() > deadline:
                raise TimeoutError("collector did not start: " + log_path.read_text()[-2000:])
            time.sleep(0.05)
        yield CollectorProcess(
            process, paths.store, str(info["url"]), str(info["control_token"]), log_path
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(30)


def _runtime_of(path: Path, pid: int) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("pid") == pid else None


@dataclass(frozen=True)
class OTLPResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def send_otlp(
    endpoint: str,
    request: ExportTraceServiceRequest | bytes,
    *,
    as_json: bool = False,
    compress: bool = False,
    token: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> OTLPResponse:
    """POST one export request (a message, or raw bytes sent as they are) to
    ``endpoint`` and return the answer, whatever its status."""
    if isinstance(request, bytes):
        body = request
    elif as_json:
        body = json.dumps(otlp_json(request)).encode()
    else:
        body = request.SerializeToString()
    sent = {"Content-Type": "application/json" if as_json else "application/x-protobuf"}
    if compress:
        body = gzip.compress(body)
        sent["Content-Encoding"] = "gzip"
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    sent.update(headers or {})
    url = urllib.parse.urlsplit(endpoint)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=timeout)
    try:
        conn.request("POST", url.path or "/", body=body, headers=sent)
        response = conn.getresponse()
        return OTLPResponse(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        conn.close()
