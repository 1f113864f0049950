"""The metric catalogue: every Prometheus metric infermeter exports, in one place.

The exporter emits exactly these families, every dashboard panel queries them through
these objects, and every alert rule is written against them, so a rename is one edit
and a panel can never query a metric the exporter does not have.

Naming follows the Prometheus conventions: ``infermeter_`` prefix, base units in the
name (``_seconds``, ``_usd``), ``_ratio`` for fractions in [0, 1], ``_total`` for
counters only.

Three families of label sets:

* **cohort** (``COHORT_LABELS``): tenant, model, prompt version, endpoint, runtime,
  provider. Counters over the whole store and the rolling-window sums and quantiles.
  Window sums (requests, errors, cost, tokens, ...) aggregate correctly under any
  filter, so dashboards derive ratios as ``sum(a) / sum(b)``; quantiles do not
  aggregate, so a cohort quantile is shown per series or as the worst cohort (``max``).
* **workload** (``WORKLOAD_LABELS``): endpoint, runtime - where SLOs, deployment facts
  and runtime economics apply. Exact quantiles and ratios over the whole workload; the
  alert rules use these.
* tenant-only, drift and recommendation families with their own small label sets.

``tenant`` is bounded: only the top-N tenants by volume (plus any tenant with a
budget) keep their name, the rest are reported as ``other`` (see ``OTHER_TENANT``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "COHORT_LABELS",
    "DRIFT_LABELS",
    "EVALUATION_LABELS",
    "OTHER_TENANT",
    "PREFIX",
    "QUALITY_LABELS",
    "QUANTILES",
    "RECOMMENDATION_LABELS",
    "ROLLOUT_LABELS",
    "TENANT_LABELS",
    "WORKLOAD_LABELS",
    "Catalog",
    "MetricSpec",
    "by_name",
]

PREFIX: Final = "infermeter_"
OTHER_TENANT: Final = "other"
QUANTILES: Final = ("0.5", "0.95", "0.99")

COHORT_LABELS: Final = ("tenant", "model", "prompt_version", "endpoint", "runtime", "provider")
WORKLOAD_LABELS: Final = ("endpoint", "runtime")
TENANT_LABELS: Final = ("tenant",)
DRIFT_LABELS: Final = ("model", "prompt_version", "tenant", "kind", "feature", "method")
RECOMMENDATION_LABELS: Final = ("kind", "endpoint", "runtime", "tenant")
QUALITY_LABELS: Final = ("tenant", "model", "prompt_version", "endpoint")
EVALUATION_LABELS: Final = (*QUALITY_LABELS, "evaluation")
ROLLOUT_LABELS: Final = ("tenant", "evaluation", "baseline", "candidate")

Kind = Literal["counter", "gauge"]


@dataclass(frozen=True)
class MetricSpec:
    """One exported metric family.

    ``unit`` is the Grafana unit id panels display it with; ``warn`` and ``critical``
    are the default thresholds panels colour by and default alert rules start from
    (None when a threshold makes no sense for the metric).
    """

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    unit: str = "short"
    warn: float | None = None
    critical: float | None = None

    def __post_init__(self) -> None:
        if not self.name.startswith(PREFIX):
            raise ValueError(f"{self.name}: metric names start with {PREFIX!r}")
        if (self.kind == "counter") != self.name.endswith("_total"):
            raise ValueError(f"{self.name}: counters and only counters end in _total")

    def select(self, regex: Mapping[str, str] | None = None, **exact: str) -> str:
        """A PromQL selector: ``name{label="value", other=~"regex"}``.

        ``exact`` values match literally; ``regex`` values are regular expressions
        (Grafana template variables, alternations). Keys must be this metric's labels.
        """
        regex = dict(regex or {})
        unknown = (set(exact) | set(regex)) - set(self.labels)
        if unknown:
            raise ValueError(f"{self.name} has no labels {sorted(unknown)}")
        parts = [f"{key}=~{_quote(value)}" for key, value in regex.items()]
        parts += [f"{key}={_quote(value)}" for key, value in exact.items()]
        return f"{self.name}{{{', '.join(parts)}}}" if parts else self.name


def _quote(value: str) -> str:
    """A PromQL string literal (double-quoted, backslash escapes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _counter(
    name: str, help_: str, labels: tuple[str, ...] = COHORT_LABELS, *, unit: str = "short"
) -> MetricSpec:
    return MetricSpec(PREFIX + name, "counter", help_, labels, unit)


def _gauge(
    name: str,
    help_: str,
    labels: tuple[str, ...],
    unit: str = "short",
    *,
    warn: float | None = None,
    critical: float | None = None,
) -> MetricSpec:
    return MetricSpec(PREFIX + name, "gauge", help_, labels, unit, warn, critical)


_C = COHORT_LABELS
_W = WORKLOAD_LABELS


class Catalog:
    """Every metric family, as attributes; ``Catalog.all()`` lists them in export order."""

    # --- counters over the whole store (monotonic: rate() and increase() work) ------------
    REQUESTS_TOTAL = _counter("requests_total", "Requests (entry spans) in the store.")
    ERRORS_TOTAL = _counter("errors_total", "Requests that ended in an error.")
    THROTTLED_REQUESTS_TOTAL = _counter(
        "throttled_requests_total", "Requests with at least one throttled call (HTTP 429 ...)."
    )
    THROTTLE_EVENTS_TOTAL = _counter(
        "throttle_events_total", "Throttle responses received, retries included."
    )
    COLD_STARTS_TOTAL = _counter("cold_starts_total", "Requests served by a cold start.")
    TOKENS_TOTAL = _counter(
        "tokens_total",
        "Tokens used by requests, by type (input, output, cache_read, reasoning).",
        (*COHORT_LABELS, "type"),
    )
    COST_USD_TOTAL = _counter(
        "cost_usd_total",
        "Cost of requests in USD, by component (tokens, compute).",
        (*COHORT_LABELS, "component"),
        unit="currencyUSD",
    )
    UNPRICED_REQUESTS_TOTAL = _counter(
        "unpriced_requests_total", "Requests with an LLM call whose model has no price."
    )
    UNTOKENIZED_REQUESTS_TOTAL = _counter(
        "untokenized_requests_total",
        "Requests with a successful LLM call that reported no readable token count (its cost "
        "is unknown, never $0).",
    )
    FOREIGN_SPANS_TOTAL = _counter(
        "foreign_spans_total",
        "Spans written under another tenant than their request's entry, left out of the "
        "request (one tenant's spans inside another's trace).",
    )

    # --- cohort gauges over the rolling window (sums aggregate; quantiles do not) ---------
    WINDOW_REQUESTS = _gauge("window_requests", "Requests in the rolling window.", _C)
    WINDOW_ERRORS = _gauge("window_errors", "Failed requests in the rolling window.", _C)
    WINDOW_THROTTLED_REQUESTS = _gauge(
        "window_throttled_requests", "Throttled requests in the rolling window.", _C
    )
    WINDOW_COLD_STARTS = _gauge("window_cold_starts", "Cold starts in the rolling window.", _C)
    WINDOW_RETRIES = _gauge("window_retries", "Retries made in the rolling window.", _C)
    WINDOW_TOKENS = _gauge(
        "window_tokens", "Tokens used in the rolling window, by type.", (*_C, "type")
    )
    WINDOW_COST_USD = _gauge(
        "window_cost_usd",
        "Cost in the rolling window, by component (tokens, compute).",
        (*_C, "component"),
        unit="currencyUSD",
    )
    REQUEST_LATENCY_SECONDS = _gauge(
        "request_latency_seconds",
        "Request latency quantiles over the rolling window.",
        (*_C, "quantile"),
        unit="s",
    )
    TIME_TO_FIRST_CHUNK_SECONDS = _gauge(
        "time_to_first_chunk_seconds",
        "Time to the first streamed chunk, p95, rolling window.",
        (*_C, "quantile"),
        unit="s",
    )
    COST_PER_REQUEST_USD = _gauge(
        "cost_per_request_usd",
        "Token + compute cost per request, rolling window.",
        _C,
        unit="currencyUSD",
    )
    COST_PER_SUCCESSFUL_REQUEST_USD = _gauge(
        "cost_per_successful_request_usd",
        "Cost of all requests divided by the successful ones, rolling window.",
        _C,
        unit="currencyUSD",
    )

    # --- workload gauges (endpoint, runtime): exact, what SLOs and alerts use -------------
    WORKLOAD_WINDOW_REQUESTS = _gauge(
        "workload_window_requests", "Requests of the workload in the rolling window.", _W
    )
    WORKLOAD_REQUESTS_PER_SECOND = _gauge(
        "workload_requests_per_second",
        "Mean request rate of the workload over the window.",
        _W,
        unit="reqps",
    )
    WORKLOAD_REQUEST_LATENCY_SECONDS = _gauge(
        "workload_request_latency_seconds",
        "Workload latency quantiles over the rolling window.",
        (*_W, "quantile"),
        unit="s",
    )
    SLO_SECONDS = _gauge(
        "slo_seconds", "Configured latency SLO (p95 target) of the workload.", _W, unit="s"
    )
    WORKLOAD_SLO_BREACH_RATIO = _gauge(
        "workload_slo_breach_ratio",
        "Share of requests slower than the SLO.",
        _W,
        unit="percentunit",
        warn=0.05,
        critical=0.10,
    )
    WORKLOAD_SLO_BREACH_COLD_RATIO = _gauge(
        "workload_slo_breach_cold_ratio",
        "Share of SLO-breaching requests that were cold starts.",
        _W,
        unit="percentunit",
        warn=0.3,
        critical=0.5,
    )
    WORKLOAD_ERROR_RATIO = _gauge(
        "workload_error_ratio",
        "Share of the workload's requests that failed.",
        _W,
        unit="percentunit",
        warn=0.01,
        critical=0.05,
    )
    WORKLOAD_COLD_START_RATIO = _gauge(
        "workload_cold_start_ratio",
        "Share of the workload's requests served cold.",
        _W,
        unit="percentunit",
        warn=0.05,
        critical=0.15,
    )
    WORKLOAD_COLD_START_PENALTY_SECONDS = _gauge(
        "workload_cold_start_penalty_seconds",
        "p95 of cold requests minus p95 of warm ones.",
        _W,
        unit="s",
    )
    WORKLOAD_THROTTLE_RATIO = _gauge(
        "workload_throttle_ratio",
        "Share of the workload's requests that were throttled.",
        _W,
        unit="percentunit",
        warn=0.01,
        critical=0.05,
    )
    WORKLOAD_RETRIES_PER_REQUEST = _gauge(
        "workload_retries_per_request",
        "Retries per request.",
        _W,
        warn=0.1,
        critical=0.5,
    )
    WORKLOAD_COST_PER_REQUEST_USD = _gauge(
        "workload_cost_per_request_usd",
        "Cost per request of the workload, rolling window.",
        _W,
        unit="currencyUSD",
    )
    WORKLOAD_COST_PER_REQUEST_WEEK_AGO_USD = _gauge(
        "workload_cost_per_request_week_ago_usd",
        "Cost per request over the same window one week earlier (7 days before it).",
        _W,
        unit="currencyUSD",
    )
    WORKLOAD_COST_PER_SUCCESSFUL_REQUEST_USD = _gauge(
        "workload_cost_per_successful_request_usd",
        "Cost per successful request.",
        _W,
        unit="currencyUSD",
    )
    WORKLOAD_COST_PER_SUCCESSFUL_REQUEST_WEEK_AGO_USD = _gauge(
        "workload_cost_per_successful_request_week_ago_usd",
        "Cost per successful request over the same window one week earlier.",
        _W,
        unit="currencyUSD",
    )
    WORKLOAD_PEAK_CONCURRENCY = _gauge(
        "workload_peak_concurrency", "Peak concurrent requests (from span overlap).", _W
    )
    WORKLOAD_MEAN_CONCURRENCY = _gauge(
        "workload_mean_concurrency", "Mean concurrent requests (from span overlap).", _W
    )
    WORKLOAD_CONCURRENCY_CAPACITY = _gauge(
        "workload_concurrency_capacity",
        "Concurrency the deployment accepts: per-instance limit x instances seen (or the "
        "minimum instances).",
        _W,
    )
    WORKLOAD_UTILIZATION_RATIO = _gauge(
        "workload_utilization_ratio",
        "Measured utilization of the provisioned concurrency.",
        _W,
        unit="percentunit",
    )

    # --- runtime economics (endpoint, runtime) --------------------------------------------
    SERVERLESS_MONTHLY_COST_USD = _gauge(
        "serverless_monthly_cost_usd",
        "Projected monthly cost of the workload on serverless.",
        _W,
        unit="currencyUSD",
    )
    CONTAINER_MONTHLY_COST_USD = _gauge(
        "container_monthly_cost_usd",
        "Projected monthly cost on an always-on container fleet.",
        _W,
        unit="currencyUSD",
    )
    CONTAINER_INSTANCES = _gauge(
        "container_instances", "Container instances the fleet projection needs.", _W
    )
    CROSSOVER_UTILIZATION_RATIO = _gauge(
        "crossover_utilization_ratio",
        "Utilization above which containers are cheaper than serverless (break-even).",
        _W,
        unit="percentunit",
    )
    MEASURED_UTILIZATION_RATIO = _gauge(
        "measured_utilization_ratio",
        "Measured utilization, comparable to the crossover.",
        _W,
        unit="percentunit",
    )
    WARM_CAPACITY_UNITS = _gauge(
        "warm_capacity_units",
        "Warm capacity (min instances / provisioned concurrency) `recommend` advises: the "
        "smallest size whose replay of the measured arrivals meets the SLO.",
        _W,
    )
    WARM_CAPACITY_MONTHLY_COST_USD = _gauge(
        "warm_capacity_monthly_cost_usd",
        "What the advised warm capacity adds to the monthly bill (net of cheaper duration).",
        _W,
        unit="currencyUSD",
    )
    RUNTIME_MONTHLY_SAVING_USD = _gauge(
        "runtime_monthly_saving_usd",
        "Monthly saving of the runtime move `recommend` advises (negative: the move buys "
        "the SLO and costs money).",
        _W,
        unit="currencyUSD",
    )

    # --- tenants -------------------------------------------------------------------------
    TENANT_MONTH_SPEND_USD = _gauge(
        "tenant_month_spend_usd",
        "Spend of the tenant since the start of the UTC month.",
        TENANT_LABELS,
        unit="currencyUSD",
    )
    TENANT_MONTH_BUDGET_USD = _gauge(
        "tenant_month_budget_usd",
        "Configured monthly budget of the tenant.",
        TENANT_LABELS,
        unit="currencyUSD",
    )
    TENANT_THROTTLE_SHARE_RATIO = _gauge(
        "tenant_throttle_share_ratio",
        "Share of the window's throttled requests that came from the tenant.",
        TENANT_LABELS,
        unit="percentunit",
        warn=0.5,
        critical=0.7,
    )
    WINDOW_THROTTLED_REQUESTS_ALL = _gauge(
        "window_throttled_requests_all", "Throttled requests in the window, all tenants.", ()
    )

    # --- drift (latest result per group and feature, from the drift results file) ---------
    DRIFT_SCORE = _gauge("drift_score", "Drift score of the latest drift check.", DRIFT_LABELS)
    DRIFT_THRESHOLD = _gauge(
        "drift_threshold", "Threshold the drift score is compared with.", DRIFT_LABELS
    )
    DRIFT_DETECTED = _gauge(
        "drift_detected",
        "1 when the latest drift check found drift, 0 when it found none; absent when it "
        "had too little data or failed.",
        DRIFT_LABELS,
    )
    DRIFT_CURRENT_SAMPLES = _gauge(
        "drift_current_samples", "Samples in the current window of the drift check.", DRIFT_LABELS
    )

    # --- quality (evaluations, feedback, retrieval) over the economics window -------------
    # Evaluations are sparse (a judged sample, feedback minutes later), so these cover the
    # longer economics window (default 7 days), not the rolling hour.
    QUALITY_RESULTS = _gauge(
        "quality_results",
        "Evaluation results (gen_ai.evaluation.result) of the window's requests.",
        EVALUATION_LABELS,
    )
    QUALITY_MEAN_SCORE = _gauge(
        "quality_mean_score",
        "Mean score (gen_ai.evaluation.score.value) of the evaluation.",
        EVALUATION_LABELS,
    )
    QUALITY_PASS_RATIO = _gauge(
        "quality_pass_ratio",
        "Share of the evaluation's results that pass (label, else score >= 0.5; feedback > 0).",
        EVALUATION_LABELS,
        unit="percentunit",
    )
    QUALITY_GOOD_RATIO = _gauge(
        "quality_good_ratio",
        "Share of judged requests that did not fail and passed every evaluation.",
        QUALITY_LABELS,
        unit="percentunit",
    )
    QUALITY_COST_PER_GOOD_ANSWER_USD = _gauge(
        "quality_cost_per_good_answer_usd",
        "Cost per request divided by the good ratio of the judged requests.",
        QUALITY_LABELS,
        unit="currencyUSD",
    )
    QUALITY_NEGATIVE_FEEDBACK_RATIO = _gauge(
        "quality_negative_feedback_ratio",
        "Share of requests with user feedback that got negative feedback.",
        QUALITY_LABELS,
        unit="percentunit",
        warn=0.1,
        critical=0.2,
    )
    RETRIEVAL_HIT_RATIO = _gauge(
        "retrieval_hit_ratio",
        "Share of retrievals (that said which ids were used) where a retrieved id was used.",
        QUALITY_LABELS,
        unit="percentunit",
    )
    QUALITY_ROLLBACK = _gauge(
        "quality_rollback",
        "1 when the candidate version's evaluation scores are significantly lower than the "
        "baseline's (one-sided Mann-Whitney, p < 0.05, >= 30 results each), else 0.",
        ROLLOUT_LABELS,
    )
    QUALITY_ROLLOUT_P_VALUE = _gauge(
        "quality_rollout_p_value",
        "One-sided Mann-Whitney p-value of the rollout's quality drop.",
        ROLLOUT_LABELS,
    )

    # --- recommendations (rebalancing) ----------------------------------------------------
    RECOMMENDATION_ACTIVE = _gauge(
        "recommendation_active",
        "1 for each recommendation currently made.",
        RECOMMENDATION_LABELS,
    )
    RECOMMENDATION_MONTHLY_SAVING_USD = _gauge(
        "recommendation_monthly_saving_usd",
        "Projected monthly saving of the recommendation: minus its monthly_cost_change_usd "
        "(negative: it costs money).",
        RECOMMENDATION_LABELS,
        unit="currencyUSD",
    )
    RECOMMENDATION_P95_GAIN_SECONDS = _gauge(
        "recommendation_p95_gain_seconds",
        "Projected p95 latency gain of the recommendation.",
        RECOMMENDATION_LABELS,
        unit="s",
    )
    RECOMMENDATION_CONFIDENCE_RATIO = _gauge(
        "recommendation_confidence_ratio",
        "Confidence in the recommendation (0..1).",
        RECOMMENDATION_LABELS,
        unit="percentunit",
    )

    # --- the exporter itself --------------------------------------------------------------
    EXPORTER_LAST_REFRESH_TIMESTAMP_SECONDS = _gauge(
        "exporter_last_refresh_timestamp_seconds",
        "Unix time of the last successful refresh.",
        (),
        unit="dateTimeAsIso",
    )
    EXPORTER_REFRESH_DURATION_SECONDS = _gauge(
        "exporter_refresh_duration_seconds",
        "How long the last successful refresh took.",
        (),
        unit="s",
    )
    EXPORTER_REFRESH_ERRORS_TOTAL = _counter(
        "exporter_refresh_errors_total",
        "Refreshes that failed (the previous values are kept).",
        (),
    )
    EXPORTER_WINDOW_SECONDS = _gauge(
        "exporter_window_seconds", "Length of the rolling window the gauges cover.", (), unit="s"
    )
    NEWEST_SPAN_TIMESTAMP_SECONDS = _gauge(
        "newest_span_timestamp_seconds",
        "Unix time of the newest span end in the store.",
        (),
        unit="dateTimeAsIso",
    )

    @classmethod
    def all(cls) -> tuple[MetricSpec, ...]:
        return tuple(v for v in vars(cls).values() if isinstance(v, MetricSpec))


def by_name(name: str) -> MetricSpec:
    """The catalogue entry called ``name`` (with or without the ``infermeter_`` prefix)."""
    full = name if name.startswith(PREFIX) else PREFIX + name
    for spec in Catalog.all():
        if spec.name == full:
            return spec
    raise KeyError(f"no metric {full!r} in the infermeter catalogue")
