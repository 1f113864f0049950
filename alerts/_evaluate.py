"""The built-in evaluator: the alert rules applied to a snapshot of the store, with the
same semantics as the PromQL they render to (``_promql``), and Alertmanager-compatible
notifications of what fires.

It evaluates a condition at one instant: ``for`` durations need history and apply in
Prometheus and Grafana only. Run ``infermeter alerts check`` from cron or CI at the
interval you would give the rule group.
"""

from __future__ import annotations

import hashlib
import json
import operator
import unicodedata
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from infermeter.alerts._rules import AlertRule, Clause
from infermeter.alerts._templates import python_text
from infermeter.analytics.rollup import Snapshot

__all__ = [
    "Alert",
    "alertmanager_alerts",
    "evaluate",
    "post_alertmanager",
    "post_webhook",
    "webhook_payloads",
]

_OPS: Final[dict[str, Callable[[float, float], bool]]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
}
_ZERO_TIME: Final = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class Alert:
    """One firing alert instance."""

    name: str
    severity: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    value: float
    starts_at: datetime
    evidence: Mapping[str, float | None] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps(sorted(self.labels.items()))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def line(self) -> str:
        """One line of text: label values (from spans) quoted with their control characters
        escaped, so no value can end the line or forge another alert's line."""
        identity = " ".join(
            f"{k}={_quoted(v)}"
            for k, v in self.labels.items()
            if k not in {"alertname", "severity", "source"}
        )
        summary = _one_line(self.annotations["summary"])
        return f"FIRING {self.severity:8} {self.name} {identity}: {summary}"


# Bidirectional formatting characters (Unicode TR9) reorder what follows them on screen.
_BIDI: Final = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _one_line(text: str) -> str:
    """``text`` with control, line-separator and bidi characters as ``\\xNN`` escapes."""
    if text.isprintable():
        return text
    return "".join(
        (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
        if c in _BIDI or unicodedata.category(c) in {"Cc", "Zl", "Zp"}
        else c
        for c in text
    )


def _quoted(value: str) -> str:
    """A label value as PromQL writes it: in double quotes, backslash and quote escaped."""
    return '"' + _one_line(value.replace("\\", "\\\\").replace('"', '\\"')) + '"'


def _matches(labels: Mapping[str, str], matchers: Mapping[str, str | tuple[str, ...]]) -> bool:
    for key, want in matchers.items():
        have = labels.get(key, "")
        if (have not in want) if isinstance(want, tuple) else (have != want):
            return False
    return True


def _key(labels: Mapping[str, str], names: Sequence[str]) -> tuple[str, ...]:
    return tuple(labels.get(name, "") for name in names)


def _holding(
    rule: AlertRule, clause: Clause, snapshot: Snapshot, now: float
) -> dict[tuple[str, ...], float]:
    """Identity key -> left value, for every series where ``clause`` holds (PromQL's
    filter-then-``max by``); a global clause (metric without labels) keys on ``()``."""
    names = rule.identity if clause.metric.labels else ()
    threshold = rule.params[clause.param]
    compare = _OPS[clause.op]
    right: dict[tuple[str, ...], list[float]] = {}
    if clause.relative_to is not None:
        for labels, value in snapshot.series(clause.relative_to):
            if _matches(labels, clause.relative_matchers):
                right.setdefault(_key(labels, names), []).append(value)
    out: dict[tuple[str, ...], float] = {}
    for labels, raw in snapshot.series(clause.metric):
        if not _matches(labels, clause.matchers):
            continue
        key = _key(labels, names)
        value = now - raw if clause.age else raw
        if clause.relative_to is not None:
            others = right.get(key, [])
            if len(others) != 1:
                continue  # PromQL drops unmatched series (and refuses many-to-many)
            holds = compare(value, threshold * others[0])
        else:
            holds = compare(value, threshold)
        if holds:
            out[key] = max(out.get(key, value), value)
    return out


def _evidence(rule: AlertRule, snapshot: Snapshot, key: tuple[str, ...]) -> dict[str, float | None]:
    numbers: dict[str, float | None] = {}
    for name, evidence in rule.evidence.items():
        names = rule.identity if evidence.metric.labels else ()
        found = [
            v
            for labels, v in snapshot.series(evidence.metric)
            if _matches(labels, evidence.matchers) and _key(labels, names) == key[: len(names)]
        ]
        numbers[name] = max(found) if found else None
    return numbers


def evaluate(
    rules: Iterable[AlertRule], snapshot: Snapshot, *, now: datetime | None = None
) -> list[Alert]:
    """The alerts of the enabled ``rules`` that fire on ``snapshot``."""
    moment = now or datetime.now(UTC)
    now_s = moment.timestamp()
    alerts: list[Alert] = []
    for rule in rules:
        if not rule.enabled:
            continue
        candidates = _holding(rule, rule.condition, snapshot, now_s)
        for guard in rule.guards:
            holding = _holding(rule, guard, snapshot, now_s)
            if guard.metric.labels:
                candidates = {k: v for k, v in candidates.items() if k in holding}
            elif not holding:
                candidates = {}
        for key, value in sorted(candidates.items()):
            identity = {name: v for name, v in zip(rule.identity, key, strict=True) if v}
            labels = {"alertname": rule.name, **identity, **rule.all_labels()}
            numbers = {"value": value, **_evidence(rule, snapshot, key)}
            annotations = {
                "summary": python_text(rule.summary, identity, numbers),
                "description": python_text(rule.description, identity, numbers),
            }
            if rule.runbook_url:
                annotations["runbook_url"] = rule.runbook_url
            alerts.append(
                Alert(
                    rule.name,
                    rule.severity,
                    labels,
                    annotations,
                    value,
                    moment,
                    {k: v for k, v in numbers.items() if k != "value"},
                )
            )
    return alerts


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def webhook_payloads(
    alerts: Sequence[Alert], *, receiver: str = "infermeter", external_url: str = ""
) -> list[dict[str, Any]]:
    """Alertmanager webhook bodies (``version`` 4), one per alert name like Alertmanager
    grouping by ``alertname``."""
    groups: dict[str, list[Alert]] = {}
    for alert in alerts:
        groups.setdefault(alert.name, []).append(alert)
    payloads = []
    for name, members in groups.items():
        common_labels = dict(set.intersection(*(set(a.labels.items()) for a in members)))
        common_annotations = dict(set.intersection(*(set(a.annotations.items()) for a in members)))
        payloads.append(
            {
                "version": "4",
                "groupKey": f'{{}}:{{alertname="{name}"}}',
                "truncatedAlerts": 0,
                "status": "firing",
                "receiver": receiver,
                "groupLabels": {"alertname": name},
                "commonLabels": common_labels,
                "commonAnnotations": common_annotations,
                "externalURL": external_url,
                "alerts": [
                    {
                        "status": "firing",
                        "labels": dict(a.labels),
                        "annotations": dict(a.annotations),
                        "startsAt": _time(a.starts_at),
                        "endsAt": _ZERO_TIME,
                        "generatorURL": "",
                        "fingerprint": a.fingerprint,
                    }
                    for a in members
                ],
            }
        )
    return payloads


def alertmanager_alerts(alerts: Sequence[Alert]) -> list[dict[str, Any]]:
    """The body of ``POST /api/v2/alerts`` for Alertmanager itself."""
    return [
        {
            "labels": dict(a.labels),
            "annotations": dict(a.annotations),
            "startsAt": _time(a.starts_at),
        }
        for a in alerts
    ]


def _post(url: str, body: Any, timeout: float, what: str) -> None:
    request = urllib.request.Request(  # noqa: S310 - the user's own webhook / Alertmanager
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "infermeter-alerts"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as exc:
        raise OSError(f"{what} {url} answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OSError(f"cannot post to {what} {url}: {reason}") from None


def post_webhook(url: str, alerts: Sequence[Alert], *, timeout: float = 10.0) -> int:
    """POST one Alertmanager-format webhook body per alert name; returns bodies sent."""
    payloads = webhook_payloads(alerts)
    for payload in payloads:
        _post(url, payload, timeout, "webhook")
    return len(payloads)


def post_alertmanager(url: str, alerts: Sequence[Alert], *, timeout: float = 10.0) -> None:
    """Hand the alerts to an Alertmanager (``POST /api/v2/alerts``), which then groups,
    deduplicates, silences and routes them like alerts from Prometheus."""
    if alerts:
        _post(
            url.rstrip("/") + "/api/v2/alerts", alertmanager_alerts(alerts), timeout, "Alertmanager"
        )
