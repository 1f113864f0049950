"""Scenario: one endpoint on Lambda and on a Kubernetes twin. Answers computed here.

``/v1/ingest`` runs as a 512 MB Lambda function fed by bursts (20 simultaneous 300 ms
requests every 15 minutes for two days, all cold, INIT 1000 ms) and as an always-on pod
(an eighth of an m7i.large, $0.0126/h, 8 requests at once, one minimum) serving a request
a minute. SLO 1000 ms.

Judged per deployment, the old rules said "keep the Lambda warm" (costs money) next to
"move the pod to serverless" (saves a little) - following both loses money. Judged as an
endpoint: the pod alone can take the bursts (20 requests on 8 slots: 3 rounds, 900 ms),
so moving the Lambda traffic onto it costs just the pod, and saves the whole function.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from infermeter.analytics import Deployments, decide, load_prices, request_table
from infermeter.collectors.testing import insert_spans, span_record, store_in_memory

T0 = datetime(2026, 11, 16)
BURSTS, SIZE, GAP_S = 192, 20, 900.0
S = 2_628_000
GB = 0.5
LAMBDA_GBS, REQUEST = 0.0000166667, 2e-7
POD_H = 0.0126


def _spans() -> list[dict[str, object]]:
    rows = []
    for b in range(BURSTS):
        for i in range(SIZE):
            rows.append(
                span_record(
                    start=T0 + timedelta(seconds=b * GAP_S + i * 0.001),
                    duration_ms=300.0,
                    endpoint="/v1/ingest",
                    runtime="serverless",
                    platform="aws_lambda",
                    memory_mb=512.0,
                    cold_start=True,
                    init_duration_ms=1000.0,
                )
            )
    for m in range(2 * 24 * 60):
        rows.append(
            span_record(
                start=T0 + timedelta(seconds=m * 60.0 + 30.0),
                duration_ms=300.0,
                endpoint="/v1/ingest",
                runtime="container",
                service_instance="ingest-pod-1",
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
            {"endpoint": "/v1/ingest", "runtime": "serverless", "memory_mb": 512, "slo_ms": 1000},
            {
                "endpoint": "/v1/ingest",
                "runtime": "container",
                "concurrency": 8,
                "min_instances": 1,
                "instance_price_per_hour": POD_H,
                "slo_ms": 1000,
            },
        ],
        prices=prices,
    )
    requests = request_table(con, con.table("spans"), prices=prices, deployments=deployments)
    return decide(requests.materialize(), prices=prices, deployments=deployments)


def test_one_decision_for_the_endpoint_and_it_saves_money(decisions) -> None:  # type: ignore[no-untyped-def]
    recs = [
        r
        for r in decisions.recommendations
        if r.kind in {"add_warm_capacity", "move_to_containers", "move_to_serverless"}
    ]
    (rec,) = recs  # never "keep the Lambda warm" next to "move the pod to serverless"
    assert rec.kind == "move_to_containers" and rec.runtime == "serverless"
    assert rec.title.startswith(
        "Move /v1/ingest on Lambda to containers: p95 1,300 -> ~884 ms, save $"
    )
    # Today: the function (duration, requests, 3840 INITs) plus the pod; after: the pod.
    window = (BURSTS - 1) * GAP_S + (SIZE - 1) * 0.001 + 0.3
    rate = BURSTS * SIZE / window
    r = GB * LAMBDA_GBS
    function = rate * S * (0.3 * r + REQUEST) + rate * S * 1.0 * r
    pod = POD_H * 730
    (decision,) = decisions.endpoints
    plans = {p.kind: p for p in decision.plans}
    assert plans["stay"].monthly_cost_usd == pytest.approx(function + pod, abs=0.01)
    assert plans["all_containers"].monthly_cost_usd == pytest.approx(pod, abs=0.01)
    # 768 of the 6720 merged requests are a burst's third round on 8 slots: each waited for
    # two earlier requests that started 8 ms before it (1 ms apart): 3 x 300 - 16 ms. They
    # fill the top 11.4 %, so the p95 is one of them.
    assert plans["all_containers"].projected_p95_ms == pytest.approx(884.0, abs=0.01)
    assert rec.monthly_cost_change_usd == pytest.approx(-function, abs=0.02)
    assert decision.chosen.kind == "all_containers"


def test_plans_list_every_option_with_its_slo_verdict(decisions) -> None:  # type: ignore[no-untyped-def]
    (decision,) = decisions.endpoints
    kinds = [p.kind for p in decision.plans]
    assert kinds[:3] == ["stay", "stay_warm", "all_containers"]
    assert "all_serverless" in kinds
    plans = {p.kind: p for p in decision.plans}
    assert not plans["stay"].meets_slo  # the Lambda's callers wait 1300 ms
    assert plans["stay_warm"].meets_slo and plans["stay_warm"].warm_units == 19
    # The runner-up is the next cheapest plan meeting the SLO, and the report says why.
    assert decision.runner_up is not None and decision.runner_up.meets_slo
    assert decision.runner_up.monthly_cost_usd >= decision.chosen.monthly_cost_usd
    assert "costs $" in decision.why
    document = decision.to_dict()
    assert document["deployments"] == [
        {"name": "/v1/ingest on Lambda", "runtime": "serverless"},
        {"name": "/v1/ingest on containers", "runtime": "container"},
    ]
