"""infermeter.analytics: metrics, pricing, runtime economics, drift and reports over the store."""

from __future__ import annotations

from infermeter.analytics._compare import Comparison, compare, score_matrix
from infermeter.analytics._concurrency import concurrency
from infermeter.analytics._deployments import Deployment, Deployments, load_deployments
from infermeter.analytics._economics import runtime_economics
from infermeter.analytics._metrics import METRIC_COLUMNS, metrics
from infermeter.analytics._prices import (
    ComputePrices,
    FreeTier,
    PriceBook,
    PriceSource,
    TokenPrice,
    load_prices,
    normalize_model_name,
)
from infermeter.analytics._recommend import (
    Recommendation,
    RecommendationThresholds,
    recommend,
    recommendations_to_json,
)
from infermeter.analytics._report import WeeklyReport, weekly_report
from infermeter.analytics._requests import price_coverage, request_table, unpriced_models
from infermeter.analytics._stages import stage_breakdown

__all__: list[str] = [
    "METRIC_COLUMNS",
    "Comparison",
    "ComputePrices",
    "Deployment",
    "Deployments",
    "FreeTier",
    "PriceBook",
    "PriceSource",
    "Recommendation",
    "RecommendationThresholds",
    "TokenPrice",
    "WeeklyReport",
    "compare",
    "concurrency",
    "load_deployments",
    "load_prices",
    "metrics",
    "normalize_model_name",
    "price_coverage",
    "recommend",
    "recommendations_to_json",
    "request_table",
    "runtime_economics",
    "score_matrix",
    "stage_breakdown",
    "unpriced_models",
    "weekly_report",
]
