"""``POST /v1/logs`` and GenAI evaluation events: the real OpenTelemetry SDK (spans with
evaluation span events, then log records emitted later through the SDK's logs pipeline)
and raw OTLP/JSON against a real ``infermeter collect`` process; every evaluation lands
in ``evaluations`` linked to the request it judges."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from infermeter.agent import semconv as sc
from infermeter.collectors._logs import decode_logs_json, flatten_logs
from infermeter.collectors.testing import collector_process, send_otlp
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

pytestmark = pytest.mark.slow


def _rows(store: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _logs_url(traces_endpoint: str) -> str:
    return traces_endpoint.rsplit("/v1/traces", 1)[0] + "/v1/logs"


def test_evaluations_from_span_events_and_later_log_records_join_their_request(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store.duckdb"
    with collector_process(store) as proc:
        resource = Resource.create({sc.SERVICE_NAME: "chat"})
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=proc.traces_endpoint))
        )
        tracer = tracer_provider.get_tracer("test")
        # Request A is judged inside its span (a span event); B is judged after its span
        # ended, by a log record parented to it; C only by its response id.
        with tracer.start_as_current_span(
            "chat", attributes={sc.TENANT_ID: "acme", sc.GEN_AI_RESPONSE_ID: "resp-a"}
        ) as span_a:
            span_a.add_event(
                sc.GEN_AI_EVALUATION_RESULT,
                {
                    sc.GEN_AI_EVALUATION_NAME: "relevance",
                    sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.75,
                    sc.GEN_AI_EVALUATION_SCORE_LABEL: "relevant",
                },
            )
        with tracer.start_as_current_span("chat", attributes={sc.TENANT_ID: "acme"}) as span_b:
            context_b = trace.set_span_in_context(span_b)
        with tracer.start_as_current_span(
            "chat", attributes={sc.TENANT_ID: "globex", sc.GEN_AI_RESPONSE_ID: "resp-c"}
        ) as span_c:
            pass
        tracer_provider.shutdown()

        logger_provider = LoggerProvider(resource=Resource.create({sc.SERVICE_NAME: "judge"}))
        logger_provider.add_log_record_processor(
            SimpleLogRecordProcessor(OTLPLogExporter(endpoint=_logs_url(proc.traces_endpoint)))
        )
        logger = logger_provider.get_logger("judge")
        later_ns = time.time_ns()
        logger.emit(
            event_name=sc.GEN_AI_EVALUATION_RESULT,
            context=context_b,
            timestamp=later_ns,
            severity_number=SeverityNumber.INFO,
            attributes={
                sc.GEN_AI_EVALUATION_NAME: "relevance",
                sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.25,
                sc.GEN_AI_EVALUATION_SCORE_LABEL: "not_relevant",
                sc.GEN_AI_EVALUATION_EXPLANATION: "answers another question",
            },
        )
        # Another GenAI event sent as a log: stored whole in ``events``, not an evaluation.
        logger.emit(
            event_name="gen_ai.client.inference.operation.details",
            context=context_b,
            body={"note": "details"},
            attributes={sc.GEN_AI_OPERATION_NAME: "chat"},
        )
        logger_provider.shutdown()

        # OTLP/JSON from a feedback process that only knows the response id.
        document = {
            "resourceLogs": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]
                    },
                    "scopeLogs": [
                        {
                            "scope": {"name": "feedback"},
                            "logRecords": [
                                {
                                    "timeUnixNano": str(later_ns),
                                    "eventName": sc.GEN_AI_EVALUATION_RESULT,
                                    "attributes": [
                                        {
                                            "key": sc.GEN_AI_EVALUATION_NAME,
                                            "value": {"stringValue": sc.USER_FEEDBACK},
                                        },
                                        {
                                            "key": sc.GEN_AI_EVALUATION_SCORE_VALUE,
                                            "value": {"doubleValue": -1.0},
                                        },
                                        {
                                            "key": sc.GEN_AI_RESPONSE_ID,
                                            "value": {"stringValue": "resp-c"},
                                        },
                                    ],
                                },
                                {"traceId": "abc", "body": {"stringValue": "bad id"}},
                            ],
                        }
                    ],
                }
            ]
        }
        answer = send_otlp(
            _logs_url(proc.traces_endpoint), json.dumps(document).encode(), as_json=True
        )
        assert answer.status == 400  # a malformed id in JSON is a malformed body
        del document["resourceLogs"][0]["scopeLogs"][0]["logRecords"][1]["traceId"]
        answer = send_otlp(
            _logs_url(proc.traces_endpoint), json.dumps(document).encode(), as_json=True
        )
        assert answer.status == 200, answer.body
        assert answer.json() == {}
        # protobuf answers are an ExportLogsServiceResponse
        empty = send_otlp(_logs_url(proc.traces_endpoint), b"")
        assert empty.status == 200
        assert not ExportLogsServiceResponse.FromString(empty.body).HasField("partial_success")
    ids = {
        name: (
            format(s.get_span_context().trace_id, "032x"),
            format(s.get_span_context().span_id, "016x"),
        )
        for name, s in (("a", span_a), ("b", span_b), ("c", span_c))
    }
    rows = _rows(
        store,
        "SELECT e.name, e.score_value, e.score_label, e.explanation, e.source, s.span_id,"
        " s.tenant FROM evaluations e JOIN spans s ON e.span_id = s.span_id"
        " OR (e.span_id IS NULL AND e.response_id"
        "     = json_extract_string(s.attributes, '$.\"gen_ai.response.id\"'))"
        " ORDER BY s.start_time",
    )
    assert rows == [
        ("relevance", 0.75, "relevant", None, "span_event", ids["a"][1], "acme"),
        (
            "relevance",
            0.25,
            "not_relevant",
            "answers another question",
            "log",
            ids["b"][1],
            "acme",
        ),
        (sc.USER_FEEDBACK, -1.0, None, None, "log", ids["c"][1], "globex"),
    ]
    trace_b = _rows(store, f"SELECT trace_id FROM evaluations WHERE span_id = '{ids['b'][1]}'")
    assert trace_b == [(ids["b"][0],)]
    events = _rows(
        store,
        "SELECT event_name, source, body, span_id, service_name FROM events ORDER BY event_name",
    )
    assert (
        "gen_ai.client.inference.operation.details",
        "log",
        '{"note":"details"}',
        ids["b"][1],
        "judge",
    ) in events
    # the unlinked record without an event name is kept too, its body whole
    assert (None, "log", '"bad id"', None, "web") in events


def test_log_records_with_wrong_id_lengths_are_rejected_one_by_one() -> None:
    from infermeter.collectors._logs import logs_response

    document = {
        "resourceLogs": [
            {
                "scopeLogs": [
                    {
                        "logRecords": [
                            {"body": {"stringValue": "kept"}},
                            # base64 of 3 bytes: not a span id
                            {"spanId": "AAEC", "body": {"stringValue": "x"}},
                        ]
                    }
                ]
            }
        ]
    }
    with pytest.raises(ValueError, match="spanId must be 16 hex digits"):
        decode_logs_json(document)
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    message = ExportLogsServiceRequest()
    records = message.resource_logs.add().scope_logs.add().log_records
    records.add().body.string_value = "kept"
    bad = records.add()
    bad.span_id = b"\x01\x02\x03"
    flat = flatten_logs(message)
    assert len(flat.rows) == 1
    assert flat.rejected == 1
    answer = ExportLogsServiceResponse.FromString(
        logs_response(False, flat.rejected, flat.message())
    )
    assert answer.partial_success.rejected_log_records == 1


def test_evaluate_and_feedback_from_the_agent_land_joined_to_their_request(
    tmp_path: Path,
) -> None:
    from infermeter.agent import current_span, force_flush
    from infermeter.agent.testing import telemetry
    from infermeter.analytics import Deployments, load_prices, request_table
    from infermeter.analytics.quality import judged_evaluations

    import infermeter

    store = tmp_path / "store.duckdb"
    kept: list[Any] = []
    with collector_process(store) as proc:
        base = proc.traces_endpoint.rsplit("/v1/traces", 1)[0]
        with telemetry(endpoint=base, metrics_exporter="none", service_name="chat"):

            @infermeter.observe(name="answer", tenant="acme", prompt_version="v2")
            def answer(judge_inside: bool) -> str:
                kept.append(current_span())
                if judge_inside:
                    infermeter.evaluate("relevance", 0.9, "relevant")  # a span event
                return "ok"

            answer(True)
            answer(False)
            # After the call: the span has ended, so these travel as OTLP log records.
            infermeter.evaluate("faithfulness", label="fail", span=kept[1])
            trace_b = format(kept[1].get_span_context().trace_id, "032x")
            infermeter.feedback(trace_b, score=-1, comment="made up")
            assert force_flush(30)
    spans_a = kept[0].get_span_context()
    span_b = kept[1].get_span_context()
    con = duckdb.connect(str(store), read_only=True)
    try:
        prices = load_prices()
        requests = request_table(
            con, con.table("spans"), prices=prices, deployments=Deployments(prices=prices)
        )
        judged = judged_evaluations(con, requests, con.table("evaluations"), con.table("spans"))
        sources = dict(con.execute("SELECT name, source FROM evaluations ORDER BY name").fetchall())
    finally:
        con.close()
    got = sorted(
        (r["request_span_id"], r["name"], r["passed"], r["tenant"]) for r in judged.to_dicts()
    )
    assert got == sorted(
        [
            (format(spans_a.span_id, "016x"), "relevance", True, "acme"),
            (format(span_b.span_id, "016x"), "faithfulness", False, "acme"),
            (format(span_b.span_id, "016x"), sc.USER_FEEDBACK, False, "acme"),
        ]
    )
    assert sources == {
        "relevance": "span_event",
        "faithfulness": "log",
        sc.USER_FEEDBACK: "log",
    }
