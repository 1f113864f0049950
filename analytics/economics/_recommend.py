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
    RUNTIME_CONTAINER,
    RUNTIME_SERVERLESS,
    RUNTIME_SERVERLESS_CONTAINER,
)
from infermeter.analytics._values import number
from infermeter.analytics.economics._math import SECONDS_PER_MONTH

if TYPE_CHECKING:
    import duckdb
    import polars as pl
    from infermeter.analytics.economics._deployments import Deployments
    from infermeter.analytics.pricing._prices import PriceBook

__all__ = [
    "JSON_SCHEMA_VERSION",
    "KINDS",
    "Recommendation",
    "RecommendationThresholds",
    "confidence",
    "confidence_label",
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
)

# Bump when a field of the JSON output changes meaning or disappears (adding is compatible).
JSON_SCHEMA_VERSION: Final = 1

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

    ``monthly_saving_usd`` is a projection at the measured load (negative: the change
    costs money, e.g. warm capacity); ``p95_gain_ms`` the projected p95 reduction.
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
    monthly_saving_usd: float | None = None
    p95_gain_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def impact(self) -> list[str]:
        """The projected money and latency effect in words ("saves ~$78.00/month ...")."""
        parts = []
        saving = self.monthly_saving_usd
        if saving is not None:
            amount = f"${abs(saving):,.2f}"
            if self.kind == "cost_jump":
                parts.append(f"reverting saves ~{amount}/month (projection)")
            elif saving >= 0:
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


def _economics_rule(
    row: Mapping[str, Any],
    econ: Mapping[str, Any],
    base: float,
    thresholds: RecommendationThresholds,
) -> Recommendation | None:
    runtime = row.get("runtime")
    saving = number(econ, "monthly_saving_usd")
    current = number(econ, "current_monthly_usd")
    serverless = number(econ, "serverless_monthly_usd")
    container = number(econ, "container_monthly_usd")
    if saving is None or current is None or serverless is None or container is None:
        return None
    if saving < thresholds.min_monthly_saving_usd or saving < thresholds.min_saving_share * current:
        return None
    # A verdict near the break-even point flips with a small change in load: trust it less.
    margin = min(1.0, (saving / current) / 0.3) if current > 0 else 1.0
    value = round(base * (0.5 + 0.5 * margin), 3)
    evidence = _evidence(
        econ,
        (
            "requests",
            "window_s",
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
            "serverless_platform",
        ),
    )
    load = (
        f"{econ['requests_per_s']:.3g} req/s x {econ['mean_duration_s']:.3g} s "
        f"({econ['memory_gb']:.3g} GiB)"
    )
    costs = (
        f"serverless ${serverless:,.2f}/mo vs {econ['container_instances']} instance(s) "
        f"${container:,.2f}/mo"
    )
    crossover = (
        f"a right-sized fleet would run at {econ['measured_utilization']:.0%} "
        f"utilization, crossover {econ['crossover_utilization']:.1%}"
    )
    projection = "Projection of the measured window to 730 h at list prices, no free tier."
    if runtime in _SERVERLESS_RUNTIMES:
        p95_gain = None
        cold_rate = number(row, "cold_start_rate") or 0.0
        warm = number(row, "warm_p95_ms")
        p95 = number(row, "p95_ms")
        if cold_rate > thresholds.cold_share_driving_p95 and warm is not None and p95 is not None:
            p95_gain = max(0.0, p95 - warm)
        return Recommendation(
            kind="move_to_containers",
            endpoint=row.get("endpoint"),
            runtime=runtime,
            tenant=None,
            title=f"Move {row.get('endpoint')} to containers: save ${saving:,.0f}/month",
            rationale=(
                f"At {load}, {costs}; {crossover}. Serverless bills the wall-clock time a "
                "handler waits on a model API; a container serving "
                f"{econ['container_concurrency']} request(s) at once does not. {projection}"
            ),
            evidence=evidence,
            confidence=value,
            confidence_label=confidence_label(value),
            monthly_saving_usd=round(saving, 2),
            p95_gain_ms=p95_gain,
        )
    if runtime == RUNTIME_CONTAINER:
        cold = number(econ, "cold_starts_per_s") or 0.0
        rate = number(econ, "requests_per_s") or 0.0
        cold_fraction = cold / rate if rate > 0 else 0.0
        evidence["projected_cold_start_fraction"] = round(cold_fraction, 6)
        risk = ""
        if cold_fraction > thresholds.cold_share_driving_p95:
            risk = (
                f" Caveat: about {cold_fraction:.0%} of requests would start cold (10-min "
                "keep-alive), so p95 would become warm latency + INIT unless some warm "
                "capacity is kept."
            )
        return Recommendation(
            kind="move_to_serverless",
            endpoint=row.get("endpoint"),
            runtime=runtime,
            tenant=None,
            title=f"Move {row.get('endpoint')} to serverless: save ${saving:,.0f}/month",
            rationale=(
                f"At {load}, {costs}; {crossover}: the always-on fleet mostly idles. "
                f"{projection}{risk}"
            ),
            evidence=evidence,
            confidence=value,
            confidence_label=confidence_label(value),
            monthly_saving_usd=round(saving, 2),
            p95_gain_ms=None,
        )
    return None


def _warm_capacity_rule(
    row: Mapping[str, Any],
    econ: Mapping[str, Any] | None,
    base: float,
    thresholds: RecommendationThresholds,
) -> Recommendation | None:
    cold_rate = number(row, "cold_start_rate")
    p95, warm, slo = number(row, "p95_ms"), number(row, "warm_p95_ms"), number(row, "slo_ms")
    if cold_rate is None or p95 is None or slo is None or warm is None:
        return None
    if cold_rate <= thresholds.cold_share_driving_p95 or p95 <= slo:
        return None
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
    units = kind = None
    cost: float | None = None
    if econ is not None:
        evidence.update(
            _evidence(
                econ,
                (
                    "warm_capacity_kind",
                    "warm_capacity_units",
                    "warm_capacity_monthly_usd",
                    "warm_capacity_net_monthly_usd",
                    "warm_capacity_utilization",
                    "warm_capacity_breakeven_utilization",
                ),
            )
        )
        units = econ.get("warm_capacity_units")
        kind = econ.get("warm_capacity_kind")
        cost = number(econ, "warm_capacity_net_monthly_usd")
    gain = p95 - warm
    what = (
        f"{units} unit(s) of {str(kind).replace('_', ' ')}"
        if units is not None
        else "warm capacity (min instances / provisioned concurrency)"
    )
    cost_text = f" It would cost about ${cost:,.2f}/month net." if cost is not None else ""
    still = "" if warm <= slo else f" Warm p95 alone ({warm:.0f} ms) still misses the SLO."
    return Recommendation(
        kind="add_warm_capacity",
        endpoint=row.get("endpoint"),
        runtime=row.get("runtime"),
        tenant=None,
        title=f"Keep {row.get('endpoint')} warm: p95 {p95:.0f} -> ~{warm:.0f} ms",
        rationale=(
            f"{cold_rate:.1%} of requests start cold, more than the {1 - 0.95:.0%} tail the "
            f"p95 ignores, so p95 ({p95:.0f} ms) is warm latency plus INIT and breaches the "
            f"{slo:.0f} ms SLO. Add {what}, sized to the baseline concurrency.{cost_text}{still}"
        ),
        evidence=evidence,
        confidence=base,
        confidence_label=confidence_label(base),
        monthly_saving_usd=None if cost is None else round(-cost, 2),
        p95_gain_ms=round(gain, 1),
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
                monthly_saving_usd=None if impact is None else round(impact, 2),
            )
        )
    return found


def recommend_from_frames(
    workloads: pl.DataFrame,
    *,
    economics: pl.DataFrame | None = None,
    tenants: pl.DataFrame | None = None,
    versions: pl.DataFrame | None = None,
    thresholds: RecommendationThresholds = DEFAULT_THRESHOLDS,
    gpu: pl.DataFrame | None = None,
) -> list[Recommendation]:
    """Apply every rule to metric frames; pure.

    ``gpu``: ``gpu_economics`` of the self-hosted models (the three GPU questions).

    ``workloads``: ``metrics`` by (endpoint, runtime) (+ ``mean_init_duration_ms``);
    ``economics``: ``runtime_economics`` of it; ``tenants``: ``metrics`` by (endpoint,
    runtime, tenant); ``versions``: ``metrics`` by (endpoint, model, prompt_version) with
    ``first_seen``. Missing frames switch their rules off.
    """
    result: list[Recommendation] = []
    if workloads.height == 0 and (gpu is None or gpu.height == 0):
        return [
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
        ]
    econ_by_key = (
        {_key(r): r for r in economics.iter_rows(named=True)} if economics is not None else {}
    )
    tenants_by_key: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    if tenants is not None:
        for tenant in tenants.iter_rows(named=True):
            tenants_by_key.setdefault(_key(tenant), []).append(tenant)
    by_endpoint: dict[Any, dict[str, Any]] = {}
    for row in workloads.iter_rows(named=True):
        insufficient = _insufficient(row, thresholds)
        if insufficient is not None:
            result.append(insufficient)
            continue
        by_endpoint.setdefault(row.get("endpoint"), row)
        base = confidence(int(row["requests"]), float(row["window_s"]), thresholds)
        econ = econ_by_key.get(_key(row))
        for rec in (
            _warm_capacity_rule(row, econ, base, thresholds),
            None if econ is None else _economics_rule(row, econ, base, thresholds),
            _throttle_rule(row, tenants_by_key.get(_key(row), []), base, thresholds),
        ):
            if rec is not None:
                result.append(rec)
    if versions is not None:
        result.extend(_cost_jump_rules(versions, by_endpoint, thresholds))
    if gpu is not None:
        from infermeter.analytics.economics._selfhost import gpu_recommendations

        result.extend(gpu_recommendations(gpu, economics=economics, thresholds=thresholds))
    order = {kind: i for i, kind in enumerate(KINDS)}
    result.sort(key=lambda r: (order[r.kind], -(r.monthly_saving_usd or 0.0), str(r.endpoint)))
    return result


def recommend(
    requests: duckdb.DuckDBPyRelation,
    *,
    prices: PriceBook,
    deployments: Deployments,
    thresholds: RecommendationThresholds = DEFAULT_THRESHOLDS,
    self_hosted: pl.DataFrame | None = None,
) -> list[Recommendation]:
    """Recommendations for every workload of a request table (``request_table`` output).

    ``self_hosted`` (``self_hosted_load`` of the same window) adds the GPU questions for
    every self-hosted model."""
    from infermeter.analytics import metrics
    from infermeter.analytics.economics._runtime import runtime_economics
    from infermeter.analytics.query._workloads import version_frame, workload_frame

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
    return recommend_from_frames(
        workloads,
        economics=economics,
        tenants=tenants,
        versions=versions,
        thresholds=thresholds,
        gpu=gpu,
    )


def recommendations_to_json(
    recommendations: Sequence[Recommendation],
    *,
    thresholds: RecommendationThresholds = DEFAULT_THRESHOLDS,
    generated_at: str | None = None,
    store: str | None = None,
) -> dict[str, Any]:
    """The stable ``recommend --json`` document (see the module docstring of ``_cli_report``)."""
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "generated_at": generated_at,
        "store": store,
        "projection_note": "savings and gains are projections of the measured load to a "
        "730-hour month at list prices; negative savings cost money",
        "thresholds": asdict(thresholds),
        "recommendations": [r.to_dict() for r in recommendations],
    }
