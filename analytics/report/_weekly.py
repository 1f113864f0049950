"""The weekly unit-economics report: this ISO week against the previous one.

``weekly_report`` computes every table of the report from a request table (pure: it reads
relations and returns frames); :class:`WeeklyReport` writes them as a self-contained HTML
page with charts, Markdown for Slack or e-mail, and CSV files.

CSV files written by :meth:`WeeklyReport.write_csv` (one row per line, header first):

- ``summary.csv`` - metric, label, this_week, previous_week, delta, delta_pct
- ``by_tenant.csv``, ``by_model.csv``, ``by_prompt_version.csv``, ``by_endpoint.csv`` -
  the group value, then requests, cost_per_request_usd, cost_per_successful_request_usd,
  total_cost_usd, p95_ms, error_rate, cold_start_rate, throttle_rate, unpriced_requests,
  the same with a ``previous_`` prefix, and cost_per_request_delta_pct, total_cost_delta_usd
- ``daily.csv`` - day, endpoint, requests, p95_ms, cold_start_rate, throttle_rate,
  error_rate, cost_per_request_usd (this week)
- ``top_movers.csv`` - dimension, value, previous/current cost per request and total cost,
  their changes, status (new | gone | changed)
- ``economics.csv`` - ``runtime_economics`` of this week's load
- ``gpu_economics.csv`` - ``gpu_economics`` of the self-hosted models (only when there are some)
- ``plans.csv`` - per endpoint, every plan (stay, move, with/without the warm capacity its SLO
  needs): description, role (chosen / runner-up), monthly_cost_usd,
  monthly_cost_change_usd, projected_p95_ms, projected_cold_start_share, meets_slo, slo_ms
- ``recommendations.csv`` - kind, endpoint, runtime, tenant, title, confidence,
  confidence_label, monthly_cost_change_usd (< 0 saves), p95_gain_ms, plan, runner_up,
  evidence (JSON)
- ``drift.csv`` - the latest drift results (only when drift results exist)
- ``quality_*.csv`` - quality next to cost (only when the store has evaluations or
  retrieval spans; see ``analytics.quality``)
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from infermeter.analytics.economics._plans import EndpointDecision
from infermeter.analytics.economics._recommend import Recommendation

if TYPE_CHECKING:
    import duckdb
    import polars as pl
    from infermeter.analytics.economics._deployments import Deployments
    from infermeter.analytics.pricing._prices import PriceBook
    from infermeter.analytics.quality._section import QualitySection

__all__ = [
    "DIMENSIONS",
    "SUMMARY_METRICS",
    "WeeklyReport",
    "iso_week_bounds",
    "weekly_report",
]

DIMENSIONS: Final = ("tenant", "model", "prompt_version", "endpoint")

# metrics column -> (label, True when an increase is good).
SUMMARY_METRICS: Final[dict[str, tuple[str, bool]]] = {
    "requests": ("Requests", True),
    "total_cost_usd": ("Total cost (USD)", False),
    "cost_per_request_usd": ("Cost per request (USD)", False),
    "cost_per_successful_request_usd": ("Cost per successful request (USD)", False),
    "token_cost_usd": ("Token cost (USD)", False),
    "compute_cost_usd": ("Compute cost (USD)", False),
    "p95_ms": ("p95 latency (ms)", False),
    "p99_ms": ("p99 latency (ms)", False),
    "error_rate": ("Error rate", False),
    "cold_start_rate": ("Cold-start rate", False),
    "throttle_rate": ("Throttle rate", False),
    "unpriced_requests": ("Unpriced requests", False),
    "untokenized_requests": ("Untokenized requests", False),
}

_GROUP_METRICS: Final = (
    "requests",
    "cost_per_request_usd",
    "cost_per_successful_request_usd",
    "total_cost_usd",
    "p95_ms",
    "error_rate",
    "cold_start_rate",
    "throttle_rate",
    "unpriced_requests",
)
_DAILY_METRICS: Final = (
    "requests",
    "p95_ms",
    "cold_start_rate",
    "throttle_rate",
    "error_rate",
    "cost_per_request_usd",
)
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def iso_week_bounds(week: str) -> tuple[datetime, datetime]:
    """``"2026-W47"`` -> (Monday 00:00 UTC, next Monday 00:00 UTC), naive UTC like the store."""
    match = _WEEK.match(week.strip())
    if not match:
        raise ValueError(f"week {week!r}: expected YYYY-Www, e.g. 2026-W47")
    try:
        monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError:
        raise ValueError(f"week {week!r}: no such ISO week") from None
    start = datetime(monday.year, monday.month, monday.day)
    return start, start + timedelta(days=7)


def _iso_label(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class WeeklyReport:
    """Every table of one weekly report; ``write`` renders them (HTML, Markdown, CSV)."""

    week: str
    previous_week: str
    start: datetime
    end: datetime
    generated_at: datetime
    summary: pl.DataFrame
    by_dimension: dict[str, pl.DataFrame]
    daily: pl.DataFrame
    top_movers: pl.DataFrame
    economics: pl.DataFrame
    recommendations: list[Recommendation]
    # Per endpoint: every plan priced, the chosen one and the runner-up (``_plans``).
    plans: Sequence[EndpointDecision] = ()
    drift: pl.DataFrame | None = None
    quality: QualitySection | None = None
    slo_ms: float | None = None
    notes: list[str] = field(default_factory=list)
    # gpu_economics of the week's self-hosted models (None: there were none).
    gpu_economics: pl.DataFrame | None = None

    @property
    def has_data(self) -> bool:
        this_week = self.summary.filter(self.summary["metric"] == "requests")["this_week"]
        return bool(this_week.len() and (this_week[0] or 0) > 0)

    def write_html(self, path: str | Path) -> Path:
        """A self-contained page (plotly.js inlined once): opens offline, no CDN."""
        from infermeter.analytics.report._render import render_html

        target = Path(path)
        target.write_text(render_html(self), encoding="utf-8")
        return target

    def write_markdown(self, path: str | Path) -> Path:
        """Markdown for Slack or e-mail: headline numbers, movers, recommendations."""
        from infermeter.analytics.report._render import render_markdown

        target = Path(path)
        target.write_text(render_markdown(self), encoding="utf-8")
        return target

    def write_csv(self, directory: str | Path) -> list[Path]:
        """One CSV per table (see the module docstring for the files and columns)."""

        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        tables: dict[str, pl.DataFrame] = {
            "summary": self.summary,
            **{f"by_{name}": frame for name, frame in self.by_dimension.items()},
            "daily": self.daily,
            "top_movers": self.top_movers,
            "economics": self.economics,
            **({"gpu_economics": self.gpu_economics} if self.gpu_economics is not None else {}),
            "recommendations": _recommendations_frame(self.recommendations),
            "plans": _plans_frame(self.plans),
        }
        if self.drift is not None:
            tables["drift"] = self.drift
        if self.quality is not None:
            tables.update(self.quality.tables())
        written = []
        for name, frame in tables.items():
            target = folder / f"{name}.csv"
            _csv_safe(frame).write_csv(target)
            written.append(target)
        return written

    def write(self, directory: str | Path) -> dict[str, Path | list[Path]]:
        """Write ``report.html``, ``report.md`` and the CSV files into ``directory``."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"infermeter-{self.week}"
        return {
            "html": self.write_html(folder / f"{stem}.html"),
            "markdown": self.write_markdown(folder / f"{stem}.md"),
            "csv": self.write_csv(folder / f"{stem}-csv"),
        }


def _csv_safe(frame: pl.DataFrame) -> pl.DataFrame:
    import polars as pl
    from infermeter.analytics._text import csv_safe

    # CSV has no nested types; lists and structs become JSON text.
    nested = [name for name, dtype in frame.schema.items() if dtype.is_nested()]
    if nested:
        frame = frame.with_columns(
            pl.col(name).map_elements(lambda v: json.dumps(v, default=str), return_dtype=pl.String)
            for name in nested
        )
    return csv_safe(frame)


def _recommendations_frame(recommendations: Sequence[Recommendation]) -> pl.DataFrame:
    import polars as pl

    rows = [
        {
            "kind": r.kind,
            "endpoint": r.endpoint,
            "runtime": r.runtime,
            "tenant": r.tenant,
            "title": r.title,
            "confidence": r.confidence,
            "confidence_label": r.confidence_label,
            "monthly_cost_change_usd": r.monthly_cost_change_usd,
            "p95_gain_ms": r.p95_gain_ms,
            "plan": r.plan,
            "runner_up": r.runner_up,
            "rationale": r.rationale,
            "evidence": json.dumps(r.evidence, sort_keys=True),
        }
        for r in recommendations
    ]
    return pl.DataFrame(
        rows,
        schema={
            "kind": pl.String,
            "endpoint": pl.String,
            "runtime": pl.String,
            "tenant": pl.String,
            "title": pl.String,
            "confidence": pl.Float64,
            "confidence_label": pl.String,
            "monthly_cost_change_usd": pl.Float64,
            "p95_gain_ms": pl.Float64,
            "plan": pl.String,
            "runner_up": pl.String,
            "rationale": pl.String,
            "evidence": pl.String,
        },
    )


def _plans_frame(decisions: Sequence[EndpointDecision]) -> pl.DataFrame:
    import polars as pl

    rows = [
        {
            "endpoint": d.endpoint,
            "plan": p.kind,
            "description": p.description,
            "role": "chosen" if p is d.chosen else "runner-up" if p is d.runner_up else "",
            "monthly_cost_usd": p.monthly_cost_usd,
            "monthly_cost_change_usd": p.monthly_cost_change_usd,
            "projected_p95_ms": p.projected_p95_ms,
            "projected_cold_start_share": p.projected_cold_start_share,
            "meets_slo": p.meets_slo,
            "slo_ms": d.slo_ms,
        }
        for d in decisions
        for p in d.plans
    ]
    return pl.DataFrame(
        rows,
        schema={
            "endpoint": pl.String,
            "plan": pl.String,
            "description": pl.String,
            "role": pl.String,
            "monthly_cost_usd": pl.Float64,
            "monthly_cost_change_usd": pl.Float64,
            "projected_p95_ms": pl.Float64,
            "projected_cold_start_share": pl.Float64,
            "meets_slo": pl.Boolean,
            "slo_ms": pl.Float64,
        },
    )


def _between(requests: duckdb.DuckDBPyRelation, start: datetime, end: datetime) -> Any:
    import duckdb

    column = duckdb.ColumnExpression("start_time")
    return requests.filter(
        (column >= duckdb.ConstantExpression(start)) & (column < duckdb.ConstantExpression(end))
    )


def _first_row(frame: pl.DataFrame) -> dict[str, Any]:
    return frame.row(0, named=True) if frame.height else {}


def _summary(this: dict[str, Any], previous: dict[str, Any]) -> pl.DataFrame:
    import polars as pl

    rows = []
    # A week without requests has no numbers to compare with (its sums read 0, its counts 0):
    # no delta, so the headline says "no previous week" instead of "(better)".
    had_previous = bool(previous.get("requests"))
    for metric, (label, up_is_good) in SUMMARY_METRICS.items():
        now, before = this.get(metric), previous.get(metric) if had_previous else None
        delta = None if now is None or before is None else float(now) - float(before)
        pct = None if delta is None or not before else delta / abs(float(before))
        rows.append(
            {
                "metric": metric,
                "label": label,
                "this_week": None if now is None else float(now),
                "previous_week": None if before is None else float(before),
                "delta": delta,
                "delta_pct": pct,
                "increase_is_good": up_is_good,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "metric": pl.String,
            "label": pl.String,
            "this_week": pl.Float64,
            "previous_week": pl.Float64,
            "delta": pl.Float64,
            "delta_pct": pl.Float64,
            "increase_is_good": pl.Boolean,
        },
    )


def _by_dimension(this: pl.DataFrame, previous: pl.DataFrame, dimension: str) -> pl.DataFrame:
    import polars as pl

    keep = [dimension, *(c for c in _GROUP_METRICS if c in this.columns)]
    current = this.select(keep)
    before = previous.select(
        [dimension, *(pl.col(c).alias(f"previous_{c}") for c in keep[1:] if c in previous.columns)]
    )
    joined = current.join(before, on=dimension, how="full", coalesce=True, nulls_equal=True)
    return joined.with_columns(
        (pl.col("cost_per_request_usd") / pl.col("previous_cost_per_request_usd") - 1.0).alias(
            "cost_per_request_delta_pct"
        ),
        (
            pl.col("total_cost_usd").fill_null(0.0)
            - pl.col("previous_total_cost_usd").fill_null(0.0)
        ).alias("total_cost_delta_usd"),
    ).sort("total_cost_usd", descending=True, nulls_last=True)


def _top_movers(by_dimension: dict[str, pl.DataFrame], top: int) -> pl.DataFrame:
    import polars as pl

    frames = []
    for dimension, frame in by_dimension.items():
        frames.append(
            frame.select(
                pl.lit(dimension).alias("dimension"),
                pl.col(dimension).cast(pl.String).alias("value"),
                pl.col("previous_cost_per_request_usd"),
                pl.col("cost_per_request_usd"),
                pl.col("cost_per_request_delta_pct"),
                pl.col("previous_total_cost_usd"),
                pl.col("total_cost_usd"),
                pl.col("total_cost_delta_usd"),
                pl.when(pl.col("previous_requests").is_null())
                .then(pl.lit("new"))
                .when(pl.col("requests").is_null())
                .then(pl.lit("gone"))
                .otherwise(pl.lit("changed"))
                .alias("status"),
            )
        )
    movers = pl.concat(frames) if frames else pl.DataFrame()
    if movers.height == 0:
        return movers
    return (
        movers.filter(pl.col("total_cost_delta_usd").abs() > 0)
        .sort(pl.col("total_cost_delta_usd").abs(), descending=True)
        .head(top)
    )


def weekly_report(
    requests: duckdb.DuckDBPyRelation,
    *,
    week: str,
    prices: PriceBook,
    deployments: Deployments,
    drift: pl.DataFrame | None = None,
    quality: QualitySection | None = None,
    top: int = 5,
    generated_at: datetime | None = None,
    self_hosted: pl.DataFrame | None = None,
) -> WeeklyReport:
    """Compute the report of ISO ``week`` (``"2026-W47"``) from a request table.

    Week-over-week deltas compare it with the previous ISO week; recommendations and
    economics use this week's traffic only (a 7-day window). ``drift`` is the drift
    helper's ``read_drift_results`` frame, or None to leave the section out; ``quality``
    likewise (``analytics.quality.quality_section``), whose rollback advice joins
    the recommendations.
    ``self_hosted`` (``self_hosted_load`` of this week) adds the GPU economics and questions.
    """
    import polars as pl
    from infermeter.analytics import metrics
    from infermeter.analytics.economics._recommend import decide_from_frames
    from infermeter.analytics.economics._runtime import runtime_economics
    from infermeter.analytics.query._workloads import arrival_frame, version_frame, workload_frame

    start, end = iso_week_bounds(week)
    previous_start = start - timedelta(days=7)
    this_week = _between(requests, start, end)
    previous_week = _between(requests, previous_start, start)

    summary = _summary(_first_row(metrics(this_week)), _first_row(metrics(previous_week)))
    by_dimension = {
        dimension: _by_dimension(
            metrics(this_week, by=(dimension,)), metrics(previous_week, by=(dimension,)), dimension
        )
        for dimension in DIMENSIONS
    }
    daily_full = metrics(this_week, by=("endpoint",), bucket="1d")
    daily = daily_full.select(
        pl.col("bucket").alias("day"),
        "endpoint",
        *(c for c in _DAILY_METRICS if c in daily_full.columns),
    ).sort("day", "endpoint")
    gpu = None
    cpu_week = this_week
    if self_hosted is not None and self_hosted.height:
        from infermeter.analytics.economics._selfhost import gpu_economics, without_model_servers

        gpu = gpu_economics(self_hosted, prices=prices, deployments=deployments)
        cpu_week = without_model_servers(this_week, self_hosted)
    workloads = workload_frame(cpu_week)
    economics = runtime_economics(workloads, prices=prices, deployments=deployments)
    decisions = decide_from_frames(
        workloads,
        economics=economics,
        tenants=metrics(cpu_week, by=("endpoint", "runtime", "tenant")),
        versions=version_frame(_between(requests, previous_start, end)),
        gpu=gpu,
        arrivals=arrival_frame(this_week),
    )
    recommendations = decisions.recommendations
    if quality is not None:
        recommendations = [*quality.recommendations, *recommendations]
    slo = None
    if "slo_ms" in workloads.columns and workloads.height:
        slo_values = workloads["slo_ms"].drop_nulls().unique()
        slo = float(slo_values[0]) if slo_values.len() == 1 else None
    notes = []
    unpriced = summary.filter(pl.col("metric") == "unpriced_requests")["this_week"]
    if unpriced.len() and (unpriced[0] or 0) > 0:
        notes.append(
            f"{int(unpriced[0])} requests used models without a price; their token "
            "cost is unknown and left out of the cost figures."
        )
    if "foreign_spans" in this_week.columns:
        ((foreign, affected),) = this_week.aggregate(
            "coalesce(sum(foreign_spans), 0), count(*) FILTER (WHERE foreign_spans > 0)"
        ).fetchall()
        if foreign:
            notes.append(
                f"{int(foreign)} spans naming another tenant than their request's entry span "
                f"were left out of {int(affected)} requests (written into another tenant's "
                "trace); they change no tenant's figures."
            )
    untokenized = summary.filter(pl.col("metric") == "untokenized_requests")["this_week"]
    if untokenized.len() and (untokenized[0] or 0) > 0:
        notes.append(
            f"{int(untokenized[0])} requests made LLM calls that reported no token counts; "
            "their token cost is unknown and left out of the cost figures."
        )
    return WeeklyReport(
        week=_iso_label(start),
        previous_week=_iso_label(previous_start),
        start=start,
        end=end,
        generated_at=generated_at or datetime.now(UTC),
        summary=summary,
        by_dimension=by_dimension,
        daily=daily,
        top_movers=_top_movers(by_dimension, top),
        economics=economics,
        recommendations=recommendations,
        plans=decisions.endpoints,
        drift=drift,
        quality=quality,
        slo_ms=slo,
        notes=notes,
        gpu_economics=gpu,
    )
