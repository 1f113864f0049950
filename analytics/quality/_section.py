"""The quality section of the weekly report (and of ``infermeter quality``).

Per prompt version (and per tenant and prompt version): requests, cost per request, good
rate, cost per good answer and negative-feedback rate, this week against the previous
one; per evaluation name: mean score and pass rate; retrieval hit rate; rollouts with
their verdict (``rollback`` / ``cheaper_at_equal_quality``, see
``analytics.quality._rollout``) — the rollback advice also joins the report's
recommendations. Rules for each number are in ``analytics.quality._evaluations``.

CSV files (next to the report's own): ``quality_by_prompt_version.csv``,
``quality_by_tenant_prompt_version.csv``, ``quality_by_evaluation.csv``,
``quality_rollouts.csv``, ``quality_retrieval.csv``.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from infermeter.analytics.quality._evaluations import (
    judged_evaluations,
    quality_by_evaluation,
    quality_summary,
)

if TYPE_CHECKING:
    import duckdb
    import polars as pl
    from infermeter.analytics.economics._recommend import Recommendation

__all__ = ["QualitySection", "quality_html", "quality_markdown", "quality_section"]

_COMPARED = ("good_rate", "cost_per_good_answer_usd", "negative_feedback_rate")


@dataclass(frozen=True)
class QualitySection:
    by_prompt_version: pl.DataFrame
    by_tenant_prompt_version: pl.DataFrame
    by_evaluation: pl.DataFrame
    rollouts: pl.DataFrame | None
    retrieval: pl.DataFrame
    # top-k overlap of the same questions between consecutive prompt / index versions
    # (both weeks): compare="prompt_version" | "index_version"
    overlap: pl.DataFrame | None = None
    recommendations: list[Recommendation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def tables(self) -> dict[str, pl.DataFrame]:
        out = {
            "quality_by_prompt_version": self.by_prompt_version,
            "quality_by_tenant_prompt_version": self.by_tenant_prompt_version,
            "quality_by_evaluation": self.by_evaluation,
            "quality_retrieval": self.retrieval,
        }
        if self.overlap is not None:
            out["quality_topk_overlap"] = self.overlap
        if self.rollouts is not None:
            out["quality_rollouts"] = self.rollouts
        return out


def _week_over_week(this: pl.DataFrame, previous: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    import polars as pl

    renamed = previous.select(
        *keys, *(pl.col(c).alias(f"previous_{c}") for c in ("requests", *_COMPARED))
    )
    return this.join(renamed, on=keys, how="left", nulls_equal=True)


def quality_section(
    con: duckdb.DuckDBPyConnection,
    requests: duckdb.DuckDBPyRelation,
    evaluations: duckdb.DuckDBPyRelation,
    spans: duckdb.DuckDBPyRelation,
    *,
    start: datetime,
    end: datetime,
    previous_start: datetime,
) -> QualitySection | None:
    """The section for the week ``[start, end)`` against ``[previous_start, start)``;
    None when no evaluation or retrieval falls in either week."""
    import duckdb
    import polars as pl
    from infermeter.analytics.quality._retrieval import retrieval_metrics, retrievals

    column = duckdb.ColumnExpression("start_time")

    def between(relation: Any, low: datetime, high: datetime) -> Any:
        return relation.filter(
            (column >= duckdb.ConstantExpression(low)) & (column < duckdb.ConstantExpression(high))
        )

    this_requests = between(requests, start, end)
    previous_requests = between(requests, previous_start, start)
    judged = judged_evaluations(con, between(requests, previous_start, end), evaluations, spans)
    this_judged = judged.filter((pl.col("start_time") >= start) & (pl.col("start_time") < end))
    previous_judged = judged.filter(pl.col("start_time") < start)
    both_weeks = retrievals(between(spans, previous_start, end)).pl()
    found = both_weeks.filter((pl.col("start_time") >= start) & (pl.col("start_time") < end))
    if judged.is_empty() and found.is_empty():
        return None
    by_version = _week_over_week(
        quality_summary(this_judged, this_requests, by=["prompt_version"]),
        quality_summary(previous_judged, previous_requests, by=["prompt_version"]),
        ["prompt_version"],
    )
    by_tenant_version = _week_over_week(
        quality_summary(this_judged, this_requests, by=["tenant", "prompt_version"]),
        quality_summary(previous_judged, previous_requests, by=["tenant", "prompt_version"]),
        ["tenant", "prompt_version"],
    )
    notes: list[str] = []
    rollouts = None
    recommendations: list[Recommendation] = []
    try:
        from infermeter.analytics.quality._rollout import (
            quality_rollouts,
            rollout_recommendations,
        )

        # Rollouts compare versions over both weeks: a rollout often straddles Monday.
        rollouts = quality_rollouts(judged, between(requests, previous_start, end))
        recommendations = rollout_recommendations(rollouts)
    except ImportError as exc:
        notes.append(f"rollout tests need the 'drift' extra (scipy): {exc}")
    return QualitySection(
        by_prompt_version=by_version,
        by_tenant_prompt_version=by_tenant_version,
        by_evaluation=quality_by_evaluation(this_judged, by=["prompt_version"]),
        rollouts=rollouts,
        retrieval=retrieval_metrics(found, by=["prompt_version"]),
        overlap=_overlaps(both_weeks),
        recommendations=recommendations,
        notes=notes,
    )


def _overlaps(rows: pl.DataFrame) -> pl.DataFrame:
    import polars as pl
    from infermeter.analytics.quality._retrieval import topk_overlap

    frames = [
        topk_overlap(rows, compare=compare).select(pl.lit(compare).alias("compared"), pl.all())
        for compare in ("prompt_version", "index_version")
    ]
    return pl.concat(frames)


def _fmt(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if kind == "usd":
        return f"${float(value):.6f}"
    if kind == "rate":
        return f"{float(value):.1%}"
    if kind == "num":
        return f"{float(value):.3f}"
    if kind == "p":
        return f"{float(value):.2g}"
    return html.escape(str(value))


_VERSION_COLUMNS = (
    ("prompt_version", "prompt version", "text"),
    ("requests", "requests", "text"),
    ("cost_per_request_usd", "cost/request", "usd"),
    ("good_rate", "good rate", "rate"),
    ("previous_good_rate", "good rate (prev. week)", "rate"),
    ("cost_per_good_answer_usd", "cost per good answer", "usd"),
    ("previous_cost_per_good_answer_usd", "cost per good answer (prev.)", "usd"),
    ("negative_feedback_rate", "negative feedback", "rate"),
)
_ROLLOUT_COLUMNS = (
    ("tenant", "tenant", "text"),
    ("name", "evaluation", "text"),
    ("baseline", "from", "text"),
    ("candidate", "to", "text"),
    ("baseline_mean", "mean before", "num"),
    ("candidate_mean", "mean after", "num"),
    ("p_value", "p (one-sided)", "p"),
    ("baseline_cost_per_request_usd", "cost/request before", "usd"),
    ("candidate_cost_per_request_usd", "cost/request after", "usd"),
    ("verdict", "verdict", "text"),
)


def _html_table(frame: pl.DataFrame, columns: tuple[tuple[str, str, str], ...]) -> str:
    present = [c for c in columns if c[0] in frame.columns]
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in present)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(row[name], kind)}</td>" for name, _, kind in present) + "</tr>"
        for row in frame.iter_rows(named=True)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def quality_html(section: QualitySection) -> str:
    """The report's "Quality" section (HTML, values escaped)."""
    parts = [
        '<h2 id="quality">Quality next to cost</h2>',
        "<p>Good answer: a judged request that did not fail and passed every evaluation; "
        "cost per good answer = cost per request / good rate.</p>",
        "<h3>By prompt version</h3>",
        _html_table(section.by_prompt_version, _VERSION_COLUMNS),
        "<h3>By tenant and prompt version</h3>",
        _html_table(
            section.by_tenant_prompt_version,
            (("tenant", "tenant", "text"), *_VERSION_COLUMNS),
        ),
    ]
    if section.rollouts is not None and section.rollouts.height:
        parts += ["<h3>Rollouts</h3>", _html_table(section.rollouts, _ROLLOUT_COLUMNS)]
    if section.retrieval.height:
        parts += [
            "<h3>Retrieval</h3>",
            _html_table(
                section.retrieval,
                (
                    ("prompt_version", "prompt version", "text"),
                    ("retrievals", "retrievals", "text"),
                    ("mean_docs_returned", "docs returned", "num"),
                    ("mean_top_score", "top score", "num"),
                    ("hit_rate", "hit rate", "rate"),
                ),
            ),
        ]
    if section.overlap is not None and section.overlap.height:
        parts += [
            "<h3>Top-k overlap of the same questions</h3>",
            _html_table(
                section.overlap,
                (
                    ("compared", "compared", "text"),
                    ("baseline", "from", "text"),
                    ("candidate", "to", "text"),
                    ("queries", "questions", "text"),
                    ("mean_jaccard", "Jaccard", "num"),
                    ("mean_rbo", "rank-biased overlap", "num"),
                ),
            ),
        ]
    parts += [f"<p class='note'>{html.escape(note)}</p>" for note in section.notes]
    return "\n".join(parts)


def quality_markdown(section: QualitySection) -> list[str]:
    """Markdown lines of the section."""
    lines = ["", "**Quality next to cost** (per prompt version, this week vs previous)"]
    for row in section.by_prompt_version.iter_rows(named=True):
        if not row["judged_requests"] and not row.get("previous_requests"):
            continue
        lines.append(
            f"- prompt `{row['prompt_version']}`: {row['requests']} requests, cost/request "
            f"{_fmt(row['cost_per_request_usd'], 'usd')}, good rate "
            f"{_fmt(row['good_rate'], 'rate')}"
            f" (prev. {_fmt(row.get('previous_good_rate'), 'rate')}), cost per good answer "
            f"{_fmt(row['cost_per_good_answer_usd'], 'usd')}, negative feedback "
            f"{_fmt(row['negative_feedback_rate'], 'rate')}"
        )
    for row in section.by_tenant_prompt_version.iter_rows(named=True):
        if not row["judged_requests"]:
            continue  # nothing judged (e.g. an endpoint without evaluations)
        lines.append(
            f"  - tenant `{row['tenant']}` / `{row['prompt_version']}`: good rate "
            f"{_fmt(row['good_rate'], 'rate')}, cost per good answer "
            f"{_fmt(row['cost_per_good_answer_usd'], 'usd')}"
        )
    if section.rollouts is not None:
        for row in section.rollouts.iter_rows(named=True):
            if row["verdict"] in {"rollback", "cheaper_at_equal_quality"}:
                lines.append(
                    f"- **{row['verdict']}** tenant `{row['tenant']}` {row['name']}: "
                    f"`{row['baseline']}` {_fmt(row['baseline_mean'], 'num')} -> "
                    f"`{row['candidate']}` {_fmt(row['candidate_mean'], 'num')} "
                    f"(p={_fmt(row['p_value'], 'p')})"
                )
    for row in section.retrieval.iter_rows(named=True):
        lines.append(
            f"- retrieval `{row['prompt_version']}`: hit rate {_fmt(row['hit_rate'], 'rate')}"
            f" over {row['labelled']} labelled retrievals"
        )
    if section.overlap is not None:
        for row in section.overlap.iter_rows(named=True):
            lines.append(
                f"- top-k overlap ({row['compared']}) `{row['baseline']}` -> "
                f"`{row['candidate']}` over {row['queries']} questions: Jaccard "
                f"{_fmt(row['mean_jaccard'], 'num')}, RBO {_fmt(row['mean_rbo'], 'num')}"
            )
    lines.extend(f"> {note}" for note in section.notes)
    return lines
