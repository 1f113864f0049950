"""infermeter.dashboards: the Prometheus exporter, dashboards as code and Grafana provisioning."""

from __future__ import annotations

__all__: list[str] = []
