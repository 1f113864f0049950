"""``evaluate()`` / ``feedback()`` emit the GenAI ``gen_ai.evaluation.result`` event (a span
event while the span is open, else an OTLP log record linked to it), and ``annotate``
records retrieval ids; none of them ever raises into the caller."""

from __future__ import annotations

from typing import Any

from infermeter.agent import current_span, testing
from infermeter.agent import semconv as sc

import infermeter


def _events(span: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(event.name, dict(event.attributes or {})) for event in span.events]


def test_inside_an_observed_call_the_evaluation_is_a_span_event() -> None:
    with testing.capture() as cap:

        @infermeter.observe(name="answer")
        def answer() -> str:
            infermeter.evaluate("relevance", 0.8, "relevant", "on topic")
            return "ok"

        assert answer() == "ok"
    assert _events(cap.span("answer")) == [
        (
            sc.GEN_AI_EVALUATION_RESULT,
            {
                sc.GEN_AI_EVALUATION_NAME: "relevance",
                sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.8,
                sc.GEN_AI_EVALUATION_SCORE_LABEL: "relevant",
                sc.GEN_AI_EVALUATION_EXPLANATION: "on topic",
            },
        )
    ]
    assert cap.log_records == []


def test_after_the_call_the_evaluation_is_a_log_record_parented_to_the_span() -> None:
    kept: list[Any] = []
    with testing.capture() as cap:

        @infermeter.observe(name="answer")
        def answer() -> str:
            kept.append(current_span())
            return "ok"

        answer()
        infermeter.evaluate("faithfulness", label="fail", span=kept[0])
    context = cap.span("answer").get_span_context()
    assert context is not None
    (record,) = [r.log_record for r in cap.log_records]
    assert record.event_name == sc.GEN_AI_EVALUATION_RESULT
    assert (record.trace_id, record.span_id) == (context.trace_id, context.span_id)
    assert dict(record.attributes or {}) == {
        sc.GEN_AI_EVALUATION_NAME: "faithfulness",
        sc.GEN_AI_EVALUATION_SCORE_LABEL: "fail",
    }
    assert _events(cap.span("answer")) == []


def test_feedback_links_by_trace_id_or_by_response_id() -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    with testing.capture() as cap:
        infermeter.feedback(trace_id, score=-1, comment="wrong city")
        infermeter.feedback(trace_id, label="thumbs_up", span_id="b7ad6b7169203331")
        infermeter.feedback("chatcmpl-42", score=1)
    first, second, third = [r.log_record for r in cap.log_records]
    assert (first.trace_id, first.span_id) == (int(trace_id, 16), 0)
    assert dict(first.attributes or {}) == {
        sc.GEN_AI_EVALUATION_NAME: sc.USER_FEEDBACK,
        sc.GEN_AI_EVALUATION_SCORE_VALUE: -1.0,
        sc.INFERMETER_FEEDBACK_COMMENT: "wrong city",
    }
    assert (second.trace_id, second.span_id) == (int(trace_id, 16), int("b7ad6b7169203331", 16))
    assert third.trace_id == 0
    assert dict(third.attributes or {})[sc.GEN_AI_RESPONSE_ID] == "chatcmpl-42"


def test_bad_arguments_are_dropped_never_raised() -> None:
    with testing.capture() as cap:
        infermeter.evaluate("", 1.0)  # no name
        infermeter.evaluate("x")  # neither score nor label, outside a call
        infermeter.evaluate("x", float("nan"))
        infermeter.evaluate("x", 1.0)  # no span, no response id: nowhere to link
        infermeter.evaluate(None, 1.0, span=object())  # type: ignore[arg-type]
        infermeter.feedback(None, score=1)  # type: ignore[arg-type]
        infermeter.feedback("abc", score="good")  # type: ignore[arg-type]
    assert cap.log_records == []
    assert cap.spans == []


def test_annotate_records_retrieval_ids_and_scores() -> None:
    with testing.capture() as cap:

        @infermeter.observe(name="retrieve", operation="retrieval")
        def retrieve() -> None:
            infermeter.annotate(
                retrieved_ids=["d3", "d1", "d7"],
                used_ids=["d1"],
                retrieval_scores=[0.9, 0.7, 0.2],
                query_fingerprint="q-17",
                index_version="2026-11",
                response_id="resp-9",
            )
            infermeter.annotate(retrieval_scores=[0.5, "high"])  # type: ignore[list-item]

        retrieve()
    attributes = cap.attributes("retrieve")
    assert attributes[sc.INFERMETER_RETRIEVAL_IDS] == ("d3", "d1", "d7")
    assert attributes[sc.INFERMETER_RETRIEVAL_USED_IDS] == ("d1",)
    assert attributes[sc.INFERMETER_RETRIEVAL_SCORES] == (0.9, 0.7, 0.2)
    assert attributes[sc.INFERMETER_QUERY_FINGERPRINT] == "q-17"
    assert attributes[sc.INFERMETER_INDEX_VERSION] == "2026-11"
    assert attributes[sc.GEN_AI_RESPONSE_ID] == "resp-9"
