"""`infermeter drift` on a store file: table, JSON, the sidecar results, exit codes, HTML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from infermeter.analytics import read_drift_results, results_path
from infermeter.analytics.testing._drift import synthetic_embeddings
from infermeter.collectors import apply_migrations
from infermeter.collectors.testing import (
    embedding_record,
    insert_embeddings,
    insert_spans,
    span_record,
)

from infermeter import main

WEEKS = ["--reference", "2026-11-09..2026-11-15", "--current", "2026-11-16..2026-11-22"]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """model a steady; model b's queries and prompt lengths moved; model c too small."""
    path = tmp_path / "demo.duckdb"
    rng = np.random.default_rng(0)
    spans: list[dict[str, Any]] = []
    vectors: list[dict[str, Any]] = []
    for model, shift, size in (("a", 0.0, 250), ("b", 2.5, 250), ("c", 0.0, 30)):
        reference, current = synthetic_embeddings(size, size, 24, shift=shift, seed=size)
        for day, batch, tokens in (
            (datetime(2026, 11, 9), reference, 200),
            (datetime(2026, 11, 16), current, 200 + 10 * shift),
        ):
            for i, vector in enumerate(batch):
                start = day + timedelta(minutes=20 * i)
                spans.append(
                    span_record(
                        start=start,
                        model=model,
                        prompt_version="v1",
                        input_tokens=int(rng.poisson(tokens)),
                    )
                )
                vectors.append(
                    embedding_record(vector, time=start, model=model, prompt_version="v1")
                )
    with duckdb.connect(str(path)) as con:
        apply_migrations(con)
        insert_spans(con, spans)
        insert_embeddings(con, vectors)
    return path


def test_prints_a_table_and_appends_results(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["drift", "--store", str(store), *WEEKS]) == 0
    out = capsys.readouterr().out
    assert "drift by model,prompt_version" in out
    assert "reference window has 30 vectors, current 30; need at least 100 in each" in out
    assert "reference 2026-11-09 00:00:00 .. 2026-11-16 00:00:00" in out
    stored = read_drift_results(results_path(store))
    verdicts = {(r["model"], r["feature"]): r["verdict"] for r in stored.iter_rows(named=True)}
    assert verdicts[("a", "query")] == "no_drift"
    assert verdicts[("b", "query")] == "drift"
    assert verdicts[("b", "input_tokens")] == "drift"
    assert verdicts[("c", "query")] == "insufficient_data"
    # A second run appends; readers see the newest run per group and feature.
    assert main(["drift", "--store", str(store), *WEEKS, "--by", "model"]) == 0
    assert read_drift_results(results_path(store), latest=False).height == 2 * stored.height


def test_json_output_and_fail_on_drift(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "elsewhere.duckdb"
    code = main(
        [
            "drift",
            "--store",
            str(store),
            *WEEKS,
            "--json",
            "--fail-on-drift",
            "--method",
            "classifier,ks",
            "--results",
            str(results),
        ]
    )
    assert code == 3
    rows = json.loads(capsys.readouterr().out)
    assert {row["verdict"] for row in rows} == {"drift", "no_drift", "insufficient_data"}
    first = rows[0]
    assert first["current_start"] == "2026-11-16T00:00:00"
    assert {"score", "threshold", "drifted", "reference_n", "message"} <= set(first)
    assert results.exists() and not results_path(store).exists()


def test_no_save_leaves_no_results_file(store: Path) -> None:
    assert main(["drift", "--store", str(store), *WEEKS, "--no-save"]) == 0
    assert not results_path(store).exists()


def test_a_bad_flag_is_a_usage_error(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["drift", "--store", str(store), "--method", "classifier,psi"])
    assert exit_info.value.code == 2
    assert "unknown method psi" in capsys.readouterr().err


def test_a_bad_environment_variable_is_a_configuration_error(
    store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERMETER_DRIFT_ALPHA", "2")
    assert main(["drift", "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert "configuration error: INFERMETER_DRIFT_ALPHA='2'" in err


def test_a_missing_store_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["drift", "--store", str(tmp_path / "nope.duckdb")]) == 1
    assert capsys.readouterr().err.startswith("infermeter drift: error: no store at")


@pytest.mark.slow
def test_console_script_writes_evidentlys_html_report(store: Path, tmp_path: Path) -> None:
    report = tmp_path / "drift.html"
    script = Path(sys.executable).with_name("infermeter")
    result = subprocess.run(
        [
            str(script),
            "drift",
            "--store",
            str(store),
            *WEEKS,
            "--html",
            str(report),
            "--html-sample",
            "40",
            "--method",
            "classifier,ks,evidently:psi",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    page = report.read_text(encoding="utf-8")
    assert page.count("Drift in embeddings 'query'") == 2  # models a and b; c is too small
    assert "Drift detection method: classifier on 250+250 vectors; plot: 40+40" in page
    assert "Kolmogorov-Smirnov distance (infermeter" in page
    assert "PSI" in page
    assert "need at least 100 in each" in page  # model c, explained on the page
    assert "drift by model,prompt_version" in result.stdout
    _renders_in_chromium(report, plots=2)


CHROMIUM = "/usr/bin/chromium"


def _renders_in_chromium(page_path: Path, *, plots: int) -> None:
    """The page draws its embedding plots in headless Chromium, offline, without errors."""
    missing = None if Path(CHROMIUM).exists() else f"{CHROMIUM} (apt-get install chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = missing or "the playwright package (pip install 'infermeter[dev]')"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the HTML check needs {missing}")
        pytest.skip(f"needs {missing}")
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on(
                "request",
                lambda r: (
                    None
                    if r.url.startswith(("file:", "data:"))
                    else problems.append(f"network request to {r.url}")
                ),
            )
            page.goto(page_path.as_uri())
            # Each embedding plot is a pair of contour charts (current, reference).
            page.wait_for_function(
                f"document.querySelectorAll('.contour').length >= {2 * plots}", timeout=60_000
            )
            assert page.get_by_text("Data drift detected").count() >= 1
        finally:
            browser.close()
    assert problems == []
