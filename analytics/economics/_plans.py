"""Endpoint plans: every way to run one endpoint, priced including what meeting its SLO costs.

An endpoint may run on several deployments at once (a Lambda function and a Kubernetes
twin). Advice per deployment contradicts itself ("move the pod to serverless" next to
"keep the function warm" can lose money in sum), so the endpoint is judged as a whole.
Plans (each priced for a 730-hour month at the measured load, list prices, no free tier):

- ``stay``: every deployment as it is today;
- ``stay_warm``: as today, with the smallest warm capacity (provisioned concurrency / min
  instances) that brings each serverless deployment's p95 within the SLO, and the smallest
  fleet that does so for each container deployment;
- ``all_containers`` / ``all_containers_sized``: all the endpoint's traffic on one
  always-on fleet sized by Little's law, and sized up until p95 meets the SLO;
- ``all_serverless`` / ``all_serverless_warm``: all its traffic on serverless (the
  endpoint's serverless deployment's platform, else Lambda), without and with the warm
  capacity its SLO needs.

Projected p95 and cold-start share come from replaying the measured arrivals
(``_replay``); without arrivals a plan keeps the measured p95 (stay) or has none (NULL
projections never meet an SLO). A plan that would change nothing (a single deployment's
"all on its own runtime") is not listed twice.

The decision (:func:`choose`): the cheapest plan that meets the SLO; a change from ``stay``
only when ``stay`` misses the SLO or the change saves at least ``min_monthly_saving_usd``
and ``min_saving_share`` of today's cost. The runner-up is the next plan by the same
ordering, with why it lost. With no SLO every plan "meets" it (cost alone decides).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final

from infermeter.agent.semconv import (
    RUNTIME_CONTAINER,
    RUNTIME_SERVERLESS,
    RUNTIME_SERVERLESS_CONTAINER,
)
from infermeter.analytics.economics._math import (
    SECONDS_PER_MONTH,
    container_monthly_usd,
    fleet_size,
    serverless_monthly_usd,
    warm_capacity_monthly_usd,
)
from infermeter.analytics.economics._replay import (
    Arrivals,
    Projection,
    replay_fleet,
    replay_serverless,
    smallest_size,
)

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "ASSUMED_INIT_MS",
    "KEEP_ALIVE_S",
    "PLAN_KINDS",
    "EndpointDecision",
    "Plan",
    "arrivals_by_workload",
    "choose",
    "deployment_name",
    "endpoint_plans",
    "merge_arrivals",
]

PLAN_KINDS: Final = (
    "stay",
    "stay_warm",
    "all_containers",
    "all_containers_sized",
    "all_serverless",
    "all_serverless_warm",
)

# Idle lifetime of an on-demand environment per serverless platform: AWS / Azure fixed
# keep-alive 10 / 20 min ("Serverless in the Wild", COMPUTE.md); Lambda measured 25-65 min,
# so 10 min is the cautious end. Other platforms: 10 min.
KEEP_ALIVE_S: Final[dict[str, float]] = {"aws_lambda": 600.0, "azure_container_apps": 1200.0}
DEFAULT_KEEP_ALIVE_S: Final = 600.0
# INIT assumed for a workload that never ran cold on serverless (moving there): "most
# runtimes < 500 ms, almost always < 800 ms" (COMPUTE.md, [MS-AWS]); the cautious end.
ASSUMED_INIT_MS: Final = 800.0

_SERVERLESS: Final = frozenset({RUNTIME_SERVERLESS, RUNTIME_SERVERLESS_CONTAINER})
# aws_ec2 is the container default (a VM-priced fleet), so it reads "containers".
_PLATFORM_NAMES: Final = {
    "aws_lambda": "Lambda",
    "gcp_cloud_run": "Cloud Run",
    "gcp_cloud_functions": "Cloud Functions",
    "azure_functions": "Azure Functions",
    "azure_container_apps": "Container Apps",
    "aws_ecs": "ECS",
    "aws_fargate": "Fargate",
    "aws_eks": "Kubernetes",
    "gcp_kubernetes_engine": "Kubernetes",
    "azure_aks": "Kubernetes",
}


def deployment_name(endpoint: Any, runtime: Any, platform: Any = None) -> str:
    """How titles name a deployment: ``/v1/ingest on Lambda``, ``/v1/ingest on containers``."""
    name = str(platform or "").lower()
    where = _PLATFORM_NAMES.get(name)
    if where is None and ("k8s" in name or "kubernetes" in name):
        where = "Kubernetes"
    if where is None:
        where = {
            RUNTIME_SERVERLESS: "serverless",
            RUNTIME_SERVERLESS_CONTAINER: "serverless containers",
            RUNTIME_CONTAINER: "containers",
        }.get(str(runtime), str(runtime or "an unknown runtime"))
    return f"{endpoint or '(no endpoint)'} on {where}"


@dataclass(frozen=True)
class Plan:
    """One way to run an endpoint, priced."""

    kind: str
    endpoint: str | None
    description: str
    # Deployments (runtime) whose setup this plan changes.
    changes: tuple[str, ...]
    monthly_cost_usd: float
    projected_p95_ms: float | None
    projected_cold_start_share: float | None
    meets_slo: bool
    warm_units: int = 0
    instances: int | None = None
    # Filled by choose(): cost against ``stay`` (negative saves).
    monthly_cost_change_usd: float = 0.0
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["changes"] = list(self.changes)
        out["notes"] = list(self.notes)
        return out


@dataclass(frozen=True)
class EndpointDecision:
    """The plans of one endpoint, the chosen one and the runner-up."""

    endpoint: str | None
    slo_ms: float | None
    plans: tuple[Plan, ...]
    chosen: Plan
    runner_up: Plan | None
    why: str
    deployments: tuple[str, ...] = field(default=())
    # Whether the measured arrivals were replayed (warm capacity and moves projected).
    replayed: bool = False
    runtimes: tuple[str | None, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "slo_ms": self.slo_ms,
            "deployments": [
                {"name": n, "runtime": r}
                for n, r in zip(self.deployments, self.runtimes, strict=True)
            ],
            "chosen": self.chosen.kind,
            "runner_up": None if self.runner_up is None else self.runner_up.kind,
            "why": self.why,
            "plans": [p.to_dict() for p in self.plans],
        }


def _num(row: Mapping[str, Any] | None, key: str) -> float | None:
    if row is None:
        return None
    value = row.get(key)
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def arrivals_by_workload(frame: pl.DataFrame) -> dict[tuple[Any, Any], Arrivals]:
    """Per (endpoint, runtime), the :class:`Arrivals` of an arrivals frame (columns
    ``endpoint, runtime, start_s, end_s, duration_ms, cold_start, init_duration_ms,
    initialization_type`` - see ``_workloads.arrival_frame``)."""
    import numpy as np
    import polars as pl

    out: dict[tuple[Any, Any], Arrivals] = {}
    if frame.height == 0:
        return out
    for (endpoint, runtime), group in frame.group_by(["endpoint", "runtime"]):
        own_init = (
            pl.when(
                pl.col("cold_start")
                & (pl.col("initialization_type").fill_null("") != "provisioned-concurrency")
            )
            .then(pl.col("init_duration_ms"))
            .otherwise(None)
        )
        init = group.select(own_init.cast(pl.Float64).alias("init")).to_series().to_numpy()
        measured = init[~np.isnan(init)]
        estimate = float(measured.mean()) if measured.size else ASSUMED_INIT_MS
        duration = group["duration_ms"].fill_null(0.0).to_numpy().astype(float)
        cold = group["cold_start"].fill_null(value=False).to_numpy().astype(float)
        # The handler's own cold penalty (lazy loading on a first call): mean cold minus
        # mean warm handler duration, never negative; 0 without both kinds.
        penalty = 0.0
        if 0 < cold.sum() < cold.size:
            penalty = max(0.0, float(duration[cold > 0].mean()) - float(duration[cold == 0].mean()))
        out[(endpoint, runtime)] = Arrivals(
            start_s=group["start_s"].to_numpy().astype(float),
            end_s=group["end_s"].to_numpy().astype(float),
            duration_ms=duration,
            init_ms=init.astype(float),
            init_estimate_ms=estimate,
            cold=cold,
            penalty_ms=np.full(cold.size, penalty),
        )
    return out


def merge_arrivals(parts: Sequence[Arrivals], init_estimate_ms: float) -> Arrivals:
    """One stream of several workloads' arrivals (a serverless INIT estimate for all)."""
    import numpy as np

    return Arrivals(
        start_s=np.concatenate([p.start_s for p in parts]),
        end_s=np.concatenate([p.end_s for p in parts]),
        duration_ms=np.concatenate([p.duration_ms for p in parts]),
        # Requests that were cold elsewhere (a new pod) did not pay a serverless INIT.
        init_ms=np.full(sum(p.count for p in parts), np.nan),
        init_estimate_ms=init_estimate_ms,
        cold=np.concatenate([p.cold for p in parts if p.cold is not None]),
        penalty_ms=np.concatenate([p.penalty_ms for p in parts if p.penalty_ms is not None]),
    )


@dataclass(frozen=True)
class _Side:
    """The prices of one side of an endpoint (from a runtime_economics row)."""

    price_per_request_second: float
    price_per_request: float
    warm_unit_price_per_second: float
    provisioned_price_per_request_second: float | None
    serverless_concurrency: int
    keep_alive_s: float
    container_price_per_hour: float
    container_concurrency: int
    target_utilization: float
    min_instances: int


def _side(econ: Mapping[str, Any]) -> _Side | None:
    needed = (
        "price_per_request_second",
        "price_per_request",
        "warm_unit_price_per_second",
        "container_price_per_hour",
        "container_concurrency",
        "target_utilization",
    )
    if any(_num(econ, k) is None for k in needed):
        return None
    platform = str(econ.get("serverless_platform") or "aws_lambda")
    return _Side(
        price_per_request_second=float(econ["price_per_request_second"]),
        price_per_request=float(econ["price_per_request"]),
        warm_unit_price_per_second=float(econ["warm_unit_price_per_second"]),
        provisioned_price_per_request_second=_num(econ, "provisioned_price_per_request_second"),
        serverless_concurrency=int(_num(econ, "serverless_concurrency") or 1),
        keep_alive_s=KEEP_ALIVE_S.get(platform, DEFAULT_KEEP_ALIVE_S),
        container_price_per_hour=float(econ["container_price_per_hour"]),
        container_concurrency=int(econ["container_concurrency"]),
        target_utilization=float(econ["target_utilization"]),
        min_instances=int(_num(econ, "min_instances") or 0),
    )


def _serverless_cost(
    side: _Side, *, rate: float, duration_s: float, cold_per_s: float, init_s: float, units: int
) -> float:
    base = serverless_monthly_usd(
        requests_per_s=rate,
        duration_s=duration_s,
        price_per_request_second=side.price_per_request_second,
        price_per_request=side.price_per_request,
        cold_starts_per_s=cold_per_s,
        init_duration_s=max(0.0, init_s),
    )
    if units <= 0:
        return base
    gross = warm_capacity_monthly_usd(
        units=units, price_per_unit_second=side.warm_unit_price_per_second
    )
    discount = 0.0
    if side.provisioned_price_per_request_second is not None:
        # Invocations served by provisioned concurrency pay its lower duration rate.
        served = min(rate * duration_s, float(units)) * SECONDS_PER_MONTH
        discount = served * max(
            0.0, side.price_per_request_second - side.provisioned_price_per_request_second
        )
    return max(0.0, base + gross - discount)


def _fleet_base(side: _Side, rate: float, duration_s: float) -> int:
    return fleet_size(
        requests_per_s=rate,
        duration_s=duration_s,
        concurrency=side.container_concurrency,
        target_utilization=side.target_utilization,
        min_instances=max(1, side.min_instances),
    )


def _peak(arrivals: Arrivals) -> int:
    return int(arrivals.levels().max()) if arrivals.count else 0


def _serverless_plans(
    endpoint: Any,
    kind: str,
    description: str,
    *,
    changes: tuple[str, ...],
    side: _Side,
    arrivals: Arrivals | None,
    slo: float | None,
) -> list[Plan]:
    """A serverless plan without and with the warm capacity its SLO needs."""
    if arrivals is None or arrivals.count == 0 or arrivals.window_s <= 0:
        return []
    window = arrivals.window_s
    rate = arrivals.count / window
    duration_s = float(arrivals.duration_ms.mean()) / 1000.0
    init_s = arrivals.init_estimate_ms / 1000.0

    def project(units: int) -> Projection:
        return replay_serverless(
            arrivals,
            warm_units=units,
            keep_alive_s=side.keep_alive_s,
            concurrency=side.serverless_concurrency,
            # Staying on the same platform, its measured cold starts are facts.
            keep_measured_cold=kind == "stay",
        )

    def plan(p: Projection, plan_kind: str, text: str, notes: tuple[str, ...]) -> Plan:
        cost = _serverless_cost(
            side,
            rate=rate,
            duration_s=duration_s,
            cold_per_s=p.cold_starts / window,
            init_s=init_s,
            units=p.size,
        )
        return Plan(
            kind=plan_kind,
            endpoint=endpoint,
            description=text,
            changes=changes,
            monthly_cost_usd=round(cost, 2),
            projected_p95_ms=p.p95_ms,
            projected_cold_start_share=p.cold_start_share,
            meets_slo=slo is None or (p.p95_ms is not None and p.p95_ms <= slo),
            warm_units=p.size,
            notes=notes,
        )

    bare = project(0)
    plans = [plan(bare, kind, description, ())]
    if slo is None or (bare.p95_ms is not None and bare.p95_ms <= slo):
        return plans
    high = max(1, math.ceil(_peak(arrivals) / max(1, side.serverless_concurrency)))
    found, best = smallest_size(project, low=1, high=high, slo_ms=slo)
    unit = (
        "provisioned-concurrency unit(s)" if side.serverless_concurrency == 1 else "min instance(s)"
    )
    if found is not None:
        plans.append(
            plan(
                found,
                f"{kind}_warm" if kind != "stay" else "stay_warm",
                f"{description} + {found.size} {unit}",
                (),
            )
        )
    else:
        plans.append(
            plan(
                best,
                f"{kind}_warm" if kind != "stay" else "stay_warm",
                f"{description} + {best.size} {unit} (no size meets the SLO: warm latency "
                "alone misses it)",
                ("no warm capacity brings p95 within the SLO",),
            )
        )
    return plans


def _container_plans(
    endpoint: Any,
    kind: str,
    description: str,
    *,
    changes: tuple[str, ...],
    side: _Side,
    arrivals: Arrivals | None,
    slo: float | None,
) -> list[Plan]:
    if arrivals is None or arrivals.count == 0 or arrivals.window_s <= 0:
        return []
    rate = arrivals.count / arrivals.window_s
    duration_s = float(arrivals.duration_ms.mean()) / 1000.0
    base = _fleet_base(side, rate, duration_s)
    c = side.container_concurrency

    def project(instances: int) -> Projection:
        return _replace_size(replay_fleet(arrivals, slots=instances * c), instances)

    def plan(p: Projection, plan_kind: str, text: str, notes: tuple[str, ...] = ()) -> Plan:
        return Plan(
            kind=plan_kind,
            endpoint=endpoint,
            description=text,
            changes=changes,
            monthly_cost_usd=round(
                container_monthly_usd(
                    instances=p.size, price_per_hour=side.container_price_per_hour
                ),
                2,
            ),
            projected_p95_ms=p.p95_ms,
            projected_cold_start_share=0.0,
            meets_slo=slo is None or (p.p95_ms is not None and p.p95_ms <= slo),
            instances=p.size,
            notes=notes,
        )

    first = project(base)
    plans = [plan(first, kind, f"{description} ({base} instance(s))")]
    if slo is None or (first.p95_ms is not None and first.p95_ms <= slo):
        return plans
    high = max(base, math.ceil(_peak(arrivals) / max(1, c)))
    found, best = smallest_size(project, low=base, high=high, slo_ms=slo)
    sized = f"{kind}_sized" if kind != "stay" else "stay_warm"
    if found is not None and found.size != base:
        plans.append(plan(found, sized, f"{description} ({found.size} instance(s), sized for p95)"))
    elif found is None and best.size != base:
        plans.append(
            plan(
                best,
                sized,
                f"{description} ({best.size} instance(s); no size meets the SLO)",
                ("no fleet size brings p95 within the SLO",),
            )
        )
    return plans


def _stay_plan(
    endpoint: Any,
    rows: Sequence[Mapping[str, Any]],
    economics: Mapping[Any, Mapping[str, Any]],
    slo: float | None,
    names: tuple[str, ...],
) -> Plan:
    """Every deployment as today: today's cost, the measured p95s."""
    cost = sum(_num(economics.get(r.get("runtime")), "current_monthly_usd") or 0.0 for r in rows)
    p95s = [_num(r, "p95_ms") for r in rows]
    measured = [p for p in p95s if p is not None]
    meets = all(
        slo is None or (p is not None and p <= (_num(r, "slo_ms") or slo))
        for r, p in zip(rows, p95s, strict=True)
    )
    cold = sum(float(r.get("cold_starts") or 0) for r in rows)
    total = sum(float(r.get("requests") or 0) for r in rows)
    return Plan(
        kind="stay",
        endpoint=endpoint,
        description=" + ".join(names) + " as today",
        changes=(),
        monthly_cost_usd=round(cost, 2),
        projected_p95_ms=max(measured) if measured else None,
        projected_cold_start_share=cold / total if total else None,
        meets_slo=meets,
    )


def _stay_warm_plan(
    endpoint: Any,
    *,
    rows: Sequence[Mapping[str, Any]],
    economics: Mapping[Any, Mapping[str, Any]],
    sides: Mapping[Any, _Side],
    parts: Mapping[Any, Arrivals],
    slo: float | None,
    names: tuple[str, ...],
) -> Plan | None:
    """As today, plus the capacity each deployment missing its SLO needs."""
    cost, cold, units = 0.0, 0.0, 0
    p95s: list[float] = []
    changed: list[str] = []
    descriptions: list[str] = []
    feasible = True
    for r, name in zip(rows, names, strict=True):
        runtime = r.get("runtime")
        p95, own_slo = _num(r, "p95_ms"), _num(r, "slo_ms") or slo
        if own_slo is None or (p95 is not None and p95 <= own_slo):
            cost += _num(economics.get(runtime), "current_monthly_usd") or 0.0
            p95s.append(p95 or 0.0)
            cold += float(r.get("cold_starts") or 0)
            continue
        plans_for = _serverless_plans if runtime in _SERVERLESS else _container_plans
        options = plans_for(
            endpoint,
            "stay",
            name,
            changes=(),
            side=sides[runtime],
            arrivals=parts[runtime],
            slo=own_slo,
        )
        if len(options) < 2:
            return None
        fix = options[-1]
        feasible = feasible and fix.meets_slo
        cost += fix.monthly_cost_usd
        p95s.append(fix.projected_p95_ms or 0.0)
        cold += (fix.projected_cold_start_share or 0.0) * parts[runtime].count
        units += fix.warm_units
        changed.append(name)
        descriptions.append(fix.description)
    if not changed:
        return None
    total = sum(float(r.get("requests") or 0) for r in rows)
    return Plan(
        kind="stay_warm",
        endpoint=endpoint,
        description="; ".join(descriptions),
        changes=tuple(changed),
        monthly_cost_usd=round(cost, 2),
        projected_p95_ms=max(p95s) if p95s else None,
        projected_cold_start_share=cold / total if total else None,
        meets_slo=feasible,
        warm_units=units,
        notes=() if feasible else ("no capacity brings p95 within the SLO",),
    )


def _consolidated_plans(
    endpoint: Any,
    *,
    rows: Sequence[Mapping[str, Any]],
    sides: Mapping[Any, _Side],
    parts: Mapping[Any, Arrivals],
    slo: float | None,
    names: tuple[str, ...],
) -> list[Plan]:
    """All the endpoint's traffic on one runtime: containers, and serverless."""
    import numpy as np

    plans: list[Plan] = []
    known = list(parts.values())
    serverless_rows = [r for r in rows if r.get("runtime") in _SERVERLESS]
    container_rows = [r for r in rows if r.get("runtime") == RUNTIME_CONTAINER]
    # All on containers: the prices of the endpoint's container deployment if it has one.
    target = container_rows[0] if container_rows else rows[0]
    moving = tuple(n for r, n in zip(rows, names, strict=True) if r not in container_rows)
    if moving:
        where = (
            deployment_name(endpoint, RUNTIME_CONTAINER, target.get("platform"))
            if container_rows
            else f"{endpoint} on containers"
        )
        merged = merge_arrivals(known, ASSUMED_INIT_MS)
        side = sides[target.get("runtime")]
        plans += _container_plans(
            endpoint,
            "all_containers",
            f"all traffic on {where}",
            changes=moving,
            side=side,
            arrivals=merged,
            slo=slo,
        )
    # All on serverless: the serverless deployment's platform, prices and measured INIT.
    target = serverless_rows[0] if serverless_rows else rows[0]
    moving = tuple(n for r, n in zip(rows, names, strict=True) if r not in serverless_rows)
    if moving:
        inits = [parts[r.get("runtime")].init_ms for r in serverless_rows]
        measured = np.concatenate(inits) if inits else np.array([])
        measured = measured[~np.isnan(measured)]
        estimate = float(measured.mean()) if measured.size else ASSUMED_INIT_MS
        where = (
            deployment_name(endpoint, target.get("runtime"), target.get("platform"))
            if serverless_rows
            else f"{endpoint} on serverless"
        )
        options = _serverless_plans(
            endpoint,
            "all_serverless",
            f"all traffic on {where}",
            changes=moving,
            side=sides[target.get("runtime")],
            arrivals=merge_arrivals(known, estimate),
            slo=slo,
        )
        if not measured.size:
            note = f"INIT assumed {ASSUMED_INIT_MS:.0f} ms (none measured on serverless)"
            options = [_replace(o, notes=(*o.notes, note)) for o in options]
        plans += options
    return plans


def endpoint_plans(
    endpoint: Any,
    workloads: Sequence[Mapping[str, Any]],
    economics: Mapping[Any, Mapping[str, Any]],
    arrivals: Mapping[tuple[Any, Any], Arrivals] | None,
) -> tuple[list[Plan], float | None, tuple[str, ...]]:
    """Every plan of one endpoint (its workload metric rows, their runtime_economics rows
    by runtime, the arrivals by (endpoint, runtime)), its SLO and deployment names."""
    rows = sorted(workloads, key=lambda r: -int(r.get("requests") or 0))
    names = tuple(deployment_name(endpoint, r.get("runtime"), r.get("platform")) for r in rows)
    slos = [s for s in (_num(r, "slo_ms") for r in rows) if s is not None]
    slo = min(slos) if slos else None
    plans = [_stay_plan(endpoint, rows, economics, slo, names)]
    sides = {r.get("runtime"): _side(economics.get(r.get("runtime")) or {}) for r in rows}
    parts = {r.get("runtime"): (arrivals or {}).get((endpoint, r.get("runtime"))) for r in rows}
    known_sides = {k: v for k, v in sides.items() if v is not None}
    known_parts = {k: v for k, v in parts.items() if v is not None and v.count}
    if len(known_sides) == len(rows) and len(known_parts) == len(rows):
        if not plans[0].meets_slo:
            warm = _stay_warm_plan(
                endpoint,
                rows=rows,
                economics=economics,
                sides=known_sides,
                parts=known_parts,
                slo=slo,
                names=names,
            )
            if warm is not None:
                plans.append(warm)
        plans += _consolidated_plans(
            endpoint, rows=rows, sides=known_sides, parts=known_parts, slo=slo, names=names
        )
    elif len(rows) == 1:
        econ = economics.get(rows[0].get("runtime")) or {}
        plans += _frame_only_move(endpoint, rows[0], econ, slo, names[0])
    return plans, slo, names


def _frame_only_move(
    endpoint: Any, row: Mapping[str, Any], econ: Mapping[str, Any], slo: float | None, name: str
) -> list[Plan]:
    """Without measured arrivals, the move of a single deployment priced from its economics
    row; p95 by COMPUTE.md's rule: an always-on fleet serves at the warm p95; on serverless,
    cold starts above the p95's 5 % tail make p95 ~ warm latency + INIT."""
    runtime = row.get("runtime")
    warm = _num(row, "warm_p95_ms")
    if warm is None:
        warm = _num(row, "p95_ms")

    def meets(p95: float | None) -> bool:
        return slo is None or (p95 is not None and p95 <= slo)

    if runtime in _SERVERLESS:
        cost = _num(econ, "container_monthly_usd")
        if cost is None:
            return []
        instances = econ.get("container_instances")
        return [
            Plan(
                kind="all_containers",
                endpoint=endpoint,
                description=f"{endpoint} on containers ({instances} instance(s))",
                changes=(name,),
                monthly_cost_usd=round(cost, 2),
                projected_p95_ms=warm,
                projected_cold_start_share=0.0,
                meets_slo=meets(warm),
                instances=None if instances is None else int(instances),
                notes=("p95 projected as the warm p95 (no arrivals replayed)",),
            )
        ]
    if runtime == RUNTIME_CONTAINER:
        cost = _num(econ, "serverless_monthly_usd")
        rate = _num(econ, "requests_per_s") or 0.0
        cold = (_num(econ, "cold_starts_per_s") or 0.0) / rate if rate > 0 else 0.0
        init = _num(row, "mean_init_duration_ms") or ASSUMED_INIT_MS
        if cost is None:
            return []
        p95 = None if warm is None else (warm + init if cold > 0.05 else warm)
        return [
            Plan(
                kind="all_serverless",
                endpoint=endpoint,
                description=f"{endpoint} on serverless",
                changes=(name,),
                monthly_cost_usd=round(cost, 2),
                projected_p95_ms=p95,
                projected_cold_start_share=cold,
                meets_slo=meets(p95),
                notes=(
                    f"cold starts projected e^-lambda.T, INIT {init:.0f} ms (no arrivals replayed)",
                ),
            )
        ]
    return []


def _replace_size(projection: Projection, size: int) -> Projection:
    import dataclasses

    return dataclasses.replace(projection, size=size)


def _replace(plan: Plan, **changes: Any) -> Plan:
    import dataclasses

    return dataclasses.replace(plan, **changes)


def choose(
    endpoint: Any,
    plans: Sequence[Plan],
    slo: float | None,
    names: tuple[str, ...],
    runtimes: tuple[str | None, ...],
    *,
    min_saving_usd: float,
    min_saving_share: float,
) -> EndpointDecision | None:
    """The cheapest plan meeting the SLO (see the module docstring), and the runner-up."""
    if not plans:
        return None
    stay = plans[0]
    priced = [
        _replace(p, monthly_cost_change_usd=round(p.monthly_cost_usd - stay.monthly_cost_usd, 2))
        for p in plans
    ]
    stay = priced[0]

    # Eligible: plans meeting the SLO; when none does (a handler slower than the SLO),
    # plans whose projected p95 is no worse than today's - cost still decides among them.
    reachable = any(p.meets_slo for p in priced)
    today = stay.projected_p95_ms

    def eligible(p: Plan) -> bool:
        if reachable:
            return p.meets_slo
        if p.kind == "stay":
            return True
        return today is not None and p.projected_p95_ms is not None and p.projected_p95_ms <= today

    def order(p: Plan) -> tuple[int, float, int]:
        # Eligible plans first, cheapest first, today's setup first at a tie.
        return (0 if eligible(p) else 1, p.monthly_cost_usd, 0 if p.kind == "stay" else 1)

    ranked = sorted(priced, key=order)
    chosen = ranked[0]
    if chosen.kind != "stay" and eligible(stay):
        # A change that only saves money must save enough to be worth making.
        saving = stay.monthly_cost_usd - chosen.monthly_cost_usd
        if saving < min_saving_usd or saving < min_saving_share * stay.monthly_cost_usd:
            chosen = stay
    runner_up = next((p for p in ranked if p is not chosen), None)
    why = _why(chosen, runner_up, slo)
    return EndpointDecision(
        endpoint=endpoint,
        slo_ms=slo,
        plans=tuple(priced),
        chosen=chosen,
        runner_up=runner_up,
        why=why,
        deployments=names,
        runtimes=runtimes,
        replayed=any(p.kind in {"stay_warm", "all_containers", "all_serverless"} for p in plans)
        and not any("no arrivals replayed" in n for p in plans for n in p.notes),
    )


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _why(chosen: Plan, runner_up: Plan | None, slo: float | None) -> str:
    if runner_up is None:
        return "the only plan"
    if not runner_up.meets_slo and slo is not None:
        p95 = runner_up.projected_p95_ms
        shown = "unknown" if p95 is None else f"{p95:,.0f} ms"
        return (
            f"runner-up {runner_up.description} ({_money(runner_up.monthly_cost_usd)}/month) "
            f"misses the {slo:,.0f} ms SLO (p95 {shown})"
        )
    difference = runner_up.monthly_cost_usd - chosen.monthly_cost_usd
    if difference >= 0:
        return (
            f"runner-up {runner_up.description} costs {_money(difference)}/month more "
            f"({_money(runner_up.monthly_cost_usd)}/month)"
        )
    return (
        f"runner-up {runner_up.description} would save {_money(-difference)}/month, below "
        "the threshold a change must clear"
    )
