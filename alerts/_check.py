"""``infermeter alerts check``: the rules evaluated straight from the store, for teams
without Grafana or Prometheus (cron, CI)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infermeter.alerts._evaluate import (
    Alert,
    evaluate,
    post_alertmanager,
    post_webhook,
    webhook_payloads,
)
from infermeter.alerts._rules import load_rules

__all__ = ["check_store", "run_check"]


def check_store(
    store: str | Path, settings: Mapping[str, Any], now: datetime | None = None
) -> list[Alert]:
    """The alerts that fire on ``store`` now; ``settings`` are ``CHECK_SETTINGS`` values."""
    from infermeter.analytics import open as open_analysis
    from infermeter.dashboards import ExporterConfig

    rules = load_rules(settings.get("rules"))
    config = ExporterConfig.from_settings({**settings, "store": str(store)})
    moment = now or datetime.now(UTC)
    with open_analysis(
        config.store,
        prices=config.prices,
        deployments=config.deployments,
        slo_ms=config.slo_ms,
        request_rows_after=config.request_rows_after,
    ) as analysis:
        snapshot = analysis.snapshot(config.options, drift=analysis.drift_results(), now=moment)
    return evaluate(rules, snapshot, now=moment)


def run_check(settings: Mapping[str, Any], *, as_json: bool = False) -> list[Alert]:
    """The command: evaluate, print (text or the webhook JSON), post where asked."""
    alerts = check_store(settings["store"], settings)
    if as_json:
        print(json.dumps(webhook_payloads(alerts), indent=2))
    else:
        for alert in alerts:
            print(alert.line())
    if settings.get("webhook") and alerts:
        sent = post_webhook(settings["webhook"], alerts, timeout=settings["timeout"])
        print(f"posted {sent} webhook(s) to {settings['webhook']}", file=sys.stderr)
    if settings.get("alertmanager") and alerts:
        post_alertmanager(settings["alertmanager"], alerts, timeout=settings["timeout"])
        print(f"sent {len(alerts)} alert(s) to {settings['alertmanager']}", file=sys.stderr)
    print(f"{len(alerts)} alert(s) firing" if alerts else "no alerts firing", file=sys.stderr)
    return alerts
