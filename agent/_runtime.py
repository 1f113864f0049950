"""Where this process runs, when it started, and whether the next invocation is cold.

Detection reads environment variables only (no metadata-server calls: those cost a network
round trip at start-up, the very latency being measured). The result feeds the resource
(``cloud.*``, ``faas.*``) and the per-span ``infermeter.runtime``.

Cold start means "first observed request in this process" on every runtime: a Lambda
sandbox, a Cloud Run instance, a new pod. Lambda's initialization types refine it:

* ``on-demand`` (or unset): the first request waited for INIT → cold, with
  ``infermeter.init_duration`` = process start → first invocation.
* ``provisioned-concurrency``: INIT ran ahead of time, off the request path, and the
  sandbox may then idle for hours → the first request is *not* cold and no init duration
  is recorded (it would measure idle time); ``infermeter.initialization_type`` still says so.
* ``snap-start``: the sandbox is restored from a snapshot on the request path → cold, but
  the process start time predates the snapshot, so no init duration is recorded.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from infermeter.agent.semconv import (
    CLOUD_PLATFORM,
    CLOUD_PROVIDER,
    CLOUD_REGION,
    FAAS_INSTANCE,
    FAAS_MAX_MEMORY,
    FAAS_NAME,
    FAAS_VERSION,
    INFERMETER_GPU_COUNT,
    INFERMETER_GPU_TYPE,
    PLATFORM_AWS_ECS,
    PLATFORM_AWS_LAMBDA,
    PLATFORM_AZURE_CONTAINER_APPS,
    PLATFORM_AZURE_FUNCTIONS,
    PLATFORM_GCP_CLOUD_FUNCTIONS,
    PLATFORM_GCP_CLOUD_RUN,
    PROVIDER_AWS,
    PROVIDER_AZURE,
    PROVIDER_GCP,
    RUNTIME_CONTAINER,
    RUNTIME_SERVERLESS,
    RUNTIME_SERVERLESS_CONTAINER,
    RUNTIME_UNKNOWN,
)

__all__ = [
    "COLD_START",
    "DETECTION_ENV_VARS",
    "INIT_ON_DEMAND",
    "INIT_PROVISIONED_CONCURRENCY",
    "INIT_SNAP_START",
    "ColdStart",
    "RuntimeInfo",
    "detect_runtime",
    "process_age_at_import",
    "reset_cold_start",
    "seconds_since_process_start",
]

INIT_ON_DEMAND: Final = "on-demand"
INIT_PROVISIONED_CONCURRENCY: Final = "provisioned-concurrency"
INIT_SNAP_START: Final = "snap-start"

_MIB: Final = 1024 * 1024

# Every environment variable the detection reads (documentation and tests).
DETECTION_ENV_VARS: Final = (
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "FUNCTION_TARGET",
    "FUNCTION_NAME",
    "FUNCTION_REGION",
    "FUNCTION_MEMORY_MB",
    "K_SERVICE",
    "K_REVISION",
    "FUNCTIONS_WORKER_RUNTIME",
    "WEBSITE_SITE_NAME",
    "REGION_NAME",
    "CONTAINER_APP_NAME",
    "CONTAINER_APP_REVISION",
    "CONTAINER_APP_REGION",
    "ECS_CONTAINER_METADATA_URI_V4",
    "ECS_CONTAINER_METADATA_URI",
    "AWS_EXECUTION_ENV",
    "KUBERNETES_SERVICE_HOST",
    # GPUs: infermeter's own variables win; the NVIDIA container runtime lists the devices
    # it exposes (indexes or UUIDs, or all / none / void).
    "INFERMETER_GPU_TYPE",
    "INFERMETER_GPU_COUNT",
    "NVIDIA_VISIBLE_DEVICES",
)


@dataclass(frozen=True)
class RuntimeInfo:
    """The detected runtime: the span attribute value and the resource attributes."""

    runtime: str = RUNTIME_UNKNOWN
    resource: Mapping[str, str | int] = field(default_factory=dict)
    # Lambda's AWS_LAMBDA_INITIALIZATION_TYPE, when set.
    initialization_type: str | None = None

    @property
    def platform(self) -> str | None:
        value = self.resource.get(CLOUD_PLATFORM)
        return value if isinstance(value, str) else None

    @property
    def is_faas(self) -> bool:
        """Function runtimes freeze the sandbox after return: batched spans must be flushed."""
        return self.runtime == RUNTIME_SERVERLESS

    @property
    def default_service_name(self) -> str | None:
        value = self.resource.get(FAAS_NAME)
        return value if isinstance(value, str) else None


def _put(target: dict[str, str | int], key: str, raw: str | None) -> None:
    if raw is not None and raw.strip():
        target[key] = raw.strip()


def _memory_bytes(raw: str | None, unit: int = _MIB) -> int | None:
    if raw is None:
        return None
    try:
        value = int(float(raw.strip()) * unit)
    except ValueError:
        return None
    return value if value > 0 else None


def _aws_lambda(env: Mapping[str, str]) -> RuntimeInfo | None:
    if not env.get("AWS_LAMBDA_FUNCTION_NAME"):
        return None
    resource: dict[str, str | int] = {
        CLOUD_PROVIDER: PROVIDER_AWS,
        CLOUD_PLATFORM: PLATFORM_AWS_LAMBDA,
    }
    _put(resource, CLOUD_REGION, env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"))
    _put(resource, FAAS_NAME, env.get("AWS_LAMBDA_FUNCTION_NAME"))
    _put(resource, FAAS_VERSION, env.get("AWS_LAMBDA_FUNCTION_VERSION"))
    _put(resource, FAAS_INSTANCE, env.get("AWS_LAMBDA_LOG_STREAM_NAME"))
    memory = _memory_bytes(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"))
    if memory is not None:
        resource[FAAS_MAX_MEMORY] = memory
    init_type = (env.get("AWS_LAMBDA_INITIALIZATION_TYPE") or "").strip() or None
    return RuntimeInfo(RUNTIME_SERVERLESS, resource, init_type)


def _gcp_cloud_functions(env: Mapping[str, str]) -> RuntimeInfo | None:
    if not env.get("FUNCTION_TARGET"):
        return None
    resource: dict[str, str | int] = {
        CLOUD_PROVIDER: PROVIDER_GCP,
        CLOUD_PLATFORM: PLATFORM_GCP_CLOUD_FUNCTIONS,
    }
    _put(resource, CLOUD_REGION, env.get("FUNCTION_REGION"))
    _put(resource, FAAS_NAME, env.get("K_SERVICE") or env.get("FUNCTION_NAME"))
    _put(resource, FAAS_VERSION, env.get("K_REVISION"))
    memory = _memory_bytes(env.get("FUNCTION_MEMORY_MB"))
    if memory is not None:
        resource[FAAS_MAX_MEMORY] = memory
    return RuntimeInfo(RUNTIME_SERVERLESS, resource)


def _gcp_cloud_run(env: Mapping[str, str]) -> RuntimeInfo | None:
    if not env.get("K_SERVICE"):
        return None
    resource: dict[str, str | int] = {
        CLOUD_PROVIDER: PROVIDER_GCP,
        CLOUD_PLATFORM: PLATFORM_GCP_CLOUD_RUN,
    }
    _put(resource, FAAS_NAME, env.get("K_SERVICE"))
    _put(resource, FAAS_VERSION, env.get("K_REVISION"))
    return RuntimeInfo(RUNTIME_SERVERLESS_CONTAINER, resource)


def _azure_functions(env: Mapping[str, str]) -> RuntimeInfo | None:
    if not env.get("FUNCTIONS_WORKER_RUNTIME"):
        return None
    resource: dict[str, str | int] = {
        CLOUD_PROVIDER: PROVIDER_AZURE,
        CLOUD_PLATFORM: PLATFORM_AZURE_FUNCTIONS,
    }
    _put(resource, CLOUD_REGION, env.get("REGION_NAME"))
    _put(resource, FAAS_NAME, env.get("WEBSITE_SITE_NAME"))
    return RuntimeInfo(RUNTIME_SERVERLESS, resource)


def _azure_container_apps(env: Mapping[str, str]) -> RuntimeInfo | None:
    if not env.get("CONTAINER_APP_NAME"):
        return None
    resource: dict[str, str | int] = {
        CLOUD_PROVIDER: PROVIDER_AZURE,
        CLOUD_PLATFORM: PLATFORM_AZURE_CONTAINER_APPS,
    }
    _put(resource, CLOUD_REGION, env.get("REGION_NAME") or env.get("CONTAINER_APP_REGION"))
    _put(resource, FAAS_NAME, env.get("CONTAINER_APP_NAME"))
    _put(resource, FAAS_VERSION, env.get("CONTAINER_APP_REVISION"))
    return RuntimeInfo(RUNTIME_SERVERLESS_CONTAINER, resource)


def _aws_ecs(env: Mapping[str, str]) -> RuntimeInfo | None:
    if not (env.get("ECS_CONTAINER_METADATA_URI_V4") or env.get("ECS_CONTAINER_METADATA_URI")):
        return None
    resource: dict[str, str | int] = {
        CLOUD_PROVIDER: PROVIDER_AWS,
        CLOUD_PLATFORM: PLATFORM_AWS_ECS,
    }
    _put(resource, CLOUD_REGION, env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"))
    fargate = (env.get("AWS_EXECUTION_ENV") or "").strip() == "AWS_ECS_FARGATE"
    return RuntimeInfo(RUNTIME_SERVERLESS_CONTAINER if fargate else RUNTIME_CONTAINER, resource)


def _kubernetes(env: Mapping[str, str]) -> RuntimeInfo | None:
    # The cloud behind a cluster (EKS, GKE, AKS…) is not visible from env variables.
    return RuntimeInfo(RUNTIME_CONTAINER, {}) if env.get("KUBERNETES_SERVICE_HOST") else None


# Order matters: Cloud Functions 2nd gen runs on Cloud Run (sets K_SERVICE too); ECS and
# Azure Container Apps may run on Kubernetes-like hosts but say more about the platform.
_DETECTORS: Final = (
    _aws_lambda,
    _gcp_cloud_functions,
    _gcp_cloud_run,
    _azure_functions,
    _azure_container_apps,
    _aws_ecs,
    _kubernetes,
)


def _gpus(env: Mapping[str, str]) -> dict[str, str | int]:
    """``infermeter.gpu.type`` / ``.count`` from ``INFERMETER_GPU_TYPE`` / ``_COUNT``, else the
    count of ``NVIDIA_VISIBLE_DEVICES`` (``all`` says nothing countable; ``none``/``void``:
    no GPU). No platform exposes the GPU model in the environment, so the type comes from
    the variable or the deployments file."""
    found: dict[str, str | int] = {}
    _put(found, INFERMETER_GPU_TYPE, env.get("INFERMETER_GPU_TYPE"))
    count: int | None = None
    raw = (env.get("INFERMETER_GPU_COUNT") or "").strip()
    if raw.isdigit():
        count = int(raw)
    else:
        devices = (env.get("NVIDIA_VISIBLE_DEVICES") or "").strip()
        if devices and devices.lower() not in {"all", "none", "void"}:
            count = len([d for d in devices.split(",") if d.strip()])
    if count is not None and 0 < count < 1 << 31:
        found[INFERMETER_GPU_COUNT] = count
    return found


def detect_runtime(environ: Mapping[str, str] | None = None) -> RuntimeInfo:
    """Classify the environment; never raises (unparseable values are left out)."""
    env = os.environ if environ is None else environ
    gpus = _gpus(env)
    for detector in _DETECTORS:
        info = detector(env)
        if info is not None:
            if gpus:
                return RuntimeInfo(
                    info.runtime, {**info.resource, **gpus}, info.initialization_type
                )
            return info
    return RuntimeInfo(RUNTIME_UNKNOWN, gpus)


# --- process start ------------------------------------------------------------------------


def _process_age_seconds() -> float | None:
    """Seconds since this process started, from /proc (Linux); None where unavailable.

    /proc/self/stat's field 22 is the start time in clock ticks since boot; CLOCK_BOOTTIME
    is the same clock, so their difference is the process age (10 ms resolution).
    """
    try:
        with open("/proc/self/stat", "rb") as stat:
            raw = stat.read()
        # The command name (field 2) may contain spaces and parentheses: split after it.
        fields = raw[raw.rindex(b")") + 2 :].split()
        start_ticks = int(fields[19])
        ticks_per_second = os.sysconf("SC_CLK_TCK")
        boot_clock = time.clock_gettime(time.CLOCK_BOOTTIME)
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    age = boot_clock - start_ticks / ticks_per_second
    return age if age >= 0 else None


_AGE_AT_IMPORT: Final = _process_age_seconds()


class _ProcessStart:
    # perf_counter reading at process start (module import time when /proc is unavailable);
    # reset in a forked child, whose life starts at the fork.
    perf = time.perf_counter() - (_AGE_AT_IMPORT or 0.0)


def process_age_at_import() -> float | None:
    """How old the process was when infermeter.agent was imported (None: unknown)."""
    return _AGE_AT_IMPORT


def seconds_since_process_start() -> float:
    return time.perf_counter() - _ProcessStart.perf


# --- cold start ---------------------------------------------------------------------------


class ColdStart:
    """Hands out "this is the first request" exactly once per process, across threads."""

    __slots__ = ("_lock", "pending")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pending = True

    def claim(self) -> bool:
        # Unlocked fast path: after the first request this is one attribute read.
        if not self.pending:
            return False
        with self._lock:
            claimed = self.pending
            self.pending = False
        return claimed

    def reset(self) -> None:
        with self._lock:
            self.pending = True


COLD_START: Final = ColdStart()


def reset_cold_start() -> None:
    COLD_START.reset()


def _after_fork_in_child() -> None:
    # A forked worker (gunicorn, multiprocessing) is a new instance with its own first request.
    _ProcessStart.perf = time.perf_counter()
    COLD_START.reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
