"""`infermeter alerts push` through the real grafana-client to the fake Grafana, which
validates every body against Grafana's OpenAPI spec."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from infermeter.alerts import (
    DEFAULT_RULES,
    Contact,
    grafana_rule_group,
    load_rules,
    push_alerts,
)
from infermeter.alerts._grafana import rule_uid
from infermeter.dashboards import GrafanaTarget
from infermeter.dashboards.testing import FakeGrafana

from infermeter import main


def _target(grafana: FakeGrafana) -> GrafanaTarget:
    return GrafanaTarget.resolve(
        {
            "grafana_url": grafana.url,
            "token": "admin-token",
            "prometheus_url": "http://prometheus:9090",
        },
        environ={},
    )


HOOK = Contact(webhook_url="https://hooks.example.com/infermeter")


def test_push_provisions_rules_contact_point_and_route(grafana: FakeGrafana) -> None:
    rules = load_rules()
    report = push_alerts(_target(grafana), rules, HOOK)

    stored = {r["uid"]: r for r in grafana.alert_rules.values()}
    assert set(stored) == {rule_uid(rule) for rule in rules}
    assert all(len(uid) <= 40 for uid in stored)
    slo = stored["im-latency-p95-above-slo"]
    assert slo["folderUID"] == "infermeter" and slo["ruleGroup"] == "infermeter"
    assert slo["for"] == "10m" and slo["condition"] == "C"
    assert slo["labels"] == {"severity": "critical", "source": "infermeter"}
    queries = {q["refId"]: q for q in slo["data"]}
    assert queries["A"]["datasourceUid"] == "infermeter-prometheus"
    assert "> bool on(endpoint, runtime, job, instance)" in queries["A"]["model"]["expr"]
    assert {"value", "slo", "breaching", "cold_share"} <= set(queries)
    assert "$values.slo" in slo["annotations"]["summary"]
    (contact,) = [cp for cp in grafana.contact_points.values() if cp["name"] == "infermeter"]
    assert contact["type"] == "webhook"
    assert contact["settings"]["url"] == "https://hooks.example.com/infermeter"
    routes = grafana.policy["routes"]
    assert routes[0]["receiver"] == "infermeter"
    assert routes[0]["object_matchers"] == [["source", "=", "infermeter"]]
    assert grafana.policy["receiver"] == "grafana-default-email"  # the user's root kept
    assert report.changed() == 5  # folder, datasource, rule group, contact point, route


def test_push_is_idempotent_and_keeps_other_routes(grafana: FakeGrafana) -> None:
    target = _target(grafana)
    rules = load_rules()
    push_alerts(target, rules, HOOK)
    grafana.contact_points["team"] = {
        "uid": "team",
        "name": "team-pager",
        "type": "webhook",
        "settings": {"url": "http://pager/"},
    }
    grafana.policy["routes"].append(
        {"receiver": "team-pager", "object_matchers": [["team", "=", "db"]]}
    )
    state = json.dumps(
        [grafana.alert_rules, grafana.contact_points, grafana.policy], sort_keys=True
    )
    writes = len(grafana.writes())

    report = push_alerts(target, rules, HOOK)

    assert report.changed() == 0
    assert len(grafana.writes()) == writes
    assert (
        json.dumps([grafana.alert_rules, grafana.contact_points, grafana.policy], sort_keys=True)
        == state
    )
    assert [r["receiver"] for r in grafana.policy["routes"]] == ["infermeter", "team-pager"]


def test_push_applies_changes_and_removes_dropped_rules(grafana: FakeGrafana) -> None:
    target = _target(grafana)
    rules = load_rules()
    push_alerts(target, rules, HOOK)
    fewer = [r for r in rules if r.name != "InfermeterNoRecentSpans"]
    report = push_alerts(target, fewer, Contact(emails=("sre@example.com",)))
    assert "im-no-recent-spans" not in {r["uid"] for r in grafana.alert_rules.values()}
    assert {(kind, action) for kind, _, action in report.actions} >= {
        ("alert rule group", "updated"),
        ("contact point", "updated"),
    }
    (contact,) = [cp for cp in grafana.contact_points.values() if cp["name"] == "infermeter"]
    assert contact["type"] == "email"


def test_rules_match_grafanas_alerting_schema(alerting_schema: dict[str, Any]) -> None:
    group = grafana_rule_group(load_rules(), folder_uid="f", datasource_uid="ds")
    validator = jsonschema.Draft7Validator({**alerting_schema, "$ref": "#/definitions/Rule"})
    for rule in group["rules"]:
        assert list(validator.iter_errors(rule)) == [], rule["title"]
        refs = [q["refId"] for q in rule["data"]]
        assert len(refs) == len(set(refs))
        for query in rule["data"]:
            model = query["model"]
            if query["datasourceUid"] == "__expr__" and model["type"] == "reduce":
                assert model["expression"] in refs


def test_cli_push_needs_a_contact(grafana: FakeGrafana, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["alerts", "push", "--grafana-url", grafana.url, "--token", "admin-token"])
    assert code == 2
    assert "--webhook" in capsys.readouterr().err
    assert grafana.alert_rules == {}


def test_cli_push_and_errors(grafana: FakeGrafana, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "alerts",
            "push",
            "--grafana-url",
            grafana.url,
            "--token",
            "admin-token",
            "--webhook",
            "http://hooks.example.com/x",
            "--interval",
            "30s",
            "--editable",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert f"created   alert rule group infermeter ({len(DEFAULT_RULES)} rules)" in out
    assert all(r["provenance"] == "" for r in grafana.alert_rules.values())
    code = main(
        [
            "alerts",
            "push",
            "--grafana-url",
            grafana.url,
            "--token",
            "viewer-token",
            "--webhook",
            "http://hooks.example.com/x",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "403 Forbidden" in err and len(err.strip().splitlines()) == 1
