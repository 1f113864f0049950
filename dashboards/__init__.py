"""infermeter.dashboards: the Prometheus exporter, dashboards as code and Grafana provisioning.

- :class:`Catalog` / :class:`MetricSpec`: every metric the exporter emits (the one source
  for the exporter, the dashboards and the alert rules).
- :func:`compute_snapshot` / :class:`Snapshot`: the rollups of a store at one moment.
- :class:`MetricsExporter` and :func:`serve`: ``/metrics`` with a background refresh.
- :func:`dashboards`, :func:`push_dashboards`, :func:`export_dashboards`: the dashboards
  as JSON, provisioned through grafana-client or written for file provisioning.
- :mod:`infermeter.dashboards.testing`: a fake Grafana checked against its OpenAPI spec,
  real Prometheus / Alertmanager processes for tests.

Nothing heavy is imported here; duckdb, polars, prometheus-client and grafana-client load
when a function needs them.
"""

from __future__ import annotations

from infermeter.dashboards._catalog import (
    COHORT_LABELS,
    OTHER_TENANT,
    WORKLOAD_LABELS,
    Catalog,
    MetricSpec,
    by_name,
)
from infermeter.dashboards._dashboards import (
    dashboards,
    drift_dashboard,
    overview_dashboard,
    rebalancing_dashboard,
    unit_economics_dashboard,
)
from infermeter.dashboards._exporter import ExporterConfig, MetricsExporter, serve
from infermeter.dashboards._grafana import GrafanaTarget, PushReport
from infermeter.dashboards._provision import export_dashboards, push_dashboards
from infermeter.dashboards._rollup import RollupOptions, Sample, Snapshot, compute_snapshot

__all__ = [
    "COHORT_LABELS",
    "OTHER_TENANT",
    "WORKLOAD_LABELS",
    "Catalog",
    "ExporterConfig",
    "GrafanaTarget",
    "MetricSpec",
    "MetricsExporter",
    "PushReport",
    "RollupOptions",
    "Sample",
    "Snapshot",
    "by_name",
    "compute_snapshot",
    "dashboards",
    "drift_dashboard",
    "export_dashboards",
    "overview_dashboard",
    "push_dashboards",
    "rebalancing_dashboard",
    "serve",
    "unit_economics_dashboard",
]
