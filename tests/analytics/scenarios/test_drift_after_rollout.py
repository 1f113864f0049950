"""Scenario: drift after a prompt rollout, found by `infermeter drift` with no flags.

Two weeks of one request every 10 minutes to gpt-4o-mini. Prompt v1 runs for ten days with
1000-1049 input tokens; v2, rolled out on day 10, sends 1500-1549 (a longer prompt) and the
same 100-119 output tokens. The current window is the last 7 days: v1 has a previous week to
compare with and has not changed (KS distance 0 between identical cycles: no drift); v2 did
not exist a week earlier, so it is compared with v1 before its rollout: input tokens never
overlap (KS distance 1: drift), output tokens are the same cycle (no drift).
"""

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

T0 = datetime(2026, 11, 9)
ROLLOUT = T0 + timedelta(days=10)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("drift") / "store.duckdb"
    con = duckdb.connect(str(path))
    apply_migrations(con)
    rows: list[dict[str, Any]] = []
    for i in range(14 * 144):
        start = T0 + timedelta(minutes=10 * i)
        v2 = start >= ROLLOUT
        rows.append(
            span_record(
                start=start,
                duration_ms=800.0,
                endpoint="/v1/chat",
                runtime="container",
                model="gpt-4o-mini",
                provider="openai",
                prompt_version="v2" if v2 else "v1",
                input_tokens=(1500 if v2 else 1000) + i % 50,
                output_tokens=100 + i % 20,
            )
        )
    insert_spans(con, rows)
    con.close()
    return path


def test_default_drift_finds_the_rollout(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["drift", "--store", str(store), "--json", "--no-save", "--method", "ks"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    verdicts = {(r["prompt_version"], r["feature"]): r for r in rows}
    v2_input = verdicts[("v2", "input_tokens")]
    assert v2_input["verdict"] == "drift"
    assert v2_input["score"] == pytest.approx(1.0)
    assert v2_input["reference_prompt_version"] == "v1"
    assert v2_input["reference"] == "prompt v1 before the rollout"
    assert verdicts[("v2", "output_tokens")]["verdict"] == "no_drift"
    # v1 keeps its week-over-week comparison and says so.
    v1_input = verdicts[("v1", "input_tokens")]
    assert v1_input["verdict"] == "no_drift"
    assert v1_input["reference_prompt_version"] is None
    assert v1_input["reference"].startswith("2026-11-")
