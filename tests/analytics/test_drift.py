"""detect_drift over a real (in-memory DuckDB) store: groups, windows, features from spans,
embeddings, insufficient data and per-group errors."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pytest
from infermeter.agent import ConfigurationError
from infermeter.analytics.drift._detect import RESULT_COLUMNS, detect_drift
from infermeter.analytics.testing._drift import synthetic_embeddings
from infermeter.collectors.testing import (
    embedding_record,
    insert_embeddings,
    insert_spans,
    span_record,
    store_in_memory,
)


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread() -> Iterator[None]:
    """One BLAS thread: the suite shares 2 cores with other suites, and OpenBLAS threads
    spin-waiting for each other on these small matrices made the tests 3-4x slower."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


REFERENCE_WEEK = datetime(2026, 11, 9)
CURRENT_WEEK = datetime(2026, 11, 16)
SPREAD = timedelta(days=6)


def _times(day: datetime, n: int) -> list[datetime]:
    return [day + SPREAD * i / n for i in range(n)]


def _requests(
    day: datetime, n: int, *, tokens: float = 200, seed: int = 0, **fields: Any
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [
        span_record(
            start=t,
            duration_ms=float(rng.lognormal(6, 0.5)),
            input_tokens=int(rng.poisson(tokens)),
            output_tokens=int(rng.poisson(80)),
            **fields,
        )
        for t in _times(day, n)
    ]


def _vectors(day: datetime, vectors: Any, **fields: Any) -> list[dict[str, Any]]:
    times = _times(day, len(vectors))
    return [embedding_record(v, time=t, **fields) for v, t in zip(vectors, times, strict=True)]


WEEKS = {"reference": "2026-11-09..2026-11-15", "current": "2026-11-16..2026-11-22"}


def _run(con: duckdb.DuckDBPyConnection, **settings: Any) -> pl.DataFrame:
    """Fixed weeks unless a test asks otherwise (default windows follow the newest data)."""
    return detect_drift(con, con.table("spans"), con.table("embeddings"), **{**WEEKS, **settings})


def _verdicts(results: pl.DataFrame) -> dict[tuple[Any, ...], str]:
    return {
        (row["model"], row["prompt_version"], row["kind"], row["feature"], row["method"]): row[
            "verdict"
        ]
        for row in results.iter_rows(named=True)
    }


@pytest.fixture
def store() -> duckdb.DuckDBPyConnection:
    """gpt-a did not change; gpt-b's queries and prompts moved in the current week."""
    con = store_in_memory()
    spans: list[dict[str, Any]] = []
    embeddings: list[dict[str, Any]] = []
    for model, shift, extra_tokens in (("gpt-a", 0.0, 0), ("gpt-b", 2.0, 150)):
        reference, current = synthetic_embeddings(
            400, 400, 48, shift=shift, normalise=True, anisotropic=True, seed=len(model)
        )
        for day, vectors, tokens, seed in (
            (REFERENCE_WEEK, reference, 300, 1),
            (CURRENT_WEEK, current, 300 + extra_tokens, 2),
        ):
            spans += _requests(
                day, 400, tokens=tokens, seed=seed, model=model, prompt_version="v1", tenant="acme"
            )
            embeddings += _vectors(
                day, vectors, model=model, prompt_version="v1", kind="query", tenant="acme"
            )
    insert_spans(con, spans)
    insert_embeddings(con, embeddings)
    return con


def test_each_group_feature_and_method_gets_a_verdict(store: duckdb.DuckDBPyConnection) -> None:
    # Default windows: the 7 days up to the newest observation against the week before.
    results = detect_drift(store, store.table("spans"), store.table("embeddings"))
    assert tuple(results.columns) == RESULT_COLUMNS
    assert _verdicts(results) == {
        ("gpt-a", "v1", "embedding", "query", "classifier"): "no_drift",
        ("gpt-a", "v1", "feature", "duration_ms", "ks"): "no_drift",
        ("gpt-a", "v1", "feature", "input_tokens", "ks"): "no_drift",
        ("gpt-a", "v1", "feature", "output_tokens", "ks"): "no_drift",
        ("gpt-b", "v1", "embedding", "query", "classifier"): "drift",
        ("gpt-b", "v1", "feature", "duration_ms", "ks"): "no_drift",
        ("gpt-b", "v1", "feature", "input_tokens", "ks"): "drift",
        ("gpt-b", "v1", "feature", "output_tokens", "ks"): "no_drift",
    }
    row = results.filter(pl.col("model") == "gpt-b", pl.col("kind") == "embedding").row(
        0, named=True
    )
    assert row["drifted"] is True and row["score"] >= row["threshold"]
    assert (row["reference_n"], row["current_n"]) == (400, 400)
    assert row["group_by"] == "model,prompt_version"
    assert row["tenant"] is None  # not part of the grouping
    assert row["reference_start"] <= REFERENCE_WEEK < row["reference_end"] <= CURRENT_WEEK
    assert row["current_start"] <= CURRENT_WEEK < row["current_end"]
    assert results["run_id"].n_unique() == 1 and results["computed_at"].n_unique() == 1


def test_results_are_reproducible(store: duckdb.DuckDBPyConnection) -> None:
    first, second = _run(store), _run(store)
    columns = ["model", "kind", "feature", "score", "threshold", "p_value", "verdict"]
    assert first.select(columns).equals(second.select(columns))


def test_grouping_and_methods_are_configurable(store: duckdb.DuckDBPyConnection) -> None:
    results = _run(store, by="tenant", method=["mmd", "classifier", "ks"], features="input_tokens")
    assert set(results["group_by"]) == {"tenant"}
    assert set(results["tenant"]) == {"acme"}
    assert set(results["model"].to_list()) == {None}
    assert sorted(results["method"]) == ["classifier", "ks", "mmd"]
    assert set(results["feature"]) == {"query", "input_tokens"}
    # gpt-b moved, so the pooled tenant moved too.
    assert set(results["verdict"]) == {"drift"}


def test_settings_come_from_the_environment(
    store: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERMETER_DRIFT_MIN_SAMPLES", "1000")
    results = _run(store)
    assert set(results["verdict"]) == {"insufficient_data"}
    # An explicit argument wins over the environment.
    assert "drift" in set(_run(store, min_samples=10)["verdict"])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"by": "region"}, "group by a comma-separated subset"),
        ({"method": "euclid"}, "unknown method euclid"),
        ({"alpha": 0.7}, "between 0 and 0.5"),
        ({"current": "yesterday"}, "expected a duration"),
        ({"reference": "last-month"}, "auto, previous-week, previous, before-rollout"),
    ],
)
def test_bad_settings_fail_before_any_work(
    store: duckdb.DuckDBPyConnection, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        _run(store, **settings)


def test_too_little_data_is_never_a_verdict() -> None:
    con = store_in_memory()
    insert_spans(
        con,
        _requests(REFERENCE_WEEK, 300, model="m", prompt_version="v1")
        + _requests(CURRENT_WEEK, 40, model="m", prompt_version="v1")
        + _requests(CURRENT_WEEK, 200, model="new", prompt_version="v1"),
    )
    results = _run(con)
    assert set(results["verdict"]) == {"insufficient_data"}
    assert results["score"].is_null().all() and results["drifted"].is_null().all()
    small = results.filter(pl.col("model") == "m").row(0, named=True)
    assert (small["reference_n"], small["current_n"]) == (300, 40)
    assert small["message"] == (
        "reference window has 300 values, current 40; need at least 100 in each"
    )
    new = results.filter(pl.col("model") == "new").row(0, named=True)
    assert (new["reference_n"], new["current_n"]) == (0, 200)


def test_broken_vectors_fail_their_group_and_the_others_complete() -> None:
    con = store_in_memory()
    rng = np.random.default_rng(0)
    good = rng.standard_normal((400, 16))
    nan = good.copy()
    nan[[3, 250], 5] = np.nan
    rows: list[dict[str, Any]] = []
    for model, vectors in (("ok", good), ("nan", nan), ("mixed", good), ("empty", good)):
        rows += _vectors(REFERENCE_WEEK, vectors[:200], model=model, prompt_version="v1")
        current = vectors[200:].tolist()
        if model == "mixed":
            current[7] = current[7] + [0.0] * 16
        if model == "empty":
            current[0] = []
        rows += _vectors(CURRENT_WEEK, current, model=model, prompt_version="v1")
    insert_embeddings(con, rows)
    results = _run(con).filter(pl.col("kind") == "embedding")
    by_model = {row["model"]: row for row in results.iter_rows(named=True)}
    assert by_model["ok"]["verdict"] == "no_drift"
    assert by_model["nan"]["verdict"] == "error"
    assert by_model["nan"]["message"] == (
        "1 of 200 reference vectors contain NaN or infinite values"
    )
    assert by_model["mixed"]["verdict"] == "error"
    assert by_model["mixed"]["message"] == (
        "mixed vector dimensions: 16 (399 vectors), 32 (1 vectors)"
    )
    assert by_model["empty"]["verdict"] == "error"
    assert by_model["empty"]["message"] == "1 of 400 vectors are empty"
    assert by_model["nan"]["drifted"] is None and by_model["nan"]["score"] is None


def test_each_embedding_kind_is_compared_on_its_own() -> None:
    con = store_in_memory()
    queries = synthetic_embeddings(200, 200, 24, seed=1)
    documents = synthetic_embeddings(200, 200, 24, shift=3.0, seed=2)
    rows: list[dict[str, Any]] = []
    for kind, (reference, current) in (("query", queries), ("document", documents)):
        rows += _vectors(REFERENCE_WEEK, reference, model="e", prompt_version="v1", kind=kind)
        rows += _vectors(CURRENT_WEEK, current, model="e", prompt_version="v1", kind=kind)
    insert_embeddings(con, rows)
    verdicts = _verdicts(_run(con))
    assert verdicts == {
        ("e", "v1", "embedding", "document", "classifier"): "drift",
        ("e", "v1", "embedding", "query", "classifier"): "no_drift",
    }


def test_large_windows_are_sampled_reproducibly() -> None:
    con = store_in_memory()
    reference, current = synthetic_embeddings(700, 900, 16, shift=2.0, seed=3)
    insert_embeddings(
        con,
        _vectors(REFERENCE_WEEK, reference, model="e", prompt_version="v1")
        + _vectors(CURRENT_WEEK, current, model="e", prompt_version="v1"),
    )
    first = _run(con, max_samples=300).row(0, named=True)
    assert (first["reference_n"], first["current_n"]) == (700, 900)
    assert first["message"].endswith("(random sample of 700+900 vectors)")
    assert "trained on 150+150 vectors, tested on 150+150" in first["message"]
    assert first["verdict"] == "drift"
    assert _run(con, max_samples=300).row(0, named=True)["score"] == first["score"]


def test_request_features_come_from_the_whole_request() -> None:
    con = store_in_memory()
    rows: list[dict[str, Any]] = []
    for day, scores in ((REFERENCE_WEEK, 0.8), (CURRENT_WEEK, 0.4)):
        for i, start in enumerate(_times(day, 150)):
            entry = span_record(
                start=start,
                duration_ms=500.0,
                endpoint="/ask",
                prompt_version="v3",
                input_tokens=10,
                attributes={
                    "thread.id": 7,
                    "cache.hit": True,
                    "user.tier": "gold",
                    "request.attempt_id": i,
                },
            )
            trace = entry["trace_id"]
            retrieval = span_record(
                start=start,
                duration_ms=50.0,
                trace_id=trace,
                is_entry=False,
                parent_span_id=entry["span_id"],
                model="text-embedding-3-small",
                input_tokens=12,
                attributes={"retrieval.scores": [scores, scores - 0.2], "retrieval.top_k": 2},
            )
            llm = span_record(
                start=start + timedelta(milliseconds=60),
                duration_ms=400.0,
                trace_id=trace,
                is_entry=False,
                model="gpt-x",
                parent_span_id=entry["span_id"],
                input_tokens=1_000 + i,
                output_tokens=50,
            )
            rows += [entry, retrieval, llm]
    insert_spans(con, rows)
    results = _run(con)
    features = {row["feature"]: row for row in results.iter_rows(named=True)}
    # Tokens are summed over the request's spans; the model is its main model call's (the
    # chat model with the most tokens, not the embedding model called first).
    assert set(results["model"]) == {"gpt-x"}
    assert set(results["prompt_version"]) == {"v3"}
    assert set(features) == {
        "duration_ms",
        "input_tokens",
        "output_tokens",
        "retrieval.scores",
        "retrieval.top_k",
    }
    assert features["retrieval.scores"]["verdict"] == "drift"  # mean score 0.7 -> 0.3
    assert features["retrieval.top_k"]["verdict"] == "no_drift"
    assert features["input_tokens"]["reference_n"] == 150


def test_before_rollout_compares_prompt_versions() -> None:
    con = store_in_memory()
    rollout = CURRENT_WEEK + timedelta(days=2)
    old_vectors, new_vectors = synthetic_embeddings(300, 300, 32, shift=2.5, seed=8)
    insert_spans(
        con,
        _requests(rollout - timedelta(days=6), 300, tokens=200, model="m", prompt_version="v1")
        + _requests(rollout, 300, tokens=200, model="m", prompt_version="v2"),
    )
    insert_embeddings(
        con,
        _vectors(rollout - timedelta(days=6), old_vectors, model="m", prompt_version="v1")
        + _vectors(rollout, new_vectors, model="m", prompt_version="v2"),
    )
    results = _run(con, reference="before-rollout", current="7d", by="model")
    assert set(results["prompt_version"]) == {"v2"}
    assert set(results["reference_prompt_version"]) == {"v1"}
    assert set(results["reference_end"]) == {rollout}
    verdicts = {row["feature"]: row["verdict"] for row in results.iter_rows(named=True)}
    assert verdicts["query"] == "drift"
    assert verdicts["input_tokens"] == "no_drift"


def test_an_empty_store_gives_no_rows() -> None:
    con = store_in_memory()
    results = _run(con)
    assert results.is_empty() and tuple(results.columns) == RESULT_COLUMNS


def test_fixed_windows_on_spans_only(store: duckdb.DuckDBPyConnection) -> None:
    results = detect_drift(store, store.table("spans"), None, **WEEKS)
    assert set(results["kind"]) == {"feature"}
    assert results["reference_start"].unique().to_list() == [REFERENCE_WEEK]
    assert results["current_end"].unique().to_list() == [datetime(2026, 11, 23)]


def test_the_default_path_never_imports_evidently_or_scikit_learn() -> None:
    code = """
import sys
from infermeter.analytics.drift._detect import detect_drift
from infermeter.analytics.testing._drift import synthetic_embeddings
from infermeter.collectors.testing import embedding_record, insert_embeddings, store_in_memory
from datetime import datetime
con = store_in_memory()
reference, current = synthetic_embeddings(150, 150, 8, shift=3.0)
insert_embeddings(con, [embedding_record(v, time=datetime(2026, 11, 10)) for v in reference]
                  + [embedding_record(v, time=datetime(2026, 11, 17)) for v in current])
results = detect_drift(con, con.table("spans"), con.table("embeddings"))
assert results["verdict"].to_list() == ["drift"], results
heavy = sorted(m for m in ("evidently", "sklearn") if m in sys.modules)
print(",".join(heavy) or "none")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "none"
