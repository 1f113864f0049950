"""infermeter.alerts: alert rules as code, rendered for Grafana and Prometheus, and evaluated."""

from __future__ import annotations

__all__: list[str] = []
