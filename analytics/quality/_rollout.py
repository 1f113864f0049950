"""Rollback advice: did a prompt/model rollout make answers worse, whatever it saves?

For each group (default: tenant and evaluation name) the versions (default:
``prompt_version``) are ordered by when they first served a judged request, and each
version is compared with the one before it:

- value of one result: its score, else its verdict as 1/0 (label-only evaluations);
- test: one-sided Mann-Whitney U (scipy), H1 "the new version's values are lower" —
  rank-based, so it suits bounded, skewed or ordinal scores; ``alpha`` 0.05;
- at least ``min_samples`` (30) results on each side, else ``insufficient_data``.

Verdicts: ``rollback`` — significantly lower (even when the new version is cheaper; the
evidence says so); ``cheaper_at_equal_quality`` — no significant drop and a lower cost
per request (a win: quality held, cost fell); ``ok`` otherwise. The confidence of a
rollback is ``1 - p``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from infermeter.analytics.query._buckets import check_group_columns

if TYPE_CHECKING:
    import duckdb
    import polars as pl
    from infermeter.analytics.economics._recommend import Recommendation

__all__ = ["ROLLOUT_COLUMNS", "RolloutThresholds", "quality_rollouts", "rollout_recommendations"]


@dataclass(frozen=True)
class RolloutThresholds:
    """When a quality drop is called (defaults documented in the module docstring)."""

    alpha: float = 0.05
    min_samples: int = 30


ROLLOUT_COLUMNS: Final = (
    "name",
    "baseline",
    "candidate",
    "baseline_n",
    "candidate_n",
    "baseline_mean",
    "candidate_mean",
    "p_value",
    "baseline_cost_per_request_usd",
    "candidate_cost_per_request_usd",
    "verdict",
)


def _version_costs(
    requests: duckdb.DuckDBPyRelation, keys: Sequence[str], version: str
) -> dict[tuple[Any, ...], float]:
    group = [*keys, version]
    rows = requests.aggregate(
        ", ".join(
            [*group, "avg(token_cost_usd + coalesce(compute_cost_usd, 0)) AS cost_per_request"]
        ),
        ", ".join(group),
    ).fetchall()
    return {tuple(row[:-1]): row[-1] for row in rows if row[-1] is not None}


def quality_rollouts(
    judged: pl.DataFrame,
    requests: duckdb.DuckDBPyRelation | None = None,
    *,
    by: Sequence[str] = ("tenant",),
    version: str = "prompt_version",
    thresholds: RolloutThresholds = RolloutThresholds(),
) -> pl.DataFrame:
    """One row per (group, evaluation name, consecutive version pair): ``*by`` and
    ``ROLLOUT_COLUMNS`` (costs from ``requests`` when given). ``judged`` comes from
    :func:`~infermeter.analytics.quality._evaluations.judged_evaluations`."""
    import polars as pl
    from scipy.stats import mannwhitneyu

    keys = check_group_columns(by)
    check_group_columns([version])
    costs = _version_costs(requests, keys, version) if requests is not None else {}
    values = judged.with_columns(
        pl.coalesce(pl.col("score_value"), pl.col("passed").cast(pl.Float64)).alias("value")
    ).filter(pl.col("value").is_not_null() & pl.col(version).is_not_null())
    rows: list[dict[str, Any]] = []
    for group_key, group in values.group_by([*keys, "name"], maintain_order=True):
        group_values = dict(zip([*keys, "name"], group_key, strict=True))
        order = (
            group.group_by(version)
            .agg(pl.col("start_time").min().alias("first"))
            .sort("first")[version]
            .to_list()
        )
        for baseline, candidate in itertools.pairwise(order):
            before = group.filter(pl.col(version) == baseline)["value"].to_numpy()
            after = group.filter(pl.col(version) == candidate)["value"].to_numpy()
            key = tuple(group_values[k] for k in keys)
            row: dict[str, Any] = {
                **group_values,
                "baseline": baseline,
                "candidate": candidate,
                "baseline_n": len(before),
                "candidate_n": len(after),
                "baseline_mean": float(before.mean()),
                "candidate_mean": float(after.mean()),
                "p_value": None,
                "baseline_cost_per_request_usd": costs.get((*key, baseline)),
                "candidate_cost_per_request_usd": costs.get((*key, candidate)),
            }
            if min(len(before), len(after)) < thresholds.min_samples:
                row["verdict"] = "insufficient_data"
            else:
                p = float(mannwhitneyu(after, before, alternative="less").pvalue)
                row["p_value"] = p
                cheaper = (
                    row["candidate_cost_per_request_usd"] is not None
                    and row["baseline_cost_per_request_usd"] is not None
                    and row["candidate_cost_per_request_usd"] < row["baseline_cost_per_request_usd"]
                )
                if p < thresholds.alpha:
                    row["verdict"] = "rollback"
                elif cheaper:
                    row["verdict"] = "cheaper_at_equal_quality"
                else:
                    row["verdict"] = "ok"
            rows.append(row)
    schema: dict[str, Any] = {
        **{k: pl.String for k in keys},
        "name": pl.String,
        "baseline": pl.String,
        "candidate": pl.String,
        "baseline_n": pl.Int64,
        "candidate_n": pl.Int64,
        "baseline_mean": pl.Float64,
        "candidate_mean": pl.Float64,
        "p_value": pl.Float64,
        "baseline_cost_per_request_usd": pl.Float64,
        "candidate_cost_per_request_usd": pl.Float64,
        "verdict": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def _money(value: Any) -> str:
    return "?" if value is None else f"${float(value):.6f}"


def rollout_recommendations(
    rollouts: pl.DataFrame, *, version: str = "prompt_version"
) -> list[Recommendation]:
    """``rollback`` and ``cheaper_at_equal_quality`` recommendations from
    :func:`quality_rollouts` rows, with the test's numbers as evidence."""
    from infermeter.analytics.economics._recommend import Recommendation, confidence_label

    found: list[Recommendation] = []
    for row in rollouts.iter_rows(named=True):
        verdict = row["verdict"]
        if verdict not in {"rollback", "cheaper_at_equal_quality"}:
            continue
        tenant = row.get("tenant")
        where = f" for tenant {tenant}" if tenant is not None else ""
        label = version.replace("_", " ")
        before_cost = row["baseline_cost_per_request_usd"]
        after_cost = row["candidate_cost_per_request_usd"]
        evidence: dict[str, float | str] = {
            "evaluation": str(row["name"]),
            "baseline": str(row["baseline"]),
            "candidate": str(row["candidate"]),
            "baseline_mean": round(float(row["baseline_mean"]), 6),
            "candidate_mean": round(float(row["candidate_mean"]), 6),
            "baseline_n": float(row["baseline_n"]),
            "candidate_n": float(row["candidate_n"]),
            "p_value": float(row["p_value"]),
            "test": "Mann-Whitney U, one-sided (candidate lower)",
        }
        if before_cost is not None:
            evidence["baseline_cost_per_request_usd"] = float(before_cost)
        if after_cost is not None:
            evidence["candidate_cost_per_request_usd"] = float(after_cost)
        costs = f"cost per request {_money(before_cost)} → {_money(after_cost)}"
        if verdict == "rollback":
            cheaper = (
                before_cost is not None and after_cost is not None and after_cost < before_cost
            )
            value = round(1.0 - float(row["p_value"]), 3)
            found.append(
                Recommendation(
                    kind="rollback",
                    endpoint=row.get("endpoint"),
                    runtime=None,
                    tenant=tenant,
                    title=(
                        f"Roll back {label} {row['candidate']} to {row['baseline']}{where}: "
                        f"{row['name']} dropped"
                    ),
                    rationale=(
                        f"{row['name']} fell from {row['baseline_mean']:.3f} "
                        f"(n={row['baseline_n']}) to {row['candidate_mean']:.3f} "
                        f"(n={row['candidate_n']}), one-sided Mann-Whitney p="
                        f"{row['p_value']:.2g}; {costs}"
                        + (" — cheaper, but worse answers are not a saving." if cheaper else ".")
                    ),
                    evidence=evidence,
                    confidence=value,
                    confidence_label=confidence_label(value),
                )
            )
        else:
            found.append(
                Recommendation(
                    kind="cheaper_at_equal_quality",
                    endpoint=row.get("endpoint"),
                    runtime=None,
                    tenant=tenant,
                    title=(
                        f"{label.capitalize()} {row['candidate']}{where} is cheaper at equal "
                        f"{row['name']}"
                    ),
                    rationale=(
                        f"{costs}; {row['name']} {row['baseline_mean']:.3f} → "
                        f"{row['candidate_mean']:.3f} with no significant drop (p="
                        f"{row['p_value']:.2g}). Keep it."
                    ),
                    evidence=evidence,
                    confidence=0.5,
                    confidence_label=confidence_label(0.5),
                )
            )
    return found
