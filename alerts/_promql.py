"""Rules as PromQL, and the Prometheus rule file.

Every expression is aggregated ``max by (<identity labels>, job, instance)``: an alert
then carries exactly the rule's identity labels plus the scrape target that reported it
(two exporters for two stores alert separately), and Grafana's multi-dimensional rules
see the same label sets in every query of a rule, which is how it joins them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from infermeter.alerts._rules import AlertRule, Clause
from infermeter.alerts._templates import prometheus_template
from infermeter.analytics.rollup import MetricSpec

__all__ = [
    "SCRAPE_LABELS",
    "condition_expr",
    "evidence_expr",
    "format_duration",
    "prometheus_rule_file",
    "value_expr",
    "write_prometheus_rules",
]

SCRAPE_LABELS: Final = ("job", "instance")
GROUP_NAME: Final = "infermeter"


def _number(value: float) -> str:
    return repr(float(value))


def _selector(spec: MetricSpec, matchers: Mapping[str, str | tuple[str, ...]]) -> str:
    exact = {k: v for k, v in matchers.items() if isinstance(v, str)}
    regex = {
        k: "|".join(re.escape(x) for x in v) for k, v in matchers.items() if not isinstance(v, str)
    }
    return spec.select(regex, **exact)


def _on(rule: AlertRule, spec: MetricSpec | None = None) -> str:
    """The label list joining a clause of ``rule`` (scrape labels only for global ones)."""
    global_metric = spec is not None and not spec.labels
    labels = SCRAPE_LABELS if global_metric else (*rule.identity, *SCRAPE_LABELS)
    return ", ".join(labels)


def _clause(rule: AlertRule, clause: Clause, *, boolean: bool) -> str:
    op = f"{clause.op} bool" if boolean else clause.op
    left = _selector(clause.metric, clause.matchers)
    threshold = _number(rule.params[clause.param])
    if clause.age:
        return f"(time() - {left}) {op} {threshold}"
    if clause.relative_to is not None:
        right = _selector(clause.relative_to, clause.relative_matchers)
        return f"{left} {op} on({_on(rule)}) ({threshold} * {right})"
    return f"{left} {op} {threshold}"


def _aggregate(rule: AlertRule, expr: str) -> str:
    return f"max by ({_on(rule)}) ({expr})"


def condition_expr(rule: AlertRule, *, boolean: bool = False) -> str:
    """The alert's PromQL. ``boolean``: 1/0 per candidate instead of filtering (Grafana
    evaluates the threshold itself and then knows which instances are back to normal)."""
    expr = f"({_clause(rule, rule.condition, boolean=boolean)})"
    for guard in rule.guards:
        expr += f" and on({_on(rule, guard.metric)}) ({_clause(rule, guard, boolean=False)})"
    return _aggregate(rule, expr)


def value_expr(rule: AlertRule) -> str:
    """The condition's left-hand value per instance (what ``$value`` / ``{value}`` show)."""
    left = _selector(rule.condition.metric, rule.condition.matchers)
    return _aggregate(rule, f"time() - {left}" if rule.condition.age else left)


def evidence_expr(rule: AlertRule, name: str) -> str:
    evidence = rule.evidence[name]
    selector = _selector(evidence.metric, evidence.matchers)
    if not evidence.metric.labels:
        return f"max by ({', '.join(SCRAPE_LABELS)}) ({selector})"
    return _aggregate(rule, selector)


def _evidence_query(rule: AlertRule, name: str) -> tuple[str, list[str]]:
    """The evidence's PromQL as a printf format for one alert (its labels as ``%q``)."""
    evidence = rule.evidence[name]
    labels = [*([] if not evidence.metric.labels else rule.identity), *SCRAPE_LABELS]
    fixed = ", ".join(f'{k}="{v}"' for k, v in evidence.matchers.items())
    filled = ", ".join(f"{label}=%q" for label in labels)
    body = ", ".join(part for part in (fixed, filled) if part)
    return f"max({evidence.metric.name}{{{body}}})", labels


def format_duration(seconds: float) -> str:
    """A Prometheus duration: 600 -> 10m, 90 -> 90s, 0 -> 0s."""
    whole = round(seconds)
    for unit, size in (("h", 3600), ("m", 60)):
        if whole and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def prometheus_rule_file(
    rules: Sequence[AlertRule], *, interval: str = "1m", for_override: float | None = None
) -> dict[str, Any]:
    """The rule file (as a dict) for ``rules`` that are enabled."""
    entries = []
    for rule in rules:
        if not rule.enabled:
            continue
        evidence = functools.partial(_evidence_query, rule)
        annotations = {
            "summary": prometheus_template(rule, rule.summary, evidence),
            "description": prometheus_template(rule, rule.description, evidence),
        }
        if rule.runbook_url:
            annotations["runbook_url"] = rule.runbook_url
        seconds = rule.for_seconds if for_override is None else for_override
        entries.append(
            {
                "alert": rule.name,
                "expr": condition_expr(rule),
                "for": format_duration(seconds),
                "labels": rule.all_labels(),
                "annotations": annotations,
            }
        )
    return {"groups": [{"name": GROUP_NAME, "interval": interval, "rules": entries}]}


def write_prometheus_rules(
    path: str | Path,
    rules: Sequence[AlertRule],
    *,
    interval: str = "1m",
    for_override: float | None = None,
) -> Path:
    """Write the Prometheus rule file for ``rules`` to ``path`` (YAML)."""
    import yaml

    target = Path(path)
    document = prometheus_rule_file(rules, interval=interval, for_override=for_override)
    header = (
        "# Prometheus alerting rules over infermeter's exporter metrics.\n"
        "# Written by `infermeter alerts export`; edit the overrides file instead.\n"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        header + yaml.safe_dump(document, sort_keys=False, width=1000), encoding="utf-8"
    )
    return target
