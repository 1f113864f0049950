"""Fixtures for the dashboards tests: Grafana contract files and a fake Grafana."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from infermeter.collectors import apply_migrations
from infermeter.collectors.testing import insert_spans, span_record
from infermeter.dashboards.testing import FakeGrafana

CONTRACT = Path(__file__).resolve().parent / "contract"
OPENAPI = CONTRACT / "grafana-openapi-11.4.0.json"
DASHBOARD_SCHEMA = CONTRACT / "dashboard.jsonschema.json"

ADMIN_TOKEN = "admin-token"
VIEWER_TOKEN = "viewer-token"


@pytest.fixture(scope="session")
def load_schema() -> Callable[[str], dict[str, Any]]:
    """Reads a JSON Schema of ``contract/`` by file name."""

    def load(name: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((CONTRACT / name).read_text())
        return loaded

    return load


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    fake = FakeGrafana(
        OPENAPI,
        tokens={ADMIN_TOKEN: "Admin", VIEWER_TOKEN: "Viewer"},
        dashboard_schema=DASHBOARD_SCHEMA,
    )
    with fake:
        yield fake
    assert fake.violations == [], "requests or responses broke Grafana's OpenAPI spec"


def _write_store(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    """A store file at ``path`` holding ``rows`` (from ``span_record``)."""
    new = not path.exists()
    con = duckdb.connect(str(path))
    try:
        if new:
            apply_migrations(con)
        insert_spans(con, list(rows))
    finally:
        con.close()
    return path


def _traffic(
    now: datetime,
    *,
    minutes: float = 50,
    per_minute: int = 6,
    tenants: Sequence[str] = ("acme", "globex", "initech"),
    seed: int = 1,
    **fields: Any,
) -> list[dict[str, Any]]:
    """Requests spread over the ``minutes`` before ``now`` on two workloads: /chat
    (serverless, streaming, a few cold starts, throttles, errors and retries; two models and
    prompt versions) and /embed (container)."""
    rng = random.Random(seed)
    rows = []
    count = int(minutes * per_minute)
    for i in range(count):
        start = now - timedelta(minutes=minutes) + timedelta(minutes=minutes * i / count)
        tenant = tenants[i % len(tenants)]
        if i % 4 == 3:
            rows.append(
                span_record(
                    start=start,
                    duration_ms=rng.uniform(20, 60),
                    endpoint="/embed",
                    runtime="container",
                    platform="aws_ec2",
                    service_name="embedder",
                    service_instance=f"pod-{i % 2}",
                    tenant=tenant,
                    model="text-embedding-3-small",
                    provider="openai",
                    operation="embeddings",
                    input_tokens=rng.randint(50, 500),
                    output_tokens=0,
                    status_code="OK",
                    **fields,
                )
            )
            continue
        cold = i % 10 == 0
        throttled = i % 13 == 0
        rows.append(
            span_record(
                start=start,
                duration_ms=rng.uniform(400, 2500) + (1800 if cold else 0),
                endpoint="/chat",
                runtime="serverless",
                platform="aws_lambda",
                service_name="chat-api",
                tenant=tenant,
                model="gpt-4o-mini" if i % 3 else "gpt-4o",
                provider="openai",
                operation="chat",
                prompt_name="answer",
                prompt_version="v2" if i % 2 else "v1",
                cold_start=cold,
                init_duration_ms=900.0 if cold else None,
                memory_mb=1024.0,
                input_tokens=rng.randint(500, 2000),
                output_tokens=rng.randint(50, 400),
                ttft_ms=rng.uniform(150, 600),
                stream=True,
                throttled=throttled,
                attempt=2 if throttled else 1,
                status_code="ERROR" if i % 17 == 0 else "OK",
                error_type="TimeoutError" if i % 17 == 0 else None,
                **fields,
            )
        )
    return rows


@pytest.fixture(scope="session")
def write_store() -> Callable[..., Path]:
    """``write_store(path, rows)``: a store file holding span rows."""
    return _write_store


@pytest.fixture(scope="session")
def traffic() -> Callable[..., list[dict[str, Any]]]:
    """``traffic(now, minutes=50, per_minute=6, tenants=(...), **fields)``: span rows."""
    return _traffic
