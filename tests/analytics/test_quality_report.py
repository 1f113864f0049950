"""The weekly report's quality section: per prompt version next to cost, week over week,
with the rollback advice among the recommendations (numbers by hand)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from infermeter.analytics import Deployments, load_prices, request_table
from infermeter.analytics.quality import quality_section
from infermeter.analytics.report import iso_week_bounds, weekly_report
from infermeter.collectors.testing import (
    evaluation_record,
    insert_evaluations,
    insert_spans,
    span_record,
    store_in_memory,
)

# gpt-4o-mini: $0.15 / M input, $0.60 / M output tokens
COST_V1 = 1000 * 0.15e-6 + 500 * 0.60e-6
COST_V2 = 1000 * 0.15e-6 + 300 * 0.60e-6
V1_SCORES = [0.9, 0.8, 0.7, 0.6] * 10  # all pass (>= 0.5)
V2_SCORES = [0.6, 0.5, 0.4, 0.3] * 10  # half pass


def test_the_report_shows_quality_next_to_cost_and_advises_the_rollback(tmp_path: Path) -> None:
    start, end = iso_week_bounds("2026-W47")
    previous_start = start - timedelta(days=7)
    con = store_in_memory()
    spans: list[dict[str, Any]] = []
    evaluations: list[dict[str, Any]] = []
    plan = [("v1", previous_start, 500, V1_SCORES), ("v2", start, 300, V2_SCORES)]
    for version, week_start, output_tokens, scores in plan:
        for i, score in enumerate(scores):
            span = span_record(
                start=week_start + timedelta(hours=1, minutes=i),
                tenant="acme",
                model="gpt-4o-mini",
                provider="openai",
                prompt_version=version,
                endpoint="/chat",
                input_tokens=1000,
                output_tokens=output_tokens,
            )
            spans.append(span)
            if i == 0:  # the same question retrieved once per version
                ids = ["d1", "d2", "d3"] if version == "v1" else ["d1", "d3", "d9"]
                spans.append(
                    span_record(
                        start=span["start_time"] + timedelta(milliseconds=1),
                        trace_id=span["trace_id"],
                        parent_span_id=span["span_id"],
                        is_entry=False,
                        name="retrieve",
                        attributes={
                            "infermeter.retrieval.ids": ids,
                            "infermeter.retrieval.query_fingerprint": "q1",
                        },
                    )
                )
            evaluations.append(
                evaluation_record(
                    "helpfulness",
                    trace_id=span["trace_id"],
                    span_id=span["span_id"],
                    score_value=score,
                    time=datetime(2026, 11, 25),  # judged later than served
                )
            )
    insert_spans(con, spans)
    insert_evaluations(con, evaluations)
    prices = load_prices()
    deployments = Deployments(prices=prices)
    requests = request_table(
        con, con.table("spans"), prices=prices, deployments=deployments
    ).materialize()
    section = quality_section(
        con,
        requests,
        con.table("evaluations"),
        con.table("spans"),
        start=start,
        end=end,
        previous_start=previous_start,
    )
    assert section is not None
    (v2,) = section.by_prompt_version.to_dicts()  # this week serves v2 only
    assert v2["prompt_version"] == "v2"
    assert v2["cost_per_request_usd"] == pytest.approx(COST_V2)
    assert v2["good_rate"] == pytest.approx(0.5)
    assert v2["cost_per_good_answer_usd"] == pytest.approx(COST_V2 / 0.5)
    assert v2["previous_good_rate"] is None  # v2 did not serve last week
    assert section.rollouts is not None
    (rollout,) = section.rollouts.to_dicts()
    assert (rollout["baseline"], rollout["candidate"], rollout["verdict"]) == (
        "v1",
        "v2",
        "rollback",
    )
    assert rollout["baseline_mean"] == pytest.approx(sum(V1_SCORES) / 40)
    assert rollout["candidate_cost_per_request_usd"] == pytest.approx(COST_V2)

    assert section.overlap is not None
    (overlap,) = section.overlap.filter(pl.col("compared") == "prompt_version").to_dicts()
    assert (overlap["baseline"], overlap["candidate"], overlap["queries"]) == ("v1", "v2", 1)
    assert overlap["mean_jaccard"] == pytest.approx(2 / 4)  # {d1, d3} of {d1, d2, d3, d9}

    report = weekly_report(
        requests, week="2026-W47", prices=prices, deployments=deployments, quality=section
    )
    assert report.recommendations[0].kind == "rollback"
    written = report.write(tmp_path)
    markdown = Path(str(written["markdown"])).read_text(encoding="utf-8")
    assert "**Quality next to cost**" in markdown
    assert "**rollback** tenant `acme` helpfulness" in markdown
    assert "top-k overlap (prompt_version) `v1` -> `v2` over 1 questions" in markdown
    page = Path(str(written["html"])).read_text(encoding="utf-8")
    assert 'id="quality"' in page
    csv = pl.read_csv(tmp_path / "infermeter-2026-W47-csv" / "quality_by_prompt_version.csv")
    assert csv["good_rate"].to_list() == pytest.approx([0.5])


def test_a_store_without_evaluations_has_no_quality_section() -> None:
    start, end = iso_week_bounds("2026-W47")
    con = store_in_memory()
    insert_spans(con, [span_record(start=start + timedelta(hours=1))])
    prices = load_prices()
    requests = request_table(
        con, con.table("spans"), prices=prices, deployments=Deployments(prices=prices)
    )
    section = quality_section(
        con,
        requests,
        con.table("evaluations"),
        con.table("spans"),
        start=start,
        end=end,
        previous_start=start - timedelta(days=7),
    )
    assert section is None
