"""The sidecar results file: naming, appending runs, reading the latest run per group."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from infermeter.analytics import (
    DRIFT_RESULT_COLUMNS,
    open_results_for_writing,
    read_drift_results,
    results_path,
    write_drift_results,
)
from infermeter.analytics.drift._detect import _results_frame


def _row(run: int, model: str, verdict: str, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(DRIFT_RESULT_COLUMNS)
    row.update(
        computed_at=datetime(2026, 11, 20 + run),
        run_id=f"run{run}",
        group_by="model,prompt_version",
        model=model,
        prompt_version="v1",
        kind="embedding",
        feature="query",
        method="classifier",
        verdict=verdict,
        reference_n=500,
        current_n=400,
        message="m",
        score=0.9 if verdict == "drift" else 0.5,
        threshold=0.55,
        drifted=verdict == "drift",
    )
    row.update(fields)
    return row


def test_results_live_in_the_stores_own_folder(tmp_path: Path) -> None:
    store = tmp_path / "demo.duckdb"
    assert results_path(store) == tmp_path / "demo.duckdb.infermeter" / "drift_results.duckdb"
    assert results_path(tmp_path / "store.db") == (
        tmp_path / "store.db.infermeter" / "drift_results.duckdb"
    )


def test_a_store_made_before_the_folder_layout_keeps_its_results_readable(
    tmp_path: Path,
) -> None:
    store = tmp_path / "old.duckdb"
    legacy = tmp_path / "old.results.duckdb"
    with duckdb.connect(str(legacy)) as con:
        write_drift_results(con, _results_frame([_row(1, "a", "drift")]))
    assert results_path(store) == legacy
    assert read_drift_results(results_path(store)).height == 1
    with open_results_for_writing(store) as con:
        write_drift_results(con, _results_frame([_row(2, "a", "no_drift")]))
    assert results_path(store) == tmp_path / "old.duckdb.infermeter" / "drift_results.duckdb"


def test_latest_run_per_group_and_feature(tmp_path: Path) -> None:
    target = tmp_path / "demo.results.duckdb"
    with duckdb.connect(str(target)) as con:
        write_drift_results(
            con,
            _results_frame(
                [
                    _row(1, "a", "no_drift"),
                    _row(1, "b", "drift"),
                    _row(1, "b", "no_drift", kind="feature", feature="input_tokens", method="ks"),
                ]
            ),
        )
        # The second run recomputed model a only, with two embedding methods.
        written = write_drift_results(
            con,
            _results_frame(
                [
                    _row(2, "a", "drift"),
                    _row(2, "a", "drift", method="mmd", threshold=0.01),
                ]
            ),
        )
        assert written == 2
        latest = read_drift_results(con)
    assert latest.select("model", "feature", "method", "run_id").rows() == [
        ("a", "query", "classifier", "run2"),
        ("a", "query", "mmd", "run2"),
        ("b", "query", "classifier", "run1"),  # embedding rows sort before feature rows
        ("b", "input_tokens", "ks", "run1"),
    ]
    assert tuple(latest.columns) == DRIFT_RESULT_COLUMNS
    # From the path (read-only), and every run oldest first.
    history = read_drift_results(target, latest=False)
    assert history["run_id"].to_list() == ["run1"] * 3 + ["run2"] * 2
    assert read_drift_results(target).equals(latest)


def test_no_results_yet_is_an_empty_frame(tmp_path: Path) -> None:
    missing = read_drift_results(tmp_path / "none.results.duckdb")
    assert missing.is_empty() and tuple(missing.columns) == DRIFT_RESULT_COLUMNS
    with duckdb.connect() as con:
        assert read_drift_results(con).is_empty()


def test_only_drift_results_can_be_written() -> None:
    with duckdb.connect() as con, pytest.raises(ValueError, match="missing columns"):
        write_drift_results(con, pl.DataFrame({"model": ["a"]}))


def test_a_reader_waits_for_a_writer_to_finish(tmp_path: Path) -> None:
    target = tmp_path / "busy.results.duckdb"
    with duckdb.connect(str(target)) as con:
        write_drift_results(con, _results_frame([_row(1, "a", "drift")]))
    # Another process holds the file for a moment, like `infermeter drift` appending a run.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            f"con = duckdb.connect({str(target)!r})\n"
            "print('locked', flush=True)\n"
            "time.sleep(1.0)\n"
            "con.close()\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert read_drift_results(target)["verdict"].to_list() == ["drift"]
    finally:
        holder.wait(timeout=30)
