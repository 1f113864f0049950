"""The rule definitions, their YAML overrides, and the number formats."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from infermeter.agent import ConfigurationError
from infermeter.alerts import DEFAULT_RULES, AlertRule, Clause, load_rules
from infermeter.alerts._templates import humanize, humanize_duration, humanize_percentage
from infermeter.dashboards import Catalog

ISSUE_RULES = {
    "InfermeterLatencyP95AboveSLO",
    "InfermeterColdStartsDriveSLOBreaches",
    "InfermeterThrottleRateHigh",
    "InfermeterErrorRateHigh",
    "InfermeterCostPerRequestUp",
    "InfermeterTenantOverBudget",
    "InfermeterDriftDetected",
    "InfermeterQualityRollback",  # issue 16
    "InfermeterMoveToContainers",
    "InfermeterMoveToServerless",
    "InfermeterWarmCapacityAdvised",
    "InfermeterTenantDominatesThrottles",
    "InfermeterNoRecentSpans",
}


def test_every_rule_of_the_issue_is_defined() -> None:
    assert {rule.name for rule in DEFAULT_RULES} == ISSUE_RULES
    for rule in DEFAULT_RULES:
        assert rule.summary and len(rule.description) > 60
        assert rule.condition.metric in Catalog.all()


def test_rebalancing_annotations_carry_the_numbers() -> None:
    by_name = {rule.name: rule for rule in DEFAULT_RULES}
    for name in (
        "InfermeterMoveToContainers",
        "InfermeterMoveToServerless",
        "InfermeterWarmCapacityAdvised",
        "InfermeterTenantDominatesThrottles",
    ):
        text = by_name[name].summary + by_name[name].description
        assert text.count("|usd}") + text.count("|pct}") + text.count("|num}") >= 2, name


def test_yaml_overrides_parameters_for_severity_and_labels(tmp_path: Path) -> None:
    file = tmp_path / "rules.yaml"
    file.write_text(
        "defaults:\n"
        "  labels: {team: ml-platform}\n"
        "  runbook_url: https://runbooks.example.com/{alertname}\n"
        "rules:\n"
        "  InfermeterLatencyP95AboveSLO:\n"
        "    for: 5m\n"
        "    threshold: 1.1\n"
        "    min_requests: 50\n"
        "    severity: warning\n"
        "  InfermeterMoveToServerless:\n"
        "    enabled: false\n"
        "  InfermeterErrorRateHigh:\n"
        "    params: {threshold: 0.02}\n"
        "    labels: {team: api}\n"
    )
    rules = {rule.name: rule for rule in load_rules(file)}
    slo = rules["InfermeterLatencyP95AboveSLO"]
    assert slo.for_seconds == 300 and slo.severity == "warning"
    assert slo.params == {"threshold": 1.1, "min_requests": 50}
    assert slo.runbook_url == "https://runbooks.example.com/InfermeterLatencyP95AboveSLO"
    assert slo.labels == {"team": "ml-platform"}
    assert rules["InfermeterMoveToServerless"].enabled is False
    assert rules["InfermeterErrorRateHigh"].params["threshold"] == 0.02
    assert rules["InfermeterErrorRateHigh"].labels == {"team": "api"}
    untouched = rules["InfermeterThrottleRateHigh"]
    assert untouched.params == {"threshold": 0.05, "min_requests": 20}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n  NoSuchRule: {}\n", "unknown rules ['NoSuchRule']"),
        ("rules:\n  InfermeterErrorRateHigh: {treshold: 1}\n", "unknown keys ['treshold']"),
        ("rules:\n  InfermeterErrorRateHigh: {threshold: high}\n", "expected a number"),
        ("rules:\n  InfermeterErrorRateHigh: {for: soon}\n", "is not a duration"),
        ("rules:\n  InfermeterErrorRateHigh: {severity: page}\n", "severity: expected one of"),
        ("rules: [1, 2]\n", "rules must map names"),
        ("alerts: {}\n", "expected top-level keys"),
        ("rules: {InfermeterErrorRateHigh: [}\n", "not valid YAML"),
    ],
)
def test_bad_override_files_fail_with_the_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    with pytest.raises(ConfigurationError, match=r"bad\.yaml") as error:
        load_rules(file)
    assert message in str(error.value)


def test_rule_definitions_are_checked() -> None:
    good = DEFAULT_RULES[0]
    with pytest.raises(ValueError, match="CamelCase"):
        AlertRule(**{**good.__dict__, "name": "bad name"})
    with pytest.raises(ValueError, match="unknown placeholder"):
        AlertRule(**{**good.__dict__, "summary": "{nonsense}"})
    with pytest.raises(ValueError, match="lacks the identity labels"):
        AlertRule(
            **{
                **good.__dict__,
                "condition": Clause(Catalog.TENANT_MONTH_SPEND_USD, ">", "threshold"),
            }
        )
    with pytest.raises(ValueError, match="no parameter"):
        AlertRule(**{**good.__dict__, "params": {"threshold": 1.0}})


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, "0"), (1234, "1.234k"), (0.0123, "12.3m"), (5, "5"), (2.5e9, "2.5G"), (math.inf, "+Inf")],
)
def test_humanize_matches_prometheus(value: float, expected: str) -> None:
    assert humanize(value) == expected.replace("+Inf", "inf")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0s"),
        (1.5, "1.5s"),
        (0.25, "250ms"),
        (3725, "1h 2m 5s"),
        (90061, "1d 1h 1m 1s"),
        (61, "1m 1s"),
    ],
)
def test_humanize_duration_matches_prometheus(value: float, expected: str) -> None:
    assert humanize_duration(value) == expected


def test_humanize_percentage() -> None:
    assert humanize_percentage(0.2534) == "25.34%"
    assert humanize_percentage(1) == "100%"
