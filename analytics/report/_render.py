"""Rendering of a :class:`~infermeter.analytics.report._weekly.WeeklyReport`: HTML and Markdown.

The HTML page is self-contained: plotly.js is inlined once in the head and every chart is
a ``div`` plus a small script, so it opens offline (CI and many mail gateways have no
internet; a CDN script would fail). Every value taken from the data is HTML-escaped;
plotly escapes ``<`` inside its JSON, and chart labels go through ``plotly_text`` because
plotly renders some HTML tags (links, bold) in them. Markdown takes untrusted text only
through ``markdown_text``.
"""

from __future__ import annotations

import functools
import html
import math
from collections.abc import Iterable, Sequence
from importlib import resources
from string import Template
from typing import TYPE_CHECKING, Any, Final

from infermeter.analytics._text import markdown_text, plotly_text

if TYPE_CHECKING:
    import polars as pl
    from infermeter.analytics.economics._recommend import Recommendation
    from infermeter.analytics.report._weekly import WeeklyReport

__all__ = ["CHART_IDS", "format_value", "render_html", "render_markdown"]

# Stable ids of the charts the page can hold (tests and links use them).
CHART_IDS: Final = (
    "cost-by-tenant",
    "cost-by-model",
    "cost-by-prompt-version",
    "p95-by-day",
    "cold-starts-by-day",
    "throttles-by-day",
    "economics",
    "drift",
)
_MAX_BARS: Final = 15
_PLOT_CONFIG: Final = {"displaylogo": False, "responsive": True}
_COLORS: Final = ("#94a3b8", "#2563eb")  # previous week, this week


@functools.cache
def _template() -> Template:
    text = (
        resources.files("infermeter.analytics.report")
        .joinpath("templates/weekly_report.html")
        .read_text("utf-8")
    )
    return Template(text)


@functools.cache
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_value(metric: str, value: Any) -> str:
    """Human form of a metric value by its column name's unit (usd, ms, rate...)."""
    if _is_missing(value):
        text = "n/a"
    elif isinstance(value, str):
        text = value
    else:
        number = float(value)
        # A change carries its sign: "+27.80%", "-$6.60".
        sign = (
            ("+" if number > 0 else "-" if number < 0 else "")
            if "_delta" in metric
            else ("-" if number < 0 else "")
        )
        if metric.endswith("_usd"):
            size = abs(number)
            text = sign + (f"${size:,.2f}" if size >= 1 or size == 0 else f"${size:.6f}")
        elif metric.endswith("_pct") and "_delta" in metric:
            text = f"{number:+.2%}"
        elif metric.endswith("_ms"):
            text = f"{number:,.0f} ms"
        elif metric.endswith(("_rate", "_pct", "_share", "utilization")):
            text = f"{number:.2%}"
        elif number.is_integer():
            text = f"{int(number):,}"
        else:
            text = f"{number:,.3g}"
    return text


def _delta_text(row: dict[str, Any]) -> tuple[str, str]:
    """("+12.0%", "good"|"bad"|"flat") for a summary row."""
    pct, delta = row.get("delta_pct"), row.get("delta")
    if delta is None or _is_missing(delta):
        return "no previous week", "flat"
    if delta == 0:
        return "unchanged", "flat"
    text = f"{pct:+.1%}" if not _is_missing(pct) else format_value(row["metric"], delta)
    good = (delta > 0) == bool(row.get("increase_is_good"))
    return text, "good" if good else "bad"


def _escape(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _cell(name: str, value: Any, *, first: bool) -> str:
    # The first column names the group; a NULL group is requests without that attribute.
    if first and value is None:
        return "(none)"
    return format_value(name, value)


def _table(frame: pl.DataFrame, columns: Sequence[tuple[str, str]], *, css: str = "") -> str:
    header = "".join(f"<th>{_escape(label)}</th>" for _, label in columns)
    body = []
    for row in frame.iter_rows(named=True):
        cells = "".join(
            f"<td>{_escape(_cell(name, row.get(name), first=i == 0))}</td>"
            for i, (name, _) in enumerate(columns)
        )
        body.append(f"<tr>{cells}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(columns)}" class="empty">no data</td></tr>')
    return (
        f'<table class="{css}"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _gpu_section(gpu: pl.DataFrame) -> str:
    """Self-hosted models: the API against GPU instances (break-even volume), always-on
    against scale-to-zero GPUs (crossover billed share)."""
    return (
        "<h2>Self-hosted models on GPUs</h2>"
        '<p class="note">Throughput is tokens per GPU-second of busy time measured from the '
        "model server's spans; GPU list prices were not re-fetched (their source and date "
        "are in gpu_economics.csv). Break-even: monthly tokens above which the GPU fleet is "
        "cheaper than the API; crossover: the share of the hour a scale-to-zero instance is "
        "up above which always-on instances are cheaper.</p>"
        + _table(
            gpu,
            (
                ("model", "model"),
                ("gpu_type", "GPU"),
                ("throughput_per_gpu", "tokens/s per GPU"),
                ("utilization", "utilization"),
                ("instance", "instance"),
                ("gpu_monthly_usd", "GPU containers /mo"),
                ("api_model", "API"),
                ("api_monthly_usd", "API /mo"),
                ("breakeven_tokens_per_month", "break-even tokens/mo"),
                ("self_host_verdict", "cheaper"),
                ("serverless_monthly_usd", "serverless GPU /mo"),
                ("crossover_billed_fraction", "crossover f*"),
                ("gpu_cheaper", "GPU side"),
            ),
        )
    )


def _figure_html(figure: Any, chart_id: str) -> str:
    figure.update_layout(
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 50, "b": 60},
        height=360,
        legend={"orientation": "h", "y": -0.2},
    )
    chart: str = figure.to_html(
        full_html=False, include_plotlyjs=False, config=_PLOT_CONFIG, div_id=f"{chart_id}-plot"
    )
    return f'<div class="chart" id="{chart_id}">{chart}</div>'


def _cost_chart(frame: pl.DataFrame, dimension: str, report: WeeklyReport, chart_id: str) -> str:
    import plotly.graph_objects as go

    top = frame.sort("total_cost_usd", descending=True, nulls_last=True).head(_MAX_BARS)
    labels = [plotly_text(v) if v is not None else "(none)" for v in top[dimension].to_list()]
    figure = go.Figure()
    for column, name, color in (
        ("previous_cost_per_request_usd", report.previous_week, _COLORS[0]),
        ("cost_per_request_usd", report.week, _COLORS[1]),
    ):
        values = top[column].to_list() if column in top.columns else [None] * top.height
        figure.add_bar(x=labels, y=values, name=plotly_text(name), marker_color=color)
    title = dimension.replace("_", " ")
    figure.update_layout(
        title=f"Cost per request by {title} (USD)", barmode="group", yaxis={"tickformat": "$.4f"}
    )
    return _figure_html(figure, chart_id)


def _daily_chart(
    report: WeeklyReport,
    metric: str,
    title: str,
    chart_id: str,
    *,
    percent: bool,
    slo: float | None = None,
    log_scale: bool = False,
) -> str:
    import plotly.graph_objects as go

    figure = go.Figure()
    daily = report.daily
    if metric in daily.columns:
        for (endpoint,), group in daily.group_by("endpoint", maintain_order=True):
            ordered = group.sort("day")
            figure.add_scatter(
                x=ordered["day"].to_list(),
                y=ordered[metric].to_list(),
                mode="lines+markers",
                name=plotly_text(endpoint or "(none)"),
            )
    if log_scale:
        # Endpoints differ by orders of magnitude (embeddings vs long LLM calls).
        figure.update_yaxes(type="log")
    if slo is not None:
        figure.add_hline(
            y=slo, line_dash="dash", line_color="#dc2626", annotation_text=f"SLO {slo:,.0f} ms"
        )
    figure.update_layout(
        title=title,
        yaxis={"tickformat": ".1%"} if percent else {},
        xaxis={"tickformat": "%a %d %b"},
    )
    return _figure_html(figure, chart_id)


def _economics_chart(report: WeeklyReport) -> str:
    import plotly.graph_objects as go

    econ = report.economics.filter(report.economics["serverless_monthly_usd"].is_not_null())
    labels = [
        plotly_text(f"{e or '(none)'} ({r})")
        for e, r in zip(econ["endpoint"].to_list(), econ["runtime"].to_list(), strict=True)
    ]
    figure = go.Figure()
    figure.add_bar(
        x=labels,
        y=econ["serverless_monthly_usd"].to_list(),
        name="serverless",
        marker_color="#f59e0b",
    )
    figure.add_bar(
        x=labels,
        y=econ["container_monthly_usd"].to_list(),
        name="containers",
        marker_color="#10b981",
    )
    figure.update_layout(
        title="Projected monthly cost at this week's load (USD, list prices)",
        barmode="group",
        yaxis={"tickformat": "$,.0f"},
    )
    return _figure_html(figure, "economics")


def _drift_chart(drift: pl.DataFrame) -> str:
    import plotly.graph_objects as go

    rows = drift.head(30).to_dicts()
    labels = [
        plotly_text(
            " / ".join(
                str(r.get(k))
                for k in ("model", "prompt_version", "feature")
                if r.get(k) is not None
            )
        )
        for r in rows
    ]
    colors = ["#dc2626" if r.get("drifted") else "#10b981" for r in rows]
    figure = go.Figure()
    figure.add_bar(x=labels, y=[r.get("score") for r in rows], name="score", marker_color=colors)
    figure.add_scatter(
        x=labels,
        y=[r.get("threshold") for r in rows],
        mode="markers",
        name="threshold",
        marker={"symbol": "line-ew-open", "size": 24, "color": "#111827"},
    )
    figure.update_layout(title="Drift score against its threshold (red = drift)")
    return _figure_html(figure, "drift")


def _kpis(report: WeeklyReport) -> str:
    tiles = []
    for row in report.summary.iter_rows(named=True):
        if row["metric"] in {
            "token_cost_usd",
            "compute_cost_usd",
            "p99_ms",
            "unpriced_requests",
            "untokenized_requests",
        }:
            continue
        delta, tone = _delta_text(row)
        tiles.append(
            f'<div class="kpi"><div class="label">{_escape(row["label"])}</div>'
            f'<div class="value">{_escape(format_value(row["metric"], row["this_week"]))}</div>'
            f'<div class="delta {tone}">{_escape(delta)} vs {_escape(report.previous_week)}'
            "</div></div>"
        )
    return f'<div class="kpis">{"".join(tiles)}</div>'


def _recommendation_items(recommendations: Sequence[Recommendation]) -> str:
    if not recommendations:
        return '<p class="empty">No recommendation this week: nothing crossed a threshold.</p>'
    items = []
    for rec in recommendations:
        numbers = rec.impact()
        evidence = ", ".join(f"{k}={format_value(k, v)}" for k, v in rec.evidence.items())
        items.append(
            f'<li class="rec {_escape(rec.kind)}"><div class="rec-title">'
            f'<span class="badge {_escape(rec.confidence_label)}">'
            f"{_escape(rec.confidence_label)} confidence ({rec.confidence:.2f})</span> "
            f"{_escape(rec.title)}</div>"
            f'<div class="rec-numbers">{_escape(" | ".join(numbers))}</div>'
            f"<p>{_escape(rec.rationale)}</p>"
            f"<details><summary>evidence</summary><code>{_escape(evidence)}</code></details></li>"
        )
    return f'<ul class="recs">{"".join(items)}</ul>'


def plan_lines(report: WeeklyReport) -> list[str]:
    """Per endpoint: the chosen plan and the runner-up, with their cost and p95."""

    def shown(plan: Any) -> str:
        p95 = plan.projected_p95_ms
        latency = "" if p95 is None else f", p95 {p95:,.0f} ms"
        verdict = "" if plan.meets_slo else " - misses the SLO"
        return f"{plan.description} (${plan.monthly_cost_usd:,.2f}/month{latency}{verdict})"

    lines = []
    for decision in report.plans:
        runner = "" if decision.runner_up is None else f"; runner-up: {shown(decision.runner_up)}"
        lines.append(
            f"{decision.endpoint}: chosen {shown(decision.chosen)}{runner} - {decision.why}"
        )
    return lines


def render_html(report: WeeklyReport) -> str:
    """The whole report as one self-contained HTML document."""
    sections: list[str] = [_kpis(report)]
    sections.extend(f'<p class="note">{_escape(note)}</p>' for note in report.notes)
    if not report.has_data:
        sections.append('<p class="empty">No requests in this week: nothing to chart.</p>')
    cost_charts = [
        _cost_chart(report.by_dimension[dim], dim, report, f"cost-by-{dim.replace('_', '-')}")
        for dim in ("tenant", "model", "prompt_version")
        if dim in report.by_dimension
    ]
    sections.append('<h2>Unit economics</h2><div class="grid">' + "".join(cost_charts) + "</div>")
    sections.append(
        '<h2>Latency, cold starts and throttling</h2><div class="grid">'
        + _daily_chart(
            report,
            "p95_ms",
            "p95 latency by day (ms, log scale)",
            "p95-by-day",
            percent=False,
            slo=report.slo_ms,
            log_scale=True,
        )
        + _daily_chart(
            report, "cold_start_rate", "Cold-start rate by day", "cold-starts-by-day", percent=True
        )
        + _daily_chart(
            report, "throttle_rate", "Throttle rate by day", "throttles-by-day", percent=True
        )
        + "</div>"
    )
    sections.append(
        "<h2>Top movers</h2>"
        + _table(
            report.top_movers,
            (
                ("dimension", "dimension"),
                ("value", "value"),
                ("status", "status"),
                ("previous_total_cost_usd", f"cost {report.previous_week}"),
                ("total_cost_usd", f"cost {report.week}"),
                ("total_cost_delta_usd", "change"),
                ("previous_cost_per_request_usd", "per request before"),
                ("cost_per_request_usd", "per request now"),
                ("cost_per_request_delta_pct", "per-request change"),
            ),
        )
    )
    sections.append("<h2>Recommendations</h2>" + _recommendation_items(report.recommendations))
    plans = plan_lines(report)
    if plans:
        items = "".join(f"<li>{_escape(line)}</li>" for line in plans)
        sections.append(f'<h2>Plans per endpoint</h2><ul class="plans">{items}</ul>')
    if report.economics.height:
        sections.append(
            "<h2>Where each workload should run</h2>"
            '<p class="note">Projections of this week\'s measured load to a 730-hour month at '
            "list prices, without free tiers. Serverless bills the wall-clock time a handler "
            "waits on a model API; containers serving requests concurrently do not.</p>"
            + _economics_chart(report)
            + _table(
                report.economics,
                (
                    ("endpoint", "endpoint"),
                    ("runtime", "runtime"),
                    ("requests_per_s", "req/s"),
                    ("mean_duration_s", "mean s"),
                    ("serverless_monthly_usd", "serverless /mo"),
                    ("container_monthly_usd", "containers /mo"),
                    ("container_instances", "instances"),
                    ("crossover_utilization", "crossover u*"),
                    ("measured_utilization", "utilization"),
                    ("cheaper_runtime", "cheaper"),
                ),
            )
        )
    if report.gpu_economics is not None and report.gpu_economics.height:
        sections.append(_gpu_section(report.gpu_economics))
    if report.drift is not None:
        drift_html = '<p class="empty">No drift results for this store.</p>'
        if report.drift.height:
            drift_html = _drift_chart(report.drift) + _table(
                report.drift,
                tuple(
                    (c, c.replace("_", " "))
                    for c in (
                        "model",
                        "prompt_version",
                        "tenant",
                        "kind",
                        "feature",
                        "method",
                        "score",
                        "threshold",
                        "verdict",
                        "current_n",
                        "reference_n",
                    )
                    if c in report.drift.columns
                ),
            )
        sections.append("<h2>Drift</h2>" + drift_html)
    if report.quality is not None:
        from infermeter.analytics.quality._section import quality_html

        sections.append(quality_html(report.quality))
    for dim, frame in report.by_dimension.items():
        sections.append(
            f"<h2>By {_escape(dim.replace('_', ' '))}</h2>"
            + _table(
                frame,
                (
                    (dim, dim.replace("_", " ")),
                    ("requests", "requests"),
                    ("previous_requests", f"requests {report.previous_week}"),
                    ("cost_per_request_usd", "cost/request"),
                    ("cost_per_request_delta_pct", "change"),
                    ("total_cost_usd", "total cost"),
                    ("p95_ms", "p95"),
                    ("error_rate", "errors"),
                    ("cold_start_rate", "cold starts"),
                    ("throttle_rate", "throttled"),
                ),
                css="compact",
            )
        )
    title = f"infermeter weekly report {report.week}"
    subtitle = (
        f"{report.start:%a %d %b %Y} - {report.end:%a %d %b %Y} (UTC), compared with "
        f"{report.previous_week}; generated {report.generated_at:%Y-%m-%d %H:%M} UTC"
    )
    return _template().substitute(
        title=_escape(title),
        subtitle=_escape(subtitle),
        plotlyjs=_plotly_js(),
        body="\n".join(sections),
    )


def _bullets(lines: Iterable[str]) -> list[str]:
    # Every line is already inert Markdown: untrusted parts went through markdown_text.
    return [f"- {line}" for line in lines]


def render_markdown(report: WeeklyReport) -> str:
    """Markdown for Slack or e-mail: bullets (no wide tables), numbers with their deltas."""
    lines = [
        f"### infermeter weekly report {report.week}",
        f"{report.start:%d %b} - {report.end:%d %b %Y} (UTC), compared with {report.previous_week}",
        "",
        "**Headline**",
    ]
    arrows = {"good": "(better)", "bad": "(worse)", "flat": ""}
    headline = []
    for row in report.summary.iter_rows(named=True):
        delta, tone = _delta_text(row)
        headline.append(
            f"{row['label']}: **{format_value(row['metric'], row['this_week'])}** "
            f"({delta}) {arrows[tone]}".rstrip()
        )
    lines.extend(_bullets(headline))
    lines.extend(f"> {markdown_text(note)}" for note in report.notes)
    lines += ["", "**Top movers (total cost)**"]
    movers = (
        [
            f"{m['dimension']} {markdown_text(m['value'])}: "
            f"{format_value('x_usd', m['previous_total_cost_usd'])}"
            f" -> {format_value('x_usd', m['total_cost_usd'])} ({m['status']}; cost/request "
            f"{format_value('cost_per_request_delta_pct', m['cost_per_request_delta_pct'])})"
            for m in report.top_movers.iter_rows(named=True)
        ]
        if report.top_movers.height
        else ["no change in cost"]
    )
    lines.extend(_bullets(movers))
    lines += ["", "**Recommendations**"]
    recs = []
    for rec in report.recommendations:
        extra = rec.impact()
        suffix = f" ({markdown_text('; '.join(extra))})" if extra else ""
        recs.append(
            f"\\[{rec.confidence_label}\\] **{markdown_text(rec.title)}**{suffix}: "
            + markdown_text(rec.rationale)
        )
    lines.extend(_bullets(recs or ["none this week"]))
    plans = plan_lines(report)
    if plans:
        lines += ["", "**Plans per endpoint** (cheapest meeting the SLO, and the runner-up)"]
        lines.extend(_bullets(plans))
    if report.drift is not None:
        lines += ["", "**Drift**"]
        drifted = (
            report.drift.filter(report.drift["verdict"] == "drift")
            if "verdict" in report.drift.columns
            else report.drift.clear()
        )
        drift_lines = [
            f"{markdown_text(r.get('model'))} / prompt {markdown_text(r.get('prompt_version'))}: "
            f"{markdown_text(r.get('kind'))} {markdown_text(r.get('feature'))} "
            f"score {format_value('x', r.get('score'))} \\> threshold "
            f"{format_value('x', r.get('threshold'))}"
            for r in drifted.iter_rows(named=True)
        ]
        lines.extend(_bullets(drift_lines or [f"no drift in {report.drift.height} checks"]))
    if report.quality is not None:
        from infermeter.analytics.quality._section import quality_markdown

        lines.extend(quality_markdown(report.quality))
    lines += [
        "",
        "_Savings are projections of the measured load to a 730-hour month at list prices._",
        "",
    ]
    return "\n".join(lines)
