"""Fixtures for the alerts tests: snapshots on which a rule fires (or stays quiet), the
fake Grafana, and stores for the alert scenarios."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from infermeter.alerts import AlertRule
from infermeter.analytics.rollup import MetricSpec, Sample, Snapshot
from infermeter.collectors import apply_migrations
from infermeter.collectors.testing import insert_spans, span_record
from infermeter.dashboards.testing import FakeGrafana

CONTRACT = Path(__file__).resolve().parents[1] / "dashboards" / "contract"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

IDENTITY_VALUES = {
    "endpoint": "/chat",
    "runtime": "serverless",
    "tenant": "acme",
    "model": "gpt-4o-mini",
    "prompt_version": "v2",
    "kind": "embedding",
    "feature": "query_embedding",
    "method": "model",
    "evaluation": "helpfulness",
    "baseline": "v1",
    "candidate": "v2",
}


def _first(value: str | tuple[str, ...]) -> str:
    return value if isinstance(value, str) else value[0]


def rule_snapshot(rule: AlertRule, *, fire: bool, now: datetime) -> Snapshot:
    """A snapshot on which ``rule`` fires (``fire``) or stays quiet because its condition
    does not hold (guards and evidence present either way)."""
    identity = {name: IDENTITY_VALUES[name] for name in rule.identity}
    identity.update(
        {k: _first(v) for k, v in rule.condition.matchers.items() if k in rule.identity}
    )
    samples: dict[str, dict[tuple[str, ...], float]] = {}

    def put(spec: MetricSpec, value: float, extra: dict[str, str | tuple[str, ...]]) -> None:
        labels = {
            **{k: "" for k in spec.labels},
            **identity,
            **{k: _first(v) for k, v in extra.items()},
        }
        key = tuple(labels[name] for name in spec.labels)
        samples.setdefault(spec.name, {})[key] = value

    condition = rule.condition
    threshold = rule.params[condition.param]
    factor = 2.0 if fire else 0.5
    if condition.age:
        put(condition.metric, now.timestamp() - threshold * factor, condition.matchers)
    elif condition.relative_to is not None:
        put(condition.relative_to, 10.0, condition.relative_matchers)
        put(condition.metric, 10.0 * threshold * factor, condition.matchers)
    elif condition.op in {">=", "=="}:
        put(condition.metric, threshold if fire else threshold - 1, condition.matchers)
    else:
        put(condition.metric, threshold * factor, condition.matchers)
    for guard in rule.guards:
        put(guard.metric, rule.params[guard.param] * 2, guard.matchers)
    for i, evidence in enumerate(rule.evidence.values()):
        key_labels = dict(evidence.matchers)
        if evidence.metric.name not in samples or evidence.metric.name == condition.metric.name:
            put(evidence.metric, 0.125 * (i + 1), key_labels)
    return Snapshot(
        {name: tuple(Sample(k, v) for k, v in series.items()) for name, series in samples.items()},
        computed_at=now.replace(tzinfo=None),
        window_start=now.replace(tzinfo=None),
        window_end=now.replace(tzinfo=None),
        newest_span=None,
    )


@pytest.fixture(scope="session")
def snapshot_for() -> Callable[..., Snapshot]:
    """``snapshot_for(rule, fire=True, now=datetime)``: see :func:`rule_snapshot`."""
    return rule_snapshot


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    fake = FakeGrafana(
        CONTRACT / "grafana-openapi-11.4.0.json",
        tokens={"admin-token": "Admin", "viewer-token": "Viewer"},
        dashboard_schema=CONTRACT / "dashboard.jsonschema.json",
    )
    with fake:
        yield fake
    assert fake.violations == [], "requests or responses broke Grafana's OpenAPI spec"


@pytest.fixture(scope="session")
def alerting_schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CONTRACT / "alerting.jsonschema.json").read_text())
    return loaded


# -- stores for the scenarios ----------------------------------------------------------


def _chat(
    start: datetime,
    rng: random.Random,
    *,
    tenant: str,
    cold: bool = False,
    throttled: bool = False,
    output_tokens: int = 150,
    model: str = "gpt-4o-mini",
    prompt_version: str = "v1",
) -> dict[str, Any]:
    duration = rng.uniform(500, 1500) + (4000 if cold else 0)
    return span_record(
        start=start,
        duration_ms=duration,
        endpoint="/chat",
        runtime="serverless",
        platform="aws_lambda",
        service_name="chat-api",
        tenant=tenant,
        model=model,
        provider="openai",
        operation="chat",
        prompt_name="answer",
        prompt_version=prompt_version,
        cold_start=cold,
        init_duration_ms=3500.0 if cold else None,
        memory_mb=1024.0,
        input_tokens=rng.randint(800, 1200),
        output_tokens=output_tokens,
        throttled=throttled,
        attempt=2 if throttled else 1,
        status_code="OK",
    )


def scenario_rows(kind: str, now: datetime, *, seed: int = 5) -> list[dict[str, Any]]:
    """Requests of one /chat workload (serverless) for a scenario: ``quiet``,
    ``cold_start_storm``, ``throttle_burst`` or ``price_jump``. Each has a quiet week-ago
    window (the cost baseline) and 40 minutes of current traffic, 4 requests a minute."""
    rng = random.Random(seed)
    tenants = ("acme", "globex", "initech", "umbrella")
    rows = []
    for week_ago in (True, False):
        base = now - timedelta(days=7) if week_ago else now
        count = 160
        for i in range(count):
            start = base - timedelta(minutes=40) + timedelta(minutes=40 * i / count)
            tenant = tenants[i % len(tenants)]
            options: dict[str, Any] = {}
            if not week_ago and kind == "cold_start_storm":
                options["cold"] = i % 5 == 0  # 20% cold, each adding 4 s
            if not week_ago and kind == "throttle_burst":
                options["throttled"] = (tenant == "acme" and i % 8 < 6) or i % 40 == 1
            if not week_ago and kind == "price_jump":
                options.update(model="gpt-4o", prompt_version="v2", output_tokens=600)
            rows.append(_chat(start, rng, tenant=tenant, **options))
    return rows


def _write_store(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    con = duckdb.connect(str(path))
    try:
        apply_migrations(con)
        insert_spans(con, list(rows))
    finally:
        con.close()
    return path


@pytest.fixture(scope="session")
def scenario_store() -> Callable[[Path, str, datetime], Path]:
    """``scenario_store(directory, kind, now)``: a store file for a scenario."""

    def build(directory: Path, kind: str, now: datetime) -> Path:
        return _write_store(
            directory / f"{kind}.duckdb", scenario_rows(kind, now.replace(tzinfo=None))
        )

    return build
