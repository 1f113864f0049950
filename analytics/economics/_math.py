"""Break-even arithmetic of serverless functions against an always-on fleet.

Pure float functions, one formula each, named as in ``COMPUTE.md`` ("Break-even math"):
λ requests/s, D mean billed duration (s), r the price of one request-second of wall clock
(Lambda: memory GB x GB-s price; a concurrent serverless container: its vCPU-s + GiB-s price
shared by the requests in flight), p_req the per-request fee, P_h the hourly price of one
instance, c the requests one instance serves at once, u_t the target utilisation.

Serverless functions bill the wall-clock time a handler spends waiting on a model API; a
container serving many requests at once does not, which is why I/O-bound LLM orchestration
crosses over at a few percent utilisation while CPU-bound work crosses near 50 %.
"""

from __future__ import annotations

import math
from typing import Final

__all__ = [
    "HOURS_PER_MONTH",
    "SECONDS_PER_MONTH",
    "cold_start_probability",
    "container_monthly_usd",
    "crossover_utilization",
    "fleet_size",
    "provisioned_concurrency_breakeven",
    "serverless_monthly_usd",
    "warm_capacity_monthly_usd",
]

# AWS and Google both bill a "month" as 730 hours in their calculators.
HOURS_PER_MONTH: Final = 730
SECONDS_PER_MONTH: Final = HOURS_PER_MONTH * 3600


def serverless_monthly_usd(
    *,
    requests_per_s: float,
    duration_s: float,
    price_per_request_second: float,
    price_per_request: float,
    cold_starts_per_s: float = 0.0,
    init_duration_s: float = 0.0,
) -> float:
    """C_fn = λ·S·(D·r + p_req) + cold starts·S·INIT·r (Lambda bills INIT since 2025-08)."""
    invocations = requests_per_s * SECONDS_PER_MONTH
    cold_starts = cold_starts_per_s * SECONDS_PER_MONTH
    return (
        invocations * (duration_s * price_per_request_second + price_per_request)
        + cold_starts * init_duration_s * price_per_request_second
    )


def fleet_size(
    *,
    requests_per_s: float,
    duration_s: float,
    concurrency: int,
    target_utilization: float,
    min_instances: int = 0,
) -> int:
    """n = max(n_min, ⌈λ·D / (c·u_t)⌉): Little's law gives the mean requests in flight."""
    if concurrency <= 0 or not 0.0 < target_utilization <= 1.0:
        raise ValueError("concurrency must be positive and target utilization in (0, 1]")
    in_flight = requests_per_s * duration_s
    # Rounding noise (e.g. 4.0000000001) must not buy a whole extra instance.
    needed = math.ceil(round(in_flight / (concurrency * target_utilization), 9))
    return max(min_instances, needed)


def container_monthly_usd(*, instances: int, price_per_hour: float) -> float:
    """C_fleet = n·P_h·730: an always-on fleet bills every hour, busy or not."""
    return instances * price_per_hour * HOURS_PER_MONTH


def crossover_utilization(
    *,
    price_per_hour: float,
    concurrency: int,
    price_per_request_second: float,
    price_per_request: float,
    duration_s: float,
) -> float:
    """u* = (P_h/3600) / (c·(r + p_req/D)): above this achieved utilisation the fleet is
    cheaper than paying per request."""
    per_busy_slot_second = price_per_request_second + price_per_request / duration_s
    return (price_per_hour / 3600.0) / (concurrency * per_busy_slot_second)


def warm_capacity_monthly_usd(*, units: float, price_per_unit_second: float) -> float:
    """Provisioned concurrency / min instances bill every second they are configured."""
    return units * price_per_unit_second * SECONDS_PER_MONTH


def provisioned_concurrency_breakeven(
    *,
    price_per_gb_second: float,
    provisioned_price_per_gb_second: float,
    provisioned_duration_price_per_gb_second: float,
) -> float:
    """PC pays off above this utilisation of the provisioned units (≈60 % on Lambda x86):
    the PC fee must be covered by the cheaper duration rate of the invocations it serves."""
    saving = price_per_gb_second - provisioned_duration_price_per_gb_second
    if saving <= 0:
        return math.inf
    return provisioned_price_per_gb_second / saving


def cold_start_probability(*, requests_per_s: float, keep_alive_s: float) -> float:
    """P(cold) ≈ e^(-λT) for one warm environment, Poisson arrivals, keep-alive T.

    Derived, not published (COMPUTE.md): 1 req/h with a 10-min keep-alive is cold 85 % of
    the time, 1 req/min almost never."""
    return math.exp(-requests_per_s * keep_alive_s)
