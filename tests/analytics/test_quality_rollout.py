"""Rollback advice: a planted quality drop on one tenant's v2 gets ``rollback`` even though
v2 is cheaper; the same cheaper v2 at unchanged quality on another tenant is a win."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from infermeter.analytics import Deployments, load_prices, request_table
from infermeter.analytics.quality import (
    RolloutThresholds,
    judged_evaluations,
    quality_rollouts,
    rollout_recommendations,
)
from infermeter.collectors.testing import (
    evaluation_record,
    insert_evaluations,
    insert_spans,
    span_record,
    store_in_memory,
)
from scipy.stats import mannwhitneyu

T0 = datetime(2026, 11, 16, 10, 0, 0)
# gpt-4o-mini: $0.15 / M input, $0.60 / M output; v2's prompt answers in 300 tokens, not 500.
COST_V1 = 1000 * 0.15e-6 + 500 * 0.60e-6
COST_V2 = 1000 * 0.15e-6 + 300 * 0.60e-6


def _build(scores: dict[tuple[str, str], np.ndarray]) -> tuple[Any, Any, Any]:
    con = store_in_memory()
    spans: list[dict[str, Any]] = []
    evaluations: list[dict[str, Any]] = []
    for (tenant, version), values in scores.items():
        offset = 0 if version == "v1" else 600  # v2 rolls out after v1
        for i, value in enumerate(values):
            span = span_record(
                start=T0 + timedelta(minutes=offset + i),
                tenant=tenant,
                model="gpt-4o-mini",
                provider="openai",
                prompt_version=version,
                input_tokens=1000,
                output_tokens=500 if version == "v1" else 300,
            )
            spans.append(span)
            evaluations.append(
                evaluation_record(
                    "helpfulness",
                    trace_id=span["trace_id"],
                    span_id=span["span_id"],
                    score_value=float(value),
                )
            )
    insert_spans(con, spans)
    insert_evaluations(con, evaluations)
    prices = load_prices()
    requests = request_table(
        con, con.table("spans"), prices=prices, deployments=Deployments(prices=prices)
    ).materialize()
    judged = judged_evaluations(con, requests, con.table("evaluations"), con.table("spans"))
    return con, requests, judged


def test_a_significant_drop_is_a_rollback_and_a_cheaper_equal_version_a_win() -> None:
    rng = np.random.default_rng(16)
    scores = {
        ("acme", "v1"): np.clip(rng.normal(0.80, 0.10, 60), 0, 1),
        ("acme", "v2"): np.clip(rng.normal(0.70, 0.10, 60), 0, 1),
        ("globex", "v1"): np.clip(rng.normal(0.80, 0.10, 60), 0, 1),
        ("globex", "v2"): np.clip(rng.normal(0.80, 0.10, 60), 0, 1),
    }
    _, requests, judged = _build(scores)
    rollouts = {r["tenant"]: r for r in quality_rollouts(judged, requests).to_dicts()}
    acme, globex = rollouts["acme"], rollouts["globex"]
    oracle_acme = mannwhitneyu(scores["acme", "v2"], scores["acme", "v1"], alternative="less")
    oracle_globex = mannwhitneyu(scores["globex", "v2"], scores["globex", "v1"], alternative="less")
    assert oracle_acme.pvalue < 0.05 <= oracle_globex.pvalue  # the planted facts
    assert (acme["baseline"], acme["candidate"]) == ("v1", "v2")
    assert acme["p_value"] == pytest.approx(oracle_acme.pvalue)
    assert acme["baseline_mean"] == pytest.approx(scores["acme", "v1"].mean())
    assert acme["candidate_mean"] == pytest.approx(scores["acme", "v2"].mean())
    assert acme["baseline_cost_per_request_usd"] == pytest.approx(COST_V1)
    assert acme["candidate_cost_per_request_usd"] == pytest.approx(COST_V2)
    assert acme["verdict"] == "rollback"
    assert globex["p_value"] == pytest.approx(oracle_globex.pvalue)
    assert globex["verdict"] == "cheaper_at_equal_quality"

    recommendations = {
        r.tenant: r for r in rollout_recommendations(quality_rollouts(judged, requests))
    }
    rollback = recommendations["acme"]
    assert rollback.kind == "rollback"
    assert rollback.evidence["p_value"] == pytest.approx(oracle_acme.pvalue)
    assert "cheaper" in rollback.rationale
    assert recommendations["globex"].kind == "cheaper_at_equal_quality"


def test_too_few_results_is_insufficient_data_not_a_verdict() -> None:
    scores = {
        ("acme", "v1"): np.full(10, 0.9),
        ("acme", "v2"): np.full(10, 0.1),
    }
    _, requests, judged = _build(scores)
    (row,) = quality_rollouts(judged, requests).to_dicts()
    assert row["verdict"] == "insufficient_data"
    assert row["p_value"] is None
    (row,) = quality_rollouts(
        judged, requests, thresholds=RolloutThresholds(min_samples=10)
    ).to_dicts()
    assert row["verdict"] == "rollback"
