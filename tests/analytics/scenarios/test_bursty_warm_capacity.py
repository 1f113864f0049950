"""Scenario: a bursty Lambda endpoint. Answers computed here from COMPUTE.md and list prices.

Every 15 minutes for two days a webhook fans out 20 simultaneous 300 ms requests to a
512 MB Lambda function; the 10-minute keep-alive has expired by the next burst, so every
request starts cold (INIT 1000 ms, outside the handler's span). SLO 1000 ms.

Mean concurrency is 3840 x 0.3 s / 2 days = 0.007: sizing warm capacity to it says one unit,
which leaves 19 of every 20 requests cold. Replaying the bursts: k units leave 20 - k cold
per burst; p95 sits at sorted index 0.95 x 3839 = 3647.05, so it is warm once at most 192
requests (one per burst) are cold - k = 19; with k = 18 it is a cold 1300 ms.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from infermeter.analytics import Deployments, decide, load_prices, request_table
from infermeter.collectors.testing import insert_spans, span_record, store_in_memory

T0 = datetime(2026, 11, 16)
BURSTS, SIZE, GAP_S = 192, 20, 900.0
S = 2_628_000  # seconds in the 730-hour month
GB = 0.5
LAMBDA_GBS, PC_GBS, PC_DURATION_GBS, REQUEST = 0.0000166667, 0.0000041667, 0.0000097222, 2e-7
FARGATE_1VCPU_2GB_H = 0.04048 + 2 * 0.004445  # $0.04937/h (COMPUTE.md case A)


def _spans() -> list[dict[str, object]]:
    rows = []
    for b in range(BURSTS):
        for i in range(SIZE):
            rows.append(
                span_record(
                    start=T0 + timedelta(seconds=b * GAP_S + i * 0.001),
                    duration_ms=300.0,
                    endpoint="/v1/hook",
                    runtime="serverless",
                    platform="aws_lambda",
                    memory_mb=512.0,
                    cold_start=True,
                    init_duration_ms=1000.0,
                )
            )
    return rows


@pytest.fixture(scope="module")
def decisions():  # type: ignore[no-untyped-def]
    con = store_in_memory()
    insert_spans(con, _spans())
    prices = load_prices()
    deployments = Deployments(
        [
            {"endpoint": "/v1/hook", "runtime": "serverless", "memory_mb": 512, "slo_ms": 1000},
            {
                "endpoint": "/v1/hook",
                "runtime": "container",
                "concurrency": 1,
                "instance_price_per_hour": FARGATE_1VCPU_2GB_H,
                "slo_ms": 1000,
            },
        ],
        prices=prices,
    )
    requests = request_table(con, con.table("spans"), prices=prices, deployments=deployments)
    return decide(requests.materialize(), prices=prices, deployments=deployments)


def test_warm_capacity_is_sized_by_replaying_the_bursts(decisions) -> None:  # type: ignore[no-untyped-def]
    (decision,) = decisions.endpoints
    plans = {p.kind: p for p in decision.plans}
    stay = plans["stay"]
    assert stay.projected_p95_ms == pytest.approx(1300.0)  # every caller waited INIT + 300 ms
    assert not stay.meets_slo
    warm = plans["stay_warm"]
    assert warm.warm_units == 19
    assert warm.projected_cold_start_share == pytest.approx(BURSTS / (BURSTS * SIZE))
    assert warm.projected_p95_ms == pytest.approx(300.0 + 0.05 * 1000.0)
    assert warm.meets_slo

    # Its price: the function's duration and requests, the 192 remaining INITs, 19 PC units
    # billed all month, less the cheaper duration rate of the invocations PC serves.
    window = (BURSTS - 1) * GAP_S + (SIZE - 1) * 0.001 + 0.3
    rate = BURSTS * SIZE / window
    r = GB * LAMBDA_GBS
    base = rate * S * (0.3 * r + REQUEST) + (BURSTS / window) * S * 1.0 * r
    pc = 19 * GB * PC_GBS * S
    discount = min(rate * 0.3, 19) * S * GB * (LAMBDA_GBS - PC_DURATION_GBS)
    assert warm.monthly_cost_usd == pytest.approx(base + pc - discount, abs=0.01)


def test_the_decision_is_the_cheapest_plan_meeting_the_slo(decisions) -> None:  # type: ignore[no-untyped-def]
    (decision,) = decisions.endpoints
    plans = {p.kind: p for p in decision.plans}
    # Containers serving one request at a time: Little's law says one task, whose queue of 20
    # makes p95 seconds long; 7 tasks serve a burst in 3 rounds (900 ms): 7 x $0.04937 x 730.
    sized = plans["all_containers_sized"]
    assert sized.instances == 7
    assert sized.monthly_cost_usd == pytest.approx(7 * FARGATE_1VCPU_2GB_H * 730, abs=0.01)
    assert not plans["all_containers"].meets_slo
    assert decision.chosen.kind == "stay_warm"
    assert decision.runner_up is not None and decision.runner_up.kind == "all_containers_sized"
    (rec,) = [r for r in decisions.recommendations if r.kind == "add_warm_capacity"]
    assert rec.title.startswith("Keep /v1/hook on Lambda warm: 19 unit(s), p95 1,300 -> ~350 ms")
    assert rec.monthly_cost_change_usd == pytest.approx(
        decision.chosen.monthly_cost_usd - plans["stay"].monthly_cost_usd, abs=0.01
    )
    assert rec.monthly_cost_change_usd > 0  # warm capacity costs money, and says so
