"""Self-hosted models on GPUs: three questions answered from the measured load.

1. **Self-host or use the API?** The API's list price per token (blended at the measured
   input/output mix) against the GPU fleet the measured demand needs at the throughput the
   model server showed (tokens per GPU-second of busy time, from its spans), with the
   break-even volume.
2. **Always-on GPU containers or a scale-to-zero serverless GPU?** Per-second billing while
   an instance is up, an idle timeout, the model load (measured from the spans' INIT) on
   every cold start, minimum instances; the crossover as a billed share of the hour and as
   a request rate, as for CPU.
3. **One plan:** the CPU glue in front of the model (the endpoint whose requests call it)
   on serverless or containers, plus the GPU side, priced together.

``infermeter.analytics.query.self_hosted_load`` reads the spans; ``gpu_economics``
prices it (pure, polars in and out); ``gpu_recommendations`` turns rows into
:class:`~infermeter.analytics.economics.Recommendation` values. What spans cannot say
comes from the deployments file's ``[[self_hosted]]`` entries (:class:`SelfHostedModel`)::

    [[self_hosted]]
    model = "bge-small-en-v1.5"            # as the spans name it
    api_model = "text-embedding-3-small"   # the API it would otherwise call
    instance = "g6.xlarge"                 # always-on GPU instance to price
    min_instances = 1
    target_utilization = 0.7
    serverless_gpu = "gcp_cloud_run_l4"    # the scale-to-zero candidate
    idle_timeout_s = 900                   # default: the service's (Cloud Run: 15 min)
    model_load_s = 40                      # default: the INIT measured on cold starts
    throughput_tokens_per_s = 2500         # per GPU; default: measured
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from infermeter.agent.semconv import RUNTIME_SERVERLESS, RUNTIME_SERVERLESS_CONTAINER
from infermeter.agent.settings import ConfigurationError
from infermeter.analytics.economics._gpu import (
    api_monthly_usd,
    breakeven_tokens_per_month,
    cold_start_fraction,
    crossover_billed_fraction,
    crossover_requests_per_s,
    gpu_fleet_size,
    serverless_billed_fraction,
    serverless_gpu_monthly_usd,
)
from infermeter.analytics.economics._math import SECONDS_PER_MONTH
from infermeter.analytics.pricing._gpu_prices import (
    DEFAULT_GPU_INSTANCE,
    DEFAULT_SERVERLESS_GPU,
    GpuInstance,
    normalize_gpu_type,
)

if TYPE_CHECKING:
    import duckdb
    import polars as pl
    from infermeter.analytics.economics._deployments import Deployments
    from infermeter.analytics.economics._recommend import Recommendation, RecommendationThresholds
    from infermeter.analytics.pricing._prices import PriceBook

__all__ = [
    "GPU_ECONOMICS_COLUMNS",
    "GPU_KINDS",
    "SelfHostedModel",
    "gpu_answers",
    "gpu_economics",
    "gpu_recommendations",
    "parse_self_hosted",
    "plans",
    "without_model_servers",
]

GPU_KINDS: Final = ("self_host_or_api", "gpu_serverless_or_containers", "gpu_plan")

_SERVERLESS_RUNTIMES: Final = frozenset({RUNTIME_SERVERLESS, RUNTIME_SERVERLESS_CONTAINER})
# A p95 stops ignoring cold starts once more than 5 % of requests are cold (COMPUTE.md).
_COLD_SHARE_IN_P95: Final = 0.05


@dataclass(frozen=True)
class SelfHostedModel:
    """Deployment facts of one self-hosted model (``[[self_hosted]]`` in the deployments
    file); None = measured from the spans or the documented default."""

    model: str
    api_model: str | None = None
    api_provider: str | None = None
    instance: str | None = None
    serverless_gpu: str = DEFAULT_SERVERLESS_GPU
    gpu_type: str | None = None
    gpus: int | None = None
    min_instances: int = 1
    serverless_min_instances: int = 0
    target_utilization: float = 0.7
    idle_timeout_s: float | None = None
    model_load_s: float | None = None
    throughput_tokens_per_s: float | None = None


_TEXT: Final = ("model", "api_model", "api_provider", "instance", "serverless_gpu", "gpu_type")
_WHOLE: Final = ("gpus", "min_instances", "serverless_min_instances")
_REAL: Final = ("target_utilization", "idle_timeout_s", "model_load_s", "throughput_tokens_per_s")


def _checked_entry(  # noqa: PLR0912 - one check per kind of field
    path: Path, where: str, entry: object
) -> SelfHostedModel:
    if not isinstance(entry, Mapping):
        raise ConfigurationError(f"deployments file {path}: {where} must be a table")
    unknown = set(entry) - {*_TEXT, *_WHOLE, *_REAL}
    if unknown:
        raise ConfigurationError(
            f"deployments file {path}: {where} has unknown keys {sorted(unknown)}; "
            f"allowed: {sorted({*_TEXT, *_WHOLE, *_REAL})}"
        )
    values: dict[str, Any] = {}
    for name, value in entry.items():
        if name in _TEXT:
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(f"deployments file {path}: {where}.{name} must be text")
            values[name] = value.strip()
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigurationError(f"deployments file {path}: {where}.{name} must be a number")
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise ConfigurationError(f"deployments file {path}: {where}.{name} must be >= 0")
        if name in _WHOLE:
            if number != int(number) or (name == "gpus" and number < 1):
                raise ConfigurationError(
                    f"deployments file {path}: {where}.{name} must be a whole number"
                )
            values[name] = int(number)
        elif name == "target_utilization" and not 0 < number <= 1:
            raise ConfigurationError(
                f"deployments file {path}: {where}.target_utilization must be in (0, 1]"
            )
        elif name == "throughput_tokens_per_s" and number == 0:
            raise ConfigurationError(
                f"deployments file {path}: {where}.throughput_tokens_per_s must be > 0"
            )
        else:
            values[name] = number
    if "model" not in values:
        raise ConfigurationError(f'deployments file {path}: {where} needs model = "..."')
    return SelfHostedModel(**values)


def parse_self_hosted(path: Path, section: object) -> tuple[SelfHostedModel, ...]:
    """The deployments file's ``[[self_hosted]]`` entries, checked (one-line errors)."""
    if section is None:
        return ()
    if not isinstance(section, list):
        raise ConfigurationError(f"deployments file {path}: self_hosted must be a list")
    return tuple(
        _checked_entry(path, f"self_hosted[{i}]", entry) for i, entry in enumerate(section)
    )


def _config(deployments: Deployments, model: str) -> SelfHostedModel:
    for entry in deployments.self_hosted:
        if entry.model == model:
            return entry
    return SelfHostedModel(model=model)


# --- load ---------------------------------------------------------------------------------------


# --- economics --------------------------------------------------------------------------------

GPU_ECONOMICS_COLUMNS: Final[dict[str, str]] = {
    "model": "self-hosted model (as the spans name it)",
    "service_name": "service running the model server",
    "runtime": "runtime of the model server today",
    "platform": "platform of the model server (cloud.platform)",
    "requests": "model calls in the window",
    "window_s": "measured window (s)",
    "requests_per_s": "lambda: model calls per second",
    "input_tokens": "input tokens in the window",
    "output_tokens": "output tokens in the window",
    "tokens_per_s": "d: demand, tokens per second",
    "tokens_per_request": "mean tokens per call",
    "mean_queue_ms": "mean time waiting in the server's queue",
    "mean_model_ms": "mean time in the model",
    "gpu_type": "GPU type (spans or deployments file)",
    "gpus": "GPUs per model server",
    "busy_s": "GPU busy seconds (union of model intervals per instance)",
    "busy_fraction": "busy seconds / (window x instances seen)",
    "throughput_per_gpu": "t: tokens per GPU-second while busy",
    "throughput_source": "measured or deployments",
    "instance": "always-on GPU instance priced",
    "instance_price_per_hour": "P_h (list, on-demand)",
    "instance_price_source": "where P_h comes from, and its date",
    "instance_gpus": "g: GPUs per instance",
    "target_utilization": "u_t",
    "min_instances": "n_min of the always-on fleet",
    "instances_needed": "n = max(n_min, ceil(d / (t g u_t)))",
    "utilization": "u = d / (n t g): achieved GPU utilisation",
    "gpu_monthly_usd": "always-on fleet: n x P_h x 730",
    "gpu_per_million_usd": "self-hosted cost per 1M tokens at utilisation u",
    "api_model": "API model compared with",
    "api_per_million_usd": "p: API list price per 1M tokens at the measured mix",
    "api_monthly_usd": "the measured tokens on the API for 730 h",
    "breakeven_tokens_per_month": "V* = n_min P_h 730 / p (None: the API always wins)",
    "breakeven_requests_per_s": "V* in calls per second",
    "self_host_verdict": "self_host or api (cheaper at the measured volume)",
    "self_host_saving_usd": "monthly saving of the cheaper side",
    "serverless_gpu": "scale-to-zero GPU service priced",
    "serverless_price_per_hour": "per instance-hour while up (GPU + required vCPU/memory)",
    "idle_timeout_s": "T: an idle instance stays up this long",
    "model_load_s": "L: model load on a cold start",
    "model_load_source": "measured (INIT of cold starts), deployments, or none",
    "serverless_instances": "instances the load needs on serverless GPU",
    "serverless_min_instances": "minimum serverless instances",
    "serverless_billed_fraction": "f: share of the month an instance is billed",
    "serverless_billed_source": "measured arrivals (replayed) or poisson (average rate)",
    "serverless_cold_fraction": "share of calls that would start cold (or measured)",
    "serverless_monthly_usd": "serverless GPU for 730 h",
    "crossover_billed_fraction": "f* = P_h / serverless hourly: containers win above",
    "crossover_requests_per_s": "lambda* = -ln(1 - f*) / T",
    "gpu_current": "containers or serverless today",
    "gpu_cheaper": "containers or serverless at the measured load",
    "gpu_saving_usd": "monthly saving of the cheaper GPU side",
    "warm_p95_ms": "p95 of warm calls",
    "p95_ms": "p95 of all calls",
    "glue_endpoint": "endpoint whose requests call the model (the CPU glue)",
    "glue_runtime": "runtime of that endpoint",
    "note": "caveats",
}


def _num(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    if value is None or isinstance(value, str):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _instance_for(prices: PriceBook, config: SelfHostedModel, row: Mapping[str, Any]) -> Any:
    """The instance to price: the file's, else the cheapest with the spans' GPU (same
    cloud when known), else the bundled default. Returns (instance, note or '')."""
    gpu = prices.gpu
    if config.instance is not None:
        found = gpu.instance(config.instance)
        if found is None:
            return gpu.instance(DEFAULT_GPU_INSTANCE), (
                f"instance {config.instance!r} has no price; priced as {DEFAULT_GPU_INSTANCE}"
            )
        return found, ""
    gpu_type = config.gpu_type or row.get("gpu_type")
    gpus = config.gpus or int(row.get("gpu_count") or 1)
    found = gpu.cheapest(gpu_type, gpus, row.get("cloud_provider"))
    if found is not None:
        return found, ""
    return gpu.instance(DEFAULT_GPU_INSTANCE), (
        f"GPU {gpu_type or 'unknown'} x{gpus} not in the price table; priced as "
        f"{DEFAULT_GPU_INSTANCE} (set instance in [[self_hosted]])"
    )


def _api_price(prices: PriceBook, config: SelfHostedModel, model: str) -> Any:
    name = config.api_model or model
    price = prices.token_price(name, config.api_provider)
    if price is None and config.api_model is None:
        return None, "no API price to compare with (set api_model in [[self_hosted]])"
    if price is None:
        return None, f"API model {config.api_model!r} has no token price"
    return price, ""


# The gap histogram is capped at one hour (sql/self_hosted_load.sql).
_GAP_CAP_S: Final = 3600.0


def _replayed_arrivals(
    row: Mapping[str, Any], idle_s: float, load_s: float, window_s: float, requests: int
) -> tuple[float, float] | None:
    """(billed share, cold share) of one scale-to-zero instance replaying the measured
    arrivals: after each call it stays up its duration plus the idle timeout unless the
    next call comes first; a call arriving after that is cold and bills the model load."""
    histogram = row.get("gap_histogram")
    duration_s = (_num(row, "mean_duration_ms") or 0.0) / 1000.0
    if histogram is None or idle_s + duration_s > _GAP_CAP_S or window_s <= 0:
        return None
    keep = duration_s + idle_s
    up_s = keep  # after the last call
    cold = 1  # the first call finds nothing up
    for bucket in histogram:
        gap, calls = float(bucket["gap_s"]), int(bucket["calls"])
        up_s += calls * min(gap, keep)
        if gap > keep:
            cold += calls
    return min(1.0, (up_s + cold * load_s) / window_s), cold / max(requests, 1)


def _row(  # noqa: PLR0912, PLR0915 - one projection, written out in order
    row: Mapping[str, Any], prices: PriceBook, deployments: Deployments
) -> dict[str, Any]:
    model = str(row.get("model"))
    config = _config(deployments, model)
    notes: list[str] = []
    out: dict[str, Any] = {k: row.get(k) for k in GPU_ECONOMICS_COLUMNS if k in row}
    requests = int(row.get("requests") or 0)
    window_s = _num(row, "window_s") or 0.0
    input_tokens = int(row.get("input_tokens") or 0)
    output_tokens = int(row.get("output_tokens") or 0)
    tokens = input_tokens + output_tokens
    gpus = config.gpus or int(row.get("gpu_count") or 1)
    out.update(gpus=gpus, gpu_type=config.gpu_type or row.get("gpu_type"))
    instance, why = _instance_for(prices, config, row)
    if why:
        notes.append(why)
    assert isinstance(instance, GpuInstance)
    out.update(
        instance=instance.name,
        instance_price_per_hour=instance.usd_per_hour,
        instance_price_source=f"{instance.source} ({instance.date}; not re-fetched)"
        if not prices.gpu.refetched and instance.provider != "custom"
        else f"{instance.source} ({instance.date})",
        instance_gpus=instance.gpus,
        target_utilization=config.target_utilization,
        min_instances=config.min_instances,
        api_model=config.api_model,
        gpu_current="serverless" if row.get("runtime") in _SERVERLESS_RUNTIMES else "containers",
        # A server observed as its own entry (a decorated handler) is its own endpoint.
        glue_endpoint=row.get("glue_endpoint") or row.get("endpoint"),
        glue_runtime=row.get("glue_runtime") if row.get("glue_endpoint") else None,
    )
    busy_s = _num(row, "busy_s") or 0.0
    seen = max(int(row.get("instances") or 1), 1)
    if window_s <= 0 or requests == 0:
        out["note"] = "no measured load"
        return out
    rate = requests / window_s
    demand = tokens / window_s
    out.update(
        requests_per_s=rate,
        tokens_per_s=demand,
        tokens_per_request=tokens / requests,
        busy_fraction=min(1.0, busy_s / (window_s * seen)),
    )
    if config.throughput_tokens_per_s is not None:
        throughput: float | None = config.throughput_tokens_per_s
        out["throughput_source"] = "deployments"
    elif busy_s > 0 and tokens > 0:
        throughput = tokens / busy_s / gpus
        out["throughput_source"] = "measured"
        if out["busy_fraction"] < 0.5:
            notes.append(
                "throughput measured at the concurrency the load gave; a busier server "
                "batches more, so the GPU cost per token is an upper bound"
            )
    else:
        throughput = None
        notes.append("no tokens or busy time measured: no throughput")
    out["throughput_per_gpu"] = throughput
    # GPU-seconds of work per second: the demand over the throughput, or (a server that
    # reports no tokens: an image model, a Triton ensemble) the measured busy GPU time.
    if throughput is not None:
        gpu_load = demand / throughput
    elif busy_s > 0:
        gpu_load = busy_s * gpus / window_s
        notes.append("sized from busy GPU time (no token counts): no API comparison")
    else:
        out["note"] = "; ".join(notes)
        return out
    n = gpu_fleet_size(
        tokens_per_s=gpu_load,
        throughput_per_gpu=1.0,
        gpus_per_instance=instance.gpus,
        target_utilization=config.target_utilization,
        min_instances=max(1, config.min_instances),
    )
    gpu_monthly = n * instance.usd_per_hour * 730
    out.update(
        instances_needed=n,
        utilization=gpu_load / (n * instance.gpus),
        gpu_monthly_usd=gpu_monthly,
        gpu_per_million_usd=gpu_monthly / (demand * SECONDS_PER_MONTH) * 1e6 if demand else None,
    )
    # (1) self-host or API
    price, why = _api_price(prices, config, model)
    if why:
        notes.append(why)
    if price is not None and tokens > 0 and throughput is not None:
        per_token = (input_tokens * price.input + output_tokens * price.output) / tokens
        api = api_monthly_usd(tokens_per_s=demand, usd_per_token=per_token)
        breakeven = breakeven_tokens_per_month(
            price_per_hour=instance.usd_per_hour,
            usd_per_token=per_token,
            throughput_per_gpu=throughput,
            gpus_per_instance=instance.gpus,
            target_utilization=config.target_utilization,
            min_instances=max(1, config.min_instances),
        )
        out.update(
            api_model=price.model,
            api_per_million_usd=per_token * 1e6,
            api_monthly_usd=api,
            breakeven_tokens_per_month=breakeven,
            breakeven_requests_per_s=None
            if breakeven is None
            else breakeven / (tokens / requests) / SECONDS_PER_MONTH,
            self_host_verdict="self_host" if gpu_monthly < api else "api",
            self_host_saving_usd=abs(api - gpu_monthly),
        )
    # (2) always-on containers or scale-to-zero serverless GPU
    serverless = prices.gpu.serverless.get(config.serverless_gpu)
    if serverless is None:
        notes.append(f"no serverless GPU {config.serverless_gpu!r} in the price table")
    else:
        idle = (
            config.idle_timeout_s
            if config.idle_timeout_s is not None
            else (serverless.idle_timeout_s)
        )
        init_ms = _num(row, "mean_init_duration_ms") or _num(row, "last_init_duration_ms")
        if config.model_load_s is not None:
            load_s, load_source = config.model_load_s, "deployments"
        elif init_ms is not None:
            load_s, load_source = init_ms / 1000.0, "measured"
        else:
            load_s, load_source = 0.0, "none"
            notes.append("no cold start measured: model load taken as 0 s")
        n_sl = gpu_fleet_size(
            tokens_per_s=gpu_load,
            throughput_per_gpu=1.0,
            gpus_per_instance=serverless.gpus,
            target_utilization=config.target_utilization,
            min_instances=max(1, config.serverless_min_instances),
        )
        busy = gpu_load / (n_sl * serverless.gpus)
        measured = None
        if n_sl == 1 and config.serverless_min_instances == 0:
            measured = _replayed_arrivals(row, idle, load_s, window_s, requests)
        if measured is not None:
            billed, cold = measured
            out["serverless_billed_source"] = "measured arrivals"
        else:
            billed = serverless_billed_fraction(
                requests_per_s=rate / n_sl,
                idle_timeout_s=idle,
                model_load_s=load_s,
                busy_fraction=busy,
            )
            cold = (
                0.0
                if config.serverless_min_instances >= 1
                else cold_start_fraction(requests_per_s=rate / n_sl, idle_timeout_s=idle)
            )
            out["serverless_billed_source"] = "poisson"
        cold_starts = _num(row, "cold_starts")
        if out["gpu_current"] == "serverless" and cold_starts is not None:
            cold = cold_starts / requests  # measured where it runs scale-to-zero today
        sl_monthly = serverless_gpu_monthly_usd(
            usd_per_second=serverless.usd_per_second,
            instances=n_sl,
            min_instances=config.serverless_min_instances,
            billed_fraction=billed,
        )
        f_star = crossover_billed_fraction(
            container_price_per_hour=instance.usd_per_hour,
            serverless_usd_per_second=serverless.usd_per_second,
        )
        out.update(
            serverless_gpu=serverless.name,
            serverless_price_per_hour=serverless.usd_per_hour,
            idle_timeout_s=idle,
            model_load_s=load_s,
            model_load_source=load_source,
            serverless_instances=n_sl,
            serverless_min_instances=config.serverless_min_instances,
            serverless_billed_fraction=billed,
            serverless_cold_fraction=cold,
            serverless_monthly_usd=sl_monthly,
            crossover_billed_fraction=f_star,
            crossover_requests_per_s=crossover_requests_per_s(
                billed_fraction=f_star, idle_timeout_s=idle
            ),
            gpu_cheaper="serverless" if sl_monthly < gpu_monthly else "containers",
            gpu_saving_usd=abs(gpu_monthly - sl_monthly),
        )
        running = normalize_gpu_type(out.get("gpu_type")) or serverless.gpu_type
        if serverless.gpu_type != running:
            notes.append(
                f"serverless GPU is {serverless.gpu_type}, the model runs on "
                f"{out.get('gpu_type')}: throughput assumed equal"
            )
    if window_s < 86_400:
        notes.append("window under one day: monthly figures extrapolate a short sample")
    out["note"] = "; ".join(notes) or None
    return out


def _schema() -> dict[str, Any]:
    import polars as pl

    strings = {
        "model",
        "service_name",
        "runtime",
        "platform",
        "gpu_type",
        "throughput_source",
        "instance",
        "instance_price_source",
        "api_model",
        "self_host_verdict",
        "serverless_gpu",
        "model_load_source",
        "serverless_billed_source",
        "gpu_current",
        "gpu_cheaper",
        "glue_endpoint",
        "glue_runtime",
        "note",
    }
    ints = {
        "requests",
        "input_tokens",
        "output_tokens",
        "gpus",
        "instance_gpus",
        "min_instances",
        "instances_needed",
        "serverless_instances",
        "serverless_min_instances",
    }
    return {
        name: pl.String if name in strings else pl.Int64 if name in ints else pl.Float64
        for name in GPU_ECONOMICS_COLUMNS
    }


def gpu_economics(
    load: pl.DataFrame, *, prices: PriceBook, deployments: Deployments
) -> pl.DataFrame:
    """Price every self-hosted model of ``load`` (``self_hosted_load`` output) three ways:
    always-on GPU instances, the API, a scale-to-zero serverless GPU. Columns:
    :data:`GPU_ECONOMICS_COLUMNS`. Pure: prices and deployments in, a frame out."""
    import polars as pl

    rows = [_row(row, prices, deployments) for row in load.iter_rows(named=True)]
    schema = _schema()
    return pl.DataFrame([{name: row.get(name) for name in schema} for row in rows], schema=schema)


# --- recommendations ---------------------------------------------------------------------------


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def _tokens(value: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:,.1f}{unit}"
    return f"{value:,.0f}"


def _evidence(row: Mapping[str, Any], keys: Sequence[str]) -> dict[str, float | str]:
    evidence: dict[str, float | str] = {}
    for key in keys:
        value = row.get(key)
        if value is None:
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isnan(float(value)):
                evidence[key] = round(float(value), 9)
        else:
            evidence[key] = str(value)
    return evidence


def _confidence(
    row: Mapping[str, Any], saving: float, cost: float, thresholds: RecommendationThresholds
) -> float:
    from infermeter.analytics.economics._recommend import confidence

    base = confidence(int(row.get("requests") or 0), float(row.get("window_s") or 0), thresholds)
    # A verdict near break-even flips with a small change in load: trust it less.
    margin = min(1.0, (saving / cost) / 0.3) if cost > 0 else 1.0
    return round(base * (0.5 + 0.5 * margin), 3)


def _self_host_rule(
    row: Mapping[str, Any], thresholds: RecommendationThresholds
) -> Recommendation | None:
    from infermeter.analytics.economics._recommend import Recommendation, confidence_label

    verdict = row.get("self_host_verdict")
    api, gpu = _num(row, "api_monthly_usd"), _num(row, "gpu_monthly_usd")
    if verdict is None or api is None or gpu is None:
        return None
    saving = abs(api - gpu)
    value = _confidence(row, saving, max(api, gpu), thresholds)
    model = row["model"]
    breakeven = _num(row, "breakeven_tokens_per_month")
    monthly_tokens = float(row["tokens_per_s"]) * SECONDS_PER_MONTH
    if breakeven is None:
        where = (
            f"the API ({row['api_model']}) is cheaper per token than {row['instance']} even at "
            f"{row['target_utilization']:.0%} utilization: no volume makes self-hosting pay"
        )
    else:
        where = (
            f"break-even at {_tokens(breakeven)} tokens/month "
            f"({float(row['breakeven_requests_per_s']):.3g} calls/s); measured "
            f"{_tokens(monthly_tokens)} tokens/month"
        )
    basis = (
        f"{row['instances_needed']} x {row['instance']} at ${row['instance_price_per_hour']:.4g}/h "
        f"= {_money(gpu)}/month ({row['throughput_per_gpu']:,.0f} tokens/s per GPU "
        f"{row['throughput_source']}, {row['utilization']:.1%} utilization, "
        f"{_money(_num(row, 'gpu_per_million_usd'))} per 1M tokens) vs {row['api_model']} at "
        f"{_money(_num(row, 'api_per_million_usd'))} per 1M tokens = {_money(api)}/month"
    )
    if verdict == "self_host":
        title = f"Keep self-hosting {model}: {_money(gpu)}/month vs {_money(api)} on the API"
        action = "Self-hosting is cheaper at this volume."
    else:
        title = (
            f"Use the API ({row['api_model']}) instead of self-hosting {model}: "
            f"save ~${saving:,.0f}/month"
        )
        action = "The GPU mostly idles at this volume; the API bills only the tokens."
    return Recommendation(
        kind="self_host_or_api",
        endpoint=row.get("glue_endpoint"),
        runtime=row.get("runtime"),
        tenant=None,
        title=title,
        rationale=f"{basis}; {where}. {action} Projection of the measured window to 730 h at "
        "list prices (GPU prices not re-fetched: see instance_price_source).",
        evidence=_evidence(
            row,
            (
                "model",
                "requests",
                "window_s",
                "tokens_per_s",
                "tokens_per_request",
                "throughput_per_gpu",
                "throughput_source",
                "gpu_type",
                "gpus",
                "instance",
                "instance_price_per_hour",
                "instance_price_source",
                "instances_needed",
                "utilization",
                "gpu_monthly_usd",
                "gpu_per_million_usd",
                "api_model",
                "api_per_million_usd",
                "api_monthly_usd",
                "breakeven_tokens_per_month",
                "breakeven_requests_per_s",
                "self_host_verdict",
                "self_host_saving_usd",
                "note",
            ),
        ),
        confidence=value,
        confidence_label=confidence_label(value),
        # Self-hosting today: moving to the API saves money only when the verdict says so
        # (keeping the status quo saves nothing; what it avoids is self_host_saving_usd).
        monthly_cost_change_usd=round(-saving, 2) if verdict == "api" else None,
    )


def _gpu_runtime_rule(
    row: Mapping[str, Any], thresholds: RecommendationThresholds
) -> Recommendation | None:
    from infermeter.analytics.economics._recommend import Recommendation, confidence_label

    cheaper = row.get("gpu_cheaper")
    containers, serverless = _num(row, "gpu_monthly_usd"), _num(row, "serverless_monthly_usd")
    if cheaper is None or containers is None or serverless is None:
        return None
    saving = abs(containers - serverless)
    value = _confidence(row, saving, max(containers, serverless), thresholds)
    model = row["model"]
    cold = _num(row, "serverless_cold_fraction") or 0.0
    load_s = _num(row, "model_load_s") or 0.0
    f_star = float(row["crossover_billed_fraction"])
    lam_star = _num(row, "crossover_requests_per_s")
    crossover = (
        f"containers win once a serverless instance would be up more than {f_star:.0%} of the "
        "time" + ("" if lam_star is None else f" (above {lam_star:.3g} calls/s)")
        if f_star < 1
        else "serverless is cheaper per hour even when always up"
    )
    basis = (
        f"at {row['requests_per_s']:.3g} calls/s a scale-to-zero {row['serverless_gpu']} "
        f"(${row['serverless_price_per_hour']:.4g}/h while up, idle timeout "
        f"{row['idle_timeout_s']:.0f} s) would be billed {row['serverless_billed_fraction']:.0%} "
        f"of the month ({row['serverless_billed_source']}) = {_money(serverless)} vs "
        f"{row['instances_needed']} always-on "
        f"{row['instance']} = {_money(containers)}; {crossover}"
    )
    risk = ""
    warm = _num(row, "warm_p95_ms")
    p95_cold: float | None = None
    if cheaper == "serverless" and cold > _COLD_SHARE_IN_P95:
        p95_cold = (warm or 0.0) + load_s * 1000.0
        risk = (
            f" Caveat: {cold:.0%} of calls would wait for a model load ({load_s:.0f} s, "
            f"{row['model_load_source']}), so p95 becomes ~{p95_cold / 1000:.1f} s unless one "
            "minimum instance stays up (which bills the whole month)."
        )
    current = row.get("gpu_current")
    if cheaper == current:
        title = (
            f"Keep {model} on "
            + ("always-on GPU containers" if cheaper == "containers" else "serverless GPU")
            + f": {_money(min(containers, serverless))}/month"
            + f" vs {_money(max(containers, serverless))}"
        )
        saving_out: float | None = None
    else:
        title = (
            f"Serve {model} on "
            + (
                "always-on GPU containers"
                if cheaper == "containers"
                else "scale-to-zero serverless GPU"
            )
            + f": save ~${saving:,.0f}/month"
        )
        saving_out = round(saving, 2)
    evidence = _evidence(
        row,
        (
            "model",
            "requests",
            "window_s",
            "requests_per_s",
            "busy_fraction",
            "instance",
            "instance_price_per_hour",
            "instances_needed",
            "gpu_monthly_usd",
            "serverless_gpu",
            "serverless_price_per_hour",
            "idle_timeout_s",
            "model_load_s",
            "model_load_source",
            "serverless_min_instances",
            "serverless_billed_fraction",
            "serverless_billed_source",
            "serverless_cold_fraction",
            "serverless_monthly_usd",
            "crossover_billed_fraction",
            "crossover_requests_per_s",
            "gpu_current",
            "gpu_cheaper",
            "gpu_saving_usd",
            "warm_p95_ms",
            "p95_ms",
        ),
    )
    if p95_cold is not None:
        evidence["projected_p95_with_cold_starts_ms"] = round(p95_cold, 1)
    return Recommendation(
        kind="gpu_serverless_or_containers",
        endpoint=row.get("glue_endpoint"),
        runtime=row.get("runtime"),
        tenant=None,
        title=title,
        rationale=f"{basis}.{risk} Per-second billing while up; the crossover rate assumes "
        "Poisson arrivals (COMPUTE.md); projection to 730 h at list prices.",
        evidence=evidence,
        confidence=value,
        confidence_label=confidence_label(value),
        monthly_cost_change_usd=None if saving_out is None else -saving_out,
    )


def plans(row: Mapping[str, Any], glue: Mapping[str, Any] | None) -> dict[str, float]:
    """Monthly cost of each whole plan: CPU glue (serverless or containers, from the runtime
    economics of the glue endpoint) plus the model (GPU containers, serverless GPU, API)."""
    out: dict[str, float] = {}
    gpu_sides = {
        "GPU containers": _num(row, "gpu_monthly_usd"),
        "serverless GPU": _num(row, "serverless_monthly_usd"),
        "the API": _num(row, "api_monthly_usd"),
    }
    glue_sides = {
        "serverless": None if glue is None else _num(glue, "serverless_monthly_usd"),
        "containers": None if glue is None else _num(glue, "container_monthly_usd"),
    }
    for glue_name, glue_cost in glue_sides.items():
        for model_name, model_cost in gpu_sides.items():
            if glue_cost is not None and model_cost is not None:
                out[f"CPU glue on {glue_name} + model on {model_name}"] = glue_cost + model_cost
    return out


def _plan_rule(
    row: Mapping[str, Any], glue: Mapping[str, Any] | None, thresholds: RecommendationThresholds
) -> Recommendation | None:
    from infermeter.analytics.economics._recommend import Recommendation, confidence_label

    options = plans(row, glue)
    if glue is None or not options:
        return None
    glue_now = "serverless" if row.get("glue_runtime") in _SERVERLESS_RUNTIMES else "containers"
    model_now = "GPU containers" if row.get("gpu_current") == "containers" else "serverless GPU"
    current_name = f"CPU glue on {glue_now} + model on {model_now}"
    current = options.get(current_name)
    best_name = min(options, key=lambda name: options[name])
    best = options[best_name]
    saving = 0.0 if current is None else max(0.0, current - best)
    kept = best_name == current_name or saving <= 0
    value = _confidence(row, saving, current or best, thresholds)
    listing = "; ".join(
        f"{name} {_money(cost)}" for name, cost in sorted(options.items(), key=lambda kv: kv[1])
    )
    evidence: dict[str, float | str] = {
        "model": str(row["model"]),
        "glue_endpoint": str(row.get("glue_endpoint")),
        "glue_runtime": str(row.get("glue_runtime")),
        "current_plan": current_name,
        "best_plan": best_name,
    }
    if current is not None:
        evidence["current_plan_monthly_usd"] = round(current, 2)
    evidence["best_plan_monthly_usd"] = round(best, 2)
    for name, cost in options.items():
        evidence[f"plan: {name}"] = round(cost, 2)
    path = f"Plan for {row.get('glue_endpoint')} + {row['model']}"
    if kept:
        title = f"{path}: keep {best_name} ({_money(best)}/month)"
    else:
        title = f"{path}: {best_name}, save ~${saving:,.0f}/month"
    return Recommendation(
        kind="gpu_plan",
        endpoint=row.get("glue_endpoint"),
        runtime=row.get("glue_runtime"),
        tenant=None,
        title=title,
        rationale=(
            f"The whole path priced as one plan (glue from the runtime economics of "
            f"{row.get('glue_endpoint')}, model from the GPU economics): {listing}. Serverless "
            "glue bills the wall-clock time it waits on the model; a concurrent container does "
            "not. Projection to 730 h at list prices."
        ),
        evidence=evidence,
        confidence=value,
        confidence_label=confidence_label(value),
        monthly_cost_change_usd=None if kept else round(-saving, 2),
    )


def gpu_recommendations(
    gpu: pl.DataFrame,
    *,
    economics: pl.DataFrame | None = None,
    thresholds: RecommendationThresholds | None = None,
) -> list[Recommendation]:
    """The three GPU questions as recommendations for every row of ``gpu_economics``;
    ``economics`` (``runtime_economics`` of the workloads) prices the glue of each plan.
    Models with too little data get one ``insufficient_data`` recommendation instead."""
    from infermeter.analytics.economics._recommend import (
        DEFAULT_THRESHOLDS,
        Recommendation,
    )

    limits = thresholds or DEFAULT_THRESHOLDS
    glue_rows: dict[tuple[Any, Any], Mapping[str, Any]] = {}
    if economics is not None:
        for econ in economics.iter_rows(named=True):
            glue_rows[(econ.get("endpoint"), econ.get("runtime"))] = econ
    found: list[Recommendation] = []
    for row in gpu.iter_rows(named=True):
        requests = int(row.get("requests") or 0)
        window_s = float(row.get("window_s") or 0.0)
        if requests < limits.min_requests or window_s < limits.min_window_s:
            found.append(
                Recommendation(
                    kind="insufficient_data",
                    endpoint=row.get("glue_endpoint"),
                    runtime=row.get("runtime"),
                    tenant=None,
                    title=f"Not enough data to judge self-hosted {row['model']}",
                    rationale=f"Only {requests} calls over {window_s / 60:.0f} min (needs >= "
                    f"{limits.min_requests} over >= {limits.min_window_s / 60:.0f} min).",
                    evidence={
                        "model": str(row["model"]),
                        "requests": float(requests),
                        "window_s": window_s,
                    },
                    confidence=0.0,
                    confidence_label="none",
                )
            )
            continue
        glue = glue_rows.get((row.get("glue_endpoint"), row.get("glue_runtime")))
        for rec in (
            _self_host_rule(row, limits),
            _gpu_runtime_rule(row, limits),
            _plan_rule(row, glue, limits),
        ):
            if rec is not None:
                found.append(rec)
    return found


def without_model_servers(
    requests: duckdb.DuckDBPyRelation, self_hosted: pl.DataFrame | None
) -> duckdb.DuckDBPyRelation:
    """``requests`` without those served by a GPU model server of ``self_hosted``: a model
    server is no CPU workload (serverless functions cannot host it), so the CPU runtime
    rules skip it and the GPU questions answer for it."""
    if self_hosted is None or self_hosted.height == 0:
        return requests
    import duckdb

    servers = [s for s in self_hosted["service_name"].unique().to_list() if s is not None]
    if not servers:
        return requests
    column = duckdb.ColumnExpression("service_name")
    return requests.filter(
        column.isnull() | ~column.isin(*(duckdb.ConstantExpression(s) for s in servers))
    )


def gpu_answers(
    requests: duckdb.DuckDBPyRelation,
    self_hosted: pl.DataFrame,
    *,
    prices: PriceBook,
    deployments: Deployments,
) -> list[Recommendation]:
    """The three GPU questions for ``compare`` and other callers holding a request table:
    the glue economics come from ``requests``, the GPU side from ``self_hosted``."""
    from infermeter.analytics.economics._runtime import runtime_economics
    from infermeter.analytics.query import workload_frame

    if self_hosted.height == 0:
        return []
    economics = runtime_economics(
        workload_frame(without_model_servers(requests, self_hosted)),
        prices=prices,
        deployments=deployments,
    )
    gpu = gpu_economics(self_hosted, prices=prices, deployments=deployments)
    return gpu_recommendations(gpu, economics=economics)
