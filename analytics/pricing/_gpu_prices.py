"""GPU list prices: always-on GPU instances (AWS, Google Cloud, Azure) and serverless GPU.

Bundled in ``data/gpu_prices.toml``, each price with its source page and the period it was
published for; the table says plainly that the numbers were not re-fetched when it was
written. A user pricing file overrides or adds instances::

    [gpu_instances."g6.xlarge"]          # merges into the bundled entry
    usd_per_hour = 0.70
    source = "our EDP contract"

    [gpu_instances."my-h100-box"]        # a new one needs the GPU facts too
    usd_per_hour = 2.10
    gpu_type = "h100"
    gpus = 1

The serverless GPU (Cloud Run with an NVIDIA L4, per-second billing, scale to zero) is
priced from the compute table: ``cloud_run_gpu_l4_s`` plus the 4 vCPU and 16 GiB an L4
instance requires at the instance-based vCPU-s / GiB-s prices.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

from infermeter.agent.settings import ConfigurationError

if TYPE_CHECKING:
    from infermeter.analytics.pricing._prices import ComputePrices

__all__ = [
    "DEFAULT_GPU_INSTANCE",
    "DEFAULT_SERVERLESS_GPU",
    "GpuInstance",
    "GpuPrices",
    "ServerlessGpu",
    "gpu_prices",
    "normalize_gpu_type",
]

# The instance assumed when spans and the deployments file name no GPU: the one the
# compute table already carries (gpu_vm_hour).
DEFAULT_GPU_INSTANCE: Final = "g5.xlarge"
DEFAULT_SERVERLESS_GPU: Final = "gcp_cloud_run_l4"

_INSTANCE_KEYS: Final = frozenset(
    {"usd_per_hour", "provider", "gpu_type", "gpus", "vcpu", "memory_gib", "source", "date", "note"}
)


@dataclass(frozen=True)
class GpuInstance:
    """One always-on GPU instance type, on-demand list price."""

    name: str
    provider: str
    gpu_type: str
    gpus: int
    usd_per_hour: float
    vcpu: float = 0.0
    memory_gib: float = 0.0
    source: str = ""
    date: str | None = None
    note: str = ""


@dataclass(frozen=True)
class ServerlessGpu:
    """A scale-to-zero GPU service billed per second while an instance is up."""

    name: str
    provider: str
    gpu_type: str
    gpus: int
    usd_per_second: float  # GPU + the vCPU and memory it requires
    idle_timeout_s: float  # an idle instance stays up (and billed) this long
    source: str = ""
    date: str | None = None

    @property
    def usd_per_hour(self) -> float:
        return self.usd_per_second * 3600.0


@dataclass(frozen=True)
class GpuPrices:
    """Every GPU price: instances by name, serverless GPU services by name."""

    instances: Mapping[str, GpuInstance]
    serverless: Mapping[str, ServerlessGpu]
    collected: str = ""
    refetched: bool = False
    sources: tuple[str, ...] = field(default_factory=tuple)

    def instance(self, name: str) -> GpuInstance | None:
        """An instance by its name, case-insensitively (``Standard_NC4as_T4_v3``)."""
        found = self.instances.get(name)
        if found is not None:
            return found
        lowered = name.lower()
        return next((i for n, i in self.instances.items() if n.lower() == lowered), None)

    def cheapest(
        self, gpu_type: str | None, gpus: int = 1, provider: str | None = None
    ) -> GpuInstance | None:
        """The cheapest instance with at least ``gpus`` GPUs of ``gpu_type`` (from
        ``provider`` when it has one), fewest GPUs first."""
        wanted = normalize_gpu_type(gpu_type)
        if wanted is None:
            return None
        pool = [
            i for i in self.instances.values() if i.gpu_type == wanted and i.gpus >= max(gpus, 1)
        ]
        if provider:
            pool = [i for i in pool if i.provider == provider] or pool
        if not pool:
            return None
        return min(pool, key=lambda i: (i.gpus, i.usd_per_hour, i.name))


# Spellings seen in GPU names (nvidia-smi, Cloud Run's "nvidia-l4", Kubernetes labels).
_GPU_ALIASES: Final = {
    "nvidia-l4": "l4",
    "nvidia l4": "l4",
    "nvidia-tesla-t4": "t4",
    "tesla t4": "t4",
    "nvidia a10g": "a10g",
    "a10": "a10g",
    "nvidia-tesla-a100": "a100-40gb",
    "a100": "a100-40gb",
    "nvidia-a100-80gb": "a100-80gb",
    "nvidia-h100-80gb": "h100",
    "h100-80gb": "h100",
}


def normalize_gpu_type(name: str | None) -> str | None:
    """``NVIDIA-L4`` → ``l4``, ``nvidia-tesla-t4`` → ``t4``; None for an empty name."""
    if name is None or not name.strip():
        return None
    text = name.strip().lower().replace("_", "-")
    if text in _GPU_ALIASES:
        return _GPU_ALIASES[text]
    for prefix in ("nvidia-tesla-", "nvidia-", "nvidia ", "tesla-"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return _GPU_ALIASES.get(text, text)


@functools.lru_cache(maxsize=1)
def _bundled() -> dict[str, Any]:
    text = (
        resources.files("infermeter.analytics.pricing")
        .joinpath("data/gpu_prices.toml")
        .read_text(encoding="utf-8")
    )
    return tomllib.loads(text)


def _positive(where: str, value: object, *, whole: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{where} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ConfigurationError(f"{where} must be >= 0")
    if whole and (number != int(number) or number < 1):
        raise ConfigurationError(f"{where} must be a whole number >= 1")
    return number


def _instance(name: str, entry: Mapping[str, Any]) -> GpuInstance:
    return GpuInstance(
        name=name,
        provider=str(entry.get("provider", "")),
        gpu_type=normalize_gpu_type(str(entry.get("gpu_type", ""))) or "",
        gpus=int(entry.get("gpus", 1)),
        usd_per_hour=float(entry["usd_per_hour"]),
        vcpu=float(entry.get("vcpu", 0)),
        memory_gib=float(entry.get("memory_gib", 0)),
        source=str(entry.get("source", "")),
        date=None if entry.get("date") is None else str(entry.get("date")),
        note=str(entry.get("note", "")),
    )


def _user_instances(
    where: str, section: object, base: Mapping[str, GpuInstance], default_date: str
) -> dict[str, GpuInstance]:
    if not isinstance(section, Mapping):
        raise ConfigurationError(f"{where}: [gpu_instances] must be a table of instance types")
    out: dict[str, GpuInstance] = {}
    for name, entry in section.items():
        at = f"{where}: gpu_instances.{name}"
        if not isinstance(entry, Mapping):
            raise ConfigurationError(f"{at} must be a table")
        unknown = set(entry) - _INSTANCE_KEYS
        if unknown:
            raise ConfigurationError(
                f"{at} has unknown keys {sorted(unknown)}; allowed: {sorted(_INSTANCE_KEYS)}"
            )
        previous = base.get(str(name))
        if previous is None and ("usd_per_hour" not in entry or "gpu_type" not in entry):
            raise ConfigurationError(f"{at} is a new instance and needs usd_per_hour and gpu_type")
        changes = _changes(at, entry)
        changes["source"] = str(entry.get("source", where))
        changes["date"] = str(entry.get("date", default_date))
        if previous is None:
            out[str(name)] = GpuInstance(
                name=str(name),
                provider=changes.get("provider", "custom"),
                gpu_type=changes["gpu_type"],
                gpus=changes.get("gpus", 1),
                usd_per_hour=changes["usd_per_hour"],
                vcpu=changes.get("vcpu", 0.0),
                memory_gib=changes.get("memory_gib", 0.0),
                source=changes["source"],
                date=changes["date"],
                note=changes.get("note", ""),
            )
        else:
            out[str(name)] = dataclasses.replace(previous, **changes)
    return out


def _changes(at: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if "usd_per_hour" in entry:
        changes["usd_per_hour"] = _positive(f"{at}.usd_per_hour", entry["usd_per_hour"])
    if "gpus" in entry:
        changes["gpus"] = int(_positive(f"{at}.gpus", entry["gpus"], whole=True))
    for key in ("vcpu", "memory_gib"):
        if key in entry:
            changes[key] = _positive(f"{at}.{key}", entry[key])
    if "gpu_type" in entry:
        gpu_type = normalize_gpu_type(str(entry["gpu_type"]))
        if gpu_type is None:
            raise ConfigurationError(f"{at}.gpu_type must be a GPU name")
        changes["gpu_type"] = gpu_type
    for key in ("provider", "note"):
        if key in entry:
            changes[key] = str(entry[key])
    return changes


def gpu_prices(
    compute: ComputePrices,
    overrides: object = None,
    *,
    where: str = "pricing file",
    default_date: str = "",
) -> GpuPrices:
    """The bundled GPU prices, with a pricing file's ``[gpu_instances]`` section applied.

    ``compute`` prices the serverless GPU (its L4 per-second price and the instance-based
    vCPU / memory prices). Raises ``ConfigurationError`` for a malformed section.
    """
    bundled = _bundled()
    instances = {name: _instance(name, entry) for name, entry in bundled["instances"].items()}
    sources = ["GPU list prices (not re-fetched), table of " + str(bundled.get("collected"))]
    if overrides is not None:
        instances.update(_user_instances(where, overrides, instances, default_date))
        sources.append(where)
    serverless: dict[str, ServerlessGpu] = {}
    for name, entry in bundled.get("serverless", {}).items():
        vcpu, memory = float(entry["vcpu"]), float(entry["memory_gib"])
        per_second = (
            compute.cloud_run_gpu_l4_s
            + vcpu * compute.cloud_run_instance_vcpu_s
            + memory * compute.cloud_run_instance_gib_s
        )
        serverless[name] = ServerlessGpu(
            name=name,
            provider=str(entry["provider"]),
            gpu_type=str(entry["gpu_type"]),
            gpus=int(entry["gpus"]),
            usd_per_second=per_second,
            idle_timeout_s=float(entry["idle_timeout_s"]),
            source=str(entry.get("source", "")),
            date=None if entry.get("date") is None else str(entry["date"]),
        )
    return GpuPrices(
        instances=instances,
        serverless=serverless,
        collected=str(bundled.get("collected", "")),
        refetched=not bool(bundled.get("not_refetched", False)),
        sources=tuple(sources),
    )
