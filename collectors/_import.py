"""``infermeter import``: OTLP trace files into a store.

Formats, recognised by content rather than by name:

- OTLP/JSON: one ``ExportTraceServiceRequest`` (``TracesData``) per file, pretty-printed
  or not, or one per line — the OpenTelemetry Collector file exporter's default
  ``format: json`` and the OTLP file-exporter spec's JSON Lines;
- binary OTLP protobuf: one message per file, or the file exporter's ``format: proto``
  stream where each message follows its size as a 4-byte big-endian integer;
- any of these gzip-compressed. (zstd, the file exporter's compression, is refused
  with a hint: Python 3.11 has no zstd decoder in its standard library.)

Each file is loaded in one transaction: a malformed line fails that file (named with
its line) and loads nothing of it, while the other files still load. A file already
imported — the same content by SHA-256, remembered in ``import_log`` — is skipped unless
forced.

While a collector runs on the store, it is the store's only writer, so the import sends
the spans through it (OTLP/HTTP with the collector's control token, honouring 429 and
``Retry-After`` like an exporter): durable as soon as acknowledged, but neither atomic
per file nor de-duplicated — the report says so.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

from infermeter.collectors._decode import (
    JSON,
    PROTOBUF,
    BodyError,
    decode_protobuf,
    json_for_flattening,
    request_from_json,
)
from infermeter.collectors._flatten import Limits, flatten_request, to_arrow
from infermeter.collectors._logs import events_to_arrow
from infermeter.collectors._sidecar import StorePaths, WriterLock, read_runtime
from infermeter.collectors._store import StoreLockedError, StoreWriter

if TYPE_CHECKING:
    import pyarrow as pa
    from infermeter.collectors._decode import TraceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

__all__ = ["FileResult", "ImportReport", "import_otlp", "read_otlp"]

_GZIP_MAGIC: Final = b"\x1f\x8b"
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
_BATCH_SPANS: Final = 10_000
_SPANS_PER_REQUEST: Final = 2_000  # when routing through a collector
_MAX_ATTEMPTS: Final = 20
# Larger JSON documents are split (as protobuf) to stay under the collector's body limit.
_MAX_ROUTED_JSON: Final = 8 * 1024 * 1024


@dataclass(slots=True)
class FileResult:
    path: Path
    status: str  # imported | skipped | failed
    spans: int = 0
    embeddings: int = 0
    rejected: int = 0
    message: str = ""


@dataclass(slots=True)
class ImportReport:
    """What happened to each file."""

    files: list[FileResult] = field(default_factory=list)
    via_collector: str | None = None

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    @property
    def spans(self) -> int:
        return sum(f.spans for f in self.files)

    def lines(self) -> list[str]:
        out = []
        if self.via_collector:
            out.append(
                f"infermeter import: a collector is running on this store; spans were sent "
                f"through it ({self.via_collector}) — not atomic per file, not de-duplicated"
            )
        for f in self.files:
            detail = f" ({f.message})" if f.message else ""
            if f.status == "imported":
                extra = f", {f.rejected} rejected" if f.rejected else ""
                out.append(f"{f.path}: {f.spans} spans, {f.embeddings} embeddings{extra}{detail}")
            else:
                out.append(f"{f.path}: {f.status}{detail}")
        total = sum(f.spans for f in self.files)
        out.append(
            f"infermeter import: {total} spans from "
            f"{sum(f.status == 'imported' for f in self.files)} file(s); "
            f"{len(self.failed)} failed, {sum(f.status == 'skipped' for f in self.files)} skipped"
        )
        return out


# -- reading files --------------------------------------------------------------------------


def _open(path: Path) -> IO[bytes]:
    raw = path.open("rb")
    head = raw.read(4)
    raw.seek(0)
    if head.startswith(_GZIP_MAGIC):
        raw.close()
        return gzip.GzipFile(path, "rb")  # type: ignore[return-value]  # a binary IO
    if head == _ZSTD_MAGIC:
        raw.close()
        raise ValueError(f"{path}: zstd-compressed; decompress it first (zstd -d {path.name})")
    return raw


# A file's messages as read: a parsed OTLP/JSON document (dict) or protobuf bytes.
_Message = dict[str, Any] | bytes


def _messages(path: Path) -> Iterator[tuple[str, _Message]]:
    """Every message in an OTLP trace file with where it was ("line 3", "message 2", or
    "" for a one-message file); ``ValueError`` naming the place of a malformed one."""
    with _open(path) as fh:
        try:
            head = fh.peek(64)[:64] if hasattr(fh, "peek") else b""
            if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"["):
                yield from _read_json(path, fh)
            elif head[:1] == b"\x0a":  # field 1 (resource_spans): one bare message
                yield "", fh.read()
            elif head:
                yield from _read_length_prefixed(path, fh)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise ValueError(f"{path}: cannot read: {exc}") from None


def _place(path: Path, where: str) -> str:
    return f"{path}:{where}" if where else str(path)


def read_otlp(path: str | Path) -> Iterator[tuple[str, ExportTraceServiceRequest]]:
    """Every ``ExportTraceServiceRequest`` in an OTLP trace file, with where it was
    ("line 3", "message 2", or "" for a one-message file). Raises ``ValueError`` naming
    the file and place of the first malformed one."""
    path = Path(path)
    for where, message in _messages(path):
        yield where, _to_protobuf(path, where, message)


def _to_protobuf(path: Path, where: str, message: _Message) -> ExportTraceServiceRequest:
    try:
        if isinstance(message, bytes):
            return decode_protobuf(message)
        return request_from_json(message)
    except BodyError as exc:
        raise ValueError(f"{_place(path, where)}: {exc}") from None


def _json_span_count(document: dict[str, Any]) -> int:
    count = 0
    for rs in document.get("resourceSpans") or document.get("resource_spans") or []:
        for ss in (
            (rs.get("scopeSpans") or rs.get("scope_spans") or []) if isinstance(rs, dict) else []
        ):
            spans = ss.get("spans") if isinstance(ss, dict) else None
            count += len(spans) if isinstance(spans, list) else 0
    return count


def _for_flattening(path: Path, where: str, message: _Message) -> TraceRequest:
    try:
        if isinstance(message, bytes):
            return decode_protobuf(message)
        return json_for_flattening(message)
    except BodyError as exc:
        raise ValueError(f"{_place(path, where)}: {exc}") from None


def _read_json(path: Path, fh: IO[bytes]) -> Iterator[tuple[str, _Message]]:
    first = fh.readline()
    try:
        document = json.loads(first)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        # Not one object per line: the whole file is one (pretty-printed) document.
        text = first + fh.read()
        try:
            document = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"{path}: malformed JSON: {exc}") from None
        if not isinstance(document, dict):
            raise ValueError(f"{path}: malformed OTLP/JSON: the document must be an object")
        yield "", document
        return
    yield "line 1", document
    for number, line in enumerate(fh, start=2):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            document = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"{path}:{where}: malformed JSON: {exc}") from None
        if not isinstance(document, dict):
            raise ValueError(f"{path}:{where}: malformed OTLP/JSON: each line must be an object")
        yield where, document


def _read_length_prefixed(path: Path, fh: IO[bytes]) -> Iterator[tuple[str, _Message]]:
    number = 0
    while True:
        header = fh.read(4)
        if not header:
            return
        number += 1
        where = f"message {number}"
        if len(header) < 4:
            raise ValueError(f"{path}:{where}: truncated size prefix")
        size = int.from_bytes(header, "big")
        data = fh.read(size)
        if len(data) < size:
            raise ValueError(f"{path}:{where}: truncated ({len(data)} of {size} bytes)")
        yield where, data


# -- loading ----------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_otlp(
    store: str | Path,
    files: Sequence[str | Path],
    *,
    force: bool = False,
    progress: bool = False,
    limits: Limits = Limits(),  # noqa: B008 — frozen dataclass
) -> ImportReport:
    """Load OTLP trace files into ``store`` (created if missing); see the module docstring.

    Raises ``OSError`` when the store cannot be written at all (another writer holds
    it); problems with single files are reported per file instead.
    """
    paths = StorePaths.of(store)
    runtime = read_runtime(paths)
    report = ImportReport()
    with _Progress(progress, [Path(f) for f in files]) as bar:
        if runtime is not None:
            report.via_collector = str(runtime["url"])
            sender = _CollectorSender(runtime)
            try:
                for file in files:
                    report.files.append(_send_file(Path(file), sender, bar))
            finally:
                sender.close()
            return report
        paths.store.parent.mkdir(parents=True, exist_ok=True)
        with WriterLock(paths) as lock:
            lock.acquire({"kind": "import"})
            try:
                writer = StoreWriter(paths.store)
            except StoreLockedError as exc:
                raise OSError(f"{exc} — close the program reading it and retry") from None
            try:
                for file in files:
                    report.files.append(_load_file(Path(file), writer, force, limits, bar))
            finally:
                writer.close()
    return report


def _load_file(
    path: Path, writer: StoreWriter, force: bool, limits: Limits, bar: _Progress
) -> FileResult:
    result = FileResult(path, "imported")
    try:
        digest = _sha256(path)
        cur = writer.connection()
        try:
            seen = cur.execute(
                "SELECT path, imported_at FROM import_log WHERE sha256 = ?", [digest]
            ).fetchone()
        finally:
            cur.close()
        if seen and not force:
            result.status = "skipped"
            result.message = f"same content imported from {seen[0]} at {seen[1]:%Y-%m-%d %H:%M}Z"
            return result
        spans: list[pa.Table] = []
        embeddings: list[pa.Table] = []
        events: list[pa.Table] = []  # evaluation results sent as span events
        pending = 0
        with writer.transaction() as cur:
            for where, message in _messages(path):
                flat = flatten_request(_for_flattening(path, where, message), limits=limits)
                result.rejected += flat.rejected_spans
                span_table, embedding_table = to_arrow(flat)
                spans.append(span_table)
                embeddings.append(embedding_table)
                if flat.events:
                    events.append(events_to_arrow(flat.events))
                pending += span_table.num_rows
                if pending >= _BATCH_SPANS:
                    _append(writer, spans, embeddings, events, result)
                    spans, embeddings, events, pending = [], [], [], 0
            _append(writer, spans, embeddings, events, result)
            cur.execute(
                "INSERT OR REPLACE INTO import_log VALUES (?, ?, ?, ?)",
                [digest, str(path), result.spans, datetime.now(UTC).replace(tzinfo=None)],
            )
    except (ValueError, OSError) as exc:
        return FileResult(path, "failed", message=str(exc))
    finally:
        bar.advance(path)
    return result


def _append(
    writer: StoreWriter,
    spans: list[pa.Table],
    embeddings: list[pa.Table],
    events: list[pa.Table],
    result: FileResult,
) -> None:
    import pyarrow as pa

    if not spans:
        return
    span_table = pa.concat_tables(spans)
    embedding_table = pa.concat_tables(embeddings)
    writer.append(span_table, embedding_table, pa.concat_tables(events) if events else None)
    result.spans += span_table.num_rows
    result.embeddings += embedding_table.num_rows


# -- routing through a running collector ----------------------------------------------------


class _CollectorSender:
    """OTLP/HTTP client for the collector that owns the store (keep-alive, retries)."""

    def __init__(self, runtime: dict[str, Any]) -> None:
        url = urllib.parse.urlsplit(str(runtime["url"]))
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port or 4318
        self._token = str(runtime["control_token"])
        self._conn: http.client.HTTPConnection | None = None

    def send(self, body: bytes, content_type: str = PROTOBUF) -> int:
        """POST one request; returns how many spans the collector rejected."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceResponse,
        )

        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                if self._conn is None:
                    self._conn = http.client.HTTPConnection(self._host, self._port, timeout=120)
                self._conn.request(
                    "POST",
                    "/v1/traces",
                    body=body,
                    headers={
                        "Content-Type": content_type,
                        "Authorization": f"Bearer {self._token}",
                    },
                )
                response = self._conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt == _MAX_ATTEMPTS:
                    raise OSError(f"the collector stopped answering: {exc}") from None
                time.sleep(min(2.0, 0.1 * attempt))
                continue
            if response.status == 200:
                if content_type == JSON:
                    partial = json.loads(payload).get("partialSuccess", {})
                    return int(partial.get("rejectedSpans", 0))
                parsed = ExportTraceServiceResponse.FromString(payload)
                return parsed.partial_success.rejected_spans
            if response.status in (429, 502, 503, 504) and attempt < _MAX_ATTEMPTS:
                delay = response.getheader("Retry-After") or "1"
                time.sleep(min(float(delay) if delay.isdigit() else 1.0, 30.0))
                continue
            raise OSError(
                f"the collector answered HTTP {response.status}: {_status_message(payload)}"
            )
        raise OSError("the collector kept refusing the data")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _status_message(payload: bytes) -> str:
    from google.protobuf.message import DecodeError
    from google.rpc.status_pb2 import Status

    try:
        return Status.FromString(payload).message or payload[:200].decode("utf-8", "replace")
    except DecodeError:
        return payload[:200].decode("utf-8", "replace")


def _split(
    request: ExportTraceServiceRequest, max_spans: int
) -> Iterator[ExportTraceServiceRequest]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    total = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    if total <= max_spans:
        yield request
        return
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            spans = scope_spans.spans
            for start in range(0, len(spans), max_spans):
                part = ExportTraceServiceRequest()
                rs = part.resource_spans.add()
                rs.resource.CopyFrom(resource_spans.resource)
                rs.schema_url = resource_spans.schema_url
                ss = rs.scope_spans.add()
                ss.scope.CopyFrom(scope_spans.scope)
                ss.schema_url = scope_spans.schema_url
                ss.spans.extend(spans[start : start + max_spans])
                yield part


def _send_file(path: Path, sender: _CollectorSender, bar: _Progress) -> FileResult:
    result = FileResult(path, "imported")
    try:
        for where, message in _messages(path):
            if isinstance(message, dict):
                body = json.dumps(message).encode()
                if len(body) <= _MAX_ROUTED_JSON:
                    # JSON goes as it is: the collector's fast JSON reader handles it.
                    rejected = sender.send(body, JSON)
                    result.rejected += rejected
                    result.spans += _json_span_count(message) - rejected
                    continue
            for part in _split(_to_protobuf(path, where, message), _SPANS_PER_REQUEST):
                count = sum(len(ss.spans) for rs in part.resource_spans for ss in rs.scope_spans)
                rejected = sender.send(part.SerializeToString())
                result.rejected += rejected
                result.spans += count - rejected
    except (ValueError, OSError) as exc:
        result.status = "failed"
        result.message = f"{exc} (the {result.spans} spans sent before stay stored)"
    finally:
        bar.advance(path)
    return result


class _Progress:
    """A rich progress bar over the files on stderr (a no-op when not wanted)."""

    def __init__(self, enabled: bool, files: list[Path]) -> None:
        self._enabled = enabled and len(files) > 0
        self._files = files
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self._enabled:
            from rich.console import Console
            from rich.progress import Progress

            self._progress = Progress(console=Console(stderr=True), transient=True)
            self._progress.start()
            self._task = self._progress.add_task("importing", total=len(self._files))
        return self

    def advance(self, path: Path) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, description=f"imported {path.name}")

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
