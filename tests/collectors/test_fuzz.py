"""Fuzzing the decoders (11,800 malformed bodies: random and mutated protobuf, random
and mutated OTLP/JSON, mangled compression) and the live server (300): every body is
either decoded into valid rows or refused with a 4xx and a message — no crash, no
hang, no 5xx. Plus well-formed requests with hostile values: stored, and the same
rows whether sent as JSON or protobuf."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from infermeter.agent import semconv as sc
from infermeter.collectors._decode import JSON, PROTOBUF, BodyError, BodyLimits, decode_request
from infermeter.collectors._flatten import Limits, flatten_request, to_arrow
from infermeter.collectors._store import _insert
from infermeter.collectors.testing import (
    CollectorProcess,
    collector_process,
    otlp_json,
    otlp_request,
    otlp_span,
    send_otlp,
    store_in_memory,
)

pytestmark = pytest.mark.slow

BODY_LIMITS = BodyLimits(max_body_bytes=1_000_000, max_decompressed_bytes=2_000_000)
FLATTEN_LIMITS = Limits(max_attribute_length=512, max_vector_dim=64)
FAST = settings(
    deadline=timedelta(seconds=5),  # a hang fails the example, it does not stall the suite
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
    derandomize=True,
)

_STORE = store_in_memory()


def _valid_request() -> Any:
    return otlp_request(
        [
            otlp_span(
                attributes={
                    sc.TENANT_ID: "acme",
                    sc.GEN_AI_USAGE_INPUT_TOKENS: 12,
                    sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 0.2,
                    "list": [1, 2.5, "x", True],
                    "map": {"k": b"\x00\x01"},
                },
                events=[
                    (sc.EMBEDDING_EVENT, {sc.EMBEDDING_VECTOR: [0.1, 0.2]}),
                    ("log", {"m": "hello"}),
                ],
                parent_span_id=b"\x05" * 8,
            ),
            otlp_span(name="second"),
        ],
        resource={sc.CLOUD_REGION: "eu", sc.FAAS_MAX_MEMORY: 1 << 30},
    )


VALID_PROTOBUF = _valid_request().SerializeToString()
VALID_JSON = json.dumps(otlp_json(_valid_request())).encode()


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _check(
    body: bytes, content_type: str, encoding: str | None = None, *, store: bool = False
) -> None:
    """The property: a clear 4xx, or rows with valid JSON columns (and, with ``store``,
    rows that DuckDB actually takes)."""
    try:
        request = decode_request(body, content_type, encoding, BODY_LIMITS)
    except BodyError as exc:
        assert 400 <= exc.status < 500
        assert str(exc)
        return
    flat = flatten_request(request, limits=FLATTEN_LIMITS)
    spans, embeddings = to_arrow(flat)
    for column in ("attributes", "resource_attributes", "events", "links"):
        for text in spans.column(column).to_pylist():
            if text is not None:
                json.loads(text, parse_constant=_no_constants)
    if store and (spans.num_rows or embeddings.num_rows):
        _STORE.execute("BEGIN TRANSACTION")
        try:
            _insert(_STORE, "spans", spans)
            _insert(_STORE, "embeddings", embeddings)
        finally:
            _STORE.execute("ROLLBACK")


@settings(FAST, max_examples=4500)
@given(st.binary(max_size=2000))
def test_random_bytes_as_protobuf(body: bytes) -> None:
    _check(body, PROTOBUF)


@st.composite
def _mutations(draw: st.DrawFn, valid: bytes) -> bytes:
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 8))):
        action = draw(st.sampled_from(["flip", "set", "cut", "insert", "drop"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if action == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "set":
            data[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[at:]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


@settings(FAST, max_examples=2500)
@given(_mutations(VALID_PROTOBUF))
def test_mutated_protobuf(body: bytes) -> None:
    _check(body, PROTOBUF)


_OTLP_KEYS = [
    "resourceSpans",
    "resource_spans",
    "scopeSpans",
    "spans",
    "resource",
    "scope",
    "attributes",
    "key",
    "value",
    "stringValue",
    "intValue",
    "doubleValue",
    "boolValue",
    "arrayValue",
    "kvlistValue",
    "bytesValue",
    "values",
    "traceId",
    "spanId",
    "parentSpanId",
    "name",
    "kind",
    "startTimeUnixNano",
    "endTimeUnixNano",
    "events",
    "links",
    "status",
    "code",
    "message",
    "timeUnixNano",
    "version",
    sc.TENANT_ID,
    sc.EMBEDDING_VECTOR,
]
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "NaN", "12", ""])
)
_JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(_OTLP_KEYS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=12,
)


@settings(FAST, max_examples=300)
@given(st.dictionaries(st.sampled_from(_OTLP_KEYS), _JSON_VALUES, max_size=4))
def test_structured_random_json(document: dict[str, Any]) -> None:
    _check(json.dumps(document).encode(), JSON)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*path, index))
    return found


_TEMPLATE = json.loads(VALID_JSON)
_TEMPLATE_PATHS = [p for p in _paths(_TEMPLATE) if p]


@st.composite
def _substituted(draw: st.DrawFn) -> dict[str, Any]:
    """The valid OTLP/JSON document with a few nodes replaced by anything: reaches the
    deep paths (ids, values, events) that random documents rarely do."""
    document = json.loads(VALID_JSON)
    for path in draw(st.lists(st.sampled_from(_TEMPLATE_PATHS), min_size=1, max_size=3)):
        parent = document
        try:
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = draw(_SCALARS | st.lists(_SCALARS, max_size=3) | st.just({}))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier substitution removed this path
    return document


@settings(FAST, max_examples=1500)
@given(_substituted())
def test_substituted_otlp_json(document: dict[str, Any]) -> None:
    _check(json.dumps(document).encode(), JSON)


@settings(FAST, max_examples=2000)
@given(_mutations(VALID_JSON))
def test_mutated_json(body: bytes) -> None:
    _check(body, JSON)


@settings(FAST, max_examples=1000)
@given(
    st.sampled_from(["gzip", "deflate"]),
    st.sampled_from([VALID_PROTOBUF, b""]),
    st.binary(max_size=200),
    st.booleans(),
)
def test_mangled_compression(encoding: str, inner: bytes, noise: bytes, prefix: bool) -> None:
    packed = gzip.compress(inner) if encoding == "gzip" else zlib.compress(inner)
    body = (packed[:10] + noise) if prefix else (noise + packed)
    _check(body, PROTOBUF, encoding)


# Well-formed requests with hostile values: what is decoded is stored, and JSON and
# protobuf agree on every row.
_ATTRIBUTE_VALUES = st.recursive(
    st.booleans()
    | st.sampled_from([0, -1, 2**31 - 2, 2**31 - 1, 2**63 - 1, -(2**63)])  # column edges
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | st.text(max_size=600)
    | st.binary(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_ATTRIBUTE_KEYS = st.sampled_from(
    [
        sc.TENANT_ID,
        sc.GEN_AI_USAGE_INPUT_TOKENS,
        sc.INFERMETER_RETRIES,
        sc.FAAS_MAX_MEMORY,
        sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
        sc.FAAS_COLDSTART,
        sc.INFERMETER_ENTRY,
        sc.GEN_AI_SYSTEM_DEPRECATED,
        sc.GEN_AI_PROVIDER_NAME,
        "other",
        "",
    ]
) | st.text(max_size=10)


@settings(FAST, max_examples=150)
@given(
    st.lists(
        st.dictionaries(_ATTRIBUTE_KEYS, _ATTRIBUTE_VALUES, max_size=6), min_size=1, max_size=4
    ),
    st.dictionaries(_ATTRIBUTE_KEYS, _ATTRIBUTE_VALUES, max_size=4),
    st.lists(_ATTRIBUTE_VALUES, max_size=3),
)
def test_hostile_values_are_stored_and_json_agrees_with_protobuf(
    span_attributes: list[dict[str, Any]], resource: dict[str, Any], vector: list[Any]
) -> None:
    request = otlp_request(
        [
            otlp_span(attributes=a, events=[(sc.EMBEDDING_EVENT, {sc.EMBEDDING_VECTOR: vector})])
            for a in span_attributes
        ],
        resource=resource,
    )
    _check(request.SerializeToString(), PROTOBUF, store=True)
    from_protobuf = to_arrow(flatten_request(request, limits=FLATTEN_LIMITS))
    from_json = decode_request(json.dumps(otlp_json(request)).encode(), JSON)
    assert to_arrow(flatten_request(from_json, limits=FLATTEN_LIMITS))[0].equals(from_protobuf[0])


# -- the live server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    store = tmp_path_factory.mktemp("fuzz") / "store.duckdb"
    with collector_process(
        store, max_body_bytes=1_000_000, max_decompressed_bytes=2_000_000, flush_interval=0.2
    ) as proc:
        yield proc


@settings(FAST, max_examples=300, suppress_health_check=list(HealthCheck))
@given(
    st.one_of(st.binary(max_size=500), _mutations(VALID_PROTOBUF), _mutations(VALID_JSON)),
    st.sampled_from([PROTOBUF, JSON, "application/json; charset=utf-8", "text/plain", ""]),
    st.sampled_from([None, "gzip", "deflate", "identity", "zstd"]),
)
def test_the_live_server_answers_every_malformed_body(
    live: CollectorProcess, body: bytes, content_type: str, encoding: str | None
) -> None:
    headers = {"Content-Type": content_type}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    response = send_otlp(live.traces_endpoint, body, headers=headers, timeout=30)
    assert response.status in {200, 400, 413, 415}, response.body[:300]


def test_the_live_server_is_healthy_after_the_fuzzing(
    live: CollectorProcess, tmp_path: Path
) -> None:
    assert send_otlp(live.traces_endpoint, _valid_request()).status == 200
    assert live.process.poll() is None
    assert live.stop() == 0
    log = live.log_text()
    assert "Traceback" not in log and "internal error" not in log
    con = duckdb.connect(str(live.store), read_only=True)
    assert con.execute("SELECT count(*) FROM spans WHERE name = 'second'").fetchone()[0] >= 1  # type: ignore[index]
    con.close()
