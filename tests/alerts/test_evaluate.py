"""The built-in evaluator's semantics (those of the PromQL it mirrors) and its payloads."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime

from infermeter.alerts import DEFAULT_RULES, evaluate, webhook_payloads
from infermeter.alerts._evaluate import alertmanager_alerts
from infermeter.analytics.rollup import Sample, Snapshot
from infermeter.dashboards import Catalog

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
RULES = {rule.name: rule for rule in DEFAULT_RULES}


def _snapshot(**series: list[tuple[tuple[str, ...], float]]) -> Snapshot:
    naive = NOW.replace(tzinfo=None)
    return Snapshot(
        {
            Catalog.__dict__[name].name: tuple(Sample(labels, value) for labels, value in rows)
            for name, rows in series.items()
        },
        computed_at=naive,
        window_start=naive,
        window_end=naive,
        newest_span=None,
    )


def test_every_rule_fires_on_its_numbers_and_not_below(
    snapshot_for: Callable[..., Snapshot],
) -> None:
    for rule in DEFAULT_RULES:
        assert len(evaluate([rule], snapshot_for(rule, fire=True, now=NOW), now=NOW)) == 1
        assert evaluate([rule], snapshot_for(rule, fire=False, now=NOW), now=NOW) == []
        disabled = dataclasses.replace(rule, enabled=False)
        assert evaluate([disabled], snapshot_for(rule, fire=True, now=NOW), now=NOW) == []


def test_guards_must_hold_for_the_same_workload() -> None:
    rule = RULES["InfermeterErrorRateHigh"]
    snapshot = _snapshot(
        WORKLOAD_ERROR_RATIO=[(("/chat", "serverless"), 0.5), (("/embed", "container"), 0.5)],
        # Enough traffic on /chat only; /embed has 3 requests - too few to page anyone.
        WORKLOAD_WINDOW_REQUESTS=[(("/chat", "serverless"), 100), (("/embed", "container"), 3)],
    )
    (alert,) = evaluate([rule], snapshot, now=NOW)
    assert alert.labels["endpoint"] == "/chat"
    assert alert.annotations["summary"] == "50% of requests to /chat (serverless) fail"
    assert alert.annotations["description"].startswith("Error ratio over the last window of 100")


def test_relative_condition_needs_the_other_side() -> None:
    rule = RULES["InfermeterCostPerRequestUp"]
    snapshot = _snapshot(
        WORKLOAD_COST_PER_REQUEST_USD=[
            (("/chat", "serverless"), 0.02),
            (("/new", "serverless"), 0.05),
        ],
        WORKLOAD_COST_PER_REQUEST_WEEK_AGO_USD=[(("/chat", "serverless"), 0.01)],
        WORKLOAD_WINDOW_REQUESTS=[(("/chat", "serverless"), 50), (("/new", "serverless"), 50)],
    )
    (alert,) = evaluate([rule], snapshot, now=NOW)  # /new has no week-ago baseline
    assert alert.labels["endpoint"] == "/chat"
    assert alert.evidence == {"week_ago": 0.01}
    assert "is $0.02, up from $0.01 a week ago" in alert.annotations["summary"]


def test_global_guard_and_matchers() -> None:
    rule = RULES["InfermeterTenantDominatesThrottles"]
    shares = [(("acme",), 0.8), (("globex",), 0.2)]
    few = _snapshot(TENANT_THROTTLE_SHARE_RATIO=shares, WINDOW_THROTTLED_REQUESTS_ALL=[((), 4)])
    many = _snapshot(TENANT_THROTTLE_SHARE_RATIO=shares, WINDOW_THROTTLED_REQUESTS_ALL=[((), 40)])
    assert evaluate([rule], few, now=NOW) == []
    (alert,) = evaluate([rule], many, now=NOW)
    assert alert.labels["tenant"] == "acme"
    move = RULES["InfermeterMoveToContainers"]
    # Cheaper on containers by the economics alone is not the decision: the alert reads the
    # recommendation (one plan per endpoint, its thresholds), not a cost ratio of its own.
    costs_only = _snapshot(
        SERVERLESS_MONTHLY_COST_USD=[(("/embed", "serverless"), 500)],
        CONTAINER_MONTHLY_COST_USD=[(("/embed", "serverless"), 70)],
    )
    assert evaluate([move], costs_only, now=NOW) == []


def test_age_condition_uses_the_evaluation_time() -> None:
    rule = RULES["InfermeterNoRecentSpans"]
    two_hours_ago = NOW.timestamp() - 7200
    snapshot = _snapshot(NEWEST_SPAN_TIMESTAMP_SECONDS=[((), two_hours_ago)])
    (alert,) = evaluate([rule], snapshot, now=NOW)
    assert alert.value == 7200
    assert alert.annotations["summary"] == "no span has reached the store for 2h 0m 0s"
    assert evaluate([rule], snapshot, now=datetime.fromtimestamp(two_hours_ago + 60, UTC)) == []


def test_payloads_group_by_alert_name(snapshot_for: Callable[..., Snapshot]) -> None:
    rule = RULES["InfermeterErrorRateHigh"]
    alerts = evaluate([rule], snapshot_for(rule, fire=True, now=NOW), now=NOW) * 2
    (payload,) = webhook_payloads(alerts)
    assert payload["groupKey"] == '{}:{alertname="InfermeterErrorRateHigh"}'
    assert payload["commonLabels"] == {
        "alertname": "InfermeterErrorRateHigh",
        "endpoint": "/chat",
        "runtime": "serverless",
        "severity": "critical",
        "source": "infermeter",
    }
    assert len(payload["alerts"]) == 2
    assert payload["alerts"][0]["startsAt"] == "2026-11-28T12:00:00.000000Z"
    (sent,) = alertmanager_alerts(alerts[:1])
    assert set(sent) == {"labels", "annotations", "startsAt"}


def test_runtime_alerts_read_the_recommend_decision() -> None:
    # The decision says "move /ingest on Lambda to containers, saving $12": the alert fires
    # on it and shows its saving, whatever the two cost gauges' ratio (here 1.1 < 1.2).
    rule = RULES["InfermeterMoveToContainers"]
    decided = _snapshot(
        RECOMMENDATION_ACTIVE=[(("move_to_containers", "/ingest", "serverless", ""), 1.0)],
        RECOMMENDATION_CONFIDENCE_RATIO=[
            (("move_to_containers", "/ingest", "serverless", ""), 0.8)
        ],
        SERVERLESS_MONTHLY_COST_USD=[(("/ingest", "serverless"), 132.0)],
        CONTAINER_MONTHLY_COST_USD=[(("/ingest", "serverless"), 120.0)],
        RUNTIME_MONTHLY_SAVING_USD=[(("/ingest", "serverless"), 12.0)],
    )
    (alert,) = evaluate([rule], decided, now=NOW)
    assert alert.labels["endpoint"] == "/ingest"
    assert alert.evidence["saving"] == 12.0
    other = RULES["InfermeterMoveToServerless"]
    assert evaluate([other], decided, now=NOW) == []
