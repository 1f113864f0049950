"""Quality next to cost: evaluation results joined to the requests they judge.

Evaluations come from the store's ``evaluations`` table (GenAI ``gen_ai.evaluation.result``
events, however they arrived); ``query/sql/quality_judged.sql`` links each to its request (see
the rules there). From that, per tenant / model / prompt version / endpoint:

- per evaluation name: results, mean score, pass rate (of results with a verdict);
- per group: requests, cost, judged requests, good requests, good rate, negative-feedback
  rate and **cost per good answer**.

Verdict of one result (``passed``): its label when the label is a known positive or
negative word (``POSITIVE_LABELS`` / ``NEGATIVE_LABELS``, case-insensitive), else its score
— ``user_feedback`` scores pass when > 0 (thumbs are ±1), other scores when
``>= PASS_THRESHOLD`` (0.5: scores in [0, 1]) — else none (the result still counts in the
mean score).

**Good answer** (the rule): a judged request — one with at least one verdict — that did
not fail and whose verdicts all pass. Evaluators usually judge a sample, so
``good_rate = good / judged`` is the sample's estimate and
``cost_per_good_answer = cost_per_request / good_rate`` (all requests' cost, the sampled
good rate); when every request is judged that is exactly total cost ÷ good requests.
A failed request (``is_error``) that was judged counts as judged and not good.

An evaluation that carries a tenant (its ingest token pinned one) only links to that
tenant's requests.

**Negative-feedback rate**: among requests with ``user_feedback``, the share with at
least one negative one (score < 0 or a negative label).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from infermeter.agent.semconv import USER_FEEDBACK
from infermeter.analytics.query._bind import sql_over
from infermeter.analytics.query._buckets import check_group_columns
from infermeter.analytics.query._queries import sql_file

if TYPE_CHECKING:
    import duckdb
    import polars as pl

__all__ = [
    "NEGATIVE_LABELS",
    "PASS_THRESHOLD",
    "POSITIVE_LABELS",
    "judged_evaluations",
    "quality_by_evaluation",
    "quality_summary",
]

POSITIVE_LABELS: Final = frozenset(
    {
        "pass",
        "passed",
        "correct",
        "relevant",
        "good",
        "helpful",
        "faithful",
        "grounded",
        "yes",
        "true",
        "thumbs_up",
        "positive",
    }
)
NEGATIVE_LABELS: Final = frozenset(
    {
        "fail",
        "failed",
        "incorrect",
        "not_relevant",
        "irrelevant",
        "bad",
        "unhelpful",
        "not_faithful",
        "hallucination",
        "hallucinated",
        "ungrounded",
        "no",
        "false",
        "thumbs_down",
        "negative",
    }
)
PASS_THRESHOLD: Final = 0.5


def judged_evaluations(
    con: duckdb.DuckDBPyConnection,
    requests: duckdb.DuckDBPyRelation,
    evaluations: duckdb.DuckDBPyRelation,
    spans: duckdb.DuckDBPyRelation,
) -> pl.DataFrame:
    """One row per evaluation linked to its request (``requests``: a request table;
    ``evaluations`` / ``spans``: the store's tables or relations with their columns):
    ``trace_id, request_span_id, start_time, tenant, model, prompt_name, prompt_version,
    endpoint, runtime, provider, is_error, cost_usd, name, score_value, score_label, source,
    evaluated_at, passed, negative``."""
    import polars as pl

    frame: pl.DataFrame = sql_over(
        con,
        sql_file("quality_judged"),
        im_requests=requests,
        im_evaluations=evaluations,
        im_spans=spans.select("trace_id", "attributes"),
    ).pl()
    label = pl.col("score_label").str.to_lowercase()
    feedback = pl.col("name") == USER_FEEDBACK
    passed = (
        pl.when(label.is_in(sorted(POSITIVE_LABELS)))
        .then(True)
        .when(label.is_in(sorted(NEGATIVE_LABELS)))
        .then(False)
        .when(pl.col("score_value").is_not_null() & feedback)
        .then(pl.col("score_value") > 0)
        .when(pl.col("score_value").is_not_null())
        .then(pl.col("score_value") >= PASS_THRESHOLD)
        .otherwise(None)
    )
    negative = feedback & (
        label.is_in(sorted(NEGATIVE_LABELS)).fill_null(False)
        | (pl.col("score_value") < 0).fill_null(False)
    )
    return frame.with_columns(passed.alias("passed"), negative.alias("negative"))


def quality_by_evaluation(judged: pl.DataFrame, *, by: Sequence[str] = ()) -> pl.DataFrame:
    """Per group and evaluation name: ``results, requests, mean_score, scored, passes,
    verdicts, pass_rate`` (pass rate over results with a verdict)."""
    import polars as pl

    keys = [*check_group_columns(by), "name"]
    return (
        judged.group_by(keys)
        .agg(
            pl.len().alias("results"),
            pl.col("request_span_id").n_unique().alias("requests"),
            pl.col("score_value").mean().alias("mean_score"),
            pl.col("score_value").count().alias("scored"),
            pl.col("passed").sum().alias("passes"),
            pl.col("passed").count().alias("verdicts"),
        )
        .with_columns(
            pl.when(pl.col("verdicts") > 0)
            .then(pl.col("passes") / pl.col("verdicts"))
            .otherwise(None)
            .alias("pass_rate")
        )
        .sort(keys, nulls_last=True)
    )


def quality_summary(
    judged: pl.DataFrame, requests: duckdb.DuckDBPyRelation, *, by: Sequence[str] = ()
) -> pl.DataFrame:
    """Per group: ``requests, total_cost_usd, cost_per_request_usd, judged_requests,
    good_requests, good_rate, cost_per_good_answer_usd, feedback_requests,
    negative_feedback_rate`` (rules in the module docstring)."""
    import polars as pl

    keys = check_group_columns(by)
    key_sql = ", ".join(keys)
    cost = requests.aggregate(
        ", ".join(
            [
                *keys,
                "count(*) AS requests",
                "sum(token_cost_usd + coalesce(compute_cost_usd, 0)) AS total_cost_usd",
            ]
        ),
        key_sql,
    ).pl()
    if cost.is_empty():
        cost = pl.DataFrame(
            schema={
                **{k: pl.String for k in keys},
                "requests": pl.Int64,
                "total_cost_usd": pl.Float64,
            }
        )
    per_request = judged.group_by([*keys, "request_span_id"]).agg(
        pl.col("is_error").first().alias("is_error"),
        pl.col("passed").count().alias("verdicts"),
        pl.col("passed").all().alias("all_pass"),
        (pl.col("name") == USER_FEEDBACK).any().alias("has_feedback"),
        pl.col("negative").any().alias("has_negative"),
    )
    judged_requests = per_request.filter(pl.col("verdicts") > 0)
    good = (
        judged_requests.group_by(keys).agg(
            pl.len().alias("judged_requests"),
            (pl.col("all_pass") & ~pl.col("is_error").fill_null(False))
            .sum()
            .alias("good_requests"),
        )
        if keys
        else judged_requests.select(
            pl.len().alias("judged_requests"),
            (pl.col("all_pass") & ~pl.col("is_error").fill_null(False))
            .sum()
            .alias("good_requests"),
        )
    )
    feedback = per_request.filter(pl.col("has_feedback"))
    negatives = (
        feedback.group_by(keys).agg(
            pl.len().alias("feedback_requests"),
            pl.col("has_negative").sum().alias("negative_requests"),
        )
        if keys
        else feedback.select(
            pl.len().alias("feedback_requests"),
            pl.col("has_negative").sum().alias("negative_requests"),
        )
    )
    if keys:
        out = cost.join(good, on=keys, how="left", nulls_equal=True).join(
            negatives, on=keys, how="left", nulls_equal=True
        )
    else:
        out = pl.concat([cost, good, negatives], how="horizontal")
    out = out.with_columns(
        pl.col("judged_requests").fill_null(0),
        pl.col("good_requests").fill_null(0),
        pl.col("feedback_requests").fill_null(0),
        pl.col("negative_requests").fill_null(0),
    ).with_columns(
        (pl.col("total_cost_usd") / pl.col("requests")).alias("cost_per_request_usd"),
        pl.when(pl.col("judged_requests") > 0)
        .then(pl.col("good_requests") / pl.col("judged_requests"))
        .otherwise(None)
        .alias("good_rate"),
        pl.when(pl.col("feedback_requests") > 0)
        .then(pl.col("negative_requests") / pl.col("feedback_requests"))
        .otherwise(None)
        .alias("negative_feedback_rate"),
    )
    out = out.with_columns(
        pl.when(pl.col("good_rate") > 0)
        .then(pl.col("cost_per_request_usd") / pl.col("good_rate"))
        .otherwise(None)
        .alias("cost_per_good_answer_usd")
    )
    columns = [
        *keys,
        "requests",
        "total_cost_usd",
        "cost_per_request_usd",
        "judged_requests",
        "good_requests",
        "good_rate",
        "cost_per_good_answer_usd",
        "feedback_requests",
        "negative_feedback_rate",
    ]
    result: pl.DataFrame = out.select(columns)
    return result.sort(keys, nulls_last=True) if keys else result
