"""Rollups of a store at one moment: every sample of every catalogue metric.

:func:`compute_snapshot` reads a store through a connection it is given (the exporter
opens it with ``open_reader`` for each refresh and closes it right after) and returns a
:class:`Snapshot`: plain numbers keyed by metric and labels. The exporter serves the
latest snapshot; ``infermeter alerts check`` evaluates the alert rules on one. Every
number comes from ``infermeter.analytics`` (``request_table``, ``metrics``, runtime
economics, recommendations) or from the drift results; this module only windows, groups
and names them.

Windows (naive UTC, ``[start, end)``): the rolling window (default 1 h) for the gauges;
the same window 7 days earlier for "cost per request against last week"; the UTC month
to date for tenant spend; a longer economics window (default 7 d) for break-even and
recommendations, whose verdicts need more than an hour of traffic; the whole store for
the counters.

Tenant cardinality is bounded: the top-N tenants by lifetime requests, plus every tenant
with a budget, keep their name; all others are summed into ``other``. Named tenants stay
named for the life of the exporter (up to 2 x N) so the ``other`` counter only drops when
a tenant is promoted, which Prometheus reads as a counter reset. Model, prompt version,
endpoint, provider and runtime are bounded the same way (``top_values`` each), and every
label value is cut to ``MAX_LABEL_LENGTH`` characters: all of them come from spans, and
a store with thousands of distinct or huge values must not become a huge exposition.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from infermeter.agent.settings import read_config_file
from infermeter.analytics.query import _queries
from infermeter.analytics.query._bind import hold
from infermeter.analytics.query._clock import future_limit
from infermeter.analytics.rollup._catalog import (
    COHORT_LABELS,
    OTHER_TENANT,
    QUANTILES,
    WORKLOAD_LABELS,
    Catalog,
    MetricSpec,
)

if TYPE_CHECKING:
    import duckdb
    import polars as pl
    from infermeter.analytics.economics import Deployments
    from infermeter.analytics.pricing import PriceBook

__all__ = [
    "MAX_LABEL_LENGTH",
    "RollupOptions",
    "Sample",
    "Snapshot",
    "choose_named_tenants",
    "compute_snapshot",
    "load_budgets",
]

C = Catalog
_WEEK: Final = timedelta(days=7)
_TOKEN_TYPES: Final = ("input", "output", "cache_read", "reasoning")
_QUANTILE_COLUMNS: Final = dict(zip(QUANTILES, ("p50_ms", "p95_ms", "p99_ms"), strict=True))
# Label value length cap (characters); longer values end in "…" and may merge.
MAX_LABEL_LENGTH: Final = 128
# Request-table columns that become labels besides the tenant, bounded by ``top_values``.
CAPPED_LABELS: Final = ("model", "prompt_version", "endpoint", "provider", "runtime")


@dataclass(frozen=True)
class Sample:
    """One time series value: label values in the order of the metric's labels."""

    labels: tuple[str, ...]
    value: float


@dataclass(frozen=True)
class Snapshot:
    """Every sample of every catalogue metric, computed at ``computed_at``."""

    samples: Mapping[str, tuple[Sample, ...]]
    computed_at: datetime
    window_start: datetime
    window_end: datetime
    newest_span: datetime | None
    named_tenants: frozenset[str] = frozenset()
    named_values: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Spans starting more than a day after ``computed_at``: left out of ``newest_span``.
    future_spans: int = 0

    def series(self, spec: MetricSpec) -> list[tuple[dict[str, str], float]]:
        """(labels, value) of every sample of ``spec``."""
        return [
            (dict(zip(spec.labels, s.labels, strict=True)), s.value)
            for s in self.samples.get(spec.name, ())
        ]

    def value(self, spec: MetricSpec, **labels: str) -> float | None:
        """The value of the one sample whose labels include ``labels`` (None if absent)."""
        found = [
            v
            for have, v in self.series(spec)
            if all(have.get(k) == want for k, want in labels.items())
        ]
        if len(found) > 1:
            raise ValueError(f"{spec.name}{labels} matches {len(found)} series")
        return found[0] if found else None


@dataclass(frozen=True)
class RollupOptions:
    """What :func:`compute_snapshot` computes; the ``ROLLUP_SETTINGS`` resolved."""

    window: timedelta = timedelta(hours=1)
    window_end: str = "now"  # or "newest"
    economics_window: timedelta = timedelta(days=7)
    top_tenants: int = 10
    top_values: int = 20
    budgets: Mapping[str, float] = field(default_factory=dict)


def load_budgets(path: str | None) -> dict[str, float]:
    """Monthly budgets in USD per tenant from a YAML or TOML file (``{tenant: usd}``, or
    the same under a ``budgets`` key). ``None`` means no budgets."""
    if path is None:
        return {}
    from pathlib import Path

    file = Path(path)
    data: Any = read_config_file(file, what="budgets file", default_format="yaml")
    if isinstance(data, Mapping) and isinstance(data.get("budgets"), Mapping):
        data = data["budgets"]
    if not isinstance(data, Mapping):
        raise ValueError(f"budgets file {file}: expected a mapping of tenant to USD per month")
    budgets: dict[str, float] = {}
    for tenant, amount in data.items():
        if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
            raise ValueError(f"budgets file {file}: budget of {tenant!r} must be a number >= 0")
        budgets[str(tenant)] = float(amount)
    return budgets


def choose_named_tenants(
    volumes: Mapping[str, float],
    *,
    top: int,
    budgets: Iterable[str] = (),
    previous: Iterable[str] = (),
) -> frozenset[str]:
    """The tenants that keep their own label: every budgeted tenant, the ``top`` tenants by
    volume, and previously named ones (most voluminous first) while fewer than ``2 * top``
    are named. Ties break by name so the choice is stable."""
    ranked = sorted(volumes, key=lambda t: (-volumes[t], t))
    named = set(budgets) | set(ranked[:top])
    for tenant in sorted(previous, key=lambda t: (-volumes.get(t, 0.0), t)):
        if len(named) >= 2 * top:
            break
        named.add(tenant)
    named.discard(OTHER_TENANT)
    return frozenset(named)


class _Samples:
    """Collects samples; repeated label sets are merged (sum by default)."""

    def __init__(self) -> None:
        self._values: dict[str, dict[tuple[str, ...], float]] = {}

    def add(
        self,
        spec: MetricSpec,
        labels: Mapping[str, Any],
        value: Any,
        merge: Callable[[float, float], float] = float.__add__,
    ) -> None:
        if value is None:
            return
        number = float(value)
        if not math.isfinite(number):
            return
        key = tuple(_label(labels[name]) for name in spec.labels)
        series = self._values.setdefault(spec.name, {})
        series[key] = merge(series[key], number) if key in series else number

    def build(self) -> dict[str, tuple[Sample, ...]]:
        return {
            name: tuple(Sample(k, v) for k, v in sorted(series.items()))
            for name, series in self._values.items()
        }


def _label(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= MAX_LABEL_LENGTH else text[: MAX_LABEL_LENGTH - 1] + "…"


def _utc_naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return list(frame.iter_rows(named=True))


def _bucket_tenants(
    requests: duckdb.DuckDBPyRelation, named: frozenset[str]
) -> duckdb.DuckDBPyRelation:
    """``requests`` with every tenant outside ``named`` renamed to ``other``."""
    return _bucket(requests, {"tenant": named})


def _bucket(
    requests: duckdb.DuckDBPyRelation, named: Mapping[str, frozenset[str]]
) -> duckdb.DuckDBPyRelation:
    """``requests`` with every value of each column of ``named`` outside its set renamed
    to ``other`` (NULL stays NULL)."""
    import duckdb

    cases = []
    for name, keep in named.items():
        column = duckdb.ColumnExpression(name)
        case = duckdb.CaseExpression(column.isnull(), duckdb.ConstantExpression(None))
        if keep:
            case = case.when(
                column.isin(*(duckdb.ConstantExpression(v) for v in sorted(keep))), column
            )
        cases.append(case.otherwise(duckdb.ConstantExpression(OTHER_TENANT)).alias(name))
    return requests.select(duckdb.StarExpression(exclude=list(named)), *cases)


def _starting_between(
    requests: duckdb.DuckDBPyRelation, since: datetime, until: datetime
) -> duckdb.DuckDBPyRelation:
    import duckdb

    start = duckdb.ColumnExpression("start_time")
    return requests.filter(
        (start >= duckdb.ConstantExpression(since)) & (start < duckdb.ConstantExpression(until))
    )


def _cohort_sums(requests: duckdb.DuckDBPyRelation) -> list[dict[str, Any]]:
    relation = requests.query("im_requests", _queries.COHORT_SUMS)
    return [] if relation is None else _rows(relation.pl())


def _rename_tenants(
    rows: Iterable[dict[str, Any]], named: frozenset[str]
) -> Iterable[dict[str, Any]]:
    for row in rows:
        tenant = row["tenant"]
        yield {**row, "tenant": tenant if tenant is None or tenant in named else OTHER_TENANT}


def _ms(value: Any) -> float | None:
    return None if value is None else float(value) / 1000.0


def compute_snapshot(
    con: duckdb.DuckDBPyConnection,
    *,
    prices: PriceBook,
    deployments: Deployments,
    options: RollupOptions | None = None,
    drift: pl.DataFrame | None = None,
    now: datetime | None = None,
    previous_tenants: Iterable[str] = (),
    previous_values: Mapping[str, Iterable[str]] | None = None,
    all_requests: duckdb.DuckDBPyRelation | None = None,
    newest_span: Callable[[datetime], tuple[datetime | None, int]] | None = None,
) -> Snapshot:
    """The rollups of the store behind ``con`` (read only; never opened or closed here).

    ``prices`` / ``deployments``: ``load_prices()`` / ``load_deployments()``; ``drift``:
    ``read_drift_results()`` of the store's results file, or None. ``previous_tenants``:
    the previous snapshot's ``named_tenants`` (keeps tenant labels stable);
    ``previous_values`` its ``named_values`` (the same for the other capped labels).
    ``all_requests`` (the whole store's request table, e.g. priced from a ClickHouse store's
    request rows) and ``newest_span`` (limit -> the newest span start up to it and the
    count after it) stand in for reading them from ``con``'s spans.
    """
    from infermeter.analytics import (
        arrival_frame,
        gpu_economics,
        metrics,
        recommend_from_frames,
        request_table,
        runtime_economics,
        self_hosted_load,
        version_frame,
        without_model_servers,
        workload_frame,
    )

    options = options or RollupOptions()
    now = _utc_naive(now or datetime.now(UTC))
    limit = future_limit(now)
    # fetchall: frees the cursor
    if newest_span is not None:
        newest, future_spans = newest_span(limit)
    else:
        ((newest, future_spans),) = con.execute(_queries.NEWEST_SPAN, {"limit": limit}).fetchall()
    end = newest + timedelta(microseconds=1) if options.window_end == "newest" and newest else now
    start = end - options.window
    # One request table for the whole store, priced once; every window is a filter of it
    # (a request belongs to the window its entry span starts in, as in request_table).
    priced = (
        all_requests
        if all_requests is not None
        else hold(request_table(con, con.table("spans"), prices=prices, deployments=deployments))
    )
    # Models, endpoints, prompt versions, providers and runtimes beyond the top ones by
    # lifetime requests are one "other" everywhere below (tenants are bucketed later, as
    # before: recommendations still name a tenant outside the top).
    values = _named_values(priced, options.top_values, previous_values or {})
    # A projection over the held table, not a second copy of every request: the lifetime
    # sums read it once and each window below holds only its own rows.
    everything = _bucket(priced, values)

    def requests(since: datetime, until: datetime) -> duckdb.DuckDBPyRelation:
        return hold(_starting_between(everything, since, until))

    out = _Samples()

    # Counters over the whole store; they also rank tenants for the labels.
    lifetime = _cohort_sums(everything)
    named = choose_named_tenants(
        _volumes(lifetime),
        top=options.top_tenants,
        budgets=options.budgets,
        previous=previous_tenants,
    )
    for r in _rename_tenants(lifetime, named):
        _add_counters(out, r)

    # Rolling window: cohort sums and quantiles, workload gauges.
    window = requests(start, end)
    window_named = hold(_bucket_tenants(window, named))
    cohort_rows = list(_rename_tenants(_cohort_sums(window), named))
    for r in cohort_rows:
        _add_window_sums(out, r)
    for r in _rows(metrics(window_named, by=COHORT_LABELS)):
        _add_cohort_gauges(out, r)
    workloads = workload_frame(window)
    for r in _rows(workloads):
        _add_workload_gauges(out, r, deployments)
    for r in _rows(metrics(requests(start - _WEEK, end - _WEEK), by=WORKLOAD_LABELS)):
        out.add(C.WORKLOAD_COST_PER_REQUEST_WEEK_AGO_USD, r, r["cost_per_request_usd"])
        out.add(
            C.WORKLOAD_COST_PER_SUCCESSFUL_REQUEST_WEEK_AGO_USD,
            r,
            r["cost_per_successful_request_usd"],
        )
    _add_throttle_shares(out, cohort_rows)

    # Month to date (UTC) per tenant, against the budgets.
    month_start = end.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    # Read once (cohort sums): not held, a month of requests is no small copy.
    month = _starting_between(everything, month_start, end)
    _add_month(out, _rename_tenants(_cohort_sums(month), named), options.budgets)

    # Economics and recommendations over the longer window.
    # A GPU model server is no CPU workload: the GPU questions answer for it instead.
    self_hosted = self_hosted_load(
        con, con.table("spans"), since=end - options.economics_window, until=end
    )
    economics_requests = without_model_servers(
        requests(end - options.economics_window, end), self_hosted
    )
    economics_workloads = workload_frame(economics_requests)
    economics = runtime_economics(economics_workloads, prices=prices, deployments=deployments)
    for r in _rows(economics):
        _add_economics(out, r)
    recommendations = recommend_from_frames(
        economics_workloads,
        economics=economics,
        tenants=metrics(economics_requests, by=("endpoint", "runtime", "tenant")),
        versions=version_frame(economics_requests),
        gpu=gpu_economics(self_hosted, prices=prices, deployments=deployments)
        if self_hosted.height
        else None,
        arrivals=arrival_frame(economics_requests),
    )
    _add_recommendations(out, recommendations)
    _add_quality(out, con, hold(_bucket_tenants(economics_requests, named)), named, values)

    if drift is not None:
        _add_drift(out, drift, named, values, options.top_values)

    out.add(C.EXPORTER_WINDOW_SECONDS, {}, options.window.total_seconds())
    if newest is not None:
        out.add(C.NEWEST_SPAN_TIMESTAMP_SECONDS, {}, newest.replace(tzinfo=UTC).timestamp())
    return Snapshot(
        out.build(),
        computed_at=now,
        window_start=start,
        window_end=end,
        newest_span=newest,
        named_tenants=named,
        named_values=values,
        future_spans=int(future_spans),
    )


def _named_values(
    requests: duckdb.DuckDBPyRelation, top: int, previous: Mapping[str, Iterable[str]]
) -> dict[str, frozenset[str]]:
    named: dict[str, frozenset[str]] = {}
    for column in CAPPED_LABELS:
        counts = requests.aggregate(f"{column}, count(*)", group_expr=column).fetchall()
        volumes = {str(value): float(n) for value, n in counts if value is not None}
        named[column] = choose_named_tenants(volumes, top=top, previous=previous.get(column, ()))
    return named


def _volumes(rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    volumes: dict[str, float] = {}
    for r in rows:
        if r["tenant"] is not None:
            volumes[r["tenant"]] = volumes.get(r["tenant"], 0.0) + r["requests"]
    return volumes


def _add_month(
    out: _Samples, rows: Iterable[Mapping[str, Any]], budgets: Mapping[str, float]
) -> None:
    for r in rows:
        if r["tenant"] is not None:
            out.add(C.TENANT_MONTH_SPEND_USD, r, r["token_cost_usd"] + r["compute_cost_usd"])
    for tenant, budget in budgets.items():
        out.add(C.TENANT_MONTH_BUDGET_USD, {"tenant": tenant}, budget)
        out.add(C.TENANT_MONTH_SPEND_USD, {"tenant": tenant}, 0.0)  # a budget with no spend yet


def _add_counters(out: _Samples, r: Mapping[str, Any]) -> None:
    out.add(C.REQUESTS_TOTAL, r, r["requests"])
    out.add(C.ERRORS_TOTAL, r, r["errors"])
    out.add(C.THROTTLED_REQUESTS_TOTAL, r, r["throttled"])
    out.add(C.THROTTLE_EVENTS_TOTAL, r, r["throttle_events"])
    out.add(C.COLD_STARTS_TOTAL, r, r["cold_starts"])
    out.add(C.UNPRICED_REQUESTS_TOTAL, r, r["unpriced_requests"])
    out.add(C.UNTOKENIZED_REQUESTS_TOTAL, r, r["untokenized_requests"])
    out.add(C.FOREIGN_SPANS_TOTAL, r, r["foreign_spans"])
    for kind in _TOKEN_TYPES:
        out.add(C.TOKENS_TOTAL, {**r, "type": kind}, r[f"{kind}_tokens"])
    out.add(C.COST_USD_TOTAL, {**r, "component": "tokens"}, r["token_cost_usd"])
    out.add(C.COST_USD_TOTAL, {**r, "component": "compute"}, r["compute_cost_usd"])


def _add_window_sums(out: _Samples, r: Mapping[str, Any]) -> None:
    out.add(C.WINDOW_REQUESTS, r, r["requests"])
    out.add(C.WINDOW_ERRORS, r, r["errors"])
    out.add(C.WINDOW_THROTTLED_REQUESTS, r, r["throttled"])
    out.add(C.WINDOW_COLD_STARTS, r, r["cold_starts"])
    out.add(C.WINDOW_RETRIES, r, r["retries"])
    for kind in _TOKEN_TYPES:
        out.add(C.WINDOW_TOKENS, {**r, "type": kind}, r[f"{kind}_tokens"])
    out.add(C.WINDOW_COST_USD, {**r, "component": "tokens"}, r["token_cost_usd"])
    out.add(C.WINDOW_COST_USD, {**r, "component": "compute"}, r["compute_cost_usd"])


def _add_cohort_gauges(out: _Samples, r: Mapping[str, Any]) -> None:
    for quantile, column in _QUANTILE_COLUMNS.items():
        out.add(C.REQUEST_LATENCY_SECONDS, {**r, "quantile": quantile}, _ms(r[column]))
    out.add(C.TIME_TO_FIRST_CHUNK_SECONDS, {**r, "quantile": "0.95"}, _ms(r["ttft_p95_ms"]))
    out.add(C.COST_PER_REQUEST_USD, r, r["cost_per_request_usd"])
    out.add(C.COST_PER_SUCCESSFUL_REQUEST_USD, r, r["cost_per_successful_request_usd"])


def _add_workload_gauges(out: _Samples, r: Mapping[str, Any], deployments: Deployments) -> None:
    out.add(C.WORKLOAD_WINDOW_REQUESTS, r, r["requests"])
    out.add(C.WORKLOAD_REQUESTS_PER_SECOND, r, r["requests_per_s"])
    for quantile, column in _QUANTILE_COLUMNS.items():
        out.add(C.WORKLOAD_REQUEST_LATENCY_SECONDS, {**r, "quantile": quantile}, _ms(r[column]))
    out.add(C.SLO_SECONDS, r, _ms(r["slo_ms"]))
    out.add(C.WORKLOAD_SLO_BREACH_RATIO, r, r["slo_breach_rate"])
    out.add(C.WORKLOAD_SLO_BREACH_COLD_RATIO, r, r["slo_breach_cold_share"])
    out.add(C.WORKLOAD_ERROR_RATIO, r, r["error_rate"])
    out.add(C.WORKLOAD_COLD_START_RATIO, r, r["cold_start_rate"])
    out.add(C.WORKLOAD_COLD_START_PENALTY_SECONDS, r, _ms(r["cold_start_penalty_ms"]))
    out.add(C.WORKLOAD_THROTTLE_RATIO, r, r["throttle_rate"])
    out.add(C.WORKLOAD_RETRIES_PER_REQUEST, r, r["retries_per_request"])
    out.add(C.WORKLOAD_COST_PER_REQUEST_USD, r, r["cost_per_request_usd"])
    out.add(C.WORKLOAD_COST_PER_SUCCESSFUL_REQUEST_USD, r, r["cost_per_successful_request_usd"])
    out.add(C.WORKLOAD_PEAK_CONCURRENCY, r, r["peak_concurrency"])
    out.add(C.WORKLOAD_MEAN_CONCURRENCY, r, r["mean_concurrency"])
    out.add(C.WORKLOAD_UTILIZATION_RATIO, r, r["utilization"])
    deployment = deployments.for_workload(r["endpoint"], r["runtime"])
    instances = max(int(r["instances"] or 0), int(deployment.min_instances), 1)
    out.add(C.WORKLOAD_CONCURRENCY_CAPACITY, r, instances * int(deployment.concurrency))


def _add_throttle_shares(out: _Samples, cohort_rows: Sequence[Mapping[str, Any]]) -> None:
    per_tenant: dict[str, float] = {}
    for r in cohort_rows:
        if r["tenant"] is not None:
            per_tenant[r["tenant"]] = per_tenant.get(r["tenant"], 0.0) + r["throttled"]
    total = sum(float(r["throttled"]) for r in cohort_rows)
    out.add(C.WINDOW_THROTTLED_REQUESTS_ALL, {}, total)
    if total > 0:
        for tenant, throttled in per_tenant.items():
            out.add(C.TENANT_THROTTLE_SHARE_RATIO, {"tenant": tenant}, throttled / total)


def _add_economics(out: _Samples, r: Mapping[str, Any]) -> None:
    out.add(C.SERVERLESS_MONTHLY_COST_USD, r, r["serverless_monthly_usd"])
    out.add(C.CONTAINER_MONTHLY_COST_USD, r, r["container_monthly_usd"])
    out.add(C.CONTAINER_INSTANCES, r, r["container_instances"])
    out.add(C.CROSSOVER_UTILIZATION_RATIO, r, r["crossover_utilization"])
    out.add(C.MEASURED_UTILIZATION_RATIO, r, r["measured_utilization"])


def _add_recommendations(out: _Samples, recommendations: Iterable[Any]) -> None:
    for rec in recommendations:
        labels = {
            "kind": rec.kind,
            "endpoint": rec.endpoint,
            "runtime": rec.runtime,
            "tenant": rec.tenant,
        }
        # Several recommendations can share labels (cost jumps of two versions): one
        # series each, active counting them, savings adding up, the best gain/confidence.
        out.add(C.RECOMMENDATION_ACTIVE, labels, 1.0)
        change = rec.monthly_cost_change_usd
        saving = None if change is None else -change
        out.add(C.RECOMMENDATION_MONTHLY_SAVING_USD, labels, saving)
        # The runtime and warm-capacity gauges are the recommendation's own numbers (one
        # decision per endpoint), so dashboards and alerts show what `recommend` says.
        workload = {"endpoint": rec.endpoint, "runtime": rec.runtime}
        if rec.kind in {"move_to_containers", "move_to_serverless"}:
            out.add(C.RUNTIME_MONTHLY_SAVING_USD, workload, saving)
        elif rec.kind == "add_warm_capacity":
            out.add(C.WARM_CAPACITY_UNITS, workload, rec.evidence.get("warm_capacity_units"))
            out.add(C.WARM_CAPACITY_MONTHLY_COST_USD, workload, change)
        out.add(C.RECOMMENDATION_P95_GAIN_SECONDS, labels, _ms(rec.p95_gain_ms), max)
        out.add(C.RECOMMENDATION_CONFIDENCE_RATIO, labels, rec.confidence, max)


def _add_quality(
    out: _Samples,
    con: duckdb.DuckDBPyConnection,
    requests: Any,
    named: frozenset[str],
    values: Mapping[str, frozenset[str]],
) -> None:
    """Quality gauges of the economics window (``requests``: tenants and the capped labels
    already bucketed; retrieval rows come from the spans and are bucketed here alike)."""
    from infermeter.analytics.quality._evaluations import (
        judged_evaluations,
        quality_by_evaluation,
        quality_summary,
    )
    from infermeter.analytics.quality._retrieval import retrieval_metrics, retrievals

    tables = {str(r[0]) for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "evaluations" not in tables:
        return  # a store no collector of this version has migrated yet
    keys = list(_QUALITY_KEYS)
    judged = judged_evaluations(con, requests, con.table("evaluations"), con.table("spans"))
    if judged.height:
        for r in _rows(quality_by_evaluation(judged, by=keys)):
            labels = {**r, "evaluation": r["name"]}
            out.add(C.QUALITY_RESULTS, labels, r["results"])
            out.add(C.QUALITY_MEAN_SCORE, labels, r["mean_score"])
            out.add(C.QUALITY_PASS_RATIO, labels, r["pass_rate"])
        for r in _rows(quality_summary(judged, requests, by=keys)):
            out.add(C.QUALITY_GOOD_RATIO, r, r["good_rate"])
            out.add(C.QUALITY_COST_PER_GOOD_ANSWER_USD, r, r["cost_per_good_answer_usd"])
            out.add(C.QUALITY_NEGATIVE_FEEDBACK_RATIO, r, r["negative_feedback_rate"])
        _add_rollouts(out, judged, requests)
    since = requests.aggregate("min(start_time)").fetchall()[0][0]
    if since is None:
        return
    import duckdb
    import polars as pl

    spans = con.table("spans").filter(
        duckdb.ColumnExpression("start_time") >= duckdb.ConstantExpression(since)
    )
    found = retrievals(spans).pl()
    if found.height:
        allowed = {"tenant": named, **{k: values.get(k, frozenset()) for k in keys[1:]}}
        found = found.with_columns(
            pl.when(pl.col(key).is_null() | pl.col(key).is_in(sorted(kept)))
            .then(pl.col(key))
            .otherwise(pl.lit(OTHER_TENANT))
            .alias(key)
            for key, kept in allowed.items()
        )
        for r in _rows(retrieval_metrics(found, by=keys)):
            out.add(C.RETRIEVAL_HIT_RATIO, r, r["hit_rate"])


def _add_rollouts(out: _Samples, judged: pl.DataFrame, requests: Any) -> None:
    try:
        from infermeter.analytics.quality._rollout import quality_rollouts
    except ImportError:  # scipy comes with the 'drift' extra
        return
    for r in _rows(quality_rollouts(judged, requests)):
        if r["verdict"] == "insufficient_data":
            continue
        labels = {**r, "evaluation": r["name"]}
        out.add(C.QUALITY_ROLLBACK, labels, 1.0 if r["verdict"] == "rollback" else 0.0)
        out.add(C.QUALITY_ROLLOUT_P_VALUE, labels, r["p_value"])


_QUALITY_KEYS: Final = ("tenant", "model", "prompt_version", "endpoint")
_DRIFT_VERDICTS: Final = frozenset({"drift", "no_drift"})


def _add_drift(
    out: _Samples,
    drift: pl.DataFrame,
    named: frozenset[str],
    values: Mapping[str, frozenset[str]],
    top: int,
) -> None:
    rows = _rows(drift)
    keep: dict[str, frozenset[str]] = {"tenant": named}
    # Drift results name models and prompt versions of any age: the top ones of the results
    # themselves (by current samples) keep their label too, up to 2 x top in all.
    for column in ("model", "prompt_version"):
        volumes: dict[str, float] = {}
        for r in rows:
            if r.get(column) is not None:
                volumes[r[column]] = volumes.get(r[column], 0.0) + float(r.get("current_n") or 0)
        keep[column] = choose_named_tenants(volumes, top=top, previous=values.get(column, ()))
    for r in rows:
        labels = {**r}
        for column, kept in keep.items():
            value = r.get(column)
            if value is not None and value not in kept:
                labels[column] = OTHER_TENANT
        out.add(C.DRIFT_SCORE, labels, r.get("score"), max)
        out.add(C.DRIFT_THRESHOLD, labels, r.get("threshold"), max)
        # Only a verdict says drift or no drift: insufficient data or an error is no series,
        # never a reassuring 0.
        if r.get("verdict") in _DRIFT_VERDICTS:
            out.add(C.DRIFT_DETECTED, labels, 1.0 if r.get("drifted") else 0.0, max)
        out.add(C.DRIFT_CURRENT_SAMPLES, labels, r.get("current_n"), max)
