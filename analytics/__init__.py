"""infermeter.analytics: metrics, pricing, runtime economics, drift and reports over the store.

Start with :func:`open` (an :class:`Analysis` session: the store's reader, prices,
deployments and drift results, with methods for requests, metrics, recommendations, the
weekly report and the exporter's rollups). The pure functions it calls are exported too,
for callers that bring their own DuckDB relations. Subpackages, one concept each:
``query`` (requests, metrics and all SQL), ``pricing``, ``economics`` (deployments,
break-even, recommendations, comparisons), ``drift``, ``report``, ``rollup`` (the metric
catalogue and rollups read by dashboards and alerts), ``cli`` and ``testing`` (kits).
"""

from __future__ import annotations

from infermeter.analytics._session import Analysis
from infermeter.analytics._session import open_analysis as open
from infermeter.analytics.drift import (
    DRIFT_SETTINGS,
    DriftScore,
    classifier_drift,
    detect_drift,
    ks_drift,
    mmd_drift,
    open_results_for_writing,
    read_drift_results,
    results_path,
    write_drift_report,
    write_drift_results,
)
from infermeter.analytics.drift import RESULT_COLUMNS as DRIFT_RESULT_COLUMNS
from infermeter.analytics.economics import (
    DEPLOYMENT_SETTINGS,
    Comparison,
    Deployment,
    Deployments,
    Recommendation,
    RecommendationThresholds,
    compare,
    load_deployments,
    recommend,
    recommend_from_frames,
    recommendations_to_json,
    runtime_economics,
    score_matrix,
)
from infermeter.analytics.pricing import (
    PRICE_SETTINGS,
    ComputePrices,
    FreeTier,
    PriceBook,
    PriceSource,
    TokenPrice,
    load_prices,
    normalize_model_name,
)
from infermeter.analytics.query import (
    METRIC_COLUMNS,
    concurrency,
    metric_inputs,
    metrics,
    price_coverage,
    request_table,
    stage_breakdown,
    unpriced_models,
    version_frame,
    workload_frame,
)
from infermeter.analytics.report import WeeklyReport, weekly_report

__all__: list[str] = [
    "DEPLOYMENT_SETTINGS",
    "DRIFT_RESULT_COLUMNS",
    "DRIFT_SETTINGS",
    "METRIC_COLUMNS",
    "PRICE_SETTINGS",
    "Analysis",
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
    "open",
    "open_results_for_writing",
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
