"""Runtime economics per workload: serverless vs an always-on fleet at the measured load.

``runtime_economics`` turns a metrics frame grouped by (endpoint, runtime) into the
monthly cost of the same load on each side, the crossover utilization, and what warm
capacity (provisioned concurrency / min instances sized to the baseline concurrency)
would cost. The arithmetic is in ``_economics_math``; this module only picks the prices
that apply to a workload (its platform, architecture and deployment facts).

Everything is a projection of the measured window to a 730-hour month at list prices,
without free tiers (they are per account, not per workload). Serverless functions bill the
wall-clock time a handler waits on a model API; a container serving requests concurrently
does not - the main reason I/O-bound LLM endpoints cross over at low utilization.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from infermeter.agent.semconv import (
    RUNTIME_CONTAINER,
    RUNTIME_SERVERLESS,
    RUNTIME_SERVERLESS_CONTAINER,
)
from infermeter.analytics._values import number
from infermeter.analytics.economics._math import (
    SECONDS_PER_MONTH,
    cold_start_probability,
    container_monthly_usd,
    crossover_utilization,
    fleet_size,
    provisioned_concurrency_breakeven,
    serverless_monthly_usd,
    warm_capacity_monthly_usd,
)

if TYPE_CHECKING:
    import polars as pl
    from infermeter.analytics.economics._deployments import Deployment, Deployments
    from infermeter.analytics.pricing._prices import ComputePrices, PriceBook

__all__ = [
    "ECONOMICS_COLUMNS",
    "KEEP_ALIVE_S",
    "WorkloadRates",
    "runtime_economics",
    "workload_rates",
]

# Idle lifetime assumed when projecting cold starts of a workload that is not serverless
# today (AWS/Azure fixed keep-alive 10/20 min, "Serverless in the Wild"; Lambda measured 25-65).
KEEP_ALIVE_S: Final = 600.0

ECONOMICS_COLUMNS: Final[dict[str, str]] = {
    "endpoint": "workload endpoint",
    "runtime": "runtime it runs on today",
    "platform": "platform it runs on today (cloud.platform)",
    "serverless_platform": "serverless price model used (aws_lambda, gcp_cloud_run, ...)",
    "requests": "requests in the measured window",
    "window_s": "length of the measured window (s)",
    "requests_per_s": "measured mean arrival rate (lambda)",
    "mean_duration_s": "mean request duration (D, s)",
    "mean_concurrency": "requests in flight, lambda x D (Little's law)",
    "memory_gb": "memory per function / instance (GiB)",
    "cold_starts_per_s": "cold starts per second (measured, or projected e^-lambda.T)",
    "init_duration_s": "mean INIT duration of a cold start (s; an estimate, never negative)",
    "init_duration_source": "measured (infermeter.init_duration) or an estimate and from what",
    "price_per_request_second": "serverless price of one request-second of wall clock (r)",
    "price_per_request": "serverless fee per request (p_req)",
    "serverless_concurrency": "requests one serverless environment serves at once",
    "warm_unit_price_per_second": "one warm unit (PC unit / idle min instance) per second",
    "provisioned_price_per_request_second": "r while served by provisioned concurrency",
    "serverless_monthly_usd": "serverless cost of the measured load for 730 h",
    "serverless_init_monthly_usd": "part of it paying for INIT on cold starts",
    "container_price_per_hour": "price of one instance per hour (P_h)",
    "container_concurrency": "requests one instance serves at once (c)",
    "target_utilization": "utilisation the fleet is sized for (u_t)",
    "min_instances": "the fleet's minimum instance count (n_min)",
    "container_instances": "n = max(n_min, ceil(lambda x D / (c x u_t)))",
    "container_monthly_usd": "n x P_h x 730",
    "crossover_utilization": "u*: above it the fleet is cheaper",
    "measured_utilization": "fleet utilisation at the measured load",
    "warm_capacity_kind": "provisioned_concurrency or min_instances",
    "warm_capacity_units": "units sized to the baseline concurrency",
    "warm_capacity_monthly_usd": "what keeping them warm bills per month (gross)",
    "warm_capacity_net_monthly_usd": "gross minus the cheaper duration it earns (PC only)",
    "warm_capacity_utilization": "baseline concurrency / units",
    "warm_capacity_breakeven_utilization": "PC pays off above this utilisation",
    "current_monthly_usd": "projected monthly cost on the runtime it uses today",
    "cheaper_runtime": "serverless or container at the measured load",
    "monthly_saving_usd": "projected saving of moving to the cheaper runtime (0 if there)",
    "note": "caveats of this row",
}

_MIB_PER_GIB: Final = 1024.0
_SERVERLESS_RUNTIMES: Final = frozenset({RUNTIME_SERVERLESS, RUNTIME_SERVERLESS_CONTAINER})


@dataclass(frozen=True)
class WorkloadRates:
    """Prices applying to one workload, resolved from the price book and its deployment."""

    serverless_platform: str
    # r: price of one request-second of wall clock on the serverless side.
    price_per_request_second: float
    price_per_request: float
    warm_capacity_kind: str
    # One warm unit (a PC unit of this memory, or one idle min instance) per second.
    warm_unit_price_per_second: float
    # Requests one serverless unit serves at once (1 for Lambda).
    serverless_concurrency: int
    # Lambda PC only: price of a request-second while served by provisioned concurrency.
    provisioned_price_per_request_second: float | None
    warm_capacity_breakeven_utilization: float | None
    container_price_per_hour: float
    container_concurrency: int
    target_utilization: float
    min_instances: int
    memory_gb: float


def _price(compute: ComputePrices | Mapping[str, float], name: str) -> float:
    value = compute[name] if isinstance(compute, Mapping) else getattr(compute, name)
    # Price entries may carry their source: take the number.
    amount: Any = getattr(value, "usd", value)
    return float(amount)


def _serverless_platform(platform: str | None) -> str:
    name = (platform or "").lower()
    if "gcp" in name or "cloud_run" in name:
        return "gcp_cloud_run"
    if "azure" in name:
        return "azure_container_apps"
    return "aws_lambda"


def workload_rates(
    compute: ComputePrices | Mapping[str, float],
    serverless: Deployment,
    container: Deployment,
    *,
    memory_mb: float | None = None,
) -> WorkloadRates:
    """Resolve the prices of one workload from ``PriceBook.compute`` and the ``Deployment``
    of each side: ``serverless`` (the function or serverless container it is, or would be)
    and ``container`` (the fleet it is, or would be).

    ``memory_mb`` measured on the spans (``faas.max_memory``) wins over the deployment's.
    """
    memory_gb = float(memory_mb or serverless.memory_mb) / _MIB_PER_GIB
    vcpu = float(serverless.vcpu)
    concurrency = int(serverless.concurrency)
    platform = _serverless_platform(serverless.platform)
    provisioned: float | None = None
    breakeven: float | None = None
    if platform in {"gcp_cloud_run", "azure_container_apps"}:
        # Concurrent serverless containers bill instance time, shared by the requests in it.
        prefix = "cloud_run" if platform == "gcp_cloud_run" else "container_apps"
        if prefix == "cloud_run":
            active_vcpu = _price(compute, "cloud_run_request_vcpu_s")
            active_gib = _price(compute, "cloud_run_request_gib_s")
            idle_vcpu = _price(compute, "cloud_run_idle_vcpu_s")
            idle_gib = _price(compute, "cloud_run_idle_gib_s")
        else:
            active_vcpu = _price(compute, "container_apps_active_vcpu_s")
            idle_vcpu = _price(compute, "container_apps_idle_vcpu_s")
            active_gib = idle_gib = _price(compute, "container_apps_gib_s")
        per_request_second = (vcpu * active_vcpu + memory_gb * active_gib) / concurrency
        per_request = _price(compute, f"{prefix}_request")
        warm_kind = "min_instances"
        warm_unit = vcpu * idle_vcpu + memory_gb * idle_gib
        serverless_concurrency = concurrency
    else:
        arm = (serverless.architecture or "").lower() in {"arm64", "arm", "aarch64", "graviton"}
        suffix = "arm" if arm else "x86"
        gb_second = _price(compute, f"lambda_{suffix}_gb_s")
        pc_gb_second = _price(compute, f"lambda_pc_{suffix}_gb_s")
        pc_duration_gb_second = _price(compute, f"lambda_pc_duration_{suffix}_gb_s")
        per_request_second = memory_gb * gb_second
        per_request = _price(compute, "lambda_request")
        warm_kind = "provisioned_concurrency"
        warm_unit = memory_gb * pc_gb_second
        serverless_concurrency = 1
        provisioned = memory_gb * pc_duration_gb_second
        breakeven = provisioned_concurrency_breakeven(
            price_per_gb_second=gb_second,
            provisioned_price_per_gb_second=pc_gb_second,
            provisioned_duration_price_per_gb_second=pc_duration_gb_second,
        )
    return WorkloadRates(
        serverless_platform=platform,
        price_per_request_second=per_request_second,
        price_per_request=per_request,
        warm_capacity_kind=warm_kind,
        warm_unit_price_per_second=warm_unit,
        serverless_concurrency=serverless_concurrency,
        provisioned_price_per_request_second=provisioned,
        warm_capacity_breakeven_utilization=breakeven,
        container_price_per_hour=float(container.instance_price_per_hour),
        container_concurrency=int(container.concurrency),
        target_utilization=float(container.target_utilization),
        min_instances=int(container.min_instances),
        memory_gb=memory_gb,
    )


def _init_estimate(row: Mapping[str, Any]) -> tuple[float, str]:
    """INIT per cold start (ms) and where it comes from; never negative."""
    measured = number(row, "mean_init_duration_ms")
    if measured is not None:
        return max(0.0, measured), "measured"
    penalty = number(row, "cold_start_penalty_ms")
    if penalty is not None:
        return max(0.0, penalty), "estimate: cold-start p95 penalty, floored at 0"
    return 0.0, "estimate: none measured, 0"


def _economics_row(row: Mapping[str, Any], rates: WorkloadRates) -> dict[str, Any]:
    runtime = row.get("runtime")
    out: dict[str, Any] = {
        "endpoint": row.get("endpoint"),
        "runtime": runtime,
        "platform": row.get("platform"),
        "serverless_platform": rates.serverless_platform,
        "requests": int(row.get("requests") or 0),
        "window_s": number(row, "window_s"),
        "memory_gb": rates.memory_gb,
        "price_per_request_second": rates.price_per_request_second,
        "price_per_request": rates.price_per_request,
        "serverless_concurrency": rates.serverless_concurrency,
        "warm_unit_price_per_second": rates.warm_unit_price_per_second,
        "provisioned_price_per_request_second": rates.provisioned_price_per_request_second,
        "min_instances": rates.min_instances,
        "container_price_per_hour": rates.container_price_per_hour,
        "container_concurrency": rates.container_concurrency,
        "target_utilization": rates.target_utilization,
        "warm_capacity_kind": rates.warm_capacity_kind,
        "warm_capacity_breakeven_utilization": rates.warm_capacity_breakeven_utilization,
    }
    rate = number(row, "requests_per_s")
    duration_ms = number(row, "mean_duration_ms")
    if not rate or not duration_ms or rate <= 0 or duration_ms <= 0:
        out["note"] = "no measured load (no requests or no duration in the window)"
        return out
    duration_s = duration_ms / 1000.0
    in_flight = rate * duration_s
    window_s = number(row, "window_s")
    cold_starts = number(row, "cold_starts")
    notes: list[str] = []
    if runtime in _SERVERLESS_RUNTIMES and cold_starts is not None and window_s:
        cold_per_s = cold_starts / window_s
    else:
        # One warm environment, Poisson arrivals: each arrival is cold with P = e^-lambda.T.
        cold_per_s = rate * cold_start_probability(requests_per_s=rate, keep_alive_s=KEEP_ALIVE_S)
        notes.append("serverless cold starts projected (keep-alive 10 min)")
    # INIT billed per cold start: the measured mean where the spans carry it, else the
    # cold-start p95 penalty as an estimate - floored at zero (cold calls that happened to be
    # shorter than warm ones do not make INIT a refund).
    init_ms, init_source = _init_estimate(row)
    if init_source != "measured" and cold_per_s > 0:
        notes.append("INIT cost is an estimate (no infermeter.init_duration on cold starts)")
    init_s = init_ms / 1000.0
    serverless = serverless_monthly_usd(
        requests_per_s=rate,
        duration_s=duration_s,
        price_per_request_second=rates.price_per_request_second,
        price_per_request=rates.price_per_request,
        cold_starts_per_s=cold_per_s,
        init_duration_s=init_s,
    )
    instances = fleet_size(
        requests_per_s=rate,
        duration_s=duration_s,
        concurrency=rates.container_concurrency,
        target_utilization=rates.target_utilization,
        min_instances=max(1, rates.min_instances),
    )
    container = container_monthly_usd(
        instances=instances, price_per_hour=rates.container_price_per_hour
    )
    measured = number(row, "utilization") if runtime == RUNTIME_CONTAINER else None
    if measured is None:
        measured = in_flight / (instances * rates.container_concurrency)
    units = max(1, math.ceil(round(in_flight / rates.serverless_concurrency, 9)))
    gross = warm_capacity_monthly_usd(
        units=units, price_per_unit_second=rates.warm_unit_price_per_second
    )
    net = gross
    if rates.provisioned_price_per_request_second is not None:
        # Invocations served by PC pay the lower duration rate; that offsets part of the fee.
        served = min(in_flight, units) * SECONDS_PER_MONTH
        net = gross - served * (
            rates.price_per_request_second - rates.provisioned_price_per_request_second
        )
    current: float | None = None
    if runtime in _SERVERLESS_RUNTIMES:
        current = serverless
    elif runtime == RUNTIME_CONTAINER:
        current = container
    cheaper = RUNTIME_CONTAINER if container < serverless else RUNTIME_SERVERLESS
    saving: float | None = None
    if current is not None:
        saving = max(0.0, current - min(serverless, container))
    else:
        notes.append("runtime unknown: no saving computed")
    if (window_s or 0) < 86_400:
        notes.append("window under one day: monthly figures extrapolate a short sample")
    out.update(
        requests_per_s=rate,
        mean_duration_s=duration_s,
        mean_concurrency=in_flight,
        cold_starts_per_s=cold_per_s,
        init_duration_s=init_s,
        init_duration_source=init_source,
        serverless_monthly_usd=serverless,
        serverless_init_monthly_usd=cold_per_s
        * SECONDS_PER_MONTH
        * init_s
        * rates.price_per_request_second,
        container_instances=instances,
        container_monthly_usd=container,
        crossover_utilization=crossover_utilization(
            price_per_hour=rates.container_price_per_hour,
            concurrency=rates.container_concurrency,
            price_per_request_second=rates.price_per_request_second,
            price_per_request=rates.price_per_request,
            duration_s=duration_s,
        ),
        measured_utilization=measured,
        warm_capacity_units=units,
        warm_capacity_monthly_usd=gross,
        warm_capacity_net_monthly_usd=net,
        warm_capacity_utilization=min(1.0, in_flight / units),
        current_monthly_usd=current,
        cheaper_runtime=cheaper,
        monthly_saving_usd=saving,
        note="; ".join(notes) or None,
    )
    return out


def _schema() -> dict[str, Any]:
    import polars as pl

    strings = {
        "endpoint",
        "runtime",
        "platform",
        "serverless_platform",
        "warm_capacity_kind",
        "cheaper_runtime",
        "note",
    }
    strings.add("init_duration_source")
    ints = {
        "requests",
        "container_instances",
        "warm_capacity_units",
        "container_concurrency",
        "serverless_concurrency",
        "min_instances",
    }
    return {
        name: pl.String if name in strings else pl.Int64 if name in ints else pl.Float64
        for name in ECONOMICS_COLUMNS
    }


def runtime_economics(
    metrics_frame: pl.DataFrame, *, prices: PriceBook, deployments: Deployments
) -> pl.DataFrame:
    """Monthly cost of each workload's measured load on serverless and on containers.

    ``metrics_frame`` is ``metrics(requests, by=("endpoint", "runtime"))`` (extra group
    columns are ignored; ``platform``, ``mean_init_duration_ms`` and ``memory_mb`` are used
    when present). The serverless side is priced with ``deployments.for_workload(endpoint,
    runtime)`` for a workload on serverless today, else ``(endpoint, "serverless")``; the
    container side with ``(endpoint, "container")`` - so a deployments file entry for the
    other runtime describes the candidate. Prices come from ``prices.compute``. Columns:
    :data:`ECONOMICS_COLUMNS`.
    """
    import polars as pl

    rows = []
    for row in metrics_frame.iter_rows(named=True):
        endpoint, runtime = row.get("endpoint"), row.get("runtime")
        on_serverless = runtime in _SERVERLESS_RUNTIMES
        # Each side's facts: the workload's own deployment for the side it runs on, the
        # same endpoint's entry (or the runtime defaults) for the side it would move to.
        serverless = deployments.for_workload(
            endpoint, runtime if on_serverless else RUNTIME_SERVERLESS
        )
        container = deployments.for_workload(endpoint, RUNTIME_CONTAINER)
        enriched = dict(row)
        if not enriched.get("platform"):
            current = serverless if on_serverless else container
            enriched["platform"] = current.platform
        # Memory seen on the spans is the function's configured size; a container's is not.
        memory_mb = number(row, "memory_mb") if on_serverless else None
        rates = workload_rates(prices.compute, serverless, container, memory_mb=memory_mb)
        rows.append(_economics_row(enriched, rates))
    return pl.DataFrame(rows, schema=_schema())
