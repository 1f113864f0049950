"""Weekly report: ISO weeks, week-over-week numbers on a hand-computed store, the three
output formats, and the `report` command on a store file."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from infermeter.analytics import (
    load_deployments,
    load_prices,
    request_table,
    weekly_report,
)
from infermeter.analytics.report._render import CHART_IDS
from infermeter.analytics.report._weekly import iso_week_bounds
from infermeter.collectors import apply_migrations
from infermeter.collectors.testing import insert_spans, span_record, store_in_memory

from infermeter import main

W46 = datetime(2026, 11, 9)  # Monday of 2026-W46
W47 = datetime(2026, 11, 16)  # Monday of 2026-W47
EVIL_TENANT = "<script>alert(1)</script>"

# $1 per million input tokens, $2 per million output tokens: 1,000 input tokens = $0.001.
PRICES_TOML = """
[tokens."test-llm"]
input_per_million = 1.0
output_per_million = 2.0
provider = "test"
"""


def request(start: datetime, tenant: str, input_tokens: int, **fields: Any) -> dict[str, Any]:
    # runtime "unknown" carries no compute cost, so every cost below is token cost only.
    return span_record(
        start=start,
        duration_ms=fields.pop("duration_ms", 200.0),
        endpoint="/chat",
        runtime="unknown",
        tenant=tenant,
        model="test-llm",
        provider="test",
        prompt_version=fields.pop("prompt_version", "v1"),
        input_tokens=input_tokens,
        output_tokens=0,
        status_code="OK",
        **fields,
    )


def hand_computed_spans() -> list[dict[str, Any]]:
    rows = []
    # W46: acme 2 x $0.001, globex 2 x $0.002.
    for hour in (10, 11):
        rows.append(request(W46 + timedelta(hours=hour), "acme", 1000))
        rows.append(request(W46 + timedelta(hours=hour, minutes=5), "globex", 2000))
    # W47: acme 2 x $0.003 (3x per request), globex 1 x $0.002, a new tenant 1 x $0.001.
    for day in (0, 1):
        rows.append(
            request(
                W47 + timedelta(days=day, hours=9),
                "acme",
                3000,
                prompt_version="v2",
                duration_ms=400.0,
            )
        )
    rows.append(request(W47 + timedelta(hours=12), "globex", 2000))
    rows.append(request(W47 + timedelta(days=2, hours=12), EVIL_TENANT, 1000))
    return rows


@pytest.fixture(scope="module")
def priced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    prices_file = tmp_path_factory.mktemp("prices") / "prices.toml"
    prices_file.write_text(PRICES_TOML)
    prices = load_prices(prices_file)
    return prices, load_deployments(None, prices=prices)


@pytest.fixture(scope="module")
def report(priced: tuple[Any, Any]) -> Iterator[Any]:
    prices, deployments = priced
    con = store_in_memory()
    insert_spans(con, hand_computed_spans())
    requests = request_table(
        con, con.table("spans"), prices=prices, deployments=deployments
    ).materialize()
    drift = pl.DataFrame(
        {
            "model": ["test-llm"],
            "prompt_version": ["v2"],
            "tenant": [None],
            "kind": ["feature"],
            "feature": ["input_tokens"],
            "method": ["psi"],
            "score": [0.31],
            "threshold": [0.1],
            "drifted": [True],
            "verdict": ["drift"],
            "reference_n": [4],
            "current_n": [4],
        }
    )
    yield weekly_report(
        requests,
        week="2026-W47",
        prices=prices,
        deployments=deployments,
        drift=drift,
        generated_at=datetime(2026, 11, 23, 8, 0),
    )
    con.close()


def summary_row(report: Any, metric: str) -> dict[str, Any]:
    frame = report.summary.filter(pl.col("metric") == metric)
    return frame.row(0, named=True)


def test_iso_week_bounds() -> None:
    assert iso_week_bounds("2026-W47") == (W47, W47 + timedelta(days=7))
    assert iso_week_bounds("2026-W01") == (datetime(2025, 12, 29), datetime(2026, 1, 5))
    assert iso_week_bounds("2026-W53")[0] == datetime(2026, 12, 28)  # 2026 has 53 weeks
    with pytest.raises(ValueError, match="no such ISO week"):
        iso_week_bounds("2025-W53")
    with pytest.raises(ValueError, match="expected YYYY-Www"):
        iso_week_bounds("2026-47")


def test_summary_compares_the_week_with_the_previous_one(report: Any) -> None:
    assert report.week == "2026-W47"
    assert report.previous_week == "2026-W46"
    requests = summary_row(report, "requests")
    assert (requests["this_week"], requests["previous_week"], requests["delta"]) == (4, 4, 0)
    cost = summary_row(report, "total_cost_usd")
    # W47: 2 x 0.003 + 0.002 + 0.001 = 0.009; W46: 2 x 0.001 + 2 x 0.002 = 0.006.
    assert cost["this_week"] == pytest.approx(0.009)
    assert cost["previous_week"] == pytest.approx(0.006)
    assert cost["delta_pct"] == pytest.approx(0.5)
    per_request = summary_row(report, "cost_per_request_usd")
    assert per_request["this_week"] == pytest.approx(0.00225)
    assert per_request["previous_week"] == pytest.approx(0.0015)


def test_cost_per_request_by_tenant_with_deltas(report: Any) -> None:
    by_tenant = report.by_dimension["tenant"].rows_by_key("tenant", named=True, unique=True)
    assert by_tenant["acme"]["cost_per_request_usd"] == pytest.approx(0.003)
    assert by_tenant["acme"]["previous_cost_per_request_usd"] == pytest.approx(0.001)
    assert by_tenant["acme"]["cost_per_request_delta_pct"] == pytest.approx(2.0)
    assert by_tenant["globex"]["total_cost_delta_usd"] == pytest.approx(-0.002)
    assert by_tenant[EVIL_TENANT]["previous_requests"] is None
    assert set(report.by_dimension) == {"tenant", "model", "prompt_version", "endpoint"}


def test_top_movers_rank_by_total_cost_change(report: Any) -> None:
    movers = report.top_movers
    first = movers.row(0, named=True)
    # acme +0.004 and prompt v2 +0.006 (new) / v1 -0.003: v2 moves most.
    assert (first["dimension"], first["value"], first["status"]) == ("prompt_version", "v2", "new")
    assert first["total_cost_delta_usd"] == pytest.approx(0.006)
    deltas = [abs(v) for v in movers["total_cost_delta_usd"].to_list()]
    assert deltas == sorted(deltas, reverse=True)
    assert movers.height == 5


def test_daily_trend_rows_cover_the_days_with_traffic(report: Any) -> None:
    days = sorted({d.date().isoformat() for d in report.daily["day"].to_list()})
    assert days == ["2026-11-16", "2026-11-17", "2026-11-18"]
    assert {"p95_ms", "cold_start_rate", "throttle_rate"} <= set(report.daily.columns)


def test_recommendations_say_the_data_is_too_thin(report: Any) -> None:
    assert [r.kind for r in report.recommendations] == ["insufficient_data"]


def test_write_produces_html_markdown_and_documented_csv(report: Any, tmp_path: Path) -> None:
    written = report.write(tmp_path)
    html = written["html"].read_text()
    assert html.count("<script") >= len(CHART_IDS)
    # Self-contained: no script or stylesheet is loaded from anywhere.
    assert re.search(r"<script[^>]*\bsrc=", html) is None
    assert re.search(r"<link[^>]*stylesheet", html) is None
    assert html.count('class="plotly-graph-div"') == len(CHART_IDS)  # drift included
    for chart_id in CHART_IDS:
        assert f'id="{chart_id}"' in html
    assert EVIL_TENANT not in html  # escaped in tables, \u003c-encoded in chart data
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    markdown = written["markdown"].read_text()
    assert markdown.startswith("### infermeter weekly report 2026-W47")
    assert "Total cost (USD): **$0.009000** (+50.0%) (worse)" in markdown
    assert "tenant acme" in markdown or "prompt_version v2" in markdown
    assert "**Drift**" in markdown and "input_tokens" in markdown
    names = sorted(p.name for p in written["csv"])
    assert names == sorted(
        [
            "summary.csv",
            "by_tenant.csv",
            "by_model.csv",
            "by_prompt_version.csv",
            "by_endpoint.csv",
            "daily.csv",
            "top_movers.csv",
            "economics.csv",
            "plans.csv",
            "recommendations.csv",
            "drift.csv",
        ]
    )
    with (tmp_path / "infermeter-2026-W47-csv" / "summary.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [
        "metric",
        "label",
        "this_week",
        "previous_week",
        "delta",
        "delta_pct",
        "increase_is_good",
    ]
    with (tmp_path / "infermeter-2026-W47-csv" / "recommendations.csv").open() as fh:
        rec = next(csv.DictReader(fh))
    assert json.loads(rec["evidence"])["requests"] > 0


def test_an_empty_week_still_renders(priced: tuple[Any, Any], tmp_path: Path) -> None:
    prices, deployments = priced
    con = store_in_memory()
    insert_spans(con, hand_computed_spans())
    requests = request_table(con, con.table("spans"), prices=prices, deployments=deployments)
    empty = weekly_report(requests, week="2027-W10", prices=prices, deployments=deployments)
    assert not empty.has_data
    html = empty.write_html(tmp_path / "empty.html").read_text()
    assert "No requests in this week" in html
    assert 'id="drift"' not in html  # no drift results: no drift section
    con.close()


def store_file(path: Path, rows: list[dict[str, Any]]) -> Path:
    con = duckdb.connect(str(path))
    apply_migrations(con)
    insert_spans(con, rows)
    con.close()
    return path


def test_report_command_writes_the_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = store_file(tmp_path / "store.duckdb", hand_computed_spans())
    prices = tmp_path / "prices.toml"
    prices.write_text(PRICES_TOML)
    out = tmp_path / "out"
    code = main(
        [
            "report",
            "--store",
            str(store),
            "--week",
            "2026-W47",
            "--out",
            str(out),
            "--prices",
            str(prices),
        ]
    )
    assert code == 0
    assert (out / "infermeter-2026-W47.html").exists()
    assert (out / "infermeter-2026-W47.md").exists()
    assert (out / "infermeter-2026-W47-csv" / "by_tenant.csv").exists()
    assert "infermeter-2026-W47.html" in capsys.readouterr().out


def test_report_command_defaults_to_the_newest_week(tmp_path: Path) -> None:
    store = store_file(tmp_path / "store.duckdb", hand_computed_spans())
    assert main(["report", "--store", str(store), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "infermeter-2026-W47.html").exists()


def test_report_command_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "report",
                "--store",
                str(tmp_path / "missing.duckdb"),
                "--week",
                "2026-W47",
                "--out",
                str(tmp_path),
            ]
        )
        == 1
    )
    assert "no store at" in capsys.readouterr().err
    store = store_file(tmp_path / "store.duckdb", [])
    assert main(["report", "--store", str(store), "--week", "2026-47", "--out", str(tmp_path)]) == 1
    assert "expected YYYY-Www" in capsys.readouterr().err
    assert main(["report", "--store", str(store), "--out", str(tmp_path)]) == 1
    assert "has no spans" in capsys.readouterr().err


def test_format_value_by_unit_and_sign() -> None:
    from infermeter.analytics.report._render import format_value

    assert format_value("total_cost_usd", 1234.5) == "$1,234.50"
    assert format_value("cost_per_request_usd", 0.0004617) == "$0.000462"
    assert format_value("total_cost_delta_usd", -6.6) == "-$6.60"
    assert format_value("total_cost_delta_usd", 2.17) == "+$2.17"
    assert format_value("cost_per_request_delta_pct", 0.278) == "+27.80%"
    assert format_value("error_rate", 0.0022) == "0.22%"
    assert format_value("p95_ms", 3380.4) == "3,380 ms"
    assert format_value("requests", 51740.0) == "51,740"
    assert format_value("requests", None) == "n/a"


def test_report_command_includes_the_drift_sidecar_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from infermeter.analytics.drift._detect import empty_results
    from infermeter.analytics.drift._results import open_results_for_writing, write_drift_results

    store = store_file(tmp_path / "store.duckdb", hand_computed_spans())
    schema = empty_results().schema
    row = {name: None for name in schema} | {
        "computed_at": datetime(2026, 11, 23),
        "run_id": "r1",
        "group_by": "model",
        "model": "test-llm",
        "kind": "feature",
        "feature": "input_tokens",
        "method": "ks",
        "score": 0.42,
        "threshold": 0.2,
        "drifted": True,
        "verdict": "drift",
        "reference_n": 4,
        "current_n": 4,
        "message": "KS 0.42 > 0.2",
    }
    results = open_results_for_writing(store)
    write_drift_results(results, pl.DataFrame([row], schema=schema))
    results.close()
    out = tmp_path / "out"
    assert main(["report", "--store", str(store), "--week", "2026-W47", "--out", str(out)]) == 0
    html = (out / "infermeter-2026-W47.html").read_text()
    assert 'id="drift"' in html
    assert (out / "infermeter-2026-W47-csv" / "drift.csv").exists()
    assert "input_tokens" in (out / "infermeter-2026-W47.md").read_text()
    assert (
        main(
            [
                "report",
                "--store",
                str(store),
                "--week",
                "2026-W47",
                "--out",
                str(tmp_path / "plain"),
                "--no-drift",
            ]
        )
        == 0
    )
    assert 'id="drift"' not in (tmp_path / "plain" / "infermeter-2026-W47.html").read_text()


def test_report_command_without_the_drift_extra_skips_the_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    store = store_file(tmp_path / "store.duckdb", hand_computed_spans())
    # A None entry makes the import fail, as it does when the drift extra is not installed.
    monkeypatch.setitem(sys.modules, "infermeter.analytics.drift._results", None)
    assert (
        main(
            ["report", "--store", str(store), "--week", "2026-W47", "--out", str(tmp_path / "out")]
        )
        == 0
    )
    assert "drift section skipped" in capsys.readouterr().err
    assert (tmp_path / "out" / "infermeter-2026-W47.html").exists()


def test_a_week_without_a_previous_week_has_no_better_or_worse(
    priced: tuple[Any, Any], tmp_path: Path
) -> None:
    # W46 is the first week with traffic: nothing to compare with, so no "(better)".
    prices, deployments = priced
    con = store_in_memory()
    insert_spans(con, hand_computed_spans())
    requests = request_table(con, con.table("spans"), prices=prices, deployments=deployments)
    first = weekly_report(requests, week="2026-W46", prices=prices, deployments=deployments)
    assert summary_row(first, "requests")["delta"] is None
    markdown = first.write_markdown(tmp_path / "first.md").read_text()
    assert "(better)" not in markdown and "(worse)" not in markdown
    assert "no previous week" in markdown
    con.close()
