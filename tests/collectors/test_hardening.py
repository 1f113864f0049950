"""The receiver against hostile clients: ambiguous framing, credentials in query strings,
bodies that are not text, and slow (slowloris) connections. A collector runs in this
process on a loopback port; clients are raw sockets, so every byte is the test's."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from infermeter.agent import semconv as sc
from infermeter.collectors import Collector
from infermeter.collectors.testing import otlp_json, otlp_request, otlp_span, send_otlp


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    with Collector(tmp_path / "store.duckdb", port=0, log_level="DEBUG") as running:
        yield running


def _exchange(collector: Collector, raw: bytes, timeout: float = 30.0) -> bytes:
    """Send ``raw`` on a new connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", collector.port), timeout=timeout) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _statuses(answer: bytes) -> list[int]:
    return [int(line.split()[1]) for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.")]


def _body() -> bytes:
    return otlp_request([otlp_span(attributes={sc.TENANT_ID: "t"})]).SerializeToString()


# -- RFC 9112 §6: one unambiguous body length --------------------------------------------


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: {n}\r\nContent-Length: {n}\r\n",
        b"Content-Length: {n}\r\nContent-Length: 5\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: {n}\r\n",
        b"Content-Length: {n}\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked, identity\r\n",
    ],
    ids=["two-equal-lengths", "two-lengths", "te-then-cl", "cl-then-te", "chunked-not-last"],
)
def test_ambiguous_framing_is_a_400_and_the_connection_closes(
    collector: Collector, framing: bytes
) -> None:
    body = _body()
    head = (
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        + framing.replace(b"{n}", str(len(body)).encode())
        + b"\r\n"
    )
    # The smuggled second request must never be read as one.
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = _exchange(collector, head + body + smuggled)
    assert _statuses(answer) == [400]
    assert b"connection: close" in answer.lower()
    assert collector.stats()["accepted_spans"] == 0


def test_chunked_alone_and_one_length_are_still_accepted(collector: Collector) -> None:
    body = _body()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    for framing, payload in (
        (b"Transfer-Encoding: chunked\r\n", chunked),
        (b"Content-Length: %d\r\n" % len(body), body),
    ):
        answer = _exchange(
            collector,
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            + framing
            + b"Connection: close\r\n\r\n"
            + payload,
        )
        assert _statuses(answer) == [200]
    assert collector.stats()["accepted_spans"] == 2


# -- credentials in query strings ----------------------------------------------------------


def test_a_token_in_the_query_string_never_reaches_the_log(
    collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="infermeter.collectors")
    secrets = ["s3cret-health", "s3cret-traces", "s3cret-404", "s3cret-bad-line"]
    send_otlp(collector.url + f"/v1/traces?token={secrets[1]}", otlp_request([otlp_span()]))
    for raw in (
        f"GET /healthz?access_token={secrets[0]} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET /nowhere?api_key={secrets[2]} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET /healthz?token={secrets[3]} HTTP/9.9 junk\r\n\r\n",  # a malformed request line
    ):
        assert _exchange(collector, raw.encode())  # answered (HTTP/0.9 for the bad line)
    logged = caplog.text
    assert "/healthz" in logged and "/v1/traces" in logged  # the access log is on
    for secret in secrets:
        assert secret not in logged


# -- bodies that are not text ------------------------------------------------------------------


def test_a_lone_surrogate_in_a_json_body_is_a_400_and_nothing_is_stored(
    collector: Collector,
) -> None:
    document = otlp_json(otlp_request([otlp_span(attributes={sc.TENANT_ID: "PLACEHOLDER"})]))
    body = json.dumps(document).replace("PLACEHOLDER", "\\ud800").encode()
    answer = send_otlp(
        collector.url + "/v1/traces", body, headers={"Content-Type": "application/json"}
    )
    assert answer.status == 400
    assert "surrogate" in answer.json()["message"]
    after = send_otlp(collector.url + "/v1/traces", otlp_request([otlp_span()]))
    assert after.status == 200
    assert collector.flush(30)
    assert collector.stats()["stored_spans"] == 1


# -- slow clients (slowloris) ----------------------------------------------------------------


def _health_status(collector: Collector) -> int:
    answer = _exchange(collector, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    (status,) = _statuses(answer)
    return status


def _closed_by_server(sock: socket.socket, timeout: float = 30.0) -> bool:
    """Whether the server ends the connection (EOF or reset) within ``timeout``."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


def test_300_slow_header_connections_leave_healthz_and_ingest_responsive(tmp_path: Path) -> None:
    with Collector(tmp_path / "store.duckdb", port=0, header_timeout=2.0) as collector:
        attackers = []
        try:
            for _ in range(300):
                sock = socket.create_connection(("127.0.0.1", collector.port), timeout=30)
                # A request started and never finished: the headers trickle, then stall.
                sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                attackers.append(sock)
            assert _health_status(collector) == 200
            answer = send_otlp(collector.url + "/v1/traces", otlp_request([otlp_span()]))
            assert answer.status == 200
            # Each slow connection is cut off once its header deadline passes.
            assert _closed_by_server(attackers[-1])
        finally:
            for sock in attackers:
                sock.close()
        assert collector.stats()["accepted_spans"] == 1


def test_bodies_trickling_in_take_no_ingest_slot_and_are_cut_off(tmp_path: Path) -> None:
    body = _body()
    with Collector(
        tmp_path / "store.duckdb", port=0, max_concurrent_requests=2, body_timeout=2.0
    ) as collector:
        slow = []
        try:
            for _ in range(4):  # twice as many as there are slots
                sock = socket.create_connection(("127.0.0.1", collector.port), timeout=30)
                sock.sendall(
                    b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/x-protobuf\r\n"
                    + b"Content-Length: %d\r\n\r\n" % len(body)
                    + body[:5]
                )
                slow.append(sock)
            answer = send_otlp(collector.url + "/v1/traces", body, timeout=30)
            assert answer.status == 200  # not 503 "too many requests in progress"
            assert all(_closed_by_server(sock) for sock in slow)
        finally:
            for sock in slow:
                sock.close()
        assert collector.flush(30)
        assert collector.stats()["stored_spans"] == 1
