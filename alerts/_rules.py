"""Alert rules, defined once: conditions over the exporter's metric catalogue.

A rule is a condition on one metric - a threshold, a multiple of another metric with the
same identity labels, or the age of a timestamp - plus guards (minimum traffic and the
like) that must hold for the same labels, and evidence: other metrics whose values the
annotations quote. The same definition is rendered to PromQL (Prometheus rule files,
Grafana-managed rules) and evaluated in Python on a snapshot of the store
(``infermeter alerts check``), so the three can never disagree about what fires.

Numbers a user may want to change are named parameters (``threshold``, ``min_requests``
...); a YAML file overrides them per rule together with ``for``, ``severity``, labels,
``enabled`` (see :func:`load_rules`).

Annotation templates use ``{name}`` or ``{name|format}`` placeholders: an identity label
(``{endpoint}``), ``{value}`` (the condition's left-hand value) or an evidence name;
formats ``pct`` (0.25 -> 25%), ``s`` (seconds, humanized), ``usd`` ($0.0042, $12.50) and
``num`` (4 significant digits).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal

from infermeter.agent.settings import ConfigurationError, read_config_file
from infermeter.analytics.rollup import Catalog, MetricSpec

__all__ = [
    "DEFAULT_RULES",
    "SEVERITIES",
    "AlertRule",
    "Clause",
    "Evidence",
    "load_rules",
    "parse_for",
    "placeholders",
    "substitute",
]

Op = Literal[">", ">=", "<", "<=", "=="]
SEVERITIES: Final = ("critical", "warning", "info")
# Added to every rule's labels; Grafana's notification policy routes on it.
SOURCE_LABEL: Final = ("source", "infermeter")
_PLACEHOLDER: Final = re.compile(r"\{(\w+)(?:\|(\w+))?\}")
_FORMATS: Final = ("pct", "s", "usd", "num")


@dataclass(frozen=True)
class Clause:
    """``metric{matchers} op param`` - or ``op param x other{other_matchers}`` when
    ``relative_to`` is set - or ``time() - metric op param`` when ``age``.

    ``param`` names the rule parameter holding the number; ``matchers`` match label
    values exactly (a tuple of values means any of them).
    """

    metric: MetricSpec
    op: Op
    param: str
    matchers: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    relative_to: MetricSpec | None = None
    relative_matchers: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    age: bool = False


@dataclass(frozen=True)
class Evidence:
    """A number quoted in the annotations: ``metric{matchers}`` for the alert's labels."""

    metric: MetricSpec
    matchers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertRule:
    """One alert: ``condition`` and every guard hold for the same ``identity`` labels."""

    name: str
    severity: str
    identity: tuple[str, ...]
    condition: Clause
    params: Mapping[str, float]
    summary: str
    description: str
    guards: tuple[Clause, ...] = ()
    evidence: Mapping[str, Evidence] = field(default_factory=dict)
    for_seconds: float = 600.0
    labels: Mapping[str, str] = field(default_factory=dict)
    runbook_url: str = ""
    enabled: bool = True

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]+", self.name):
            raise ValueError(f"alert name {self.name!r}: use CamelCase letters and digits")
        if self.severity not in SEVERITIES:
            raise ValueError(f"{self.name}: severity must be one of {SEVERITIES}")
        self._check_labels()
        for clause in (self.condition, *self.guards):
            if clause.param not in self.params:
                raise ValueError(f"{self.name}: no parameter {clause.param!r}")
        for name in self.evidence:
            if name in self.identity or name == "value":
                raise ValueError(f"{self.name}: evidence {name!r} shadows a label or value")
        known = {*self.identity, "value", *self.evidence}
        for text in (self.summary, self.description):
            for _, name, fmt in placeholders(text):
                if name not in known:
                    raise ValueError(f"{self.name}: unknown placeholder {{{name}}}")
                if fmt and fmt not in _FORMATS:
                    raise ValueError(f"{self.name}: unknown format {fmt!r}")

    def _check_labels(self) -> None:
        identity = set(self.identity)
        for spec in (self.condition.metric, self.condition.relative_to):
            if spec is not None and not identity <= set(spec.labels):
                raise ValueError(f"{self.name}: {spec.name} lacks the identity labels")
        # Guards and evidence either share the identity labels or are global (no labels).
        for spec in [g.metric for g in self.guards] + [e.metric for e in self.evidence.values()]:
            if spec.labels and not identity <= set(spec.labels):
                raise ValueError(f"{self.name}: {spec.name} lacks the identity labels")

    def all_labels(self) -> dict[str, str]:
        """The labels every alert of this rule carries (besides its identity labels)."""
        return {"severity": self.severity, SOURCE_LABEL[0]: SOURCE_LABEL[1], **self.labels}


def substitute(text: str, fragment: Callable[[str, str], str]) -> str:
    """``text`` with each ``{name|format}`` replaced by ``fragment(name, format)`` in one
    pass: a replacement is never searched for placeholders again (a label value holding
    ``{runtime}`` stays as it is)."""
    return _PLACEHOLDER.sub(lambda m: fragment(m.group(1), m.group(2) or ""), text)


def placeholders(text: str) -> list[tuple[str, str, str]]:
    """(whole placeholder, name, format) of every ``{name|format}`` in ``text``."""
    return [(m.group(0), m.group(1), m.group(2) or "") for m in _PLACEHOLDER.finditer(text)]


C = Catalog
_WORKLOAD: Final = ("endpoint", "runtime")
_SERVERLESS: Final = ("serverless", "serverless_container")
_MIN_REQUESTS = Clause(C.WORKLOAD_WINDOW_REQUESTS, ">=", "min_requests")

DEFAULT_RULES: Final[tuple[AlertRule, ...]] = (
    AlertRule(
        name="InfermeterLatencyP95AboveSLO",
        severity="critical",
        identity=_WORKLOAD,
        condition=Clause(
            C.WORKLOAD_REQUEST_LATENCY_SECONDS,
            ">",
            "threshold",
            matchers={"quantile": "0.95"},
            relative_to=C.SLO_SECONDS,
        ),
        guards=(_MIN_REQUESTS,),
        params={"threshold": 1.0, "min_requests": 20},
        evidence={
            "slo": Evidence(C.SLO_SECONDS),
            "breaching": Evidence(C.WORKLOAD_SLO_BREACH_RATIO),
            "cold_share": Evidence(C.WORKLOAD_SLO_BREACH_COLD_RATIO),
        },
        summary="p95 latency of {endpoint} ({runtime}) is {value|s}, over its {slo|s} SLO",
        description="{breaching|pct} of requests are slower than the SLO; {cold_share|pct} of "
        "those were cold starts. If most are cold, add warm capacity; otherwise "
        "look at the slowest stage of the traces (model API, retrieval).",
        for_seconds=600,
    ),
    AlertRule(
        name="InfermeterColdStartsDriveSLOBreaches",
        severity="warning",
        identity=_WORKLOAD,
        condition=Clause(C.WORKLOAD_SLO_BREACH_COLD_RATIO, ">", "threshold"),
        guards=(Clause(C.WORKLOAD_SLO_BREACH_RATIO, ">=", "min_breach_ratio"), _MIN_REQUESTS),
        params={"threshold": 0.5, "min_breach_ratio": 0.02, "min_requests": 20},
        evidence={
            "cold_ratio": Evidence(C.WORKLOAD_COLD_START_RATIO),
            "penalty": Evidence(C.WORKLOAD_COLD_START_PENALTY_SECONDS),
            "breaching": Evidence(C.WORKLOAD_SLO_BREACH_RATIO),
        },
        summary="cold starts cause {value|pct} of the SLO breaches of {endpoint} ({runtime})",
        description="{cold_ratio|pct} of requests start cold and a cold start adds "
        "{penalty|s} at p95; {breaching|pct} of requests breach the SLO. Warm "
        "capacity (min instances / provisioned concurrency) or a lighter init "
        "(lazy imports, smaller package) removes most of these breaches.",
        for_seconds=900,
    ),
    AlertRule(
        name="InfermeterThrottleRateHigh",
        severity="warning",
        identity=_WORKLOAD,
        condition=Clause(C.WORKLOAD_THROTTLE_RATIO, ">", "threshold"),
        guards=(_MIN_REQUESTS,),
        params={"threshold": 0.05, "min_requests": 20},
        evidence={"retries": Evidence(C.WORKLOAD_RETRIES_PER_REQUEST)},
        summary="{value|pct} of requests to {endpoint} ({runtime}) are throttled",
        description="The provider rate-limits this workload ({retries|num} retries per "
        "request). Raise the quota or concurrency limit, spread load across "
        "deployments/regions, or check the tenant throttle share.",
        for_seconds=600,
    ),
    AlertRule(
        name="InfermeterErrorRateHigh",
        severity="critical",
        identity=_WORKLOAD,
        condition=Clause(C.WORKLOAD_ERROR_RATIO, ">", "threshold"),
        guards=(_MIN_REQUESTS,),
        params={"threshold": 0.05, "min_requests": 20},
        evidence={"requests": Evidence(C.WORKLOAD_WINDOW_REQUESTS)},
        summary="{value|pct} of requests to {endpoint} ({runtime}) fail",
        description="Error ratio over the last window of {requests|num} requests. Group the "
        "failing traces by error.type to find the cause.",
        for_seconds=300,
    ),
    AlertRule(
        name="InfermeterCostPerRequestUp",
        severity="warning",
        identity=_WORKLOAD,
        condition=Clause(
            C.WORKLOAD_COST_PER_REQUEST_USD,
            ">",
            "threshold",
            relative_to=C.WORKLOAD_COST_PER_REQUEST_WEEK_AGO_USD,
        ),
        guards=(_MIN_REQUESTS,),
        params={"threshold": 1.25, "min_requests": 20},
        evidence={"week_ago": Evidence(C.WORKLOAD_COST_PER_REQUEST_WEEK_AGO_USD)},
        summary="cost per request of {endpoint} ({runtime}) is {value|usd}, up from "
        "{week_ago|usd} a week ago",
        description="A prompt-version or model change usually explains a jump: compare cost "
        "per request by prompt version on the Unit economics dashboard.",
        for_seconds=1800,
    ),
    AlertRule(
        name="InfermeterTenantOverBudget",
        severity="warning",
        identity=("tenant",),
        condition=Clause(
            C.TENANT_MONTH_SPEND_USD, ">", "threshold", relative_to=C.TENANT_MONTH_BUDGET_USD
        ),
        params={"threshold": 1.0},
        evidence={"budget": Evidence(C.TENANT_MONTH_BUDGET_USD)},
        summary="tenant {tenant} spent {value|usd} this month, over its {budget|usd} budget",
        description="Month-to-date token + compute spend (UTC month) is above the tenant's "
        "monthly budget: tell its owner, or rate-limit the tenant.",
        for_seconds=300,
    ),
    AlertRule(
        name="InfermeterDriftDetected",
        severity="warning",
        identity=("model", "prompt_version", "tenant", "kind", "feature", "method"),
        condition=Clause(C.DRIFT_DETECTED, ">=", "threshold"),
        params={"threshold": 1.0},
        evidence={
            "score": Evidence(C.DRIFT_SCORE),
            "limit": Evidence(C.DRIFT_THRESHOLD),
            "samples": Evidence(C.DRIFT_CURRENT_SAMPLES),
        },
        summary="{kind} drift of {feature} for {model} prompt {prompt_version}",
        description="{method} score {score|num} is over its threshold {limit|num} "
        "({samples|num} current samples). Open `infermeter drift --html` for the "
        "group before retraining or rolling back the prompt.",
        for_seconds=0,
    ),
    # The runtime alerts read the same decision as `infermeter recommend` (one plan per
    # endpoint, the cheapest meeting the SLO, its thresholds): no second rule of their own.
    AlertRule(
        name="InfermeterQualityRollback",
        severity="warning",
        identity=("tenant", "evaluation", "baseline", "candidate"),
        condition=Clause(C.QUALITY_ROLLBACK, ">=", "threshold"),
        params={"threshold": 1.0},
        evidence={"p": Evidence(C.QUALITY_ROLLOUT_P_VALUE)},
        summary="roll back {candidate} to {baseline} for tenant {tenant}: {evaluation} dropped",
        description="{evaluation} scores of {candidate} are significantly lower than "
        "{baseline}'s (one-sided Mann-Whitney p={p|num}), whatever the new version saves. "
        "`infermeter recommend` shows the means, sample sizes and costs.",
        for_seconds=0,
    ),
    AlertRule(
        name="InfermeterMoveToContainers",
        severity="info",
        identity=_WORKLOAD,
        condition=Clause(
            C.RECOMMENDATION_ACTIVE, ">=", "threshold", matchers={"kind": "move_to_containers"}
        ),
        params={"threshold": 1.0},
        evidence={
            "containers": Evidence(C.CONTAINER_MONTHLY_COST_USD),
            "serverless": Evidence(C.SERVERLESS_MONTHLY_COST_USD),
            "saving": Evidence(C.RUNTIME_MONTHLY_SAVING_USD),
            "confidence": Evidence(
                C.RECOMMENDATION_CONFIDENCE_RATIO, {"kind": "move_to_containers"}
            ),
        },
        summary="move {endpoint} ({runtime}) to containers",
        description="The cheapest plan that meets the SLO runs it on containers "
        "({containers|usd}/month for its load against {serverless|usd} on {runtime}); the "
        "endpoint's bill changes by -{saving|usd} a month (confidence {confidence|pct}). "
        "See `infermeter recommend` for every plan and the runner-up.",
        for_seconds=3600,
    ),
    AlertRule(
        name="InfermeterMoveToServerless",
        severity="info",
        identity=_WORKLOAD,
        condition=Clause(
            C.RECOMMENDATION_ACTIVE, ">=", "threshold", matchers={"kind": "move_to_serverless"}
        ),
        params={"threshold": 1.0},
        evidence={
            "serverless": Evidence(C.SERVERLESS_MONTHLY_COST_USD),
            "containers": Evidence(C.CONTAINER_MONTHLY_COST_USD),
            "saving": Evidence(C.RUNTIME_MONTHLY_SAVING_USD),
            "confidence": Evidence(
                C.RECOMMENDATION_CONFIDENCE_RATIO, {"kind": "move_to_serverless"}
            ),
        },
        summary="move {endpoint} ({runtime}) to serverless",
        description="The cheapest plan that meets the SLO runs it on serverless "
        "({serverless|usd}/month for its load against {containers|usd} for the fleet); the "
        "endpoint's bill changes by -{saving|usd} a month (confidence {confidence|pct}). "
        "See `infermeter recommend` for every plan and the runner-up.",
        for_seconds=3600,
    ),
    AlertRule(
        name="InfermeterWarmCapacityAdvised",
        severity="info",
        identity=_WORKLOAD,
        condition=Clause(
            C.RECOMMENDATION_ACTIVE, ">=", "threshold", matchers={"kind": "add_warm_capacity"}
        ),
        params={"threshold": 1.0},
        evidence={
            "units": Evidence(C.WARM_CAPACITY_UNITS),
            "cost": Evidence(C.WARM_CAPACITY_MONTHLY_COST_USD),
            "gain": Evidence(C.RECOMMENDATION_P95_GAIN_SECONDS, {"kind": "add_warm_capacity"}),
            "confidence": Evidence(
                C.RECOMMENDATION_CONFIDENCE_RATIO, {"kind": "add_warm_capacity"}
            ),
            "cold_share": Evidence(C.WORKLOAD_SLO_BREACH_COLD_RATIO),
        },
        summary="keep {units|num} unit(s) of {endpoint} ({runtime}) warm",
        description="Cold starts are {cold_share|pct} of the SLO breaches. {units|num} warm "
        "unit(s) cost {cost|usd}/month and cut p95 by about {gain|s} "
        "(confidence {confidence|pct}).",
        for_seconds=3600,
    ),
    AlertRule(
        name="InfermeterTenantDominatesThrottles",
        severity="warning",
        identity=("tenant",),
        condition=Clause(C.TENANT_THROTTLE_SHARE_RATIO, ">", "threshold"),
        guards=(Clause(C.WINDOW_THROTTLED_REQUESTS_ALL, ">=", "min_throttled"),),
        params={"threshold": 0.6, "min_throttled": 10},
        evidence={"throttled": Evidence(C.WINDOW_THROTTLED_REQUESTS_ALL)},
        summary="tenant {tenant} causes {value|pct} of the throttled requests",
        description="{throttled|num} requests were throttled in the window, most of them "
        "this tenant's: give it its own quota or rate limit, rather than raising "
        "limits for everyone.",
        for_seconds=600,
    ),
    AlertRule(
        name="InfermeterNoRecentSpans",
        severity="warning",
        identity=(),
        condition=Clause(C.NEWEST_SPAN_TIMESTAMP_SECONDS, ">", "max_age_seconds", age=True),
        params={"max_age_seconds": 3600.0},
        summary="no span has reached the store for {value|s}",
        description="Either traffic stopped or spans are lost on the way: check the service's "
        "OTLP exporter, `infermeter collect` and its log.",
        for_seconds=900,
    ),
)


def parse_for(raw: object) -> float:
    """Seconds from ``0``, ``90s``, ``10m``, ``1h`` (a Prometheus duration) or a number."""
    if isinstance(raw, bool):
        raise ValueError("expected a duration such as 10m")
    if isinstance(raw, int | float):
        if raw < 0:
            raise ValueError("expected a duration >= 0")
        return float(raw)
    text = str(raw).strip()
    if text == "0":
        return 0.0
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{raw!r} is not a duration such as 30s, 10m or 1h")
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return float(sum(int(n) * units[u] for n, u in parts))


_OVERRIDABLE: Final = {"for", "severity", "enabled", "labels", "runbook_url", "params"}


def _override(
    rule: AlertRule, entry: Mapping[str, Any], where: str, defaults: Mapping[str, Any]
) -> AlertRule:
    unknown = set(entry) - _OVERRIDABLE - set(rule.params)
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(_OVERRIDABLE)} and "
            f"the parameters {sorted(rule.params)})"
        )
    changes: dict[str, Any] = {}
    params = dict(rule.params)
    given = {**{k: v for k, v in entry.items() if k in rule.params}, **(entry.get("params") or {})}
    for name, value in given.items():
        if name not in rule.params:
            raise ConfigurationError(
                f"{where}: {rule.name} has no parameter {name!r} (it has {sorted(rule.params)})"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigurationError(f"{where}.{name}: expected a number, got {value!r}")
        params[name] = float(value)
    changes["params"] = params
    try:
        if "for" in entry:
            changes["for_seconds"] = parse_for(entry["for"])
    except ValueError as exc:
        raise ConfigurationError(f"{where}.for: {exc}") from None
    if "severity" in entry:
        if entry["severity"] not in SEVERITIES:
            raise ConfigurationError(f"{where}.severity: expected one of {SEVERITIES}")
        changes["severity"] = entry["severity"]
    if "enabled" in entry:
        if not isinstance(entry["enabled"], bool):
            raise ConfigurationError(f"{where}.enabled: expected true or false")
        changes["enabled"] = entry["enabled"]
    labels = {**defaults.get("labels", {}), **(entry.get("labels") or {})}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise ConfigurationError(f"{where}.labels: expected a mapping of strings")
    changes["labels"] = {**rule.labels, **labels}
    runbook = entry.get("runbook_url") or defaults.get("runbook_url")
    if runbook:
        changes["runbook_url"] = str(runbook).replace("{alertname}", rule.name)
    return replace(rule, **changes)


def load_rules(
    path: str | Path | None = None, *, rules: Sequence[AlertRule] = DEFAULT_RULES
) -> list[AlertRule]:
    """The rules with a YAML override file applied (None: the defaults).

    File format::

        defaults:                  # applied to every rule
          labels: {team: ml-platform}
          runbook_url: https://runbooks.example.com/{alertname}
        rules:
          InfermeterLatencyP95AboveSLO:
            for: 5m
            severity: critical
            threshold: 1.1         # any of the rule's parameters, by name
            min_requests: 50
          InfermeterMoveToServerless:
            enabled: false

    Raises ``ConfigurationError`` naming the file and key for anything it cannot use.
    """
    if path is None:
        return [_override(rule, {}, "defaults", {}) for rule in rules]
    file = Path(path)
    data = read_config_file(file, what="alert rules file", default_format="yaml")
    if set(data) - {"defaults", "rules"}:
        raise ConfigurationError(
            f"alert rules file {file}: expected top-level keys 'defaults' and 'rules'"
        )
    defaults = data.get("defaults") or {}
    entries = data.get("rules") or {}
    if not isinstance(defaults, Mapping) or set(defaults) - {"labels", "runbook_url"}:
        raise ConfigurationError(f"alert rules file {file}: defaults takes labels, runbook_url")
    if not isinstance(entries, Mapping):
        raise ConfigurationError(f"alert rules file {file}: rules must map names to settings")
    by_name = {rule.name: rule for rule in rules}
    unknown = set(entries) - set(by_name)
    if unknown:
        raise ConfigurationError(
            f"alert rules file {file}: unknown rules {sorted(unknown)} (known: {sorted(by_name)})"
        )
    out = []
    for rule in rules:
        entry = entries.get(rule.name) or {}
        if not isinstance(entry, Mapping):
            raise ConfigurationError(f"{file}: rules.{rule.name} must be a mapping")
        out.append(_override(rule, entry, f"{file}: rules.{rule.name}", defaults))
    return out
