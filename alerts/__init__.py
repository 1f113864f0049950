"""infermeter.alerts: alert rules as code, rendered for Grafana and Prometheus, and evaluated.

- :data:`DEFAULT_RULES` / :class:`AlertRule` / :func:`load_rules`: the rules, defined once
  over the exporter's metric catalogue and overridable by a YAML file.
- :func:`prometheus_rule_file` / :func:`write_prometheus_rules`: Prometheus alerting rules.
- :func:`grafana_rule_group` / :func:`push_alerts`: Grafana-managed rules, contact point and
  notification route through grafana-client (idempotent).
- :func:`evaluate` / :func:`check_store`: the same rules evaluated on a store, with
  Alertmanager-compatible webhooks (:func:`post_webhook`, :func:`post_alertmanager`).
"""

from __future__ import annotations

from infermeter.alerts._check import check_store
from infermeter.alerts._evaluate import (
    Alert,
    evaluate,
    post_alertmanager,
    post_webhook,
    webhook_payloads,
)
from infermeter.alerts._grafana import Contact, grafana_rule_group, push_alerts
from infermeter.alerts._promql import prometheus_rule_file, write_prometheus_rules
from infermeter.alerts._rules import DEFAULT_RULES, AlertRule, Clause, Evidence, load_rules
from infermeter.alerts._settings import CHECK_SETTINGS

__all__ = [
    "CHECK_SETTINGS",
    "DEFAULT_RULES",
    "Alert",
    "AlertRule",
    "Clause",
    "Contact",
    "Evidence",
    "check_store",
    "evaluate",
    "grafana_rule_group",
    "load_rules",
    "post_alertmanager",
    "post_webhook",
    "prometheus_rule_file",
    "push_alerts",
    "webhook_payloads",
    "write_prometheus_rules",
]
