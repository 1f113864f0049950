"""Simulated incidents through real parts: four stores (quiet traffic, a cold-start storm,
a throttle burst, a price jump) each served by the exporter, scraped by a real Prometheus
evaluating the exported rules, which notifies a real Alertmanager, which posts webhooks to
a receiver run here. Exactly the expected alerts fire - and `infermeter alerts check`
raises the same ones from the stores directly."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from infermeter.alerts import check_store, load_rules, write_prometheus_rules
from infermeter.dashboards import serve
from infermeter.dashboards.testing import (
    AlertmanagerServer,
    PrometheusServer,
    ScrapeTarget,
    WebhookReceiver,
    wait_for,
)

from infermeter import main

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (PrometheusServer.available() and AlertmanagerServer.available())
        and not os.environ.get("CI"),
        reason="prometheus / prometheus-alertmanager not installed (apt-get install "
        "prometheus prometheus-alertmanager)",
    ),
]

EXPECTED = {
    "quiet": set(),
    "cold_start_storm": {"InfermeterLatencyP95AboveSLO", "InfermeterColdStartsDriveSLOBreaches"},
    "throttle_burst": {"InfermeterThrottleRateHigh", "InfermeterTenantDominatesThrottles"},
    "price_jump": {"InfermeterCostPerRequestUp"},
}


def _settings(store: Path) -> dict[str, object]:
    from infermeter.agent.settings import resolve
    from infermeter.alerts._settings import CHECK_SETTINGS

    return resolve(CHECK_SETTINGS, {"store": str(store)}, environ={})


def test_incidents_fire_exactly_the_expected_alerts(
    tmp_path: Path, scenario_store: Callable[[Path, str, datetime], Path]
) -> None:
    now = datetime.now(UTC)
    stores = {kind: scenario_store(tmp_path, kind, now) for kind in EXPECTED}
    rules_file = write_prometheus_rules(
        tmp_path / "rules.yml", load_rules(), interval="1s", for_override=0
    )
    exporters = {
        kind: serve(store, port=0, refresh_interval=600, window="1h")
        for kind, store in stores.items()
    }
    try:
        for exporter in exporters.values():
            assert exporter.wait_for_refresh(120), exporter.last_error
        with (
            WebhookReceiver() as receiver,
            AlertmanagerServer(receiver.url) as alertmanager,
            PrometheusServer(
                [ScrapeTarget(kind, [f"127.0.0.1:{e.port}"]) for kind, e in exporters.items()],
                rule_files=[rules_file],
                alertmanager_url=alertmanager.url,
            ) as prometheus,
        ):
            wanted = {(kind, name) for kind, names in EXPECTED.items() for name in names}

            def fired() -> set[tuple[str, str]]:
                return {
                    (a["labels"]["job"], a["labels"]["alertname"])
                    for a in receiver.alerts()
                    if a["status"] == "firing"
                }

            wait_for(
                lambda: wanted <= fired(),
                timeout=90,
                what=f"webhooks for {sorted(wanted - fired())}",
            )
            time.sleep(5)  # several more evaluation rounds: nothing else may fire
            assert fired() == wanted
            active = {
                (a["labels"]["job"], a["labels"]["alertname"])
                for a in prometheus.alerts()
                if a["state"] == "firing"
            }
            assert active == wanted
            throttles = [
                a
                for a in receiver.alerts()
                if a["labels"]["alertname"] == "InfermeterTenantDominatesThrottles"
            ]
            assert throttles[0]["labels"]["tenant"] == "acme"
            assert "of the throttled requests" in throttles[0]["annotations"]["summary"]
            storm = [
                a
                for a in receiver.alerts()
                if a["labels"]["alertname"] == "InfermeterLatencyP95AboveSLO"
            ]
            assert storm[0]["labels"]["endpoint"] == "/chat"
            assert storm[0]["labels"]["severity"] == "critical"
            assert "over its 3s SLO" in storm[0]["annotations"]["summary"]
    finally:
        for exporter in exporters.values():
            exporter.close()

    # The built-in evaluator agrees, alert for alert, straight from the stores.
    for kind, store in stores.items():
        assert {a.name for a in check_store(store, _settings(store))} == EXPECTED[kind], kind


def test_alerts_check_posts_webhooks_and_exits_non_zero(
    tmp_path: Path,
    scenario_store: Callable[[Path, str, datetime], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = datetime.now(UTC)
    storm = scenario_store(tmp_path, "cold_start_storm", now)
    quiet = scenario_store(tmp_path, "quiet", now)
    with WebhookReceiver() as receiver:
        assert main(["alerts", "check", "--store", str(storm), "--webhook", receiver.url]) == 3
        out = capsys.readouterr()
        assert "FIRING critical InfermeterLatencyP95AboveSLO" in out.out
        assert "2 alert(s) firing" in out.err
        bodies = receiver.bodies
        assert [b["groupLabels"]["alertname"] for b in bodies] == [
            "InfermeterLatencyP95AboveSLO",
            "InfermeterColdStartsDriveSLOBreaches",
        ]
        for body in bodies:
            assert body["version"] == "4" and body["status"] == "firing"
            assert body["commonLabels"]["source"] == "infermeter"
            (alert,) = body["alerts"]
            assert alert["labels"]["endpoint"] == "/chat"
            assert alert["endsAt"] == "0001-01-01T00:00:00Z" and len(alert["fingerprint"]) == 16

        assert main(["alerts", "check", "--store", str(quiet), "--webhook", receiver.url]) == 0
        assert "no alerts firing" in capsys.readouterr().err
        assert len(receiver.bodies) == 2  # nothing posted for a quiet store


def test_alerts_check_hands_alerts_to_alertmanager(
    tmp_path: Path,
    scenario_store: Callable[[Path, str, datetime], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = scenario_store(tmp_path, "price_jump", datetime.now(UTC))
    with WebhookReceiver() as receiver, AlertmanagerServer(receiver.url) as alertmanager:
        assert (
            main(
                [
                    "alerts",
                    "check",
                    "--store",
                    str(store),
                    "--alertmanager",
                    alertmanager.url,
                    "--json",
                ]
            )
            == 3
        )
        printed = capsys.readouterr().out
        assert '"alertname": "InfermeterCostPerRequestUp"' in printed
        wait_for(receiver.alerts, timeout=30, what="Alertmanager's webhook")
        (alert,) = receiver.alerts()
        assert alert["labels"]["alertname"] == "InfermeterCostPerRequestUp"
        assert "a week ago" in alert["annotations"]["summary"]
        assert [a["labels"]["alertname"] for a in alertmanager.alerts()] == [
            "InfermeterCostPerRequestUp"
        ]


def test_alerts_check_unreachable_webhook_is_one_line(
    tmp_path: Path,
    scenario_store: Callable[[Path, str, datetime], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    import socket

    store = scenario_store(tmp_path, "price_jump", datetime.now(UTC))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = main(
        ["alerts", "check", "--store", str(store), "--webhook", f"http://127.0.0.1:{port}/hook"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith(
        f"infermeter alerts: error: cannot post to webhook http://127.0.0.1:{port}/hook"
    )
