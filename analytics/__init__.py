"""infermeter.analytics: metrics, pricing, runtime economics, drift and reports over the store."""

from __future__ import annotations

from infermeter.analytics._compare import Comparison, compare, score_matrix
from infermeter.analytics._concurrency import concurrency
from infermeter.analytics._deployments import (
    DEPLOYMENT_SETTINGS,
    Deployment,
    Deployments,
    load_deployments,
)
from infermeter.analytics._drift import RESULT_COLUMNS as DRIFT_RESULT_COLUMNS
from infermeter.analytics._drift import detect_drift, write_drift_report
from infermeter.analytics._drift_methods import DriftScore, classifier_drift, ks_drift, mmd_drift
from infermeter.analytics._drift_results import (
    read_drift_results,
    results_path,
    write_drift_results,
)
from infermeter.analytics._drift_settings import DRIFT_SETTINGS
from infermeter.analytics._economics import runtime_economics
from infermeter.analytics._metrics import METRIC_COLUMNS, metric_inputs, metrics
from infermeter.analytics._prices import (
    PRICE_SETTINGS,
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
    recommend_from_frames,
    recommendations_to_json,
)
from infermeter.analytics._report import WeeklyReport, weekly_report
from infermeter.analytics._requests import price_coverage, request_table, unpriced_models
from infermeter.analytics._stages import stage_breakdown
from infermeter.analytics._workloads import version_frame, workload_frame

__all__: list[str] = [
    "DEPLOYMENT_SETTINGS",
    "DRIFT_RESULT_COLUMNS",
    "DRIFT_SETTINGS",
    "METRIC_COLUMNS",
    "PRICE_SETTINGS",
    "Comparison",
    "ComputePrices",
    "Deployment",
    "Deployments",
    "DriftScore",
    "FreeTier",
    "PriceBook",
    "PriceSource",
    "Recommendation",
    "RecommendationThresholds",
    "TokenPrice",
    "WeeklyReport",
    "classifier_drift",
    "compare",
    "concurrency",
    "detect_drift",
    "ks_drift",
    "load_deployments",
    "load_prices",
    "metric_inputs",
    "metrics",
    "mmd_drift",
    "normalize_model_name",
    "price_coverage",
    "read_drift_results",
    "recommend",
    "recommend_from_frames",
    "recommendations_to_json",
    "request_table",
    "results_path",
    "runtime_economics",
    "score_matrix",
    "stage_breakdown",
    "unpriced_models",
    "version_frame",
    "weekly_report",
    "workload_frame",
    "write_drift_report",
    "write_drift_results",
]
