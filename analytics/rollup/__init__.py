"""infermeter.analytics.rollup.

The contract between analytics and its outputs: the metric catalogue (every Prometheus
series infermeter exports) and the rollup that computes it from a store. Read by
``infermeter.dashboards`` (exporter, panels) and ``infermeter.alerts`` (rules).
"""

from __future__ import annotations

from infermeter.analytics.rollup._catalog import (
    COHORT_LABELS,
    DRIFT_LABELS,
    OTHER_TENANT,
    PREFIX,
    QUANTILES,
    RECOMMENDATION_LABELS,
    TENANT_LABELS,
    WORKLOAD_LABELS,
    Catalog,
    MetricSpec,
    by_name,
)
from infermeter.analytics.rollup._rollup import (
    RollupOptions,
    Sample,
    Snapshot,
    choose_named_tenants,
    compute_snapshot,
    load_budgets,
)
from infermeter.analytics.rollup._sealed import DEFAULT_SEAL_AFTER, SealedRequests

__all__ = [
    "COHORT_LABELS",
    "DEFAULT_SEAL_AFTER",
    "DRIFT_LABELS",
    "OTHER_TENANT",
    "PREFIX",
    "QUANTILES",
    "RECOMMENDATION_LABELS",
    "TENANT_LABELS",
    "WORKLOAD_LABELS",
    "Catalog",
    "MetricSpec",
    "RollupOptions",
    "Sample",
    "SealedRequests",
    "Snapshot",
    "by_name",
    "choose_named_tenants",
    "compute_snapshot",
    "load_budgets",
]
