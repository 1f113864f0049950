"""Quality next to cost: evaluations linked to their requests (by span id, trace id or
response id), pass rates, negative feedback and cost per good answer by hand."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from infermeter.agent import semconv as sc
from infermeter.analytics import Deployments, load_prices, request_table
from infermeter.analytics.quality import (
    judged_evaluations,
    quality_by_evaluation,
    quality_summary,
)
from infermeter.collectors.testing import (
    evaluation_record,
    insert_evaluations,
    insert_spans,
    span_record,
    store_in_memory,
)

T0 = datetime(2026, 11, 16, 10, 0, 0)
# gpt-4o-mini list prices (OpenAI): $0.15 / M input tokens, $0.60 / M output tokens.
COST = 1000 * 0.15e-6 + 500 * 0.60e-6  # 0.00045 per request


def _request(i: int, **fields: Any) -> dict[str, Any]:
    return span_record(
        start=T0 + timedelta(minutes=i),
        tenant="acme",
        model="gpt-4o-mini",
        provider="openai",
        prompt_version="v1",
        input_tokens=1000,
        output_tokens=500,
        **fields,
    )


def _fixture() -> tuple[Any, Any, list[dict[str, Any]]]:
    con = store_in_memory()
    r = [_request(i) for i in range(1, 7)]
    r[5]["status_code"] = "ERROR"
    # r3's LLM call is a nested span that carries the response id.
    child = span_record(
        start=T0 + timedelta(minutes=3, milliseconds=5),
        trace_id=r[2]["trace_id"],
        parent_span_id=r[2]["span_id"],
        is_entry=False,
        attributes={sc.GEN_AI_RESPONSE_ID: "resp-3"},
    )
    insert_spans(con, [*r, child])
    relevance = "relevance"
    insert_evaluations(
        con,
        [
            evaluation_record(
                relevance, trace_id=r[0]["trace_id"], span_id=r[0]["span_id"], score_label="pass"
            ),
            evaluation_record(
                relevance, trace_id=r[1]["trace_id"], span_id=r[1]["span_id"], score_value=0.3
            ),
            # trace only (no span id): the earliest request of the trace
            evaluation_record(relevance, trace_id=r[2]["trace_id"], score_value=0.9),
            # response id only: the trace of the span carrying it
            evaluation_record(sc.USER_FEEDBACK, response_id="resp-3", score_value=-1.0),
            evaluation_record(sc.USER_FEEDBACK, trace_id=r[3]["trace_id"], score_value=1.0),
            evaluation_record(
                relevance,
                trace_id=r[5]["trace_id"],
                span_id=r[5]["span_id"],
                score_label="Relevant",
            ),
            # links to nothing in the store: left out
            evaluation_record(relevance, response_id="unknown", score_value=1.0),
            # another tenant's token cannot grade acme's request: left out
            evaluation_record(
                relevance, trace_id=r[4]["trace_id"], tenant="mallory", score_value=0.0
            ),
        ],
    )
    prices = load_prices()
    requests = request_table(
        con, con.table("spans"), prices=prices, deployments=Deployments(prices=prices)
    ).materialize()
    return con, requests, r


def test_evaluations_link_to_their_request_by_span_trace_or_response_id() -> None:
    con, requests, r = _fixture()
    judged = judged_evaluations(con, requests, con.table("evaluations"), con.table("spans"))
    got = sorted(
        (row["request_span_id"], row["name"], row["passed"], row["negative"])
        for row in judged.to_dicts()
    )
    assert got == sorted(
        [
            (r[0]["span_id"], "relevance", True, False),
            (r[1]["span_id"], "relevance", False, False),
            (r[2]["span_id"], "relevance", True, False),
            (r[2]["span_id"], sc.USER_FEEDBACK, False, True),
            (r[3]["span_id"], sc.USER_FEEDBACK, True, False),
            (r[5]["span_id"], "relevance", True, False),
        ]
    )
    assert judged["cost_usd"].to_list() == pytest.approx([COST] * 6)


def test_pass_rate_negative_feedback_and_cost_per_good_answer() -> None:
    con, requests, _ = _fixture()
    judged = judged_evaluations(con, requests, con.table("evaluations"), con.table("spans"))
    by_name = {row["name"]: row for row in quality_by_evaluation(judged, by=["tenant"]).to_dicts()}
    assert by_name["relevance"]["results"] == 4
    assert by_name["relevance"]["mean_score"] == pytest.approx((0.3 + 0.9) / 2)
    assert by_name["relevance"]["pass_rate"] == pytest.approx(3 / 4)
    assert by_name[sc.USER_FEEDBACK]["pass_rate"] == pytest.approx(1 / 2)

    (summary,) = quality_summary(judged, requests, by=["tenant"]).to_dicts()
    # judged: r1 r2 r3 r4 r6; good: r1 and r4 (r2 scored 0.3, r3 got a thumbs down,
    # r6 failed); feedback on r3 (negative) and r4.
    assert summary["requests"] == 6
    assert summary["total_cost_usd"] == pytest.approx(6 * COST)
    assert summary["judged_requests"] == 5
    assert summary["good_requests"] == 2
    assert summary["good_rate"] == pytest.approx(2 / 5)
    assert summary["cost_per_good_answer_usd"] == pytest.approx(COST / (2 / 5))
    assert summary["negative_feedback_rate"] == pytest.approx(1 / 2)
    (overall,) = quality_summary(judged, requests).to_dicts()
    assert overall["cost_per_good_answer_usd"] == pytest.approx(COST / (2 / 5))
