"""Bodies → requests → store rows: content types, encodings, OTLP/JSON rules, and the
attribute → column mapping (units, fallbacks, wrong types, embeddings, tenant pins)."""

from __future__ import annotations

import gzip
import json
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from infermeter.agent import semconv as sc
from infermeter.collectors._decode import (
    JSON,
    PROTOBUF,
    BodyError,
    BodyLimits,
    decode_json,
    decode_request,
    decompress,
    json_for_flattening,
    media_type,
    parse_json,
)
from infermeter.collectors._flatten import (
    CLAIMED_TENANT,
    Flattened,
    Limits,
    flatten_request,
    to_arrow,
)
from infermeter.collectors._schema import EMBEDDING_COLUMNS, SPAN_COLUMNS
from infermeter.collectors.testing import otlp_json, otlp_request, otlp_span

SPAN_NAMES = [name for name, _ in SPAN_COLUMNS]


def rows(flat: Flattened) -> list[dict[str, Any]]:
    spans, _ = to_arrow(flat)
    return list(spans.to_pylist())


def one_row(**span_kwargs: Any) -> dict[str, Any]:
    resource = span_kwargs.pop("resource", None)
    tenant = span_kwargs.pop("tenant", None)
    flat = flatten_request(
        otlp_request([otlp_span(**span_kwargs)], resource=resource), tenant=tenant
    )
    (row,) = rows(flat)
    return row


# -- content types and encodings --------------------------------------------------------


def test_media_type_accepts_parameters_and_refuses_others() -> None:
    assert media_type("application/x-protobuf") == PROTOBUF
    assert media_type("application/json; charset=utf-8") == JSON
    with pytest.raises(BodyError) as info:
        media_type("text/plain")
    assert info.value.status == 415
    assert "text/plain" in str(info.value)


def test_gzip_deflate_and_raw_deflate_round_trip() -> None:
    body = b"x" * 1000
    assert decompress(gzip.compress(body), "gzip", 2000) == body
    assert decompress(zlib.compress(body), "deflate", 2000) == body
    raw = zlib.compressobj(wbits=-15)
    assert decompress(raw.compress(body) + raw.flush(), "deflate", 2000) == body
    # Concatenated gzip members are one body.
    assert decompress(gzip.compress(b"ab") + gzip.compress(b"cd"), "gzip", 10) == b"abcd"


def test_gzip_bomb_stops_at_the_limit_with_413() -> None:
    bomb = gzip.compress(bytes(50_000_000))
    assert len(bomb) < 100_000
    with pytest.raises(BodyError) as info:
        decompress(bomb, "gzip", 1_000_000)
    assert info.value.status == 413


@pytest.mark.parametrize(
    ("body", "encoding", "status"),
    [
        (b"not gzip at all", "gzip", 400),
        (gzip.compress(b"x" * 100)[:-12], "gzip", 400),
        (b"x", "br", 415),
        (b"x" * 11, None, 413),
    ],
)
def test_bad_encodings_are_refused_with_the_right_status(
    body: bytes, encoding: str | None, status: int
) -> None:
    with pytest.raises(BodyError) as info:
        decompress(body, encoding, 10)
    assert info.value.status == status


def test_body_limit_applies_before_decompressing() -> None:
    request = otlp_request([otlp_span()]).SerializeToString()
    with pytest.raises(BodyError) as info:
        decode_request(request, PROTOBUF, None, BodyLimits(max_body_bytes=10))
    assert info.value.status == 413


def test_malformed_protobuf_is_a_400_with_a_message() -> None:
    with pytest.raises(BodyError) as info:
        decode_request(b"\x0a\xff\xff\xff\xff\x0f", PROTOBUF)
    assert info.value.status == 400
    assert "protobuf" in str(info.value)


# -- OTLP/JSON --------------------------------------------------------------------------

# The OTLP/JSON example from the OTLP specification (upper-case hex ids, enum integers,
# 64-bit integers as strings), plus a typed attribute.
SPEC_EXAMPLE = json.loads((Path(__file__).parent / "data" / "otlp_spec_example.json").read_text())


def test_the_specification_example_decodes() -> None:
    (row,) = rows(flatten_request(decode_json(json.dumps(SPEC_EXAMPLE).encode())))
    assert row["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert row["span_id"] == "eee19b7ec3c1b174"
    assert row["parent_span_id"] == "eee19b7ec3c1b173"
    assert row["kind"] == "SERVER"
    assert row["service_name"] == "my.service"
    assert row["scope_name"] == "my.library"
    assert row["scope_version"] == "1.0.0"
    assert row["start_time"] == datetime(2018, 12, 13, 14, 51, 0)
    assert row["duration_ms"] == 1000.0
    assert row["input_tokens"] == 42
    assert row["is_entry"] is False  # it has a parent
    assert json.loads(row["attributes"]) == {"my.span.attr": "some value"}


def test_json_accepts_snake_case_enum_names_numbers_and_unknown_fields() -> None:
    document = {
        "resource_spans": [
            {
                "scope_spans": [
                    {
                        "spans": [
                            {
                                "trace_id": "0af7651916cd43dd8448eb211c80319c",
                                "span_id": "b7ad6b7169203331",
                                "name": "x",
                                "kind": "SPAN_KIND_CLIENT",
                                "start_time_unix_nano": 1544712660000000000,
                                "end_time_unix_nano": "1544712660500000000",
                                "status": {"code": "STATUS_CODE_ERROR", "message": "boom"},
                                "some_future_field": {"a": 1},
                            }
                        ],
                    }
                ],
            }
        ],
    }
    (row,) = rows(flatten_request(decode_json(json.dumps(document).encode())))
    assert (row["kind"], row["status_code"], row["status_message"]) == ("CLIENT", "ERROR", "boom")
    assert row["duration_ms"] == 500.0


def test_json_round_trip_equals_protobuf() -> None:
    request = otlp_request(
        [
            otlp_span(
                attributes={"tenant.id": "a", "gen_ai.usage.input_tokens": 7, "x": [1, 2]},
                parent_span_id=bytes(range(1, 9)),
            )
        ],
        resource={"cloud.region": "eu"},
    )
    from_json = decode_json(json.dumps(otlp_json(request)).encode())
    assert from_json == request
    assert rows(flatten_request(from_json)) == rows(flatten_request(request))


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz" * 16}]}]}]}, "not hex"),
        ({"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "abc"}]}]}]}, "spanId"),
        ({"resourceSpans": "nope"}, "malformed OTLP/JSON"),
        ([1, 2], "JSON object"),
    ],
)
def test_malformed_json_is_a_clear_400(document: Any, fragment: str) -> None:
    with pytest.raises(BodyError) as info:
        decode_json(json.dumps(document).encode())
    assert info.value.status == 400
    assert fragment in str(info.value)


def test_json_syntax_error_and_deep_nesting_are_400() -> None:
    for body in (b'{"resourceSpans": [', b"\xff\xfe", b"[" * 100_000):
        with pytest.raises(BodyError) as info:
            decode_json(body)
        assert info.value.status == 400


@pytest.mark.parametrize("escape", ["\\ud800", "\\uDFFF", "x\\udc00y"])
def test_a_lone_surrogate_in_json_is_a_400(escape: str) -> None:
    # RFC 8259 §8.2: an unpaired surrogate escape is not Unicode text; it cannot be stored.
    document = otlp_json(otlp_request([otlp_span(attributes={sc.TENANT_ID: "PLACEHOLDER"})]))
    body = json.dumps(document).replace("PLACEHOLDER", escape).encode()
    with pytest.raises(BodyError) as info:
        json_for_flattening(parse_json(body))
    assert info.value.status == 400
    assert "surrogate" in str(info.value)


def test_a_surrogate_pair_in_json_is_one_character() -> None:
    document = otlp_json(otlp_request([otlp_span(attributes={sc.TENANT_ID: "PLACEHOLDER"})]))
    body = json.dumps(document).replace("PLACEHOLDER", "\\ud83d\\ude00").encode()
    spans, _ = to_arrow(flatten_request(json_for_flattening(parse_json(body))))
    assert spans.column("tenant").to_pylist() == ["\U0001f600"]


# -- the mapping --------------------------------------------------------------------------


def test_contract_attributes_land_in_typed_columns_with_units() -> None:
    row = one_row(
        attributes={
            sc.TENANT_ID: "acme",
            sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
            sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06",
            sc.GEN_AI_PROVIDER_NAME: "openai",
            sc.GEN_AI_OPERATION_NAME: "chat",
            sc.GEN_AI_PROMPT_NAME: "support",
            sc.GEN_AI_PROMPT_VERSION: "v3",
            sc.INFERMETER_ENDPOINT: "/chat",
            sc.INFERMETER_RUNTIME: "serverless",
            sc.GEN_AI_USAGE_INPUT_TOKENS: 1200,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 300,
            sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 100,
            sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: 50,
            sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 20,
            sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 0.25,
            sc.GEN_AI_REQUEST_STREAM: True,
            sc.FAAS_COLDSTART: True,
            sc.INFERMETER_INIT_DURATION: 1.5,
            sc.INFERMETER_INITIALIZATION_TYPE: "on-demand",
            sc.INFERMETER_THROTTLED: True,
            sc.INFERMETER_RETRY_AFTER: 2,
            sc.INFERMETER_RETRIES: 2,
            sc.ERROR_TYPE: "RateLimitError",
            "http.route": "/v1/chat",
        },
        resource={
            sc.CLOUD_PROVIDER: "aws",
            sc.CLOUD_PLATFORM: "aws_lambda",
            sc.CLOUD_REGION: "eu-west-1",
            sc.FAAS_NAME: "chat-fn",
            sc.FAAS_MAX_MEMORY: 1024 * 1024 * 1024,
            sc.SERVICE_INSTANCE_ID: "i-1",
            "deployment.environment": "prod",
        },
        status_code=2,
        duration_ms=250.0,
    )
    assert row["tenant"] == "acme" and row["model"] == "gpt-4o"
    assert row["response_model"] == "gpt-4o-2024-08-06" and row["provider"] == "openai"
    assert (row["operation"], row["prompt_name"], row["prompt_version"]) == (
        "chat",
        "support",
        "v3",
    )
    assert (row["endpoint"], row["runtime"]) == ("/chat", "serverless")
    assert (row["input_tokens"], row["output_tokens"]) == (1200, 300)
    assert (row["cache_read_tokens"], row["cache_write_tokens"], row["reasoning_tokens"]) == (
        100,
        50,
        20,
    )
    assert row["ttft_ms"] == 250.0
    assert row["init_duration_ms"] == 1500.0
    assert row["memory_mb"] == 1024.0
    assert row["retry_after_s"] == 2.0
    assert row["attempt"] == 3
    assert row["stream"] and row["cold_start"] and row["throttled"]
    assert row["initialization_type"] == "on-demand"
    assert (row["platform"], row["cloud_provider"], row["region"], row["faas_name"]) == (
        "aws_lambda",
        "aws",
        "eu-west-1",
        "chat-fn",
    )
    assert row["service_instance"] == "i-1"
    assert (row["status_code"], row["error_type"], row["duration_ms"]) == (
        "ERROR",
        "RateLimitError",
        250.0,
    )
    assert row["is_entry"] is True  # no parent, no explicit infermeter.entry
    # Typed sources are not stored twice; everything else is kept.
    assert json.loads(row["attributes"]) == {"http.route": "/v1/chat"}
    resource = json.loads(row["resource_attributes"])
    assert resource == {"deployment.environment": "prod"}


def test_absent_flags_default_like_the_test_helpers() -> None:
    row = one_row(parent_span_id=bytes(range(1, 9)))
    assert (row["cold_start"], row["throttled"], row["attempt"], row["is_entry"]) == (
        False,
        False,
        1,
        False,
    )
    assert row["tenant"] is None and row["input_tokens"] is None


def test_explicit_entry_flag_wins_over_the_parent_rule() -> None:
    assert one_row(attributes={sc.INFERMETER_ENTRY: True}, parent_span_id=b"\x01" * 8)["is_entry"]
    assert not one_row(attributes={sc.INFERMETER_ENTRY: False})["is_entry"]


def test_wrong_types_give_null_and_keep_the_raw_value() -> None:
    row = one_row(
        attributes={
            sc.GEN_AI_USAGE_INPUT_TOKENS: "12",
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 3.5,
            sc.FAAS_COLDSTART: "yes",
            sc.GEN_AI_REQUEST_MODEL: 42,
            sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: float("nan"),
        }
    )
    assert row["input_tokens"] is None and row["output_tokens"] is None
    assert row["model"] is None and row["ttft_ms"] is None
    assert row["cold_start"] is None  # wrong type: NULL, not the "absent" default
    assert json.loads(row["attributes"]) == {
        sc.GEN_AI_USAGE_INPUT_TOKENS: "12",
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 3.5,
        sc.FAAS_COLDSTART: "yes",
        sc.GEN_AI_REQUEST_MODEL: 42,
        sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: "NaN",
    }


def test_int_durations_and_memory_are_accepted_for_double_columns() -> None:
    row = one_row(
        attributes={sc.INFERMETER_INIT_DURATION: 2, sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 1}
    )
    assert (row["init_duration_ms"], row["ttft_ms"]) == (2000.0, 1000.0)


def test_span_values_override_the_resource_without_losing_it() -> None:
    row = one_row(
        attributes={sc.CLOUD_REGION: "us-east-1", sc.TENANT_ID: "t1"},
        resource={sc.CLOUD_REGION: "eu-west-1", sc.TENANT_ID: "t1", sc.FAAS_MAX_MEMORY: "1GB"},
    )
    assert row["region"] == "us-east-1"
    assert row["tenant"] == "t1"
    assert row["memory_mb"] is None
    # The resource's differing region stays; the equal tenant and typed values do not.
    assert json.loads(row["resource_attributes"]) == {
        sc.CLOUD_REGION: "eu-west-1",
        sc.FAAS_MAX_MEMORY: "1GB",
    }
    assert json.loads(row["attributes"]) == {}


def test_resource_facts_fill_spans_that_lack_them() -> None:
    row = one_row(
        resource={
            sc.TENANT_ID: "from-resource",
            sc.INFERMETER_RUNTIME: "container",
            "host.name": "node-7",
        }
    )
    assert (row["tenant"], row["runtime"], row["service_instance"]) == (
        "from-resource",
        "container",
        "node-7",
    )
    assert json.loads(row["resource_attributes"]) == {"host.name": "node-7"}


def test_deprecated_gen_ai_system_is_read_only_without_provider_name() -> None:
    assert one_row(attributes={sc.GEN_AI_SYSTEM_DEPRECATED: "openai"})["provider"] == "openai"
    both = one_row(
        attributes={sc.GEN_AI_SYSTEM_DEPRECATED: "az.ai", sc.GEN_AI_PROVIDER_NAME: "azure"}
    )
    assert both["provider"] == "azure"
    assert json.loads(both["attributes"]) == {sc.GEN_AI_SYSTEM_DEPRECATED: "az.ai"}


def test_nested_values_bytes_and_non_finite_numbers_become_valid_json() -> None:
    row = one_row(
        attributes={
            "list": [1, "a", True, 2.5],
            "map": {"k": [1, {"deep": None}]},
            "blob": b"\x00\x01",
            "inf": float("inf"),
        }
    )
    assert json.loads(row["attributes"]) == {
        "list": [1, "a", True, 2.5],
        "map": {"k": [1, {"deep": None}]},
        "blob": "AAE=",
        "inf": "Infinity",
    }


def test_long_strings_are_truncated_and_reported() -> None:
    request = otlp_request([otlp_span(attributes={"prompt": "x" * 100, sc.TENANT_ID: "t" * 50})])
    flat = flatten_request(request, limits=Limits(max_attribute_length=10))
    (row,) = rows(flat)
    assert json.loads(row["attributes"])["prompt"] == "x" * 10
    assert row["tenant"] == "t" * 10
    assert "2 attribute value(s) truncated" in flat.message()
    assert flat.rejected_spans == 0


def test_embedding_events_become_rows_and_other_events_are_kept() -> None:
    request = otlp_request(
        [
            otlp_span(
                attributes={
                    sc.TENANT_ID: "acme",
                    sc.GEN_AI_REQUEST_MODEL: "emb-3",
                    sc.GEN_AI_PROMPT_VERSION: "v2",
                    sc.INFERMETER_ENDPOINT: "/search",
                },
                events=[
                    (
                        sc.EMBEDDING_EVENT,
                        {sc.EMBEDDING_KIND: "query", sc.EMBEDDING_VECTOR: [0.5, -1.0, 2]},
                    ),
                    ("exception", {"exception.type": "ValueError"}),
                    (
                        sc.EMBEDDING_EVENT,
                        {sc.EMBEDDING_KIND: "document", sc.EMBEDDING_VECTOR: ["bad"]},
                    ),
                    (
                        sc.EMBEDDING_EVENT,
                        {sc.EMBEDDING_KIND: "response", sc.EMBEDDING_VECTOR: [0.0] * 9},
                    ),
                ],
            )
        ],
        resource={"service.name": "search"},
    )
    flat = flatten_request(request, limits=Limits(max_vector_dim=8))
    spans, embeddings = to_arrow(flat)
    (embedding,) = embeddings.to_pylist()
    assert list(embedding) == [name for name, _ in EMBEDDING_COLUMNS]
    assert embedding["vector"] == [0.5, -1.0, 2.0]
    assert (embedding["kind"], embedding["dim"], embedding["tenant"], embedding["model"]) == (
        "query",
        3,
        "acme",
        "emb-3",
    )
    assert (embedding["prompt_version"], embedding["endpoint"], embedding["service_name"]) == (
        "v2",
        "/search",
        "search",
    )
    assert embedding["span_id"] == spans.to_pylist()[0]["span_id"]
    events = json.loads(spans.to_pylist()[0]["events"])
    assert [e["name"] for e in events] == ["exception"]
    assert events[0]["attributes"] == {"exception.type": "ValueError"}
    assert "not numeric" in flat.message() and "more dimensions" in flat.message()


def test_links_are_kept_as_json() -> None:
    span = otlp_span()
    link = span.links.add()
    link.trace_id = b"\x01" * 16
    link.span_id = b"\x02" * 8
    link.attributes.add(key="k").value.string_value = "v"
    (row,) = rows(flatten_request(otlp_request([span])))
    assert json.loads(row["links"]) == [
        {"trace_id": "01" * 16, "span_id": "02" * 8, "attributes": {"k": "v"}},
    ]


def test_a_pinned_tenant_overrides_every_claim_and_keeps_it_for_audit() -> None:
    request = otlp_request(
        [
            otlp_span(
                attributes={sc.TENANT_ID: "globex"},
                events=[(sc.EMBEDDING_EVENT, {sc.EMBEDDING_VECTOR: [1.0]})],
            ),
            otlp_span(attributes={sc.TENANT_ID: "acme"}),
            otlp_span(),
        ],
        resource={sc.TENANT_ID: "initech"},
    )
    flat = flatten_request(request, tenant="acme")
    spans, embeddings = to_arrow(flat)
    got = spans.to_pylist()
    assert [r["tenant"] for r in got] == ["acme", "acme", "acme"]
    assert [json.loads(r["attributes"]).get(CLAIMED_TENANT) for r in got] == [
        "globex",
        None,
        "initech",
    ]
    assert [json.loads(r["resource_attributes"]).get(sc.TENANT_ID) for r in got] == [None] * 3
    assert embeddings.to_pylist()[0]["tenant"] == "acme"


def test_unusable_spans_are_rejected_one_by_one_with_reasons() -> None:
    good = otlp_span()
    bad_trace = otlp_span(trace_id=b"\x00" * 16)
    bad_span = otlp_span(span_id=b"\x01" * 3)
    backwards = otlp_span(duration_ms=-5)
    no_start = otlp_span()
    no_start.start_time_unix_nano = 0
    no_start.end_time_unix_nano = 0
    flat = flatten_request(otlp_request([bad_trace, good, bad_span, backwards, no_start]))
    assert flat.rejected_spans == 4
    assert len(flat.spans) == 1
    message = flat.message()
    for fragment in ("trace_id", "span_id", "before start", "start_time_unix_nano missing"):
        assert fragment in message


def test_times_are_utc_microseconds() -> None:
    start = datetime(2026, 11, 17, 23, 59, 59, 123456, tzinfo=UTC)
    row = one_row(start=start, duration_ms=1.5)
    assert row["start_time"] == start.replace(tzinfo=None)
    assert row["duration_ms"] == 1.5


def test_arrow_tables_follow_the_schema_order() -> None:
    spans, embeddings = to_arrow(flatten_request(otlp_request([otlp_span()])))
    assert spans.column_names == SPAN_NAMES
    assert embeddings.num_rows == 0
    assert embeddings.column_names == [name for name, _ in EMBEDDING_COLUMNS]


def _fast_and_reference(document: dict[str, Any]) -> tuple[Any, Any]:
    from infermeter.collectors._decode import json_for_flattening, request_from_json

    fast = rows(flatten_request(json_for_flattening(json.loads(json.dumps(document)))))
    reference = rows(flatten_request(request_from_json(json.loads(json.dumps(document)))))
    return fast, reference


def test_canonical_json_takes_the_fast_reader_and_reads_like_the_reference() -> None:
    from infermeter.collectors._otlp_json import JsonRequest, read_json_request

    request = otlp_request(
        [
            otlp_span(
                attributes={
                    "s": "x",
                    "i": -(2**63),
                    "d": 1.5,
                    "b": False,
                    "a": [1, "y"],
                    "m": {"k": b"\x00"},
                    sc.GEN_AI_USAGE_INPUT_TOKENS: 2**62,
                },
                events=[
                    ("e", {"n": float("nan")}),
                    (sc.EMBEDDING_EVENT, {sc.EMBEDDING_VECTOR: [1, 2.5]}),
                ],
                parent_span_id=b"\x07" * 8,
            )
        ],
        resource={"r": [True, None]},
    )
    document = otlp_json(request)
    assert isinstance(read_json_request(json.loads(json.dumps(document))), JsonRequest)
    fast, reference = _fast_and_reference(document)
    assert fast == reference == rows(flatten_request(request))


@pytest.mark.parametrize(
    "tweak",
    [
        # Forms the fast reader leaves to the reference parser.
        lambda span: span["attributes"].append({"key": "d", "value": {"doubleValue": "2.5"}}),
        lambda span: span.update(kind="SPAN_KIND_WHATEVER"),
        lambda span: span["attributes"].append({"key": "x", "value": {"stringValue": "a", "z": 1}}),
        lambda span: span.update(startTimeUnixNano=1544712660000000000.0),
    ],
    ids=["double-as-string", "unknown-enum-name", "extra-field-in-value", "float-time"],
)
def test_non_canonical_json_falls_back_to_the_reference_parser(tweak: Any) -> None:
    from infermeter.collectors._otlp_json import NotCanonical, read_json_request

    document = json.loads(json.dumps(SPEC_EXAMPLE))
    tweak(document["resourceSpans"][0]["scopeSpans"][0]["spans"][0])
    with pytest.raises(NotCanonical):
        read_json_request(json.loads(json.dumps(document)))
    try:
        fast, reference = _fast_and_reference(document)
    except BodyError as exc:  # the reference refuses it: so does the receiver
        assert exc.status == 400
    else:
        assert fast == reference


@pytest.mark.parametrize("retries", [-1, 2**31 - 1, 2**40, 2**63 - 1])
def test_retries_outside_the_attempt_column_range_are_kept_raw(retries: int) -> None:
    row = one_row(attributes={sc.INFERMETER_RETRIES: retries, sc.INFERMETER_ENTRY: "yes"})
    assert row["attempt"] is None and row["is_entry"] is None
    assert json.loads(row["attributes"]) == {
        sc.INFERMETER_RETRIES: retries,
        sc.INFERMETER_ENTRY: "yes",
    }
    assert one_row(attributes={sc.INFERMETER_RETRIES: 2**31 - 2})["attempt"] == 2**31 - 1
