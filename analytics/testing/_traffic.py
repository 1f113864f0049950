"""Realistic synthetic traffic for tests, demos and screenshots of the weekly report.

Deterministic for a seed. Four workloads that each exercise one recommendation:

- ``/chat`` on Lambda (1 GiB): LLM-bound, ~8 % cold starts with a 1.8 s INIT that push p95
  past a 3 s SLO; tenant ``acme`` is throttled far more than its share; prompt ``v8``
  (from the second week on) produces 60 % more output tokens than ``v7``.
- ``/summarize`` on Lambda (3 GiB): long waits on the model at a steady rate - cheaper on
  a concurrent container.
- ``/embed`` on an always-on container fleet with little traffic - cheaper on serverless.
- ``/classify`` on Cloud Run with too few requests for any verdict.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Final

__all__ = ["DEPLOYMENTS_TOML", "synthetic_spans"]

# A deployments file matching the scenario (SLO 3 s; /embed's fleet and the container
# alternative of /summarize described explicitly).
DEPLOYMENTS_TOML: Final = """\
[defaults]
slo_ms = 3000

[[workloads]]
endpoint = "/chat"
runtime = "serverless"
memory_mb = 1024

[[workloads]]
endpoint = "/summarize"
runtime = "container"
platform = "aws_fargate"
vcpu = 0.5
memory_mb = 1024
concurrency = 50

[[workloads]]
endpoint = "/embed"
runtime = "container"
platform = "aws_ec2"
min_instances = 2
"""

_TENANTS: Final = (("acme", 0.15), ("globex", 0.35), ("initech", 0.30), ("umbrella", 0.20))


def _tenant(rng: random.Random) -> str:
    pick, total = rng.random(), 0.0
    for name, share in _TENANTS:
        total += share
        if pick < total:
            return name
    return _TENANTS[-1][0]


def _chat(rng: random.Random, start: datetime, day: int) -> dict[str, Any]:
    tenant = _tenant(rng)
    version = "v8" if day >= 7 else "v7"
    cold = rng.random() < 0.08
    init_ms = rng.lognormvariate(7.45, 0.2) if cold else None  # ~1.7 s
    output = int(rng.lognormvariate(5.5, 0.4) * (1.6 if version == "v8" else 1.0))
    # The handler's span starts after INIT (Lambda): a cold caller waits INIT + this.
    duration = rng.lognormvariate(7.0, 0.3) + output * 1.5
    throttled = rng.random() < (0.12 if tenant == "acme" else 0.004)
    error = rng.random() < 0.006
    return {
        "start": start,
        "duration_ms": duration,
        "endpoint": "/chat",
        "runtime": "serverless",
        "platform": "aws_lambda",
        "service_name": "chat-api",
        "tenant": tenant,
        "model": "gpt-4o-mini",
        "provider": "openai",
        "operation": "chat",
        "prompt_name": "support-answer",
        "prompt_version": version,
        "cold_start": cold,
        "init_duration_ms": init_ms,
        "memory_mb": 1024.0,
        "input_tokens": int(rng.lognormvariate(7.0, 0.3)),
        "output_tokens": output,
        "throttled": throttled,
        "attempt": 2 if throttled else 1,
        "status_code": "ERROR" if error else "OK",
        "error_type": "TimeoutError" if error else None,
    }


def _summarize(rng: random.Random, start: datetime, day: int) -> dict[str, Any]:
    output = int(rng.lognormvariate(6.2, 0.3))
    return {
        "start": start,
        "duration_ms": rng.lognormvariate(9.6, 0.25) + output * 3.0,
        "endpoint": "/summarize",
        "runtime": "serverless",
        "platform": "aws_lambda",
        "service_name": "summarizer",
        "tenant": _tenant(rng),
        "model": "claude-3-5-haiku",
        "provider": "anthropic",
        "operation": "chat",
        "prompt_name": "summary",
        "prompt_version": "v3",
        "cold_start": rng.random() < 0.01,
        "init_duration_ms": 900.0,
        "memory_mb": 3008.0,
        "input_tokens": int(rng.lognormvariate(8.5, 0.4)),
        "output_tokens": output,
        "status_code": "OK",
    }


def _embed(rng: random.Random, start: datetime, day: int) -> dict[str, Any]:
    return {
        "start": start,
        "duration_ms": rng.lognormvariate(4.0, 0.3),
        "endpoint": "/embed",
        "runtime": "container",
        "platform": "aws_ec2",
        "service_name": "embedder",
        "service_instance": f"pod-{rng.randint(1, 2)}",
        "tenant": _tenant(rng),
        "model": "text-embedding-3-small",
        "provider": "openai",
        "operation": "embeddings",
        "input_tokens": int(rng.lognormvariate(5.0, 0.5)),
        "output_tokens": 0,
        "cold_start": False,
        "status_code": "OK",
    }


def _classify(rng: random.Random, start: datetime, day: int) -> dict[str, Any]:
    return {
        "start": start,
        "duration_ms": rng.lognormvariate(6.0, 0.3),
        "endpoint": "/classify",
        "runtime": "serverless_container",
        "platform": "gcp_cloud_run",
        "service_name": "classifier",
        "tenant": _tenant(rng),
        "model": "gemini-2.0-flash",
        "provider": "gcp.gemini",
        "operation": "chat",
        "prompt_version": "v1",
        "input_tokens": 300,
        "output_tokens": 5,
        "cold_start": False,
        "status_code": "OK",
    }


# (generator, requests per day)
_WORKLOADS: Final = ((_chat, 3000), (_summarize, 4300), (_embed, 900), (_classify, 2))


def synthetic_spans(
    start: datetime, *, days: int = 14, seed: int = 7, scale: float = 1.0
) -> Iterator[dict[str, Any]]:
    """Span rows (``collectors.testing.span_record``) for ``days`` days from ``start``
    (naive UTC); ``scale`` multiplies the request counts (keep tests small with 0.1)."""
    from infermeter.collectors.testing import span_record

    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not security
    for day in range(days):
        day_start = start + timedelta(days=day)
        # Weekends carry 60 % of a weekday's traffic.
        weekday_factor = 0.6 if day_start.weekday() >= 5 else 1.0
        for make, per_day in _WORKLOADS:
            count = max(1, round(per_day * scale * weekday_factor * rng.uniform(0.9, 1.1)))
            if per_day < 10:
                count = per_day
            for _ in range(count):
                moment = day_start + timedelta(seconds=rng.uniform(0, 86_400))
                fields = make(rng, moment, day)
                yield span_record(start=fields.pop("start"), **fields)
