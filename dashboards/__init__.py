"""infermeter.dashboards: the Prometheus exporter, dashboards as code and Grafana provisioning.

- :class:`Catalog` / :class:`MetricSpec`: every metric the exporter emits (the one source
  for the exporter, the dashboards and the alert rules).
- :func:`compute_snapshot` / :class:`Snapshot`: the rollups of a store at one moment.
- :class:`MetricsExporter` and :func:`serve`: ``/metrics`` with a background refresh.
- :func:`dashboards`, :func:`push_dashboards`, :func:`export_dashboards`: the dashboards
  as JSON, provisioned through grafana-client or written for file provisioning.
- :mod:`infermeter.dashboards.grafana`: the grafana-client connection helpers (folder,
  datasource, errors) shared with ``infermeter.alerts``.
- :mod:`infermeter.dashboards.testing`: a fake Grafana checked against its OpenAPI spec,
  real Prometheus / Alertmanager processes for tests.

Nothing heavy is imported here; duckdb, polars, prometheus-client and grafana-client load
when a function needs them.
"""

from __future__ import annotations

from infermeter.analytics.rollup import (
    COHORT_LABELS,
    OTHER_TENANT,
    WORKLOAD_LABELS,
    Catalog,
    MetricSpec,
    RollupOptions,
    Sample,
    Snapshot,
    by_name,
    compute_snapshot,
)
from infermeter.dashboards._dashboards import (
    dashboards,
    drift_dashboard,
    overview_dashboard,
    rebalancing_dashboard,
    unit_economics_dashboard,
)
from infermeter.dashboards._exporter import ExporterConfig, MetricsExporter, read_drift, serve
from infermeter.dashboards._provision import export_dashboards, push_dashboards
from infermeter.dashboards._settings import ROLLUP_SETTINGS, SERVE_SETTINGS, parse_duration
from infermeter.dashboards.grafana import GRAFANA_SETTINGS, GrafanaTarget, PushReport, parse_url

__all__ = [
    "COHORT_LABELS",
    "GRAFANA_SETTINGS",
    "OTHER_TENANT",
    "ROLLUP_SETTINGS",
    "SERVE_SETTINGS",
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
    "parse_duration",
    "parse_url",
    "push_dashboards",
    "read_drift",
    "rebalancing_dashboard",
    "serve",
    "unit_economics_dashboard",
]
