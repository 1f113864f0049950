"""Scenarios: unpriced models and model names without a provider. Answers computed here
from list prices (OpenAI gpt-4o $2.50 / $10 per million input / output tokens; Mistral's own
mistral-large-latest $0.50 / $1.50, where Azure resells it at $8 / $24)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from infermeter.collectors import apply_migrations
from infermeter.collectors.testing import insert_spans, span_record

from infermeter import main

T0 = datetime(2026, 11, 16, 10)


def _request(i: int, model: str, provider: str | None) -> list[dict[str, Any]]:
    entry = span_record(
        start=T0 + timedelta(minutes=i),
        duration_ms=500.0,
        endpoint="/v1/chat",
        runtime="serverless",
        memory_mb=1024.0,
    )
    child = span_record(
        start=entry["start_time"] + timedelta(milliseconds=10),
        duration_ms=400.0,
        trace_id=entry["trace_id"],
        parent_span_id=entry["span_id"],
        is_entry=False,
        model=model,
        provider=provider,
        operation="chat",
        input_tokens=1000,
        output_tokens=100,
    )
    return [entry, child]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("prices") / "store.duckdb"
    con = duckdb.connect(str(path))
    apply_migrations(con)
    rows: list[dict[str, Any]] = []
    for i in range(6):
        rows += _request(i, "gpt-4o", "openai")
    for i in range(6, 10):
        rows += _request(i, "house-llm-9", "acme")  # no price anywhere
    for i in range(10, 12):
        rows += _request(i, "mistral-large-latest", None)  # no provider on the span
    for i in range(12, 13):
        rows += _request(i, "llama-3.1-70b-instruct", None)  # resold by several, no maker list
    insert_spans(con, rows)
    con.close()
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_unpriced_tokens_are_null_never_zero(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(
        capsys, "metrics", "--store", str(store), "--by", "model", "--format", "json"
    )
    assert code == 0
    rows = {r["model"]: r for r in json.loads(out)}
    unknown = rows["house-llm-9"]
    assert unknown["token_cost_usd"] is None and unknown["total_cost_usd"] is None
    assert unknown["unpriced_requests"] == 4
    # gpt-4o: 1000 x $2.50/M + 100 x $10/M = $0.0035 a request.
    assert rows["gpt-4o"]["token_cost_usd"] == pytest.approx(6 * 0.0035)
    # The total over everything is the priced part, and says what it leaves out.
    code, out, _ = _run(capsys, "metrics", "--store", str(store), "--format", "json")
    (total,) = json.loads(out)
    assert total["unpriced_requests"] == 4
    priced = 6 * 0.0035 + 2 * (1000 * 0.5e-6 + 100 * 1.5e-6) + (1000 * 1e-6 + 100 * 1e-6)
    assert total["token_cost_usd"] == pytest.approx(priced)
    code, out, _ = _run(
        capsys, "metrics", "--store", str(store), "--by", "model", "--columns", "token_cost_usd"
    )
    assert "unpriced" in out
    assert "Token and total costs exclude 4 unpriced request(s)" in out


def test_a_name_without_provider_prices_at_the_makers_list_price(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "prices", "check", "--store", str(store), "--format", "json")
    assert code == 1 and "house-llm-9" in err  # unpriced: still a failure
    rows = {r["model"]: r for r in json.loads(out)}
    mistral = rows["mistral-large-latest"]
    assert mistral["priced_by"] == "mistral/mistral-large-latest"
    assert mistral["input_per_million"] == pytest.approx(0.5)
    assert mistral["token_cost_usd"] == pytest.approx(2 * (1000 * 0.5e-6 + 100 * 1.5e-6))
    assert mistral["ambiguous"] is None  # the maker's listing decides
    # A name several resellers list at different prices, none of them its maker: flagged.
    llama = rows["llama-3.1-70b-instruct"]
    assert "perplexity/llama-3.1-70b-instruct" in llama["ambiguous"]
    assert "'llama-3.1-70b-instruct' names no provider" in err
