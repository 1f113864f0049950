"""The dashboards, as code: overview, unit economics, runtime rebalancing, drift, quality.

Every query is built from the metric catalogue (``Catalog``), so a panel can only ask
for a metric the exporter has. Ratios over cohorts are computed as ``sum(a) / sum(b)``
of the window sums, which stays exact under any template-variable filter; latency
quantiles cannot be summed, so cohort panels show the worst cohort (``max``) and the
SLO panels use the exact workload-level quantiles.
"""

from __future__ import annotations

from infermeter.analytics.rollup import Catalog, MetricSpec
from infermeter.dashboards._panels import (
    Json,
    Layout,
    Target,
    Thresholds,
    dashboard,
    datasource_variable,
    hide_columns,
    query_variable,
)

__all__ = [
    "DASHBOARD_TAG",
    "dashboards",
    "drift_dashboard",
    "overview_dashboard",
    "quality_dashboard",
    "rebalancing_dashboard",
    "unit_economics_dashboard",
]

DASHBOARD_TAG = "infermeter"

C = Catalog
_VARIABLE_SOURCE = Catalog.WINDOW_REQUESTS.name
# Recommendations about a workload carry no tenant: filtering them by tenant would hide them.
_WORKLOAD_VARIABLES = {"endpoint": "$endpoint", "runtime": "$runtime"}
_TENANT_VARIABLE = {"tenant": "$tenant"}
_WORKLOAD_ONLY = (
    " Workload-level (endpoint, runtime): the model and tenant filters do not apply here."
)
_VARIABLES = {
    "endpoint": ("Endpoint", "The handler / route a request entered through.", ""),
    "runtime": (
        "Runtime",
        "serverless, serverless_container, container or unknown.",
        '{endpoint=~"$endpoint"}',
    ),
    "model": (
        "Model",
        "Requested model of the LLM calls.",
        '{endpoint=~"$endpoint", runtime=~"$runtime"}',
    ),
    "prompt_version": (
        "Prompt version",
        "gen_ai.prompt.version of the requests.",
        '{endpoint=~"$endpoint", runtime=~"$runtime", model=~"$model"}',
    ),
    "tenant": (
        "Tenant",
        "Top tenants by volume; the rest are grouped as 'other'.",
        '{endpoint=~"$endpoint", runtime=~"$runtime"}',
    ),
}


class _Filters:
    """The template variables of one dashboard, applied to every selector whose metric
    has the label (a variable the dashboard lacks is never referenced)."""

    def __init__(self, *names: str) -> None:
        self.names = names

    def variables(self) -> list[Json]:
        out = [datasource_variable()]
        for name in self.names:
            label, description, chain = _VARIABLES[name]
            query = f"label_values({_VARIABLE_SOURCE}{chain}, {name})"
            out.append(query_variable(name, label, query, description))
        return out

    def __call__(self, spec: MetricSpec, **extra: str) -> str:
        variables = {name: f"${name}" for name in self.names if name in spec.labels}
        return spec.select(variables, **extra)

    def ratio(self, numerator: MetricSpec, denominator: MetricSpec, by: str = "") -> str:
        grouping = f" by ({by})" if by else ""
        return f"sum{grouping}({self(numerator)}) / sum{grouping}({self(denominator)})"


def overview_dashboard() -> Json:
    """Traffic, p95/p99 against the SLO, errors, cold starts and throttles."""
    f = _Filters("endpoint", "runtime", "model", "tenant")
    layout = Layout()
    layout.row("Now (rolling window)")
    layout.panel(
        "stat",
        "Requests / s",
        "Request rate of the selection, from the requests counter. A sudden drop with no "
        "deploy usually means the collector or the exporter stopped: check 'Data age'.",
        [Target(f"sum(rate({f(C.REQUESTS_TOTAL)}[$__rate_interval]))")],
        unit="reqps",
        width=4,
        height=4,
    )
    layout.panel(
        "stat",
        "Error ratio",
        "Failed requests / requests over the rolling window. Above 5% the error-rate alert "
        "fires; open the 'Error ratio by endpoint' panel to find the workload, then its "
        "traces by error.type.",
        [Target(f.ratio(C.WINDOW_ERRORS, C.WINDOW_REQUESTS))],
        unit="percentunit",
        thresholds=Thresholds(0.01, 0.05),
        decimals=2,
        width=4,
        height=4,
    )
    layout.panel(
        "stat",
        "Worst p95 / SLO",
        "Highest ratio of a workload's p95 latency to its SLO. Above 100% a workload misses "
        "its SLO: see 'p95 and p99 against the SLO' and whether cold starts drive it."
        + _WORKLOAD_ONLY,
        [
            Target(
                f"max({f(C.WORKLOAD_REQUEST_LATENCY_SECONDS, quantile='0.95')} "
                f"/ on(endpoint, runtime) {f(C.SLO_SECONDS)})"
            )
        ],
        unit="percentunit",
        thresholds=Thresholds(0.8, 1.0),
        decimals=0,
        width=4,
        height=4,
    )
    layout.panel(
        "stat",
        "Cold-start ratio",
        "Share of requests that hit a cold start. If it is high while p95 misses the SLO, "
        "warm capacity (min instances, provisioned concurrency) is the usual fix: see the "
        "Runtime rebalancing dashboard.",
        [Target(f.ratio(C.WINDOW_COLD_STARTS, C.WINDOW_REQUESTS))],
        unit="percentunit",
        thresholds=Thresholds.of(C.WORKLOAD_COLD_START_RATIO),
        decimals=1,
        width=4,
        height=4,
    )
    layout.panel(
        "stat",
        "Throttle ratio",
        "Share of requests throttled by a provider (HTTP 429 and alike). Rising throttles "
        "mean a rate limit is near: raise the provider quota or concurrency limit, or check "
        "whether one tenant dominates (Runtime rebalancing dashboard).",
        [Target(f.ratio(C.WINDOW_THROTTLED_REQUESTS, C.WINDOW_REQUESTS))],
        unit="percentunit",
        thresholds=Thresholds.of(C.WORKLOAD_THROTTLE_RATIO),
        decimals=1,
        width=4,
        height=4,
    )
    layout.panel(
        "stat",
        "Data age",
        "Time since the newest span in the store ended. If it grows while the service takes "
        "traffic, spans are not arriving: check the OTLP exporter of the service and "
        "`infermeter collect`.",
        [Target(f"time() - {C.NEWEST_SPAN_TIMESTAMP_SECONDS.name}")],
        unit="s",
        thresholds=Thresholds(300, 3600),
        decimals=0,
        width=4,
        height=4,
    )

    layout.row("Latency")
    layout.panel(
        "timeseries",
        "p95 and p99 against the SLO",
        "Exact p95/p99 per workload over the rolling window, with the configured SLO "
        "(the series labelled SLO). p95 above that line fires the SLO alert; compare with "
        "the cold-start panels below to tell cold starts from slow dependencies." + _WORKLOAD_ONLY,
        [
            Target(
                f(C.WORKLOAD_REQUEST_LATENCY_SECONDS, quantile="0.95"),
                "{{endpoint}} {{runtime}} p95",
            ),
            Target(
                f(C.WORKLOAD_REQUEST_LATENCY_SECONDS, quantile="0.99"),
                "{{endpoint}} {{runtime}} p99",
            ),
            Target(f(C.SLO_SECONDS), "{{endpoint}} {{runtime}} SLO"),
        ],
        unit="s",
    )
    layout.panel(
        "timeseries",
        "p95 by model (worst cohort)",
        "p95 of the slowest tenant / prompt-version cohort of each model. Quantiles do not "
        "add up across cohorts, so this is the worst cohort, an upper bound of the model's "
        "p95. A single model rising points at the provider, not at the runtime.",
        [Target(f"max by (model) ({f(C.REQUEST_LATENCY_SECONDS, quantile='0.95')})", "{{model}}")],
        unit="s",
    )
    layout.panel(
        "timeseries",
        "Time to first chunk, p95 (worst cohort)",
        "How long streaming users wait for the first token. It tracks provider queueing "
        "more than total latency does; a rise with flat output tokens means the provider "
        "is congested.",
        [
            Target(
                f"max by (model) ({f(C.TIME_TO_FIRST_CHUNK_SECONDS, quantile='0.95')})", "{{model}}"
            )
        ],
        unit="s",
    )
    layout.panel(
        "timeseries",
        "SLO breaches and the cold share of them",
        "Share of requests slower than the SLO, and the share of those that were cold "
        "starts. When most breaches are cold, add warm capacity rather than optimising "
        "the handler." + _WORKLOAD_ONLY,
        [
            Target(f(C.WORKLOAD_SLO_BREACH_RATIO), "{{endpoint}} {{runtime}} breaching"),
            Target(
                f(C.WORKLOAD_SLO_BREACH_COLD_RATIO),
                "{{endpoint}} {{runtime}} cold share of breaches",
            ),
        ],
        unit="percentunit",
        thresholds=Thresholds.of(C.WORKLOAD_SLO_BREACH_COLD_RATIO),
        min_value=0,
    )

    layout.row("Traffic and errors")
    layout.panel(
        "timeseries",
        "Traffic by endpoint",
        "Requests per second by workload. Use it to correlate latency or cost changes with "
        "load; serverless cold starts rise with bursts after idle periods.",
        [
            Target(
                f"sum by (endpoint, runtime) (rate({f(C.REQUESTS_TOTAL)}[$__rate_interval]))",
                "{{endpoint}} {{runtime}}",
            )
        ],
        unit="reqps",
    )
    layout.panel(
        "timeseries",
        "Error ratio by endpoint",
        "Failed / all requests per workload over the rolling window. Above the red line the "
        "error-rate alert fires.",
        [
            Target(
                f.ratio(C.WINDOW_ERRORS, C.WINDOW_REQUESTS, "endpoint, runtime"),
                "{{endpoint}} {{runtime}}",
            )
        ],
        unit="percentunit",
        thresholds=Thresholds(0.01, 0.05),
        min_value=0,
    )

    layout.row("Cold starts and throttles")
    layout.panel(
        "timeseries",
        "Cold-start ratio",
        "Share of each workload's requests served cold. "
        "Serverless scales to zero; a steady high ratio means traffic is too sparse to keep "
        "instances warm - compare with the warm-capacity advice." + _WORKLOAD_ONLY,
        [Target(f(C.WORKLOAD_COLD_START_RATIO), "{{endpoint}} {{runtime}}")],
        unit="percentunit",
        thresholds=Thresholds.of(C.WORKLOAD_COLD_START_RATIO),
        min_value=0,
        width=8,
    )
    layout.panel(
        "timeseries",
        "Cold-start penalty (p95 cold - p95 warm)",
        "What a cold start adds at p95. Large penalties come from heavy imports or model "
        "loading at init: lazy imports, smaller packages or SnapStart shrink it." + _WORKLOAD_ONLY,
        [Target(f(C.WORKLOAD_COLD_START_PENALTY_SECONDS), "{{endpoint}} {{runtime}}")],
        unit="s",
        width=8,
    )
    layout.panel(
        "timeseries",
        "Throttle ratio by provider and model",
        "Share of requests throttled, per provider and model. Ask for a higher quota, spread "
        "load over regions/deployments, or cap concurrency before the provider does.",
        [
            Target(
                f.ratio(C.WINDOW_THROTTLED_REQUESTS, C.WINDOW_REQUESTS, "provider, model"),
                "{{provider}} {{model}}",
            )
        ],
        unit="percentunit",
        thresholds=Thresholds.of(C.WORKLOAD_THROTTLE_RATIO),
        min_value=0,
        width=8,
    )
    layout.panel(
        "timeseries",
        "Retries per request",
        "Retries the handler made per request. Retries hide throttles and errors from users "
        "but add latency and tokens; a rise usually precedes a throttle or error alert."
        + _WORKLOAD_ONLY,
        [Target(f(C.WORKLOAD_RETRIES_PER_REQUEST), "{{endpoint}} {{runtime}}")],
        thresholds=Thresholds.of(C.WORKLOAD_RETRIES_PER_REQUEST),
        min_value=0,
    )
    layout.panel(
        "timeseries",
        "Exporter refresh",
        "How long the exporter takes to recompute the rollups, and how stale they are. If "
        "the age grows past a few refresh intervals, the exporter cannot read the store "
        "(see infermeter_exporter_refresh_errors_total and its log).",
        [
            Target(C.EXPORTER_REFRESH_DURATION_SECONDS.name, "refresh duration"),
            Target(f"time() - {C.EXPORTER_LAST_REFRESH_TIMESTAMP_SECONDS.name}", "age"),
        ],
        unit="s",
    )
    return dashboard(
        uid="infermeter-overview",
        title="infermeter / AI workload overview",
        description="Traffic, latency against the SLO, errors, cold starts and throttles of "
        "the AI workloads infermeter meters.",
        tags=[DASHBOARD_TAG, "slo"],
        variables=f.variables(),
        panels=layout.panels,
    )


def unit_economics_dashboard() -> Json:
    """Cost per request by tenant / model / prompt version, totals and trends."""
    f = _Filters("endpoint", "runtime", "model", "prompt_version", "tenant")
    layout = Layout()
    cost = C.WINDOW_COST_USD
    requests = C.WINDOW_REQUESTS
    layout.row("Totals")
    layout.panel(
        "stat",
        "Spend in the time range",
        "Token + compute cost of the selected requests over the dashboard's time range "
        "(from the cost counter).",
        [Target(f"sum(increase({f(C.COST_USD_TOTAL)}[$__range]))", instant=True)],
        unit="currencyUSD",
        decimals=2,
        width=6,
        height=4,
    )
    layout.panel(
        "stat",
        "Cost per request",
        "Cost / requests over the rolling window for the selection: what one request of the "
        "selected tenants, models and endpoints costs now.",
        [Target(f.ratio(cost, requests))],
        unit="currencyUSD",
        decimals=5,
        width=6,
        height=4,
    )
    layout.panel(
        "stat",
        "Cost per successful request",
        "All cost divided by the successful requests: failures still cost tokens and "
        "compute, so this is what a useful answer really costs. A widening gap to 'Cost per "
        "request' means money is spent on failures.",
        [Target(f"sum({f(cost)}) / (sum({f(requests)}) - sum({f(C.WINDOW_ERRORS)}))")],
        unit="currencyUSD",
        decimals=5,
        width=6,
        height=4,
    )
    layout.panel(
        "stat",
        "Cost per request vs a week ago (worst workload)",
        "Highest ratio of a workload's cost per request now to the same window a week "
        "earlier. Above 125% the cost alert fires: look for a prompt-version or model change "
        "in the panels below." + _WORKLOAD_ONLY,
        [
            Target(
                f"max({f(C.WORKLOAD_COST_PER_REQUEST_USD)} / on(endpoint, runtime) "
                f"{f(C.WORKLOAD_COST_PER_REQUEST_WEEK_AGO_USD)})"
            )
        ],
        unit="percentunit",
        thresholds=Thresholds(1.1, 1.25),
        decimals=0,
        width=6,
        height=4,
    )

    layout.row("Cost per request")
    for by, title, why in (
        (
            "tenant",
            "by tenant",
            "Which tenants are expensive to serve. Compare with their plan price; tenants "
            "beyond the top N are grouped as 'other'.",
        ),
        (
            "model",
            "by model",
            "Which models drive unit cost. A cheaper model for simple requests is usually the "
            "biggest lever.",
        ),
        (
            "prompt_version, model",
            "by prompt version",
            "Cost per request per prompt version: a new prompt that costs more per request "
            "shows up here first (longer prompts, more output, more retries).",
        ),
    ):
        legend = " ".join("{{" + part.strip() + "}}" for part in by.split(","))
        layout.panel(
            "timeseries",
            f"Cost per request {title}",
            why + " Rolling-window cost / requests.",
            [Target(f.ratio(cost, requests, by), legend)],
            unit="currencyUSD",
            width=8,
        )
    layout.panel(
        "timeseries",
        "Cost per request now and a week ago",
        "Per workload: the rolling window now and the same window 7 days earlier "
        "(labelled 'week ago'), so a jump is visible without 7 days of Prometheus history."
        + _WORKLOAD_ONLY,
        [
            Target(f(C.WORKLOAD_COST_PER_REQUEST_USD), "{{endpoint}} {{runtime}} now"),
            Target(
                f(C.WORKLOAD_COST_PER_REQUEST_WEEK_AGO_USD), "{{endpoint}} {{runtime}} week ago"
            ),
        ],
        unit="currencyUSD",
    )
    layout.panel(
        "timeseries",
        "Spend rate by component (USD / hour)",
        "Token vs compute spend per hour. Compute dominating on serverless usually means "
        "handlers wait on a model API while billed: consider containers (Runtime "
        "rebalancing dashboard).",
        [
            Target(
                f"sum by (component) (rate({f(C.COST_USD_TOTAL)}[$__rate_interval])) * 3600",
                "{{component}}",
            )
        ],
        unit="currencyUSD",
    )

    layout.row("Tokens and budgets")
    layout.panel(
        "timeseries",
        "Tokens per request by type",
        "Input, output, cache-read and reasoning tokens per request. Growing input tokens "
        "with a flat cache-read share means the prompt cache is missed.",
        [
            Target(
                f"sum by (type) ({f(C.WINDOW_TOKENS)}) / on() group_left sum({f(requests)})",
                "{{type}}",
            )
        ],
        width=8,
    )
    layout.panel(
        "bargauge",
        "Spend this month by tenant",
        "Spend since the first of the month (UTC) per tenant; compare with 'Budget used' "
        "for the tenants that have a budget.",
        [Target(f"{C.TENANT_MONTH_SPEND_USD.select(_TENANT_VARIABLE)}", "{{tenant}}")],
        unit="currencyUSD",
        width=8,
    )
    layout.panel(
        "bargauge",
        "Budget used this month",
        "Month-to-date spend / monthly budget, for tenants with a budget. At 100% the "
        "budget alert fires: talk to the tenant's owner or rate-limit the tenant.",
        [
            Target(
                f"{C.TENANT_MONTH_SPEND_USD.select(_TENANT_VARIABLE)} / on(tenant) "
                f"{C.TENANT_MONTH_BUDGET_USD.select(_TENANT_VARIABLE)}",
                "{{tenant}}",
            )
        ],
        unit="percentunit",
        thresholds=Thresholds(0.8, 1.0),
        min_value=0,
        width=8,
    )
    layout.panel(
        "table",
        "Most expensive cohorts",
        "The ten tenant / model / prompt-version / endpoint cohorts with the highest spend "
        "in the rolling window: start cost work at the top.",
        [
            Target(
                f"topk(10, sum by (tenant, model, prompt_version, endpoint) ({f(cost)}))",
                instant=True,
                table=True,
            )
        ],
        unit="currencyUSD",
        width=24,
        transformations=[hide_columns("Time")],
    )
    return dashboard(
        uid="infermeter-unit-economics",
        title="infermeter / Unit economics",
        description="Cost per request and per successful request by tenant, model and "
        "prompt version; totals, trends and budgets.",
        tags=[DASHBOARD_TAG, "cost"],
        variables=f.variables(),
        panels=layout.panels,
    )


def rebalancing_dashboard() -> Json:
    """Serverless vs container break-even, warm-capacity advice, concurrency vs limits."""
    f = _Filters("endpoint", "runtime", "tenant")
    layout = Layout()
    layout.row("Recommendations")
    layout.panel(
        "table",
        "Active recommendations",
        "What infermeter recommends now (see `infermeter recommend` for the full rationale). "
        "Each row is a workload or tenant; the rebalancing alerts carry the same numbers.",
        [
            Target(
                f"max by (kind, endpoint, runtime, tenant) "
                f"({C.RECOMMENDATION_CONFIDENCE_RATIO.select(_WORKLOAD_VARIABLES)})",
                instant=True,
                table=True,
            )
        ],
        unit="percentunit",
        width=12,
        transformations=[hide_columns("Time")],
    )
    layout.panel(
        "bargauge",
        "Projected monthly savings",
        "Monthly saving of each recommendation if applied, from measured traffic and the "
        "bundled prices. Prioritise by saving and confidence.",
        [
            Target(
                f"sum by (kind, endpoint, runtime) "
                f"({C.RECOMMENDATION_MONTHLY_SAVING_USD.select(_WORKLOAD_VARIABLES)})",
                "{{kind}} {{endpoint}} {{runtime}}",
            )
        ],
        unit="currencyUSD",
        width=12,
    )

    layout.row("Serverless vs containers")
    layout.panel(
        "timeseries",
        "Projected monthly cost: serverless vs containers",
        "What the measured traffic would cost per month on serverless (per request and GB-s, "
        "cold starts' init included) and on an always-on container fleet sized for the "
        "target utilization. When one line stays well below the other, move the workload.",
        [
            Target(f(C.SERVERLESS_MONTHLY_COST_USD), "{{endpoint}} {{runtime}} serverless"),
            Target(f(C.CONTAINER_MONTHLY_COST_USD), "{{endpoint}} {{runtime}} containers"),
        ],
        unit="currencyUSD",
    )
    layout.panel(
        "timeseries",
        "Utilization vs break-even",
        "Measured utilization against the crossover utilization (break-even): above the "
        "crossover an always-on container is cheaper than serverless, below it serverless "
        "is cheaper.",
        [
            Target(f(C.MEASURED_UTILIZATION_RATIO), "{{endpoint}} {{runtime}} measured"),
            Target(f(C.CROSSOVER_UTILIZATION_RATIO), "{{endpoint}} {{runtime}} break-even"),
        ],
        unit="percentunit",
    )
    layout.panel(
        "bargauge",
        "Monthly saving of the advised move",
        "What the runtime move `infermeter recommend` advises saves per month at the "
        "measured load (the cheapest plan meeting the SLO; negative: it buys the SLO).",
        [Target(f(C.RUNTIME_MONTHLY_SAVING_USD), "{{endpoint}} {{runtime}}")],
        unit="currencyUSD",
        width=8,
    )
    layout.panel(
        "bargauge",
        "Container instances needed",
        "Instances an always-on fleet needs for the measured load at the target utilization "
        "(at least the configured minimum).",
        [Target(f(C.CONTAINER_INSTANCES), "{{endpoint}} {{runtime}}")],
        width=8,
    )
    layout.panel(
        "bargauge",
        "Workload request rate",
        "Mean requests per second over the rolling window: the lambda of the break-even formula.",
        [Target(f(C.WORKLOAD_REQUESTS_PER_SECOND), "{{endpoint}} {{runtime}}")],
        unit="reqps",
        width=8,
    )

    layout.row("Warm capacity and concurrency")
    layout.panel(
        "bargauge",
        "Warm capacity advised",
        "Min instances / provisioned concurrency `infermeter recommend` advises: the smallest "
        "size whose replay of the measured arrivals brings p95 within the SLO.",
        [
            Target(f(C.WARM_CAPACITY_UNITS), "{{endpoint}} {{runtime}} units"),
        ],
        width=8,
    )
    layout.panel(
        "bargauge",
        "Monthly cost of the warm capacity",
        "Cost of keeping the advised capacity warm; compare with the SLO breaches it avoids.",
        [Target(f(C.WARM_CAPACITY_MONTHLY_COST_USD), "{{endpoint}} {{runtime}}")],
        unit="currencyUSD",
        width=8,
    )
    layout.panel(
        "timeseries",
        "Cold share of SLO breaches",
        "When most SLO breaches are cold starts, warm capacity fixes p95; when few are, the "
        "handler or its dependencies are slow.",
        [Target(f(C.WORKLOAD_SLO_BREACH_COLD_RATIO), "{{endpoint}} {{runtime}}")],
        unit="percentunit",
        thresholds=Thresholds.of(C.WORKLOAD_SLO_BREACH_COLD_RATIO),
        min_value=0,
        width=8,
    )
    layout.panel(
        "timeseries",
        "Concurrency vs capacity",
        "Peak and mean concurrent requests (from span overlap) against what the deployment "
        "accepts (per-instance limit x instances). Peaks at the capacity line mean queueing "
        "or throttling: raise the concurrency limit or the instance count.",
        [
            Target(f(C.WORKLOAD_PEAK_CONCURRENCY), "{{endpoint}} {{runtime}} peak"),
            Target(f(C.WORKLOAD_MEAN_CONCURRENCY), "{{endpoint}} {{runtime}} mean"),
            Target(f(C.WORKLOAD_CONCURRENCY_CAPACITY), "{{endpoint}} {{runtime}} capacity"),
        ],
    )
    layout.panel(
        "timeseries",
        "Utilization",
        "Mean concurrency / capacity. Low utilization on an always-on fleet is paid idle "
        "time; serverless may be cheaper (see the break-even panel).",
        [Target(f(C.WORKLOAD_UTILIZATION_RATIO), "{{endpoint}} {{runtime}}")],
        unit="percentunit",
        thresholds=Thresholds(0.3, 0.6, reverse=True),
        min_value=0,
    )
    layout.panel(
        "bargauge",
        "Share of throttled requests by tenant",
        "Which tenant the throttled requests come from. One tenant above 50% dominates: "
        "give it its own quota or rate limit it rather than raising limits for everyone.",
        [Target(C.TENANT_THROTTLE_SHARE_RATIO.select(_TENANT_VARIABLE), "{{tenant}}")],
        unit="percentunit",
        thresholds=Thresholds.of(C.TENANT_THROTTLE_SHARE_RATIO),
        min_value=0,
        width=24,
        height=6,
    )
    return dashboard(
        uid="infermeter-rebalancing",
        title="infermeter / Runtime rebalancing",
        description="Where each workload should run: serverless vs container break-even, "
        "warm-capacity advice, concurrency against limits.",
        tags=[DASHBOARD_TAG, "cost", "capacity"],
        variables=f.variables(),
        panels=layout.panels,
    )


def drift_dashboard() -> Json:
    """Drift scores per model and prompt version."""
    layout = Layout()
    drift = {"model": "$model", "prompt_version": "$prompt_version"}
    layout.row("Verdicts")
    layout.panel(
        "stat",
        "Checks reporting drift",
        "Model / prompt-version / feature groups whose latest drift check found drift. "
        "Open the Evidently report (`infermeter drift --html`) for the group before acting.",
        [Target(f"sum({C.DRIFT_DETECTED.select(drift)})")],
        thresholds=Thresholds(1, 3),
        decimals=0,
        width=6,
        height=6,
    )
    layout.panel(
        "table",
        "Latest verdict per group and feature",
        "1 = drift, 0 = no drift, for the latest check of each group. Embedding drift means "
        "users ask different things; feature drift (prompt length, tokens, retrieval "
        "scores) often follows a prompt rollout.",
        [
            Target(
                f"max by (model, prompt_version, tenant, kind, feature, method) "
                f"({C.DRIFT_DETECTED.select(drift)})",
                instant=True,
                table=True,
            )
        ],
        mappings=[
            {
                "type": "value",
                "options": {
                    "0": {"text": "no drift", "color": "green"},
                    "1": {"text": "drift", "color": "red"},
                },
            }
        ],
        width=18,
        height=6,
        transformations=[hide_columns("Time")],
    )
    layout.row("Scores")
    layout.panel(
        "timeseries",
        "Drift score against its threshold",
        "Score of each check and the threshold it is compared with. A score "
        "creeping towards the threshold across checks is an early warning.",
        [
            Target(C.DRIFT_SCORE.select(drift), "{{model}} {{prompt_version}} {{feature}} score"),
            Target(
                C.DRIFT_THRESHOLD.select(drift),
                "{{model}} {{prompt_version}} {{feature}} threshold",
            ),
        ],
        width=16,
    )
    layout.panel(
        "bargauge",
        "Samples in the current window",
        "Samples the current window of each check had. Verdicts from a few dozen samples are "
        "weak: widen the window or raise the embedding sampling rate.",
        [Target(C.DRIFT_CURRENT_SAMPLES.select(drift), "{{model}} {{prompt_version}}")],
        width=8,
    )
    return dashboard(
        uid="infermeter-drift",
        title="infermeter / Drift",
        description="Embedding and request-feature drift per model and prompt version.",
        tags=[DASHBOARD_TAG, "drift"],
        variables=[
            datasource_variable(),
            query_variable(
                "model",
                "Model",
                f"label_values({C.DRIFT_SCORE.name}, model)",
                "Model of the drift check.",
            ),
            query_variable(
                "prompt_version",
                "Prompt version",
                f'label_values({C.DRIFT_SCORE.name}{{model=~"$model"}}, prompt_version)',
                "Prompt version of the drift check.",
            ),
        ],
        panels=layout.panels,
        time_from="now-7d",
        refresh="5m",
    )


def quality_dashboard() -> Json:
    """Quality next to cost: evaluations, feedback, retrieval and rollouts."""
    layout = Layout()
    group = {"tenant": "$tenant", "prompt_version": "$prompt_version"}
    rollout = {"tenant": "$tenant"}
    layout.row("Rollouts")
    layout.panel(
        "stat",
        "Rollouts to roll back",
        "Version changes whose evaluation scores fell significantly (one-sided Mann-Whitney, "
        "p < 0.05, at least 30 results on each side) - even when the new version is "
        "cheaper. `infermeter recommend` gives the evidence.",
        [Target(f"sum({C.QUALITY_ROLLBACK.select(rollout)})")],
        thresholds=Thresholds(1, 1),
        decimals=0,
        width=6,
        height=6,
    )
    layout.panel(
        "table",
        "Rollout verdicts",
        "1 = roll back, 0 = no significant drop, per tenant, evaluation and version pair.",
        [
            Target(
                f"max by (tenant, evaluation, baseline, candidate) "
                f"({C.QUALITY_ROLLBACK.select(rollout)})",
                instant=True,
                table=True,
            )
        ],
        mappings=[
            {
                "type": "value",
                "options": {
                    "0": {"text": "ok", "color": "green"},
                    "1": {"text": "roll back", "color": "red"},
                },
            }
        ],
        width=18,
        height=6,
        transformations=[hide_columns("Time")],
    )
    layout.row("Quality next to cost")
    layout.panel(
        "timeseries",
        "Good-answer ratio, worst group per prompt version",
        "Share of judged requests that did not fail and passed every evaluation; the "
        "lowest tenant/model/endpoint group of each prompt version.",
        [
            Target(
                f"min by (prompt_version) ({C.QUALITY_GOOD_RATIO.select(group)})",
                "{{prompt_version}}",
            )
        ],
        unit=C.QUALITY_GOOD_RATIO.unit,
        width=12,
    )
    layout.panel(
        "timeseries",
        "Cost per good answer, worst group per prompt version",
        "Cost per request divided by the good-answer ratio: what one good answer costs. A "
        "cheaper prompt that answers worse can cost more per good answer.",
        [
            Target(
                f"max by (prompt_version) ({C.QUALITY_COST_PER_GOOD_ANSWER_USD.select(group)})",
                "{{prompt_version}}",
            )
        ],
        unit=C.QUALITY_COST_PER_GOOD_ANSWER_USD.unit,
        width=12,
    )
    layout.panel(
        "timeseries",
        "Mean score per evaluation and prompt version",
        "Results-weighted mean of gen_ai.evaluation.score.value (exact across groups).",
        [
            Target(
                f"sum by (evaluation, prompt_version) ({C.QUALITY_MEAN_SCORE.select(group)} "
                f"* {C.QUALITY_RESULTS.select(group)}) / sum by (evaluation, prompt_version) "
                f"({C.QUALITY_RESULTS.select(group)})",
                "{{evaluation}} {{prompt_version}}",
            )
        ],
        width=12,
    )
    layout.panel(
        "timeseries",
        "Negative feedback, worst group per prompt version",
        "Share of requests with user feedback that got a thumbs down (score < 0 or a "
        "negative label).",
        [
            Target(
                f"max by (prompt_version) ({C.QUALITY_NEGATIVE_FEEDBACK_RATIO.select(group)})",
                "{{prompt_version}}",
            )
        ],
        unit=C.QUALITY_NEGATIVE_FEEDBACK_RATIO.unit,
        thresholds=Thresholds.of(C.QUALITY_NEGATIVE_FEEDBACK_RATIO),
        width=12,
    )
    layout.row("Retrieval")
    layout.panel(
        "timeseries",
        "Retrieval hit ratio, worst group per prompt version",
        "Share of retrievals where the answer used a retrieved document.",
        [
            Target(
                f"min by (prompt_version) ({C.RETRIEVAL_HIT_RATIO.select(group)})",
                "{{prompt_version}}",
            )
        ],
        unit=C.RETRIEVAL_HIT_RATIO.unit,
        width=24,
    )
    return dashboard(
        uid="infermeter-quality",
        title="infermeter / Quality",
        description="Evaluation scores, user feedback and retrieval hits next to cost, per "
        "prompt version; rollouts whose quality dropped.",
        tags=[DASHBOARD_TAG, "quality"],
        variables=[
            datasource_variable(),
            query_variable(
                "tenant",
                "Tenant",
                f"label_values({C.QUALITY_GOOD_RATIO.name}, tenant)",
                "Top tenants by volume; the rest are grouped as 'other'.",
            ),
            query_variable(
                "prompt_version",
                "Prompt version",
                f'label_values({C.QUALITY_GOOD_RATIO.name}{{tenant=~"$tenant"}}, prompt_version)',
                "gen_ai.prompt.version of the judged requests.",
            ),
        ],
        panels=layout.panels,
        time_from="now-7d",
        refresh="5m",
    )


def dashboards() -> list[Json]:
    """All infermeter dashboards, in display order."""
    return [
        overview_dashboard(),
        unit_economics_dashboard(),
        rebalancing_dashboard(),
        drift_dashboard(),
        quality_dashboard(),
    ]
