"""Deployment facts of each workload (endpoint, runtime): SLO, size, concurrency, price.

Spans say how a request ran; they cannot say what the team promised (the SLO) or what an
always-on instance costs. Those facts come from an optional deployments file (TOML, or
YAML when it ends in ``.yaml``/``.yml``) on top of documented defaults::

    [defaults]                 # every workload
    slo_ms = 2500

    [[workloads]]              # endpoint and/or runtime; omitted = any
    endpoint = "chat"
    runtime = "serverless"
    memory_mb = 1769
    architecture = "arm64"

    [[workloads]]
    runtime = "container"
    platform = "aws_fargate"   # priced as Fargate vCPU-h + GB-h for vcpu / memory_mb
    vcpu = 1
    memory_mb = 2048
    concurrency = 50

A later, more specific entry wins field by field: defaults < runtime only < endpoint only
< endpoint and runtime. Defaults per runtime (:data:`RUNTIME_DEFAULTS`):

- serverless: platform aws_lambda, memory_mb 1024, vcpu memory_mb / 1769 (Lambda's ratio),
  concurrency 1, min_instances 0;
- serverless_container: platform gcp_cloud_run, memory_mb 512, vcpu 1, concurrency 80
  (Cloud Run's default), min_instances 0;
- container and unknown: platform aws_ec2, memory_mb 8192, vcpu 2 (one m7i.large),
  concurrency 10, min_instances 1;
- every runtime: architecture x86_64, target_utilization 0.7, slo_ms 3000.

``instance_price_per_hour`` is what one always-on instance costs: for serverless one
provisioned-concurrency unit of ``memory_mb`` (warm capacity), for serverless containers
one instance under instance-based billing (Cloud Run) or an idle-free active replica (Azure
Container Apps), for containers a Fargate task of ``vcpu``/``memory_mb`` on ``aws_ecs`` /
``aws_fargate`` or else the bundled VM price (m7i.large). Set it to your own price to
override. ``slo_ms`` defaults to 3000 (env ``INFERMETER_SLO_MS``) and
``target_utilization`` to 0.7.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from infermeter.agent.semconv import (
    RUNTIME_CONTAINER,
    RUNTIME_SERVERLESS,
    RUNTIME_SERVERLESS_CONTAINER,
    RUNTIME_UNKNOWN,
    RUNTIMES,
)
from infermeter.agent.settings import (
    ConfigurationError,
    Setting,
    parse_positive_float,
    parse_str,
    read_config_file,
    resolve,
)

if TYPE_CHECKING:
    from infermeter.analytics.economics._selfhost import SelfHostedModel
    from infermeter.analytics.pricing._prices import PriceBook

__all__ = [
    "DEPLOYMENT_SETTINGS",
    "ENV_DEPLOYMENTS",
    "ENV_SLO_MS",
    "RUNTIME_DEFAULTS",
    "Deployment",
    "Deployments",
    "load_deployments",
]

ENV_DEPLOYMENTS: Final = "INFERMETER_DEPLOYMENTS"
ENV_SLO_MS: Final = "INFERMETER_SLO_MS"

DEPLOYMENT_SETTINGS: Final[tuple[Setting[Any], ...]] = (
    Setting(
        name="deployments",
        env=ENV_DEPLOYMENTS,
        default=None,
        parse=parse_str,
        help="deployments file (TOML or YAML): SLO, memory, vCPU, concurrency, price per workload",
    ),
    Setting(
        name="slo_ms",
        env=ENV_SLO_MS,
        default=3000.0,
        parse=parse_positive_float,
        help="latency SLO in ms for workloads the deployments file does not set",
    ),
)

# Lambda gives a function one vCPU per 1,769 MB of memory.
_LAMBDA_MB_PER_VCPU: Final = 1769.0
_FARGATE_PLATFORMS: Final = frozenset({"aws_ecs", "aws_fargate"})
_CONTAINER_APPS_PLATFORMS: Final = frozenset({"azure_container_apps", "azure.container_apps"})

RUNTIME_DEFAULTS: Final[Mapping[str, Mapping[str, Any]]] = {
    RUNTIME_SERVERLESS: {
        "platform": "aws_lambda",
        "memory_mb": 1024.0,
        "concurrency": 1,
        "min_instances": 0,
    },
    RUNTIME_SERVERLESS_CONTAINER: {
        "platform": "gcp_cloud_run",
        "memory_mb": 512.0,
        "vcpu": 1.0,
        "concurrency": 80,
        "min_instances": 0,
    },
    RUNTIME_CONTAINER: {
        "platform": "aws_ec2",
        "memory_mb": 8192.0,
        "vcpu": 2.0,
        "concurrency": 10,
        "min_instances": 1,
    },
    RUNTIME_UNKNOWN: {
        "platform": "aws_ec2",
        "memory_mb": 8192.0,
        "vcpu": 2.0,
        "concurrency": 10,
        "min_instances": 1,
    },
}

_COMMON_DEFAULTS: Final[Mapping[str, Any]] = {
    "architecture": "x86_64",
    "target_utilization": 0.7,
}

_FLOAT_FIELDS: Final = ("slo_ms", "memory_mb", "vcpu", "instance_price_per_hour")
_INT_FIELDS: Final = ("concurrency", "min_instances")
_STR_FIELDS: Final = ("platform", "architecture")
_FIELDS: Final = (*_FLOAT_FIELDS, *_INT_FIELDS, *_STR_FIELDS, "target_utilization")


@dataclass(frozen=True)
class Deployment:
    """What runs one workload; every field resolved (no None) so formulas can use it directly."""

    slo_ms: float
    memory_mb: float
    vcpu: float
    concurrency: int  # requests one instance serves at once
    instance_price_per_hour: float  # one always-on instance (see the module docstring)
    min_instances: int
    platform: str
    architecture: str
    target_utilization: float  # fraction of capacity an autoscaler keeps busy
    endpoint: str | None = None
    runtime: str | None = None
    # Where the values came from, most specific last ("defaults", "file.toml#workloads[2]").
    source: str = "defaults"

    @property
    def memory_gb(self) -> float:
        return self.memory_mb / 1024.0


class Deployments:
    """Deployment facts per workload: the file's entries over the defaults."""

    def __init__(
        self,
        entries: Sequence[Mapping[str, Any]] = (),
        *,
        defaults: Mapping[str, Any] | None = None,
        slo_ms: float = 3000.0,
        prices: PriceBook | None = None,
        source: str = "defaults",
        self_hosted: Sequence[SelfHostedModel] = (),
    ) -> None:
        self._entries = [dict(entry) for entry in entries]
        # [[self_hosted]]: facts of self-hosted models the spans cannot say (see _selfhost).
        self.self_hosted = tuple(self_hosted)
        self._defaults = dict(defaults or {})
        self._slo_ms = slo_ms
        self._prices = prices
        self.source = source
        self._resolve = functools.lru_cache(maxsize=1024)(self._build)

    def __repr__(self) -> str:
        return f"Deployments({len(self._entries)} workload entries, source={self.source!r})"

    @property
    def entries(self) -> tuple[Mapping[str, Any], ...]:
        """The file's workload entries as given (endpoint/runtime keys plus fields)."""
        return tuple(self._entries)

    def for_workload(self, endpoint: str | None, runtime: str | None) -> Deployment:
        """The facts of one workload; unknown workloads get the defaults of their runtime."""
        return self._resolve(endpoint, runtime)

    def _build(self, endpoint: str | None, runtime: str | None) -> Deployment:
        runtime_key = runtime if runtime in RUNTIMES else RUNTIME_UNKNOWN
        values: dict[str, Any] = {"slo_ms": self._slo_ms, **_COMMON_DEFAULTS}
        values.update(RUNTIME_DEFAULTS[runtime_key])
        values.update(self._defaults)
        sources = ["defaults"]

        def specificity(entry: Mapping[str, Any]) -> int:
            return (2 if "endpoint" in entry else 0) + (1 if "runtime" in entry else 0)

        matching = [
            (specificity(entry), i, entry)
            for i, entry in enumerate(self._entries)
            if entry.get("endpoint", endpoint) == endpoint
            and entry.get("runtime", runtime) == runtime
        ]
        for _, i, entry in sorted(matching, key=lambda item: (item[0], item[1])):
            values.update({k: v for k, v in entry.items() if k in _FIELDS})
            sources.append(f"{self.source}#workloads[{i}]")
        if "vcpu" not in values:
            values["vcpu"] = float(values["memory_mb"]) / _LAMBDA_MB_PER_VCPU
        if values.get("instance_price_per_hour") is None:
            values["instance_price_per_hour"] = self._instance_price(runtime_key, values)
        return Deployment(
            slo_ms=float(values["slo_ms"]),
            memory_mb=float(values["memory_mb"]),
            vcpu=float(values["vcpu"]),
            concurrency=int(values["concurrency"]),
            instance_price_per_hour=float(values["instance_price_per_hour"]),
            min_instances=int(values["min_instances"]),
            platform=str(values["platform"]),
            architecture=str(values["architecture"]),
            target_utilization=float(values["target_utilization"]),
            endpoint=endpoint,
            runtime=runtime,
            source=", ".join(sources),
        )

    def _instance_price(self, runtime: str, values: Mapping[str, Any]) -> float:
        if self._prices is None:
            from infermeter.analytics.pricing._prices import load_prices

            self._prices = load_prices()
        compute = self._prices.compute
        memory_gb = float(values["memory_mb"]) / 1024.0
        vcpu = float(values["vcpu"])
        platform = str(values["platform"]).lower()
        if runtime == RUNTIME_SERVERLESS:
            return memory_gb * compute.lambda_pc_gb_s(values["architecture"]) * 3600.0
        if runtime == RUNTIME_SERVERLESS_CONTAINER:
            if platform in _CONTAINER_APPS_PLATFORMS:
                per_s = vcpu * compute.container_apps_active_vcpu_s
                return (per_s + memory_gb * compute.container_apps_gib_s) * 3600.0
            per_s = vcpu * compute.cloud_run_instance_vcpu_s
            return (per_s + memory_gb * compute.cloud_run_instance_gib_s) * 3600.0
        if platform in _FARGATE_PLATFORMS:
            return compute.fargate_hour(vcpu, memory_gb, values["architecture"])
        return compute.vm_hour


def _read(path: Path) -> Mapping[str, Any]:
    data = read_config_file(path, what="deployments file")
    unknown = set(data) - {"defaults", "workloads", "self_hosted"}
    if unknown:
        raise ConfigurationError(
            f"deployments file {path}: unknown sections {sorted(unknown)} "
            "(expected defaults, workloads, self_hosted)"
        )
    return data


def _checked_text(path: Path, where: str, name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"deployments file {path}: {where}.{name} must be text")
    if name == "runtime" and value not in RUNTIMES:
        raise ConfigurationError(
            f"deployments file {path}: {where}.runtime must be one of {list(RUNTIMES)}"
        )
    return value


def _checked_number(path: Path, where: str, name: str, value: object) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"deployments file {path}: {where}.{name} must be a number")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ConfigurationError(f"deployments file {path}: {where}.{name} must be >= 0")
    if name == "target_utilization" and not 0 < number <= 1:
        raise ConfigurationError(
            f"deployments file {path}: {where}.target_utilization must be in (0, 1]"
        )
    if name in _INT_FIELDS:
        if number != int(number):
            raise ConfigurationError(
                f"deployments file {path}: {where}.{name} must be a whole number"
            )
        if name == "concurrency" and number < 1:
            raise ConfigurationError(f"deployments file {path}: {where}.concurrency must be >= 1")
        return int(number)
    if name in {"slo_ms", "memory_mb", "vcpu"} and number == 0:
        raise ConfigurationError(f"deployments file {path}: {where}.{name} must be > 0")
    return number


def _checked(path: Path, where: str, entry: object, *, keys: bool) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise ConfigurationError(f"deployments file {path}: {where} must be a table")
    allowed = set(_FIELDS) | ({"endpoint", "runtime"} if keys else set())
    unknown = set(entry) - allowed
    if unknown:
        raise ConfigurationError(
            f"deployments file {path}: {where} has unknown keys {sorted(unknown)}; "
            f"allowed: {sorted(allowed)}"
        )
    return {
        name: _checked_text(path, where, name, value)
        if name in {"endpoint", "runtime", *_STR_FIELDS}
        else _checked_number(path, where, name, value)
        for name, value in entry.items()
    }


def load_deployments(
    path: str | Path | None = None,
    *,
    prices: PriceBook | None = None,
    slo_ms: float | None = None,
) -> Deployments:
    """Deployment facts from the file at ``path`` (default: ``INFERMETER_DEPLOYMENTS``) over
    the documented defaults; without a file, the defaults alone.

    ``prices`` prices derived instance costs (default: :func:`load_prices`). Raises
    ``FileNotFoundError`` for a missing file and ``ConfigurationError`` for a malformed one.
    """
    settings = resolve(
        DEPLOYMENT_SETTINGS,
        {"deployments": str(path) if path is not None else None, "slo_ms": slo_ms},
    )
    file = settings["deployments"]
    if file is None:
        return Deployments(slo_ms=settings["slo_ms"], prices=prices)
    file_path = Path(file)
    data = _read(file_path)
    defaults = _checked(file_path, "[defaults]", data.get("defaults", {}), keys=False)
    workloads = data.get("workloads", [])
    if not isinstance(workloads, list):
        raise ConfigurationError(f"deployments file {file_path}: workloads must be a list")
    entries = [
        _checked(file_path, f"workloads[{i}]", entry, keys=True)
        for i, entry in enumerate(workloads)
    ]
    from infermeter.analytics.economics._selfhost import parse_self_hosted

    return Deployments(
        entries,
        defaults=defaults,
        slo_ms=settings["slo_ms"],
        prices=prices,
        source=str(file_path),
        self_hosted=parse_self_hosted(file_path, data.get("self_hosted")),
    )
