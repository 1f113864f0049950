"""Settings of ``infermeter alerts push | export | check`` (one declaration for the
Python API, the CLI flags and the docs)."""

from __future__ import annotations

from typing import Any, Final

from infermeter.agent.settings import Setting, parse_bool, parse_positive_float, parse_str
from infermeter.dashboards import GRAFANA_SETTINGS, ROLLUP_SETTINGS, parse_duration, parse_url

__all__ = [
    "CHECK_SETTINGS",
    "ENV_ALERT_EMAILS",
    "ENV_ALERT_INTERVAL",
    "ENV_ALERT_RULES",
    "ENV_ALERT_WEBHOOK",
    "EXIT_FIRING",
    "EXPORT_SETTINGS",
    "PUSH_SETTINGS",
    "RULE_SETTINGS",
]

ENV_ALERT_RULES: Final = "INFERMETER_ALERT_RULES"
ENV_ALERT_INTERVAL: Final = "INFERMETER_ALERT_INTERVAL"
ENV_ALERT_WEBHOOK: Final = "INFERMETER_ALERT_WEBHOOK"
ENV_ALERT_EMAILS: Final = "INFERMETER_ALERT_EMAILS"
ENV_ALERTMANAGER_URL: Final = "INFERMETER_ALERTMANAGER_URL"
# `alerts check` exit status while at least one alert fires (1 and 2 are errors).
EXIT_FIRING: Final = 3


def _parse_emails(raw: str) -> tuple[str, ...]:
    emails = tuple(part.strip() for part in raw.replace(";", ",").split(",") if part.strip())
    if not emails or not all("@" in e for e in emails):
        raise ValueError("expected comma-separated e-mail addresses")
    return emails


RULE_SETTINGS: Final[tuple[Setting[Any], ...]] = (
    Setting(
        "rules",
        ENV_ALERT_RULES,
        None,
        parse_str,
        "YAML file overriding the built-in rules (thresholds, for, severity, labels)",
    ),
    Setting(
        "interval",
        ENV_ALERT_INTERVAL,
        60.0,
        parse_duration,
        "evaluation interval of the rule group",
    ),
)

PUSH_SETTINGS: Final[tuple[Setting[Any], ...]] = (
    *GRAFANA_SETTINGS,
    *RULE_SETTINGS,
    Setting(
        "webhook",
        ENV_ALERT_WEBHOOK,
        None,
        parse_url,
        "contact point: Grafana posts alerts to this webhook URL",
    ),
    Setting(
        "emails",
        ENV_ALERT_EMAILS,
        None,
        _parse_emails,
        "contact point: e-mail addresses (comma-separated) instead of a webhook",
    ),
    Setting(
        "editable",
        "INFERMETER_ALERT_EDITABLE",
        False,
        parse_bool,
        "leave the provisioned rules editable in Grafana's UI",
    ),
)

EXPORT_SETTINGS: Final[tuple[Setting[Any], ...]] = RULE_SETTINGS

CHECK_SETTINGS: Final[tuple[Setting[Any], ...]] = (
    *ROLLUP_SETTINGS,
    *RULE_SETTINGS[:1],
    Setting(
        "webhook",
        ENV_ALERT_WEBHOOK,
        None,
        parse_url,
        "post Alertmanager-format webhooks of the firing alerts to this URL",
    ),
    Setting(
        "alertmanager",
        ENV_ALERTMANAGER_URL,
        None,
        parse_url,
        "hand the firing alerts to this Alertmanager (POST /api/v2/alerts)",
    ),
    Setting(
        "timeout",
        "INFERMETER_ALERT_TIMEOUT",
        10.0,
        parse_positive_float,
        "seconds to wait for the webhook / Alertmanager",
    ),
)
