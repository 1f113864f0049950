"""Every dashboard panel's PromQL returns data, and every template variable resolves,
against a real Prometheus (Debian package) scraping the real exporter."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from infermeter.dashboards import dashboards
from infermeter.dashboards._exporter import MetricsExporter, serve
from infermeter.dashboards.testing import PrometheusServer, ScrapeTarget, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not PrometheusServer.available() and not os.environ.get("CI"),
        reason="prometheus binary not installed (apt-get install prometheus)",
    ),
]

NOW = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
BUILTINS = {"$__rate_interval": "15s", "$__range": "1h", "$__interval": "5s"}


def write_drift_results(store: Path) -> None:
    """Two drift checks in the store's results file, as `infermeter drift` writes them."""
    import polars as pl
    from infermeter.analytics.drift import RESULT_COLUMNS, open_results_for_writing
    from infermeter.analytics.drift import write_drift_results as write

    base = {**dict.fromkeys(RESULT_COLUMNS), "message": ""}
    rows = [
        {
            **base,
            "computed_at": NOW,
            "run_id": "r1",
            "group_by": "model,prompt_version",
            "model": "gpt-4o-mini",
            "prompt_version": "v2",
            "kind": "embedding",
            "feature": "query_embedding",
            "method": "model",
            "score": 0.71,
            "threshold": 0.55,
            "drifted": True,
            "verdict": "drift",
            "reference_n": 400,
            "current_n": 380,
        },
        {
            **base,
            "computed_at": NOW,
            "run_id": "r1",
            "group_by": "model,prompt_version",
            "model": "gpt-4o-mini",
            "prompt_version": "v2",
            "kind": "feature",
            "feature": "input_tokens",
            "method": "wasserstein",
            "score": 0.02,
            "threshold": 0.1,
            "drifted": False,
            "verdict": "no_drift",
            "reference_n": 400,
            "current_n": 380,
        },
    ]
    frame = pl.DataFrame(rows, infer_schema_length=None).select(RESULT_COLUMNS)
    con = open_results_for_writing(store)
    try:
        write(
            con,
            frame.cast(
                {"computed_at": pl.Datetime("us"), "reference_n": pl.Int64, "current_n": pl.Int64},
                strict=False,
            ),
        )
    finally:
        con.close()


def write_quality(store: Path, rows: list[dict[str, Any]]) -> None:
    """Evaluations, user feedback and retrieval spans for the /chat requests (v2 answers
    worse, so a rollback is advised), as the collector stores them."""
    import random

    import duckdb
    from infermeter.agent import semconv as sc
    from infermeter.collectors.testing import (
        evaluation_record,
        insert_evaluations,
        insert_spans,
        span_record,
    )

    rng = random.Random(16)
    evaluations: list[dict[str, Any]] = []
    retrievals: list[dict[str, Any]] = []
    for i, row in enumerate(r for r in rows if r["endpoint"] == "/chat"):
        base = 0.7 if row["prompt_version"] == "v1" else 0.45
        ids = dict(trace_id=row["trace_id"], span_id=row["span_id"])
        evaluations.append(
            evaluation_record("helpfulness", score_value=base + 0.2 * rng.random(), **ids)
        )
        if i % 4 == 0:
            evaluations.append(
                evaluation_record(sc.USER_FEEDBACK, score_value=1.0 if i % 8 else -1.0, **ids)
            )
        retrievals.append(
            span_record(
                start=row["start_time"] + timedelta(milliseconds=1),
                trace_id=row["trace_id"],
                parent_span_id=row["span_id"],
                is_entry=False,
                name="retrieve",
                service_name=row["service_name"],
                attributes={
                    sc.INFERMETER_RETRIEVAL_IDS: ["d1", "d2", "d3"],
                    sc.INFERMETER_RETRIEVAL_USED_IDS: ["d2"] if i % 3 else [],
                },
            )
        )
    con = duckdb.connect(str(store))
    try:
        insert_evaluations(con, evaluations)
        insert_spans(con, retrievals)
    finally:
        con.close()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    write_store: Callable[..., Path],
    traffic: Callable[..., list[dict[str, Any]]],
) -> Iterator[tuple[MetricsExporter, PrometheusServer]]:
    directory = tmp_path_factory.mktemp("panels")
    rows = traffic(NOW - timedelta(seconds=5), minutes=55)
    rows += traffic(NOW - timedelta(days=7), minutes=55, seed=2)
    # An earlier day of the same traffic, so the economics see more than an hour.
    rows += traffic(NOW - timedelta(days=1), minutes=120, per_minute=3, seed=4)
    store = write_store(directory / "store.duckdb", rows)
    write_drift_results(store)
    write_quality(store, rows)
    budgets = directory / "budgets.yaml"
    budgets.write_text("acme: 0.01\nglobex: 1000\n")
    exporter = serve(store, port=0, refresh_interval=2, window="1h", budgets=str(budgets))
    prometheus = PrometheusServer(
        [ScrapeTarget("infermeter", [f"127.0.0.1:{exporter.port}"])], scrape_interval="1s"
    )
    try:
        assert exporter.wait_for_refresh(120), exporter.last_error
        prometheus.start()
        wait_for(
            lambda: (
                len(
                    prometheus.query_range("infermeter_exporter_window_seconds", seconds=30)[0][
                        "values"
                    ]
                )
                >= 4
                if prometheus.query_range("infermeter_exporter_window_seconds", seconds=30)
                else False
            ),
            timeout=60,
            what="four scrapes of the exporter",
        )
        yield exporter, prometheus
    finally:
        prometheus.stop()
        exporter.close()


def _substitute(expr: str, values: dict[str, str]) -> str:
    for name, value in BUILTINS.items():
        expr = expr.replace(name, value)
    return re.sub(r"\$(\w+)", lambda m: values.get(m.group(1), ".*"), expr)


def _finite(result: list[dict[str, Any]]) -> list[float]:
    values = [float(r["value"][1]) for r in result]
    return [v for v in values if math.isfinite(v)]


@pytest.mark.parametrize("board", dashboards(), ids=lambda b: b["uid"])
def test_every_panel_returns_data(
    stack: tuple[MetricsExporter, PrometheusServer], board: dict[str, Any]
) -> None:
    _, prometheus = stack
    empty = []
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        finite: list[float] = []
        for target in panel["targets"]:
            finite += _finite(prometheus.query(_substitute(target["expr"], {})))
        if not finite:
            empty.append(panel["title"])
    assert empty == [], f"panels without data on {board['uid']}"


@pytest.mark.parametrize("board", dashboards(), ids=lambda b: b["uid"])
def test_every_template_variable_resolves(
    stack: tuple[MetricsExporter, PrometheusServer], board: dict[str, Any]
) -> None:
    _, prometheus = stack
    chosen: dict[str, str] = {}
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        found = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"])
        assert found, variable["query"]
        selector, label = found.groups()
        values = prometheus.label_values(label, _substitute(selector, chosen))
        assert values, f"{variable['name']} has no values"
        # As Grafana's Prometheus data source escapes a value in a regex matcher.
        chosen[variable["name"]] = re.escape(values[0]).replace("\\", "\\\\")


def test_panels_follow_a_selected_variable(stack: tuple[MetricsExporter, PrometheusServer]) -> None:
    _, prometheus = stack
    overview = dashboards()[0]
    traffic_panel = next(p for p in overview["panels"] if p["title"] == "Traffic by endpoint")
    expr = traffic_panel["targets"][0]["expr"]
    everything = prometheus.query(_substitute(expr, {}))
    only_chat = prometheus.query(_substitute(expr, {"endpoint": "/chat"}))
    assert {r["metric"]["endpoint"] for r in everything} == {"/chat", "/embed"}
    assert {r["metric"]["endpoint"] for r in only_chat} == {"/chat"}


def test_alerting_numbers_arrive_in_prometheus(
    stack: tuple[MetricsExporter, PrometheusServer],
) -> None:
    exporter, prometheus = stack
    (over_budget,) = prometheus.query(
        "infermeter_tenant_month_spend_usd / on(tenant) infermeter_tenant_month_budget_usd > 1"
    )
    assert over_budget["metric"]["tenant"] == "acme"
    detected = prometheus.query("infermeter_drift_detected == 1")
    assert [r["metric"]["feature"] for r in detected] == ["query_embedding"]
    assert exporter.snapshot is not None
    requests = sum(
        v
        for _, v in exporter.snapshot.series(
            __import__("infermeter.dashboards", fromlist=["Catalog"]).Catalog.WINDOW_REQUESTS
        )
    )
    (scraped,) = prometheus.query("sum(infermeter_window_requests)")
    assert float(scraped["value"][1]) == requests
