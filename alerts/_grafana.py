"""Rules as Grafana-managed alert rules, plus the contact point and notification policy
that deliver them - provisioned through grafana-client's alerting provisioning API.

Each rule becomes one multi-dimensional Grafana rule: query ``A`` is the rule's PromQL in
its 1/0 form, reduced (``B``) and thresholded (``C``, the condition); further queries
fetch the condition's value and each evidence number, reduced into refIds the annotation
templates read from ``$values``. All rules form one group in infermeter's folder; the
group is written in one idempotent PUT (rules removed from the code disappear from
Grafana too). The notification policy is edited, not replaced: infermeter owns only its
child route matching ``source=infermeter``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from infermeter.alerts._promql import condition_expr, evidence_expr, format_duration, value_expr
from infermeter.alerts._rules import SOURCE_LABEL, AlertRule
from infermeter.alerts._templates import grafana_template
from infermeter.dashboards.grafana import (
    GrafanaTarget,
    PushReport,
    connect,
    ensure_datasource,
    ensure_folder,
    grafana_errors,
    is_not_found,
)

__all__ = [
    "CONTACT_POINT_NAME",
    "RULE_GROUP",
    "Contact",
    "contact_point",
    "grafana_rule",
    "grafana_rule_group",
    "policy_route",
    "push_alerts",
    "rule_uid",
]

RULE_GROUP: Final = "infermeter"
CONTACT_POINT_NAME: Final = "infermeter"
CONTACT_POINT_UID: Final = "infermeter-contact"
_EXPR: Final = {"type": "__expr__", "uid": "__expr__"}
# Fields Grafana adds to what it stores; never a difference worth a write.
_SERVER_FIELDS: Final = ("id", "updated", "provenance", "orgID")


@dataclass(frozen=True)
class Contact:
    """Where Grafana sends infermeter's alerts: a webhook URL or e-mail addresses."""

    webhook_url: str | None = None
    emails: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if bool(self.webhook_url) == bool(self.emails):
            raise ValueError("give either a webhook URL or e-mail addresses for the contact point")


def rule_uid(rule: AlertRule) -> str:
    """A stable uid of at most 40 characters:
    ``InfermeterLatencyP95AboveSLO`` -> ``im-latency-p95-above-slo``."""
    name = rule.name.removeprefix("Infermeter")
    kebab = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", name).lower()
    return ("im-" + kebab)[:40]


def _query(ref_id: str, expr: str, datasource_uid: str, window_s: int) -> dict[str, Any]:
    return {
        "refId": ref_id,
        "queryType": "",
        "relativeTimeRange": {"from": window_s, "to": 0},
        "datasourceUid": datasource_uid,
        "model": {
            "refId": ref_id,
            "expr": expr,
            "instant": True,
            "range": False,
            "editorMode": "code",
            "legendFormat": "__auto",
            "intervalMs": 1000,
            "maxDataPoints": 43200,
            "datasource": {"type": "prometheus", "uid": datasource_uid},
        },
    }


def _expression(ref_id: str, model: dict[str, Any]) -> dict[str, Any]:
    return {
        "refId": ref_id,
        "queryType": "",
        "relativeTimeRange": {"from": 0, "to": 0},
        "datasourceUid": "__expr__",
        "model": {"refId": ref_id, "datasource": _EXPR, **model},
    }


def _reduce(ref_id: str, source: str) -> dict[str, Any]:
    return _expression(
        ref_id,
        {"type": "reduce", "expression": source, "reducer": "last", "settings": {"mode": "dropNN"}},
    )


def grafana_rule(
    rule: AlertRule,
    *,
    folder_uid: str,
    datasource_uid: str,
    group: str = RULE_GROUP,
    for_override: float | None = None,
) -> dict[str, Any]:
    """The ``ProvisionedAlertRule`` body of ``rule``."""
    window = 600
    data = [
        _query("A", condition_expr(rule, boolean=True), datasource_uid, window),
        _reduce("B", "A"),
        _expression(
            "C",
            {
                "type": "threshold",
                "expression": "B",
                "conditions": [{"evaluator": {"type": "gt", "params": [0.5]}}],
            },
        ),
        _query("value_query", value_expr(rule), datasource_uid, window),
        _reduce("value", "value_query"),
    ]
    refs = {"value": "value"}
    for name in rule.evidence:
        data.append(_query(f"{name}_query", evidence_expr(rule, name), datasource_uid, window))
        data.append(_reduce(name, f"{name}_query"))
        refs[name] = name
    annotations = {
        "summary": grafana_template(rule, rule.summary, refs),
        "description": grafana_template(rule, rule.description, refs),
    }
    if rule.runbook_url:
        annotations["runbook_url"] = rule.runbook_url
    seconds = rule.for_seconds if for_override is None else for_override
    return {
        "uid": rule_uid(rule),
        "orgID": 1,
        "folderUID": folder_uid,
        "ruleGroup": group,
        "title": rule.name,
        "condition": "C",
        "data": data,
        # No data means no candidate instance (the queries filter by the guards).
        "noDataState": "OK",
        "execErrState": "Error",
        "for": format_duration(seconds),
        "annotations": annotations,
        "labels": rule.all_labels(),
        "isPaused": not rule.enabled,
    }


def grafana_rule_group(
    rules: Sequence[AlertRule],
    *,
    folder_uid: str,
    datasource_uid: str,
    interval_s: int = 60,
    for_override: float | None = None,
) -> dict[str, Any]:
    """The ``AlertRuleGroup`` body holding every rule (disabled ones paused)."""
    return {
        "title": RULE_GROUP,
        "folderUid": folder_uid,
        "interval": interval_s,
        "rules": [
            grafana_rule(
                r, folder_uid=folder_uid, datasource_uid=datasource_uid, for_override=for_override
            )
            for r in rules
        ],
    }


def contact_point(contact: Contact) -> dict[str, Any]:
    if contact.webhook_url:
        settings: dict[str, Any] = {"url": contact.webhook_url, "httpMethod": "POST"}
        kind = "webhook"
    else:
        settings = {"addresses": ";".join(contact.emails), "singleEmail": False}
        kind = "email"
    return {
        "uid": CONTACT_POINT_UID,
        "name": CONTACT_POINT_NAME,
        "type": kind,
        "settings": settings,
        "disableResolveMessage": False,
    }


def policy_route() -> dict[str, Any]:
    """infermeter's child route in the notification policy tree."""
    return {
        "receiver": CONTACT_POINT_NAME,
        "object_matchers": [[SOURCE_LABEL[0], "=", SOURCE_LABEL[1]]],
        "group_by": ["grafana_folder", "alertname"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
        "continue": False,
    }


def _strip(value: Any, keys: Sequence[str]) -> Any:
    """``value`` without ``keys`` at any depth (server-owned, read-only fields)."""
    if isinstance(value, dict):
        return {k: _strip(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_strip(v, keys) for v in value]
    return value


def _projected(current: Any, desired: Any) -> Any:
    """``current`` reduced to the keys ``desired`` has: a Grafana that returns more fields
    than infermeter sends (defaults, newer versions) still compares equal."""
    if isinstance(current, dict) and isinstance(desired, dict):
        return {k: _projected(current[k], v) for k, v in desired.items() if k in current}
    if isinstance(current, list) and isinstance(desired, list) and len(current) == len(desired):
        return [_projected(c, d) for c, d in zip(current, desired, strict=True)]
    return current


def _is_ours(route: dict[str, Any]) -> bool:
    return bool(route.get("object_matchers") == policy_route()["object_matchers"])


def _push_rules(
    api: Any, target: GrafanaTarget, body: dict[str, Any], report: PushReport, editable: bool
) -> None:
    try:
        current = api.alertingprovisioning.get_rule_group(target.folder_uid, RULE_GROUP)
    except Exception as exc:
        if not is_not_found(exc):
            raise
        current = None
    wanted = _strip(body, _SERVER_FIELDS)
    if current is not None and _projected(_strip(current, _SERVER_FIELDS), wanted) == wanted:
        report.add("alert rule group", RULE_GROUP, "unchanged")
        return
    api.alertingprovisioning.update_rule_group(
        target.folder_uid, RULE_GROUP, body, disable_provenance=editable
    )
    report.add(
        "alert rule group",
        f"{RULE_GROUP} ({len(body['rules'])} rules)",
        "created" if current is None else "updated",
    )


def _push_contact_point(api: Any, contact: Contact, report: PushReport, editable: bool) -> None:
    desired = contact_point(contact)
    existing = [
        cp
        for cp in api.alertingprovisioning.get_contactpoints(CONTACT_POINT_NAME)
        if cp.get("name") == CONTACT_POINT_NAME
    ]
    if not existing:
        api.alertingprovisioning.create_contactpoint(desired, disable_provenance=editable)
        report.add("contact point", CONTACT_POINT_NAME, "created")
        return
    current = existing[0]
    desired["uid"] = current.get("uid", CONTACT_POINT_UID)
    if _projected(current, desired) == desired:
        report.add("contact point", CONTACT_POINT_NAME, "unchanged")
        return
    api.alertingprovisioning.update_contactpoint(
        desired["uid"], desired, disable_provenance=editable
    )
    report.add("contact point", CONTACT_POINT_NAME, "updated")


def _push_policy(api: Any, report: PushReport, editable: bool) -> None:
    tree = _strip(api.alertingprovisioning.get_notification_policy_tree(), ("provenance",))
    desired = copy.deepcopy(tree)
    routes = [r for r in desired.get("routes") or [] if not _is_ours(r)]
    desired["routes"] = [policy_route(), *routes]
    if desired == tree:
        report.add("notification policy", f"route {SOURCE_LABEL[0]}={SOURCE_LABEL[1]}", "unchanged")
        return
    api.alertingprovisioning.set_notification_policy_tree(desired, disable_provenance=editable)
    report.add(
        "notification policy",
        f"route {SOURCE_LABEL[0]}={SOURCE_LABEL[1]}",
        "updated" if any(_is_ours(r) for r in tree.get("routes") or []) else "created",
    )


def push_alerts(
    target: GrafanaTarget,
    rules: Sequence[AlertRule],
    contact: Contact,
    *,
    interval_s: int = 60,
    for_override: float | None = None,
    editable: bool = False,
    api: Any = None,
) -> PushReport:
    """Provision folder, data source, the rule group, the contact point and infermeter's
    notification route; idempotent. ``editable`` leaves the objects editable in
    Grafana's UI (no provenance), otherwise Grafana locks them as provisioned."""
    api = api if api is not None else connect(target)
    report = PushReport()
    with grafana_errors(target, "provisioning the folder"):
        ensure_folder(api, target, report)
    with grafana_errors(target, "provisioning the Prometheus data source"):
        ensure_datasource(api, target, report)
    body = grafana_rule_group(
        rules,
        folder_uid=target.folder_uid,
        datasource_uid=target.datasource_uid,
        interval_s=interval_s,
        for_override=for_override,
    )
    with grafana_errors(target, "saving the alert rules"):
        _push_rules(api, target, body, report, editable)
    with grafana_errors(target, "saving the contact point"):
        _push_contact_point(api, contact, report, editable)
    with grafana_errors(target, "saving the notification policy"):
        _push_policy(api, report, editable)
    return report
