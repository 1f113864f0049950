"""Rebalancing recommendations: where each workload should run and what to change.

``recommend`` reduces a request table to a few metrics frames and applies the rules in
``recommend_from_frames`` (pure, over polars frames, so each rule is tested on hand-built
numbers). Every recommendation carries the numbers behind it (``evidence``), a
``confidence`` that grows with the data volume and the measured window, and the projected
monthly saving or p95 gain at the measured load. Too little data yields an explicit
``insufficient_data`` recommendation instead of a verdict.

Thresholds are explicit (a :class:`RecommendationThresholds` value; defaults documented):
Compute Optimizer needs >= 50 invocations in 14 days before it recommends anything for a
Lambda function; infermeter uses the same floor per workload.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from infermeter.agent.semconv import (
    RUNTIME_SERVERLESS,
    RUNTIME_SERVERLESS_CONTAINER,
)
from infermeter.analytics._values import number
from infermeter.analytics.economics._math import SECONDS_PER_MONTH
from infermeter.analytics.economics._plans import (
    EndpointDecision,
    arrivals_by_workload,
    choose,
    endpoint_plans,
)

if TYPE_CHECKING:
    import duckdb
    import polars as pl
    from infermeter.analytics.economics._deployments import Deployments
    from infermeter.analytics.pricing._prices import PriceBook

__all__ = [
    "JSON_SCHEMA_VERSION",
    "KINDS",
    "Decisions",
    "Recommendation",
    "RecommendationThresholds",
    "confidence",
    "confidence_label",
    "decide",
    "decide_from_frames",
    "recommend",
    "recommend_from_frames",
    "recommendations_to_json",
]

KINDS: Final = (
    "insufficient_data",
    "add_warm_capacity",
    "move_to_containers",
    "move_to_serverless",
    "rebalance_tenant",
    "raise_concurrency_limit",
    "cost_jump",
    # Self-hosted models on GPUs (_selfhost): self-host or API, GPU containers or serverless
    # GPU, and the glue + model plan.
    "self_host_or_api",
    "gpu_serverless_or_containers",
    "gpu_plan",
    "rollback",  # analytics.quality: scores dropped after a rollout
    "cheaper_at_equal_quality",
    "slo_out_of_reach",
)

# Bump when a field of the JSON output changes meaning or disappears (adding is compatible).
JSON_SCHEMA_VERSION: Final = 2

_SERVERLESS_RUNTIMES: Final = frozenset({RUNTIME_SERVERLESS, RUNTIME_SERVERLESS_CONTAINER})


@dataclass(frozen=True)
class RecommendationThresholds:
    """When a rule speaks, and how sure it is. Defaults are documented constants."""

    # Compute Optimizer's floor: >= 50 invocations (in 14 days) before any verdict.
    min_requests: int = 50
    # Below an hour of traffic a monthly projection is a guess.
    min_window_s: float = 3600.0
    # Full confidence needs this many requests over this long a window.
    full_confidence_requests: int = 5000
    full_confidence_window_s: float = 14 * 86_400.0
    # Economics: a move must save at least this much and this share of today's cost.
    min_monthly_saving_usd: float = 5.0
    min_saving_share: float = 0.10
    # Cold starts above the p95's 5 % tail set the p95 (COMPUTE.md: p95 ~ warm + INIT).
    cold_share_driving_p95: float = 0.05
    # Throttling: rate and count before a rule speaks; concentration = one tenant gets
    # at least this share of the throttles and this many times its share of the traffic.
    min_throttle_rate: float = 0.01
    min_throttled_requests: int = 10
    tenant_throttle_share: float = 0.5
    tenant_throttle_lift: float = 2.0
    # Cost jump between consecutive model/prompt versions of an endpoint.
    min_cost_jump: float = 0.20
    min_version_requests: int = 30
    # A model/prompt version must carry this share of the endpoint's requests to count as a
    # version at all: a handful of requests that fell back to another model is not a rollout.
    min_version_share: float = 0.10


DEFAULT_THRESHOLDS: Final = RecommendationThresholds()


@dataclass(frozen=True)
class Recommendation:
    """One recommendation with the numbers behind it.

    ``monthly_cost_change_usd`` is the projected effect of following it on the monthly bill
    at the measured load: negative saves (a move to a cheaper runtime, reverting a cost
    jump), positive costs (warm capacity, a move that buys an SLO). ``p95_gain_ms`` is the
    projected p95 reduction. ``plan`` / ``runner_up`` name the endpoint plans behind a
    runtime or warm-capacity recommendation (see ``_plans``).
    """

    kind: str
    endpoint: str | None
    runtime: str | None
    tenant: str | None
    title: str
    rationale: str
    evidence: dict[str, float | str]
    confidence: float
    confidence_label: str
    monthly_cost_change_usd: float | None = None
    p95_gain_ms: float | None = None
    plan: str | None = None
    runner_up: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def impact(self) -> list[str]:
        """The projected money and latency effect in words ("saves ~$78.00/month ...")."""
        parts = []
        change = self.monthly_cost_change_usd
        if change is not None:
            amount = f"${abs(change):,.2f}"
            if self.kind == "cost_jump":
                parts.append(f"reverting saves ~{amount}/month (projection)")
            elif change <= 0:
                parts.append(f"saves ~{amount}/month (projection)")
            else:
                parts.append(f"costs ~{amount}/month (projection)")
        if self.p95_gain_ms is not None:
            parts.append(f"p95 -{self.p95_gain_ms:,.0f} ms")
        return parts


def confidence(
    requests: float, window_s: float, thresholds: RecommendationThresholds = DEFAULT_THRESHOLDS
) -> float:
    """0..1 from data volume and window length: 0 below the floor, 0.25 at the floor
    (50 requests, one hour), 1.0 at 5,000 requests over 14 days (log scale in volume)."""
    if requests < thresholds.min_requests or window_s < thresholds.min_window_s:
        return 0.0
    span = math.log(thresholds.full_confidence_requests / thresholds.min_requests)
    volume = min(1.0, math.log(requests / thresholds.min_requests) / span) if span > 0 else 1.0
    window = min(1.0, window_s / thresholds.full_confidence_window_s)
    return round((0.5 + 0.5 * volume) * (0.5 + 0.5 * window), 3)


def confidence_label(value: float) -> str:
    if value >= 0.75:
        return "high"
    if value >= 0.45:
        return "medium"
    return "low" if value > 0 else "none"


def _evidence(row: Mapping[str, Any], keys: Sequence[str]) -> dict[str, float | str]:
    evidence: dict[str, float | str] = {}
    for key in keys:
        value = row.get(key)
        if value is None:
            continue
        if isinstance(value, bool):
            evidence[key] = float(value)
        elif isinstance(value, int | float):
            if not math.isnan(float(value)):
                evidence[key] = round(float(value), 9)
        else:
            evidence[key] = str(value)
    return evidence


def percent(value: float) -> str:
    """A share for prose: whole percents from 10 %, one decimal below ("0.4%"), "<0.1%" for
    a sliver - never "0%" for something that is not zero."""
    if value == 0:
        return "0%"
    if abs(value) >= 0.1:
        return f"{value:.0%}"
    if abs(value) >= 0.001:
        return f"{value:.1%}"
    return "<0.1%"


def _when(moment: Any) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if isinstance(moment, datetime) else str(moment)


def _workload_name(row: Mapping[str, Any]) -> str:
    return f"{row.get('endpoint') or '(no endpoint)'} on {row.get('runtime') or 'unknown'}"


def _key(row: Mapping[str, Any]) -> tuple[Any, Any]:
    return row.get("endpoint"), row.get("runtime")


def _insufficient(
    row: Mapping[str, Any], thresholds: RecommendationThresholds
) -> Recommendation | None:
    requests = int(row.get("requests") or 0)
    window_s = number(row, "window_s") or 0.0
    if requests >= thresholds.min_requests and window_s >= thresholds.min_window_s:
        return None
    reasons = []
    if requests < thresholds.min_requests:
        reasons.append(f"{requests} requests (needs >= {thresholds.min_requests})")
    if window_s < thresholds.min_window_s:
        reasons.append(
            f"{window_s / 60:.0f} min of traffic (needs >= {thresholds.min_window_s / 60:.0f} min)"
        )
    return Recommendation(
        kind="insufficient_data",
        endpoint=row.get("endpoint"),
        runtime=row.get("runtime"),
        tenant=None,
        title=f"Not enough data to judge {_workload_name(row)}",
        rationale="Only " + " and ".join(reasons) + "; no verdict is given until there is more.",
        evidence={
            "requests": float(requests),
            "window_s": window_s,
            "min_requests": float(thresholds.min_requests),
            "min_window_s": thresholds.min_window_s,
        },
        confidence=0.0,
        confidence_label="none",
    )


def _plan_evidence(
    decision: EndpointDecision, row: Mapping[str, Any], econ: Mapping[str, Any]
) -> dict[str, float | str]:
    chosen, stay = decision.chosen, decision.plans[0]
    change = chosen.monthly_cost_change_usd
    evidence = _evidence(
        row,
        (
            "requests",
            "window_s",
            "p95_ms",
            "warm_p95_ms",
            "cold_p95_ms",
            "slo_ms",
            "cold_start_rate",
            "cold_starts",
            "slo_breach_rate",
            "slo_breach_cold_share",
            "mean_init_duration_ms",
            "mean_concurrency",
            "peak_concurrency",
        ),
    )
    evidence.update(
        _evidence(
            econ,
            (
                "requests_per_s",
                "mean_duration_s",
                "memory_gb",
                "serverless_monthly_usd",
                "container_monthly_usd",
                "container_instances",
                "container_price_per_hour",
                "container_concurrency",
                "crossover_utilization",
                "measured_utilization",
                "serverless_init_monthly_usd",
                "init_duration_source",
                "serverless_platform",
                "warm_capacity_kind",
            ),
        )
    )
    evidence.update(
        plan=chosen.kind,
        plan_monthly_usd=chosen.monthly_cost_usd,
        stay_monthly_usd=stay.monthly_cost_usd,
        monthly_cost_change_usd=change,
    )
    if chosen.projected_p95_ms is not None:
        evidence["projected_p95_ms"] = round(chosen.projected_p95_ms, 1)
    if chosen.projected_cold_start_share is not None:
        evidence["projected_cold_start_share"] = round(chosen.projected_cold_start_share, 6)
    if chosen.warm_units:
        evidence["warm_capacity_units"] = float(chosen.warm_units)
    if chosen.instances is not None:
        evidence["plan_instances"] = float(chosen.instances)
    if decision.runner_up is not None:
        evidence["runner_up"] = decision.runner_up.kind
        evidence["runner_up_monthly_usd"] = decision.runner_up.monthly_cost_usd
    return evidence


def _plan_recommendation(
    decision: EndpointDecision,
    rows: Mapping[Any, Mapping[str, Any]],
    economics: Mapping[Any, Mapping[str, Any]],
    base: float,
) -> Recommendation | None:
    """The chosen plan of an endpoint as one recommendation (None when it is ``stay``)."""
    chosen, stay = decision.chosen, decision.plans[0]
    if chosen.kind == "stay":
        return None
    by_name = dict(zip(decision.deployments, decision.runtimes, strict=True))
    changed = chosen.changes or decision.deployments[:1]
    name = changed[0]
    runtime = by_name.get(name)
    row = rows.get(runtime, {})
    econ = economics.get(runtime, {})
    change = chosen.monthly_cost_change_usd
    evidence = _plan_evidence(decision, row, econ)
    p95 = stay.projected_p95_ms
    gain = None
    if p95 is not None and chosen.projected_p95_ms is not None and p95 > chosen.projected_p95_ms:
        gain = round(p95 - chosen.projected_p95_ms, 1)
    amount = f"${abs(change):,.0f}" if abs(change) >= 10 else f"${abs(change):,.2f}"
    money = (
        f"save {amount}/month"
        if change < 0
        else f"costs {amount}/month"
        if change > 0
        else "same cost"
    )
    # A move that fixes the SLO says so first: that is why it is made.
    fixes = (
        f"p95 {p95:,.0f} -> ~{chosen.projected_p95_ms:,.0f} ms, "
        if not stay.meets_slo
        and chosen.meets_slo
        and p95 is not None
        and chosen.projected_p95_ms is not None
        else ""
    )
    slo = decision.slo_ms
    slo_text = ""
    if slo is not None and chosen.projected_p95_ms is not None:
        slo_text = (
            f" Projected p95 {chosen.projected_p95_ms:,.0f} ms against the {slo:,.0f} ms SLO"
            + (f" (today {p95:,.0f} ms)." if p95 is not None else ".")
        )
    margin = 1.0
    if change < 0 and stay.monthly_cost_usd > 0 and stay.meets_slo:
        # A verdict near the break-even point flips with a small change in load.
        margin = min(1.0, (-change / stay.monthly_cost_usd) / 0.3)
    value = round(base * (0.5 + 0.5 * margin), 3)
    plans = "; ".join(
        f"{p.kind} ${p.monthly_cost_usd:,.2f}/mo"
        + ("" if p.projected_p95_ms is None else f" p95 {p.projected_p95_ms:,.0f} ms")
        + ("" if p.meets_slo else " (misses SLO)")
        for p in decision.plans
    )
    projection = (
        "Projection of the measured window to 730 h at list prices, no free tier; p95 and "
        "cold starts from replaying the measured arrivals."
    )
    if chosen.kind == "stay_warm":
        kind = "add_warm_capacity"
        title = (
            f"Keep {name} warm: {chosen.warm_units} unit(s), p95 "
            f"{p95 or 0:,.0f} -> ~{chosen.projected_p95_ms or 0:,.0f} ms"
        )
        cold = number(row, "cold_start_rate")
        head = (
            f"{percent(cold)} of requests start cold, so p95 is warm latency plus INIT. "
            if cold is not None
            else ""
        )
        rationale = (
            f"{head}{chosen.description}: the smallest warm capacity whose replay of the "
            f"measured arrivals meets the SLO ({money}).{slo_text} Cheapest plan meeting the "
            f"SLO; {decision.why}. Plans: {plans}. {projection}"
        )
    elif chosen.kind.startswith("all_containers"):
        kind = "move_to_containers"
        title = f"Move {name} to containers: {fixes}{money}"
        utilization = number(econ, "measured_utilization")
        crossover = number(econ, "crossover_utilization")
        busy = (
            f" A right-sized fleet would run at {percent(utilization)} utilization, crossover "
            f"{percent(crossover)}."
            if utilization is not None and crossover is not None
            else ""
        )
        rationale = (
            f"{chosen.description}.{busy}{slo_text} Serverless bills the wall-clock time a handler "
            "waits on a model API; a container serving several requests at once does not. "
            f"Cheapest plan meeting the SLO; {decision.why}. Plans: {plans}. {projection}"
        )
    else:
        kind = "move_to_serverless"
        title = f"Move {name} to serverless: {fixes}{money}"
        warm = f" with {chosen.warm_units} warm unit(s)" if chosen.warm_units else ""
        cold = chosen.projected_cold_start_share or 0.0
        rationale = (
            f"{chosen.description}{warm}: the always-on fleet mostly idles. About "
            f"{percent(cold)} of requests would start cold.{slo_text} Cheapest plan meeting "
            f"the SLO; {decision.why}. Plans: {plans}. {projection}"
        )
        evidence["projected_cold_start_fraction"] = round(cold, 6)
    return Recommendation(
        kind=kind,
        endpoint=decision.endpoint,
        runtime=runtime,
        tenant=None,
        title=title,
        rationale=rationale,
        evidence=evidence,
        confidence=value,
        confidence_label=confidence_label(value),
        monthly_cost_change_usd=round(change, 2),
        p95_gain_ms=gain,
        plan=chosen.kind,
        runner_up=None if decision.runner_up is None else decision.runner_up.kind,
    )


def _throttle_rule(
    row: Mapping[str, Any],
    tenants: Sequence[Mapping[str, Any]],
    base: float,
    thresholds: RecommendationThresholds,
) -> Recommendation | None:
    rate = number(row, "throttle_rate") or 0.0
    throttled = number(row, "throttled") or 0.0
    if rate < thresholds.min_throttle_rate or throttled < thresholds.min_throttled_requests:
        return None
    evidence = _evidence(
        row,
        (
            "requests",
            "window_s",
            "throttled",
            "throttle_rate",
            "throttle_events",
            "retries_per_request",
            "peak_concurrency",
            "mean_concurrency",
            "p95_ms",
        ),
    )
    total_requests = sum(float(t.get("requests") or 0) for t in tenants)
    total_throttled = sum(float(t.get("throttled") or 0) for t in tenants)
    top: Mapping[str, Any] | None = None
    top_share = top_lift = 0.0
    if total_requests > 0 and total_throttled > 0:
        for tenant in tenants:
            traffic = float(tenant.get("requests") or 0) / total_requests
            share = float(tenant.get("throttled") or 0) / total_throttled
            if traffic > 0 and share > top_share:
                top, top_share, top_lift = tenant, share, share / traffic
    if (
        top is not None
        and top.get("tenant") is not None
        and top_share >= thresholds.tenant_throttle_share
        and top_lift >= thresholds.tenant_throttle_lift
    ):
        name = str(top["tenant"])
        traffic_share = float(top.get("requests") or 0) / total_requests
        evidence.update(
            tenant_traffic_share=round(traffic_share, 6),
            tenant_throttle_share=round(top_share, 6),
            tenant_throttle_lift=round(top_lift, 3),
        )
        return Recommendation(
            kind="rebalance_tenant",
            endpoint=row.get("endpoint"),
            runtime=row.get("runtime"),
            tenant=name,
            title=f"Rebalance tenant {name} on {row.get('endpoint')}: "
            f"{top_share:.0%} of throttles from {traffic_share:.0%} of traffic",
            rationale=(
                f"{rate:.1%} of requests were throttled; tenant {name} sends "
                f"{traffic_share:.1%} of the traffic but takes {top_share:.1%} of the "
                f"throttles ({top_lift:.1f}x its share). Give it its own quota or concurrency "
                "pool, rate-limit it, or move it to a separate deployment so it stops "
                "starving the others."
            ),
            evidence=evidence,
            confidence=base,
            confidence_label=confidence_label(base),
        )
    return Recommendation(
        kind="raise_concurrency_limit",
        endpoint=row.get("endpoint"),
        runtime=row.get("runtime"),
        tenant=None,
        title=f"Raise the concurrency limit of {row.get('endpoint')}: "
        f"{rate:.1%} of requests throttled",
        rationale=(
            f"{rate:.1%} of requests were throttled, spread across tenants (no tenant takes "
            f">= {thresholds.tenant_throttle_share:.0%} of throttles at "
            f">= {thresholds.tenant_throttle_lift:.0f}x its traffic share). Raise the limit "
            "that throttles - reserved concurrency / max instances, or the model provider's "
            "rate limit (quota) - or add retries with backoff."
        ),
        evidence=evidence,
        confidence=base,
        confidence_label=confidence_label(base),
    )


def _cost_jump_rules(
    versions: pl.DataFrame,
    workloads_by_endpoint: Mapping[Any, Mapping[str, Any]],
    thresholds: RecommendationThresholds,
) -> list[Recommendation]:
    found: list[Recommendation] = []
    if versions.height == 0:
        return found
    for (endpoint,), group in versions.sort("first_seen").group_by("endpoint", maintain_order=True):
        total = int(group["requests"].sum() or 0)
        floor = max(thresholds.min_version_requests, thresholds.min_version_share * total)
        rows = [
            r
            for r in group.iter_rows(named=True)
            if int(r.get("requests") or 0) >= floor
            and number(r, "cost_per_request_usd") is not None
        ]
        if len(rows) < 2:
            continue
        previous, latest = rows[-2], rows[-1]
        before = float(previous["cost_per_request_usd"])
        after = float(latest["cost_per_request_usd"])
        if before <= 0 or after / before - 1.0 < thresholds.min_cost_jump:
            continue
        change = after / before - 1.0
        workload = workloads_by_endpoint.get(endpoint, {})
        rate = number(workload, "requests_per_s")
        impact = None if rate is None else (after - before) * rate * SECONDS_PER_MONTH
        window = (number(latest, "window_s") or 0.0) + (number(previous, "window_s") or 0.0)
        value = confidence(
            min(int(previous["requests"]), int(latest["requests"])), window, thresholds
        )

        def label(r: Mapping[str, Any]) -> str:
            return f"model {r.get('model') or '?'} / prompt {r.get('prompt_version') or '?'}"

        evidence: dict[str, float | str] = {
            "before": label(previous),
            "after": label(latest),
            "before_cost_per_request_usd": before,
            "after_cost_per_request_usd": after,
            "change": round(change, 6),
            "before_requests": float(previous["requests"]),
            "after_requests": float(latest["requests"]),
            "after_first_seen": _when(latest.get("first_seen")),
        }
        if rate is not None:
            evidence["endpoint_requests_per_s"] = rate
        impact_text = (
            ""
            if impact is None
            else f" At the endpoint's measured load that is ${impact:,.2f}/month more (projection)."
        )
        found.append(
            Recommendation(
                kind="cost_jump",
                endpoint=endpoint,
                runtime=workload.get("runtime"),
                tenant=None,
                title=f"Cost per request of {endpoint} up {change:.0%} after {label(latest)}",
                rationale=(
                    f"Since {label(latest)} appeared ({_when(latest.get('first_seen'))}), a "
                    f"request costs ${after:.6f} against ${before:.6f} with {label(previous)} "
                    f"(+{change:.0%}).{impact_text} Check token counts and the model's price, "
                    "or roll back."
                ),
                evidence=evidence,
                confidence=value,
                confidence_label=confidence_label(value),
                # Following the advice (reverting) changes the bill by minus the jump.
                monthly_cost_change_usd=None if impact is None else round(-impact, 2),
            )
        )
    return found


@dataclass(frozen=True)
class Decisions:
    """Recommendations and, per endpoint, the plans behind the runtime decision."""

    recommendations: list[Recommendation]
    endpoints: list[EndpointDecision]


def _out_of_reach(decision: EndpointDecision, base: float) -> Recommendation | None:
    if not decision.replayed or decision.slo_ms is None:
        return None
    if any(p.meets_slo for p in decision.plans):
        return None
    today = decision.plans[0].projected_p95_ms
    if today is None:
        return None
    best = min(
        (p for p in decision.plans if p.projected_p95_ms is not None),
        key=lambda p: (p.projected_p95_ms or 0.0, p.monthly_cost_usd),
    )
    stay = decision.plans[0]
    name = " + ".join(decision.deployments)
    return Recommendation(
        kind="slo_out_of_reach",
        endpoint=decision.endpoint,
        runtime=decision.runtimes[0] if decision.runtimes else None,
        tenant=None,
        title=f"No plan brings {name} within its {decision.slo_ms:,.0f} ms SLO",
        rationale=(
            f"Today p95 is {stay.projected_p95_ms:,.0f} ms; the best plan ({best.description}, "
            f"${best.monthly_cost_usd:,.2f}/month) projects {best.projected_p95_ms:,.0f} ms. "
            "Warm capacity and more instances remove cold starts and queueing, not slow "
            "handlers: look at the slowest stage (model API, retrieval) or revisit the SLO."
        ),
        evidence={
            "slo_ms": decision.slo_ms,
            "p95_ms": today,
            "best_plan": best.kind,
            "best_plan_p95_ms": round(best.projected_p95_ms or 0.0, 1),
            "best_plan_monthly_usd": best.monthly_cost_usd,
        },
        confidence=base,
        confidence_label=confidence_label(base),
        plan="stay",
    )


def _endpoint_decisions(
    judged: Mapping[Any, list[dict[str, Any]]],
    econ_by_key: Mapping[tuple[Any, Any], Mapping[str, Any]],
    replayable: Mapping[tuple[Any, Any], Any] | None,
    thresholds: RecommendationThresholds,
) -> tuple[list[Recommendation], list[EndpointDecision]]:
    """One runtime / warm-capacity decision per endpoint with enough data."""
    result: list[Recommendation] = []
    decisions: list[EndpointDecision] = []
    for endpoint, rows in judged.items():
        econ = {r.get("runtime"): econ_by_key.get((endpoint, r.get("runtime"))) for r in rows}
        if any(e is None for e in econ.values()):
            continue
        econ_rows = {k: v for k, v in econ.items() if v is not None}
        plans, slo, names = endpoint_plans(endpoint, rows, econ_rows, replayable)
        decision = choose(
            endpoint,
            plans,
            slo,
            names,
            tuple(r.get("runtime") for r in sorted(rows, key=lambda r: -int(r["requests"]))),
            min_saving_usd=thresholds.min_monthly_saving_usd,
            min_saving_share=thresholds.min_saving_share,
        )
        if decision is None:
            continue
        decisions.append(decision)
        base = min(confidence(int(r["requests"]), float(r["window_s"]), thresholds) for r in rows)
        by_runtime = {r.get("runtime"): r for r in rows}
        for rec in (
            _plan_recommendation(decision, by_runtime, econ_rows, base),
            _out_of_reach(decision, base),
        ):
            if rec is not None:
                result.append(rec)
    return result, decisions


def decide_from_frames(
    workloads: pl.DataFrame,
    *,
    economics: pl.DataFrame | None = None,
    tenants: pl.DataFrame | None = None,
    versions: pl.DataFrame | None = None,
    arrivals: pl.DataFrame | None = None,
    thresholds: RecommendationThresholds = DEFAULT_THRESHOLDS,
    gpu: pl.DataFrame | None = None,
) -> Decisions:
    """Apply every rule to metric frames; pure. ``gpu``: ``gpu_economics`` of the
    self-hosted models (the three GPU questions).

    ``workloads``: ``metrics`` by (endpoint, runtime) (+ ``mean_init_duration_ms``);
    ``economics``: ``runtime_economics`` of it; ``tenants``: ``metrics`` by (endpoint,
    runtime, tenant); ``versions``: ``metrics`` by (endpoint, model, prompt_version) with
    ``first_seen``; ``arrivals``: ``arrival_frame`` of the requests (each request's start,
    end, duration and INIT), replayed to project warm capacity and moves. Missing frames
    switch their rules off (without arrivals, only moves of single-deployment endpoints are
    projected, by COMPUTE.md's rule; no warm capacity is sized).

    Runtime and warm-capacity advice is one decision per endpoint (``_plans``): the
    cheapest plan meeting the SLO, so two deployments of one endpoint never get advice
    that loses money in sum.
    """
    result: list[Recommendation] = []
    decisions: list[EndpointDecision] = []
    if workloads.height == 0 and (gpu is None or gpu.height == 0):
        return Decisions(
            [
                Recommendation(
                    kind="insufficient_data",
                    endpoint=None,
                    runtime=None,
                    tenant=None,
                    title="No requests in the store yet",
                    rationale="There are no entry spans to measure; send traffic through "
                    "@infermeter.observe or import spans first.",
                    evidence={"requests": 0.0},
                    confidence=0.0,
                    confidence_label="none",
                )
            ],
            [],
        )
    econ_by_key = (
        {_key(r): r for r in economics.iter_rows(named=True)} if economics is not None else {}
    )
    tenants_by_key: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    if tenants is not None:
        for tenant in tenants.iter_rows(named=True):
            tenants_by_key.setdefault(_key(tenant), []).append(tenant)
    replayable = arrivals_by_workload(arrivals) if arrivals is not None else None
    by_endpoint: dict[Any, dict[str, Any]] = {}
    judged: dict[Any, list[dict[str, Any]]] = {}
    for row in workloads.iter_rows(named=True):
        insufficient = _insufficient(row, thresholds)
        if insufficient is not None:
            result.append(insufficient)
            continue
        by_endpoint.setdefault(row.get("endpoint"), row)
        judged.setdefault(row.get("endpoint"), []).append(row)
        base = confidence(int(row["requests"]), float(row["window_s"]), thresholds)
        rec = _throttle_rule(row, tenants_by_key.get(_key(row), []), base, thresholds)
        if rec is not None:
            result.append(rec)
    if economics is not None:
        endpoint_recs, decisions = _endpoint_decisions(judged, econ_by_key, replayable, thresholds)
        result.extend(endpoint_recs)
    if versions is not None:
        result.extend(_cost_jump_rules(versions, by_endpoint, thresholds))
    if gpu is not None:
        from infermeter.analytics.economics._selfhost import gpu_recommendations

        result.extend(gpu_recommendations(gpu, economics=economics, thresholds=thresholds))
    order = {kind: i for i, kind in enumerate(KINDS)}
    result.sort(key=lambda r: (order[r.kind], r.monthly_cost_change_usd or 0.0, str(r.endpoint)))
    return Decisions(result, decisions)


def recommend_from_frames(
    workloads: pl.DataFrame,
    *,
    economics: pl.DataFrame | None = None,
    tenants: pl.DataFrame | None = None,
    versions: pl.DataFrame | None = None,
    arrivals: pl.DataFrame | None = None,
    thresholds: RecommendationThresholds = DEFAULT_THRESHOLDS,
    gpu: pl.DataFrame | None = None,
) -> list[Recommendation]:
    """The recommendations of :func:`decide_from_frames`."""
    return decide_from_frames(
        workloads,
        economics=economics,
        tenants=tenants,
        versions=versions,
        arrivals=arrivals,
        thresholds=thresholds,
        gpu=gpu,
    ).recommendations


def decide(
    requests: duckdb.DuckDBPyRelation,
    *,
    prices: PriceBook,
    deployments: Deployments,
    thresholds: RecommendationThresholds = DEFAULT_THRESHOLDS,
    self_hosted: pl.DataFrame | None = None,
) -> Decisions:
    """Recommendations and endpoint plans for a request table (``request_table`` output).

    ``self_hosted`` (``self_hosted_load`` of the same window) adds the GPU questions for
    every self-hosted model."""
    from infermeter.analytics import metrics
    from infermeter.analytics.economics._runtime import runtime_economics
    from infermeter.analytics.query._workloads import arrival_frame, version_frame, workload_frame

    if self_hosted is not None:
        from infermeter.analytics.economics._selfhost import without_model_servers

        requests = without_model_servers(requests, self_hosted)
    workloads = workload_frame(requests)
    economics = runtime_economics(workloads, prices=prices, deployments=deployments)
    tenants = metrics(requests, by=("endpoint", "runtime", "tenant"))
    versions = version_frame(requests)
    gpu = None
    if self_hosted is not None and self_hosted.height:
        from infermeter.analytics.economics._selfhost import gpu_economics

        gpu = gpu_economics(self_hosted, prices=prices, deployments=deployments)
    return decide_from_frames(
        workloads,
        economics=economics,
        tenants=tenants,
        versions=versions,
        arrivals=arrival_frame(requests),
        thresholds=thresholds,
        gpu=gpu,
    )


def recommend(
    requests: duckdb.DuckDBPyRelation,
    *,
    prices: PriceBook,
    deployments: Deployments,
    thresholds: RecommendationThresholds = DEFAULT_THRESHOLDS,
    self_hosted: pl.DataFrame | None = None,
) -> list[Recommendation]:
    """Recommendations for every workload of a request table (``request_table`` output);
    see :func:`decide`."""
    return decide(
        requests,
        prices=prices,
        deployments=deployments,
        thresholds=thresholds,
        self_hosted=self_hosted,
    ).recommendations


def recommendations_to_json(
    recommendations: Sequence[Recommendation],
    *,
    endpoints: Sequence[EndpointDecision] = (),
    thresholds: RecommendationThresholds = DEFAULT_THRESHOLDS,
    generated_at: str | None = None,
    store: str | None = None,
) -> dict[str, Any]:
    """The stable ``recommend --json`` document (see the module docstring of ``_cli_report``)."""
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "generated_at": generated_at,
        "store": store,
        "projection_note": "costs and gains are projections of the measured load to a "
        "730-hour month at list prices; monthly_cost_change_usd < 0 saves money, > 0 costs",
        "thresholds": asdict(thresholds),
        "recommendations": [r.to_dict() for r in recommendations],
        "endpoints": [d.to_dict() for d in endpoints],
    }
