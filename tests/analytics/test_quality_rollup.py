"""The quality gauges ``serve`` exports, from a store with evaluations and retrieval spans
(numbers by hand)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from infermeter.agent import semconv as sc
from infermeter.analytics import load_deployments, load_prices
from infermeter.analytics.rollup import Catalog, RollupOptions, compute_snapshot
from infermeter.collectors.testing import (
    evaluation_record,
    insert_evaluations,
    insert_spans,
    span_record,
    store_in_memory,
)

T0 = datetime(2026, 11, 16, 10, 0, 0)
COST_V2 = 1000 * 0.15e-6 + 300 * 0.60e-6  # gpt-4o-mini list prices


def test_quality_gauges_match_the_hand_computed_numbers() -> None:
    con = store_in_memory()
    spans: list[dict[str, Any]] = []
    evaluations: list[dict[str, Any]] = []
    plan = [("v1", 0, 500, [0.9, 0.8, 0.7, 0.6]), ("v2", 120, 300, [0.6, 0.5, 0.4, 0.3])]
    for version, offset, output_tokens, cycle in plan:
        for i in range(40):
            span = span_record(
                start=T0 + timedelta(minutes=offset + i),
                tenant="acme",
                model="gpt-4o-mini",
                provider="openai",
                prompt_version=version,
                endpoint="/chat",
                input_tokens=1000,
                output_tokens=output_tokens,
            )
            spans.append(span)
            evaluations.append(
                evaluation_record(
                    "helpfulness", trace_id=span["trace_id"], score_value=cycle[i % 4]
                )
            )
            if version == "v2" and i < 4:  # four retrievals: the answer used a document in 3
                spans.append(
                    span_record(
                        start=span["start_time"] + timedelta(milliseconds=1),
                        trace_id=span["trace_id"],
                        parent_span_id=span["span_id"],
                        is_entry=False,
                        name="retrieve",
                        attributes={
                            sc.INFERMETER_RETRIEVAL_IDS: ["a", "b"],
                            sc.INFERMETER_RETRIEVAL_USED_IDS: ["b"] if i else ["z"],
                        },
                    )
                )
    insert_spans(con, spans)
    insert_evaluations(con, evaluations)
    prices = load_prices()
    snapshot = compute_snapshot(
        con,
        prices=prices,
        deployments=load_deployments(prices=prices),
        options=RollupOptions(window_end="newest"),
        now=T0 + timedelta(days=1),
    )
    group = {"tenant": "acme", "endpoint": "/chat", "model": "gpt-4o-mini"}
    assert snapshot.value(Catalog.QUALITY_GOOD_RATIO, prompt_version="v1", **group) == 1.0
    assert snapshot.value(Catalog.QUALITY_GOOD_RATIO, prompt_version="v2", **group) == 0.5
    assert snapshot.value(
        Catalog.QUALITY_COST_PER_GOOD_ANSWER_USD, prompt_version="v2", **group
    ) == pytest.approx(COST_V2 / 0.5)
    assert snapshot.value(
        Catalog.QUALITY_MEAN_SCORE, prompt_version="v2", evaluation="helpfulness", **group
    ) == pytest.approx((0.6 + 0.5 + 0.4 + 0.3) / 4)
    assert (
        snapshot.value(
            Catalog.QUALITY_RESULTS, prompt_version="v1", evaluation="helpfulness", **group
        )
        == 40
    )
    assert (
        snapshot.value(
            Catalog.QUALITY_ROLLBACK,
            tenant="acme",
            evaluation="helpfulness",
            baseline="v1",
            candidate="v2",
        )
        == 1.0
    )
    assert snapshot.value(
        Catalog.RETRIEVAL_HIT_RATIO, prompt_version="v2", **group
    ) == pytest.approx(3 / 4)
