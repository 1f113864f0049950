"""Pilot comparison: two slices of the same workload side by side, and a scoring matrix.

A slice is a filter such as ``runtime=serverless`` or ``prompt_version=v2`` (optionally
within one endpoint). Each slice is reduced to one metrics row (``metrics`` with no
grouping); the matrix then scores each side 1-5 on the decision criteria with explicit,
documented bins, so a reader can recompute every score from the numbers shown next to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from infermeter.agent.semconv import (
    RUNTIME_CONTAINER,
    RUNTIME_SERVERLESS,
    RUNTIME_SERVERLESS_CONTAINER,
    RUNTIME_UNKNOWN,
)
from infermeter.agent.settings import read_config_file
from infermeter.analytics._values import number

if TYPE_CHECKING:
    import duckdb
    import polars as pl

__all__ = [
    "COLD_START_BINS",
    "CRITERIA",
    "DEFAULT_SIMPLICITY",
    "DEFAULT_WEIGHTS",
    "ERROR_RATE_BINS",
    "GOOD_RATE_BINS",
    "LATENCY_SLO_BINS",
    "SELECTABLE_COLUMNS",
    "SIDE_METRICS",
    "THROTTLE_RATE_BINS",
    "Comparison",
    "compare",
    "load_weights",
    "matrix_winner",
    "parse_selection",
    "parse_weights",
    "score_matrix",
]

# Criterion name -> what it judges (shown in the matrix).
CRITERIA: Final[dict[str, str]] = {
    "latency_slo": "meets the latency SLO (p95, with warm capacity when cold starts cause it)",
    "cost": "cost per successful request at the measured utilization",
    "scaling": "scales to peak without throttling (throttle rate)",
    "cold_starts": "cold-start exposure (share of requests that were cold)",
    "reliability": "error rate",
    "simplicity": "operational simplicity of the runtime",
    # issue 16: a cheaper side that answers worse must not win on cost alone
    "quality": "good answers among judged requests (evaluations and user feedback)",
}

DEFAULT_WEIGHTS: Final[dict[str, float]] = {
    "latency_slo": 0.30,
    "cost": 0.30,
    "scaling": 0.15,
    "cold_starts": 0.10,
    "reliability": 0.10,
    "simplicity": 0.05,
    # Left out of the total (weight redistributed) when no side has judged requests.
    "quality": 0.30,
}

# Upper bounds (inclusive) for scores 5, 4, 3, 2; anything above the last scores 1.
# p95 (after mitigation) divided by the SLO:
LATENCY_SLO_BINS: Final = (0.8, 1.0, 1.25, 1.5)
THROTTLE_RATE_BINS: Final = (0.0, 0.001, 0.01, 0.05)
COLD_START_BINS: Final = (0.001, 0.01, 0.05, 0.20)
ERROR_RATE_BINS: Final = (0.001, 0.01, 0.02, 0.05)
# Lower bounds (inclusive) of the good-answer rate for scores 5, 4, 3, 2; below scores 1.
GOOD_RATE_BINS: Final = (0.95, 0.90, 0.80, 0.60)

# A judgement, not a measurement: who patches, scales and keeps instances healthy. Override
# it in the weights file ([simplicity] table) when your platform team sees it differently.
DEFAULT_SIMPLICITY: Final[dict[str, float]] = {
    RUNTIME_SERVERLESS: 5.0,
    RUNTIME_SERVERLESS_CONTAINER: 4.0,
    RUNTIME_CONTAINER: 3.0,
    RUNTIME_UNKNOWN: 3.0,
}

# A side whose cost is this many times the cheaper one's scores 1 on cost.
_COST_RATIO_FOR_WORST = 2.0
# Cold starts above the p95's 5 % tail decide the p95 (COMPUTE.md); warm capacity removes them.
_COLD_SHARE_DRIVING_P95 = 0.05
_TIE_MARGIN = 0.05

SELECTABLE_COLUMNS: Final = (
    "tenant",
    "model",
    "prompt_version",
    "prompt_name",
    "endpoint",
    "runtime",
    "provider",
    "platform",
    "service_name",
)

# The side-by-side rows: metrics column -> label.
SIDE_METRICS: Final[dict[str, str]] = {
    "requests": "requests",
    "p50_ms": "p50 (ms)",
    "p95_ms": "p95 (ms)",
    "p99_ms": "p99 (ms)",
    "slo_ms": "SLO (ms)",
    "slo_breach_rate": "SLO breach rate",
    "cold_start_rate": "cold-start share",
    "cold_start_penalty_ms": "cold-start p95 penalty (ms)",
    "warm_p95_ms": "warm p95 (ms)",
    "throttle_events": "throttle events",
    "throttle_rate": "throttle rate",
    "error_rate": "error rate",
    "cost_per_request_usd": "cost per request (USD)",
    "cost_per_successful_request_usd": "cost per successful request (USD)",
    "total_cost_usd": "total cost (USD)",
    "good_rate": "good-answer rate (judged requests)",
    "cost_per_good_answer_usd": "cost per good answer (USD)",
}


def _binned(value: float | None, bins: Sequence[float]) -> float | None:
    if value is None or math.isnan(value):
        return None
    for score, bound in zip((5, 4, 3, 2), bins, strict=True):
        if value <= bound:
            return float(score)
    return 1.0


def _mitigated_p95(row: Mapping[str, Any]) -> tuple[float | None, str]:
    p95 = number(row, "p95_ms")
    # Replayed: the slice's arrivals with every environment kept warm (``_replay``).
    warm = number(row, "mitigated_p95_ms")
    basis = "replayed p95 with warm capacity"
    if warm is None:
        warm, basis = number(row, "warm_p95_ms"), "warm p95"
    cold_rate = number(row, "cold_start_rate") or 0.0
    if p95 is not None and warm is not None and cold_rate > _COLD_SHARE_DRIVING_P95:
        return min(p95, warm), f"{basis} (cold starts drive p95; warm capacity removes them)"
    return p95, "p95"


def _replayed_warm_p95(requests: duckdb.DuckDBPyRelation) -> float | None:
    """p95 of a slice's measured arrivals replayed with enough warm capacity for its peak
    (no cold start left, lazy first calls shed): what warm capacity can deliver."""
    from infermeter.analytics.economics._plans import arrivals_by_workload, merge_arrivals
    from infermeter.analytics.economics._replay import replay_serverless
    from infermeter.analytics.query import arrival_frame

    parts = list(arrivals_by_workload(arrival_frame(requests)).values())
    if not parts:
        return None
    merged = merge_arrivals(parts, parts[0].init_estimate_ms)
    peak = int(merged.levels().max())
    return replay_serverless(merged, warm_units=peak, keep_alive_s=0.0).p95_ms


def _latency_score(row: Mapping[str, Any]) -> tuple[float | None, str]:
    p95, basis = _mitigated_p95(row)
    slo = number(row, "slo_ms")
    if p95 is None or slo is None or slo <= 0:
        return None, "no p95 or SLO"
    ratio = p95 / slo
    return _binned(ratio, LATENCY_SLO_BINS), f"{basis} {p95:.0f} ms = {ratio:.2f} x SLO {slo:.0f}"


def _cost_scores(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[float | None, str]]:
    costs = [
        number(a, "cost_per_successful_request_usd"),
        number(b, "cost_per_successful_request_usd"),
    ]
    bases = [
        "cost unknown (unpriced or no successful request)"
        if c is None
        else f"${c:.6f}/successful request"
        for c in costs
    ]
    if costs[0] is None or costs[1] is None:
        return [(None, basis) for basis in bases]
    cheapest = min(costs[0], costs[1])

    def score(cost: float) -> float:
        if cheapest <= 0:
            return 5.0 if cost <= 0 else 1.0
        excess = (cost / cheapest - 1.0) / (_COST_RATIO_FOR_WORST - 1.0)
        return round(5.0 - 4.0 * min(1.0, excess), 2)

    return [(score(costs[0]), bases[0]), (score(costs[1]), bases[1])]


def _rate_score(
    row: Mapping[str, Any], key: str, bins: Sequence[float], noun: str
) -> tuple[float | None, str]:
    value = number(row, key)
    if value is None:
        return None, f"no {noun} data"
    return _binned(value, bins), f"{noun} {value:.2%}"


def _quality_score(row: Mapping[str, Any]) -> tuple[float | None, str]:
    rate = number(row, "good_rate")
    if rate is None:
        return None, "no judged requests"
    judged = int(number(row, "judged_requests") or 0)
    for score, bound in zip((5.0, 4.0, 3.0, 2.0), GOOD_RATE_BINS, strict=True):
        if rate >= bound:
            return score, f"good {rate:.1%} of {judged:,} judged"
    return 1.0, f"good {rate:.1%} of {judged:,} judged"


def _simplicity_score(
    row: Mapping[str, Any], simplicity: Mapping[str, float]
) -> tuple[float | None, str]:
    runtime = str(row.get("runtime") or RUNTIME_UNKNOWN)
    return simplicity.get(runtime, simplicity.get(RUNTIME_UNKNOWN)), f"runtime {runtime}"


def score_matrix(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    *,
    weights: Mapping[str, float] | None = None,
    simplicity: Mapping[str, float] | None = None,
) -> pl.DataFrame:
    """Score two metric rows 1-5 per criterion; pure.

    Returns one row per criterion (``criterion, description, weight, a_score, b_score,
    a_basis, b_basis``) followed by a ``weighted_total`` row. A criterion neither side has
    data for is left out of the totals (its weight is redistributed), so a missing number
    never counts as a good or bad score.
    """
    import polars as pl

    chosen = _validated_weights(weights)
    simplicity_table = {**DEFAULT_SIMPLICITY, **(simplicity or {})}
    scorers: dict[str, Callable[[Mapping[str, Any]], tuple[float | None, str]]] = {
        "latency_slo": _latency_score,
        "scaling": lambda r: _rate_score(r, "throttle_rate", THROTTLE_RATE_BINS, "throttled"),
        "cold_starts": lambda r: _rate_score(r, "cold_start_rate", COLD_START_BINS, "cold"),
        "reliability": lambda r: _rate_score(r, "error_rate", ERROR_RATE_BINS, "errors"),
        "simplicity": lambda r: _simplicity_score(r, simplicity_table),
        "quality": _quality_score,
    }
    rows: list[dict[str, Any]] = []
    for criterion, description in CRITERIA.items():
        if criterion == "cost":
            (a_score, a_basis), (b_score, b_basis) = _cost_scores(a, b)
        else:
            a_score, a_basis = scorers[criterion](a)
            b_score, b_basis = scorers[criterion](b)
        rows.append(
            {
                "criterion": criterion,
                "description": description,
                "weight": chosen.get(criterion, 0.0),
                "a_score": a_score,
                "b_score": b_score,
                "a_basis": a_basis,
                "b_basis": b_basis,
            }
        )
    scored = [r for r in rows if r["a_score"] is not None and r["b_score"] is not None]
    total_weight = sum(r["weight"] for r in scored)
    a_total = b_total = None
    # A prior alone (simplicity) must not pick a winner when nothing was measured.
    measured = any(r["criterion"] != "simplicity" for r in scored)
    if total_weight > 0 and measured:
        a_total = round(sum(r["weight"] * r["a_score"] for r in scored) / total_weight, 3)
        b_total = round(sum(r["weight"] * r["b_score"] for r in scored) / total_weight, 3)
    rows.append(
        {
            "criterion": "weighted_total",
            "description": "weighted mean of the scored criteria",
            "weight": total_weight,
            "a_score": a_total,
            "b_score": b_total,
            "a_basis": "",
            "b_basis": "",
        }
    )
    schema = {
        "criterion": pl.String,
        "description": pl.String,
        "weight": pl.Float64,
        "a_score": pl.Float64,
        "b_score": pl.Float64,
        "a_basis": pl.String,
        "b_basis": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def matrix_winner(matrix: pl.DataFrame) -> str:
    """ "a", "b", "tie" (totals within 0.05) or "undecided" (nothing scored)."""
    total = matrix.filter(matrix["criterion"] == "weighted_total").row(0, named=True)
    a_total, b_total = total["a_score"], total["b_score"]
    if a_total is None or b_total is None:
        return "undecided"
    if abs(a_total - b_total) < _TIE_MARGIN:
        return "tie"
    return "a" if a_total > b_total else "b"


def _validated_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    if weights is None:
        return dict(DEFAULT_WEIGHTS)
    unknown = sorted(set(weights) - set(CRITERIA))
    if unknown:
        raise ValueError(f"unknown criteria {unknown}; known: {', '.join(CRITERIA)}")
    merged = {**DEFAULT_WEIGHTS, **{k: float(v) for k, v in weights.items()}}
    if any(w < 0 or math.isnan(w) for w in merged.values()):
        raise ValueError("criterion weights must be non-negative numbers")
    if sum(merged.values()) <= 0:
        raise ValueError("at least one criterion weight must be positive")
    return merged


def parse_weights(text: str) -> dict[str, float]:
    """``"latency_slo=3,cost=2"`` -> weights; unnamed criteria keep their defaults."""
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, raw = part.partition("=")
        if not sep:
            raise ValueError(f"weight {part!r}: expected criterion=number")
        try:
            weights[name.strip()] = float(raw)
        except ValueError:
            raise ValueError(f"weight {part!r}: {raw.strip()!r} is not a number") from None
    _validated_weights(weights)
    return weights


def load_weights(path: str | Path) -> tuple[dict[str, float], dict[str, float]]:
    """Read a TOML or YAML file with a ``weights`` table and an optional ``simplicity``
    table (runtime -> 1..5); returns ``(weights, simplicity)``."""
    file = Path(path)
    data = read_config_file(file, what="weights file")
    unknown = sorted(set(data) - {"weights", "simplicity"})
    if unknown:
        raise ValueError(f"{file}: unknown sections {unknown}; expected weights, simplicity")
    weights = {str(k): float(v) for k, v in (data.get("weights") or {}).items()}
    _validated_weights(weights)
    simplicity = {str(k): float(v) for k, v in (data.get("simplicity") or {}).items()}
    if any(not 1.0 <= v <= 5.0 for v in simplicity.values()):
        raise ValueError(f"{file}: simplicity scores must be between 1 and 5")
    return weights, simplicity


def parse_selection(text: str) -> dict[str, str]:
    """``"runtime=serverless"`` or ``"runtime=container,tenant=acme"`` -> column filters."""
    selection: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not value:
            raise ValueError(f"selection {part!r}: expected column=value")
        if name not in SELECTABLE_COLUMNS:
            raise ValueError(
                f"selection {part!r}: {name!r} is not one of {', '.join(SELECTABLE_COLUMNS)}"
            )
        selection[name] = value
    if not selection:
        raise ValueError("empty selection: expected column=value, e.g. runtime=serverless")
    return selection


@dataclass(frozen=True)
class Comparison:
    """Result of :func:`compare`: the side-by-side metrics, the matrix and the verdict."""

    a: dict[str, str]
    b: dict[str, str]
    endpoint: str | None
    a_metrics: dict[str, Any]
    b_metrics: dict[str, Any]
    side_by_side: pl.DataFrame
    matrix: pl.DataFrame
    winner: str
    notes: list[str] = field(default_factory=list)
    # The GPU questions (self-host or API, GPU containers or serverless GPU, the plan) of the
    # self-hosted models behind the compared endpoint, as recommendation dicts.
    gpu: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``compare --json`` output)."""
        return {
            "a": self.a,
            "b": self.b,
            "endpoint": self.endpoint,
            "side_by_side": self.side_by_side.to_dicts(),
            "matrix": self.matrix.to_dicts(),
            "winner": self.winner,
            "notes": self.notes,
            "gpu": self.gpu,
        }


def _side_by_side(a: Mapping[str, Any], b: Mapping[str, Any]) -> pl.DataFrame:
    import polars as pl

    rows = []
    for key, label in SIDE_METRICS.items():
        a_value, b_value = number(a, key), number(b, key)
        delta = None if a_value is None or b_value is None else b_value - a_value
        rows.append({"metric": key, "label": label, "a": a_value, "b": b_value, "b_minus_a": delta})
    return pl.DataFrame(
        rows,
        schema={
            "metric": pl.String,
            "label": pl.String,
            "a": pl.Float64,
            "b": pl.Float64,
            "b_minus_a": pl.Float64,
        },
    )


def _filtered(requests: duckdb.DuckDBPyRelation, selection: Mapping[str, str]) -> Any:
    import duckdb

    condition: Any = None
    for column, value in selection.items():
        term = duckdb.ColumnExpression(column) == duckdb.ConstantExpression(value)
        condition = term if condition is None else condition & term
    return requests.filter(condition)


def _side_quality(
    requests: duckdb.DuckDBPyRelation, judged: pl.DataFrame, selection: Mapping[str, str]
) -> dict[str, Any]:
    """Good rate and cost per good answer of one slice (rules: analytics.quality)."""
    import polars as pl
    from infermeter.analytics.quality import quality_summary

    side = judged
    for column, value in selection.items():
        if column not in side.columns:
            return {}  # a slice by a column evaluations do not carry: not scored
        side = side.filter(pl.col(column) == value)
    (row,) = quality_summary(side, _filtered(requests, selection)).to_dicts()
    return {
        "good_rate": row["good_rate"],
        "judged_requests": row["judged_requests"],
        "cost_per_good_answer_usd": row["cost_per_good_answer_usd"],
    }


def compare(
    requests: duckdb.DuckDBPyRelation,
    *,
    a: Mapping[str, str],
    b: Mapping[str, str],
    endpoint: str | None = None,
    weights: Mapping[str, float] | None = None,
    simplicity: Mapping[str, float] | None = None,
    min_requests: int = 50,
    judged: pl.DataFrame | None = None,
) -> Comparison:
    """Compare two slices of a request table (``request_table`` output) side by side.

    Each slice is ``requests`` filtered by its column=value pairs (and by ``endpoint``
    when given) and reduced with ``metrics``; values are bound as constants, never
    formatted into SQL. A slice with fewer than ``min_requests`` requests is still shown
    but the verdict says the data is insufficient. ``judged``
    (``analytics.quality.judged_evaluations`` of the same requests) adds each side's
    good-answer rate and cost per good answer, and the ``quality`` criterion.
    """
    from infermeter.analytics import metrics

    for selection in (a, b):
        parse_selection(",".join(f"{k}={v}" for k, v in selection.items()))
    scope = {"endpoint": endpoint} if endpoint else {}
    sides: list[dict[str, Any]] = []
    for selection in (a, b):
        sliced = _filtered(requests, {**scope, **selection})
        frame = metrics(sliced)
        row: dict[str, Any] = frame.row(0, named=True) if frame.height else {"requests": 0}
        if row.get("requests"):
            row["mitigated_p95_ms"] = _replayed_warm_p95(sliced)
        if not row.get("runtime") and "runtime" in selection:
            row["runtime"] = selection["runtime"]
        if judged is not None:
            row.update(_side_quality(requests, judged, {**scope, **selection}))
        sides.append(row)
    a_row, b_row = sides
    matrix = score_matrix(a_row, b_row, weights=weights, simplicity=simplicity)
    verdict = matrix_winner(matrix)
    notes: list[str] = []
    for name, row in (("a", a_row), ("b", b_row)):
        count = int(row.get("requests") or 0)
        if count < min_requests:
            notes.append(
                f"side {name} has {count} requests (< {min_requests}): insufficient data, "
                "no winner declared"
            )
            verdict = "insufficient_data"
    return Comparison(
        a=dict(a),
        b=dict(b),
        endpoint=endpoint,
        a_metrics=a_row,
        b_metrics=b_row,
        side_by_side=_side_by_side(a_row, b_row),
        matrix=matrix,
        winner=verdict,
        notes=notes,
    )
