"""infermeter.analytics.report.

The weekly unit-economics report: computed tables and their HTML/Markdown rendering.
"""

from __future__ import annotations

from infermeter.analytics.report._render import (
    CHART_IDS,
    format_value,
    render_html,
    render_markdown,
)
from infermeter.analytics.report._weekly import (
    DIMENSIONS,
    SUMMARY_METRICS,
    WeeklyReport,
    iso_week_bounds,
    weekly_report,
)

__all__ = [
    "CHART_IDS",
    "DIMENSIONS",
    "SUMMARY_METRICS",
    "WeeklyReport",
    "format_value",
    "iso_week_bounds",
    "render_html",
    "render_markdown",
    "weekly_report",
]
