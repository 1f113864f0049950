"""GPU break-even arithmetic: self-hosting against a token API, and always-on GPU instances
against a scale-to-zero serverless GPU. Pure float functions, one formula each.

Notation: demand d tokens/s (measured), throughput t tokens/s per GPU while busy
(measured from the model server's spans), g GPUs per instance, u_t the target utilisation,
P_h the instance price per hour, p the API's blended price per token at the measured
input/output mix, S = 2,628,000 s per month (730 h).

- Fleet: n = max(n_min, ⌈d / (t·g·u_t)⌉); always-on cost C_gpu = n·P_h·730; achieved
  utilisation u = d / (n·t·g).
- API: C_api = d·S·p.
- Break-even volume with the smallest fleet: V* = n_min·P_h·730 / p tokens per month. It
  exists only when the API costs more per token than the fleet at its target utilisation,
  p > P_h / (3600·t·g·u_t); below that price the API wins at every volume.
- Serverless GPU (per-second billing, scale to zero after an idle timeout T, model load L
  on every cold start): with Poisson arrivals λ an instance is up whenever a request came
  in the last T seconds, share 1 - e^(-λT) of the time (at least its busy share), and each
  of the λ·e^(-λT) cold starts per second bills L more. Billed share f = min(1, max(1 -
  e^(-λT), busy) + λ·e^(-λT)·L). C_sl = price per second·S·(n_min + (n - n_min)·f).
- Crossover: containers win above the billed share f* = P_h / (3600·price per second), i.e.
  above λ* = -ln(1 - f*) / T requests per second.
"""

from __future__ import annotations

import math

from infermeter.analytics.economics._math import HOURS_PER_MONTH, SECONDS_PER_MONTH

__all__ = [
    "api_monthly_usd",
    "breakeven_tokens_per_month",
    "cold_start_fraction",
    "crossover_billed_fraction",
    "crossover_requests_per_s",
    "gpu_fleet_size",
    "serverless_billed_fraction",
    "serverless_gpu_monthly_usd",
]


def gpu_fleet_size(
    *,
    tokens_per_s: float,
    throughput_per_gpu: float,
    gpus_per_instance: int,
    target_utilization: float,
    min_instances: int = 1,
) -> int:
    """n = max(n_min, ⌈d / (t·g·u_t)⌉)."""
    if throughput_per_gpu <= 0 or gpus_per_instance <= 0 or not 0 < target_utilization <= 1:
        raise ValueError("throughput and GPUs must be positive, target utilization in (0, 1]")
    capacity = throughput_per_gpu * gpus_per_instance * target_utilization
    # Rounding noise must not buy a whole extra GPU instance.
    return max(min_instances, math.ceil(round(tokens_per_s / capacity, 9)))


def api_monthly_usd(*, tokens_per_s: float, usd_per_token: float) -> float:
    """C_api = d·S·p."""
    return tokens_per_s * SECONDS_PER_MONTH * usd_per_token


def breakeven_tokens_per_month(
    *,
    price_per_hour: float,
    usd_per_token: float,
    throughput_per_gpu: float,
    gpus_per_instance: int,
    target_utilization: float,
    min_instances: int = 1,
) -> float | None:
    """V* = n_min·P_h·730 / p, or None when the API is cheaper per token than the fleet at
    its target utilisation (then no volume makes self-hosting pay)."""
    if usd_per_token <= 0:
        return None
    capacity_per_hour = throughput_per_gpu * gpus_per_instance * target_utilization * 3600.0
    if capacity_per_hour <= 0 or usd_per_token <= price_per_hour / capacity_per_hour:
        return None
    return max(1, min_instances) * price_per_hour * HOURS_PER_MONTH / usd_per_token


def cold_start_fraction(*, requests_per_s: float, idle_timeout_s: float) -> float:
    """Share of requests that find no instance up: e^(-λT) (Poisson arrivals)."""
    return math.exp(-requests_per_s * idle_timeout_s)


def serverless_billed_fraction(
    *,
    requests_per_s: float,
    idle_timeout_s: float,
    model_load_s: float,
    busy_fraction: float = 0.0,
) -> float:
    """f = min(1, max(1 - e^(-λT), busy) + λ·e^(-λT)·L): the share of the month one
    scale-to-zero instance is up and billed."""
    idle_gap = math.exp(-requests_per_s * idle_timeout_s)
    up = max(1.0 - idle_gap, busy_fraction)
    return min(1.0, up + requests_per_s * idle_gap * model_load_s)


def serverless_gpu_monthly_usd(
    *, usd_per_second: float, instances: int, min_instances: int, billed_fraction: float
) -> float:
    """Minimum instances bill every second; the others their billed share."""
    always = min(min_instances, instances)
    scaled = max(instances - always, 0)
    return usd_per_second * SECONDS_PER_MONTH * (always + scaled * billed_fraction)


def crossover_billed_fraction(
    *, container_price_per_hour: float, serverless_usd_per_second: float
) -> float:
    """f* = P_h / (3600·price per second): above this billed share containers are cheaper."""
    return container_price_per_hour / (3600.0 * serverless_usd_per_second)


def crossover_requests_per_s(*, billed_fraction: float, idle_timeout_s: float) -> float | None:
    """λ* = -ln(1 - f*) / T, or None when f* ≥ 1 (serverless is cheaper even always up)."""
    if billed_fraction >= 1.0 or idle_timeout_s <= 0:
        return None
    return -math.log(1.0 - billed_fraction) / idle_timeout_s
