"""The metrics, stages and prices commands on a store file, through the console script."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from infermeter.collectors import apply_migrations
from infermeter.collectors.testing import insert_spans, span_record

from infermeter import main

T0 = datetime(2026, 11, 16, 10, 0, 0)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "store.duckdb"
    con = duckdb.connect(str(path))
    apply_migrations(con)
    rows: list[dict[str, Any]] = []
    for i in range(20):
        entry = span_record(
            start=T0 + timedelta(minutes=3 * i),
            duration_ms=100.0 * (i + 1),
            tenant="ab"[i % 2],
            endpoint="chat",
            runtime="serverless",
            memory_mb=1024.0,
        )
        rows += [
            entry,
            span_record(
                start=entry["start_time"] + timedelta(milliseconds=10),
                duration_ms=50,
                trace_id=entry["trace_id"],
                parent_span_id=entry["span_id"],
                is_entry=False,
                model="gpt-4o" if i < 18 else "house-llm",
                provider="openai",
                operation="chat",
                input_tokens=1000,
                output_tokens=100,
            ),
        ]
    insert_spans(con, rows)
    con.close()
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_metrics_json_by_tenant(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys, "metrics", "--store", str(store), "--by", "tenant", "--format", "json"
    )
    assert code == 0
    rows = json.loads(out)
    assert [r["tenant"] for r in rows] == ["a", "b"]
    assert [r["requests"] for r in rows] == [10, 10]
    # a: 100, 300, ..., 1900 ms -> median 1000; b: 200, ..., 2000 -> 1100.
    assert [r["p50_ms"] for r in rows] == [1000.0, 1100.0]
    assert [r["unpriced_requests"] for r in rows] == [1, 1]


def test_metrics_csv_with_bucket_and_window(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(
        capsys,
        "metrics",
        "--store",
        str(store),
        "--bucket",
        "30m",
        "--since",
        "2026-11-16T10:00",
        "--until",
        "2026-11-16T10:45",
        "--format",
        "csv",
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["bucket"][:16] for r in rows] == ["2026-11-16T10:00", "2026-11-16T10:30"]
    assert [int(r["requests"]) for r in rows] == [10, 5]


def test_metrics_table_and_columns(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "metrics", "--store", str(store), "--columns", "requests,p95_ms")
    assert code == 0
    assert "requests" in out and "p95_ms" in out and "20" in out


def test_metrics_user_errors(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "metrics", "--store", str(store), "--by", "colour")
    assert code == 1 and "cannot group by" in err
    code, _, err = _run(capsys, "metrics", "--store", str(tmp_path / "none.duckdb"))
    assert code == 1 and "no store" in err
    code, _, err = _run(capsys, "metrics", "--store", str(store), "--bucket", "weekly")
    assert code == 1 and "bucket" in err
    bad = tmp_path / "prices.toml"
    bad.write_text("[tokens]\nx = 1\n")
    code, _, err = _run(capsys, "metrics", "--store", str(store), "--prices", str(bad))
    assert code == 2 and "pricing file" in err


def test_prices_check_lists_unpriced_models_and_fails(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "prices", "check", "--store", str(store), "--format", "json")
    assert code == 1 and "house-llm" in err
    by_model = {r["model"]: r for r in json.loads(out)}
    assert by_model["house-llm"]["unpriced"] is True
    assert by_model["gpt-4o"]["priced_by"] == "gpt-4o"
    assert by_model["gpt-4o"]["token_cost_usd"] == pytest.approx(18 * 0.0035)
    prices = tmp_path / "prices.toml"
    prices.write_text('[tokens."house-llm"]\ninput_per_million = 1\noutput_per_million = 2\n')
    code, _, _ = _run(capsys, "prices", "check", "--store", str(store), "--prices", str(prices))
    assert code == 0
    # The same file re-prices history in the metrics.
    code, out, _ = _run(
        capsys, "metrics", "--store", str(store), "--prices", str(prices), "--format", "json"
    )
    (row,) = json.loads(out)
    assert row["unpriced_requests"] == 0
    assert row["token_cost_usd"] == pytest.approx(18 * 0.0035 + 2 * (0.001 + 0.0002))


def test_prices_show_and_compute(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "prices", "show", "openai/gpt-4o-2024-08-06")
    assert code == 0
    assert "gpt-4o-2024-08-06 [normalized]" in out and "$2.5000 per 1M" in out
    code, _, err = _run(capsys, "prices", "show", "house-llm")
    assert code == 1 and "no price for model 'house-llm'" in err
    code, out, _ = _run(capsys, "prices", "compute", "--format", "json")
    assert code == 0
    rows = {r["price"]: r for r in json.loads(out)}
    assert rows["lambda_x86_gb_s"]["value_usd"] == 0.0000166667
    assert rows["vm_hour"]["date"]
    # GPU list prices come with their source, date and the not-re-fetched caveat.
    assert rows["gpu:g6.xlarge"]["value_usd"] == 0.8048
    assert "not re-fetched" in rows["gpu:g6.xlarge"]["note"]
    assert rows["gpu:gcp_cloud_run_l4"]["value_usd"] == pytest.approx(
        0.0001867 + 4 * 0.000018 + 16 * 0.000002
    )


def test_stages(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "stages", "--store", str(store), "--format", "json")
    assert code == 0
    stages = {r["stage"]: r for r in json.loads(out)}
    assert stages["inference"]["requests"] == 20
    assert stages["inference"]["total_ms"] == pytest.approx(20 * 50.0)
