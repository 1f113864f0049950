"""Small builders for Grafana dashboard JSON (plain dicts, schema version 39).

Only what infermeter's dashboards use; every dict they return validates against the
dashboard JSON Schema of grafana-foundation-sdk (tests check each dashboard). Panels are
laid out by :class:`Layout`, which packs them left to right on Grafana's 24-column grid.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from infermeter.analytics.rollup import MetricSpec

__all__ = [
    "DATASOURCE",
    "DATASOURCE_VARIABLE",
    "Json",
    "Layout",
    "Target",
    "Thresholds",
    "dashboard",
    "datasource_variable",
    "hide_columns",
    "query_variable",
]

Json = dict[str, Any]

DATASOURCE_VARIABLE = "datasource"
# Every panel and variable reads through the dashboard's datasource variable, so one
# dashboard works against any Prometheus the user picks.
DATASOURCE: Json = {"type": "prometheus", "uid": "${" + DATASOURCE_VARIABLE + "}"}
SCHEMA_VERSION = 39
GRID_COLUMNS = 24


@dataclass(frozen=True)
class Target:
    """One PromQL query of a panel."""

    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False

    def to_json(self, ref_id: str) -> Json:
        out: Json = {
            "refId": ref_id,
            "datasource": DATASOURCE,
            "editorMode": "code",
            "expr": self.expr,
            "legendFormat": self.legend or "__auto",
            "range": not self.instant,
            "instant": self.instant,
        }
        if self.table:
            out["format"] = "table"
        return out


@dataclass(frozen=True)
class Thresholds:
    """Colour steps: green below ``warn``, orange from ``warn``, red from ``critical``.
    ``reverse`` for metrics where low is bad (utilization of a paid fleet, say)."""

    warn: float | None = None
    critical: float | None = None
    reverse: bool = False

    @classmethod
    def of(cls, spec: MetricSpec) -> Thresholds:
        return cls(spec.warn, spec.critical)

    def to_json(self) -> Json:
        low, mid, high = ("red", "orange", "green") if self.reverse else ("green", "orange", "red")
        steps: list[Json] = [{"color": low, "value": None}]
        if self.warn is not None:
            steps.append({"color": mid, "value": self.warn})
        if self.critical is not None:
            steps.append({"color": high, "value": self.critical})
        return {"mode": "absolute", "steps": steps}


PanelType = Literal["timeseries", "stat", "bargauge", "table"]


@dataclass
class Layout:
    """Packs panels on the grid row by row and numbers them."""

    panels: list[Json] = field(default_factory=list)
    _x: int = 0
    _y: int = 0
    _row_height: int = 0
    _next_id: int = 1

    def _place(self, width: int, height: int) -> Json:
        if self._x + width > GRID_COLUMNS:
            self._x, self._y = 0, self._y + self._row_height
            self._row_height = 0
        pos = {"h": height, "w": width, "x": self._x, "y": self._y}
        self._x += width
        self._row_height = max(self._row_height, height)
        return pos

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def row(self, title: str) -> None:
        if self._x:
            self._x, self._y, self._row_height = 0, self._y + self._row_height, 0
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "collapsed": False,
                "id": self._id(),
                "panels": [],
                "gridPos": {"h": 1, "w": GRID_COLUMNS, "x": 0, "y": self._y},
            }
        )
        self._y += 1

    def panel(
        self,
        kind: PanelType,
        title: str,
        description: str,
        targets: Sequence[Target],
        *,
        unit: str = "short",
        thresholds: Thresholds | None = None,
        width: int = 12,
        height: int = 8,
        decimals: int | None = None,
        min_value: float | None = None,
        mappings: Sequence[Json] = (),
        overrides: Sequence[Json] = (),
        transformations: Sequence[Json] = (),
    ) -> Json:
        defaults: Json = {"unit": unit}
        if thresholds is not None:
            defaults["thresholds"] = thresholds.to_json()
            defaults["color"] = {"mode": "thresholds"}
        elif kind != "table":
            defaults["color"] = {"mode": "palette-classic"}
        if decimals is not None:
            defaults["decimals"] = decimals
        if min_value is not None:
            defaults["min"] = min_value
        if mappings:
            defaults["mappings"] = list(mappings)
        if kind == "timeseries":
            defaults["custom"] = _timeseries_field_config(thresholds is not None)
        panel: Json = {
            "type": kind,
            "id": self._id(),
            "title": title,
            "description": description,
            "datasource": DATASOURCE,
            "gridPos": self._place(width, height),
            "targets": [t.to_json(chr(ord("A") + i)) for i, t in enumerate(targets)],
            "fieldConfig": {"defaults": defaults, "overrides": list(overrides)},
            "options": _options(kind),
        }
        if transformations:
            panel["transformations"] = list(transformations)
        self.panels.append(panel)
        return panel


def _timeseries_field_config(show_thresholds: bool) -> Json:
    return {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 10,
        "showPoints": "never",
        "spanNulls": False,
        "axisPlacement": "auto",
        "thresholdsStyle": {"mode": "dashed" if show_thresholds else "off"},
    }


def _options(kind: PanelType) -> Json:
    if kind == "timeseries":
        return {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
                "calcs": ["lastNotNull", "max"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    if kind == "stat":
        return {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "area",
            "justifyMode": "auto",
            "textMode": "auto",
            "orientation": "auto",
        }
    if kind == "bargauge":
        return {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "displayMode": "gradient",
            "orientation": "horizontal",
            "showUnfilled": True,
        }
    return {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}


def hide_columns(*names: str) -> Json:
    """An ``organize`` transformation hiding table columns (Time, __name__, ...)."""
    return {"id": "organize", "options": {"excludeByName": dict.fromkeys(names, True)}}


def datasource_variable() -> Json:
    return {
        "type": "datasource",
        "name": DATASOURCE_VARIABLE,
        "label": "Prometheus",
        "query": "prometheus",
        "refresh": 1,
        "hide": 0,
        "description": "The Prometheus that scrapes `infermeter serve`.",
    }


def query_variable(name: str, label: str, query: str, description: str) -> Json:
    """A multi-value label filter; "All" matches any value, including series without it."""
    return {
        "type": "query",
        "name": name,
        "label": label,
        "description": description,
        "datasource": DATASOURCE,
        "query": query,
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "hide": 0,
    }


def dashboard(
    *,
    uid: str,
    title: str,
    description: str,
    tags: Iterable[str],
    variables: Sequence[Json],
    panels: Sequence[Json],
    time_from: str = "now-6h",
    refresh: str = "1m",
) -> Json:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": sorted(set(tags)),
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "refresh": refresh,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "monday",
        "templating": {"list": list(variables)},
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "title": "infermeter dashboards",
                "type": "dashboards",
                "tags": ["infermeter"],
                "asDropdown": True,
                "icon": "external link",
                "tooltip": "The other infermeter dashboards",
                "targetBlank": False,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "panels": list(panels),
    }
