"""``metrics --quality`` and ``recommend`` on a store file with evaluations, through the
console script (numbers by hand)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from infermeter.collectors import apply_migrations
from infermeter.collectors.testing import (
    evaluation_record,
    insert_evaluations,
    insert_spans,
    span_record,
)

from infermeter import main

T0 = datetime(2026, 11, 16, 10, 0, 0)
COST_V1 = 1000 * 0.15e-6 + 500 * 0.60e-6  # gpt-4o-mini list prices
COST_V2 = 1000 * 0.15e-6 + 300 * 0.60e-6


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("quality") / "store.duckdb"
    con = duckdb.connect(str(path))
    apply_migrations(con)
    spans: list[dict[str, Any]] = []
    evaluations: list[dict[str, Any]] = []
    plan = [("v1", 0, 500, [0.9, 0.8, 0.7, 0.6]), ("v2", 120, 300, [0.6, 0.5, 0.4, 0.3])]
    for version, offset, output_tokens, cycle in plan:
        for i in range(40):
            span = span_record(
                start=T0 + timedelta(minutes=offset + i),
                tenant="acme",
                model="gpt-4o-mini",
                provider="openai",
                prompt_version=version,
                input_tokens=1000,
                output_tokens=output_tokens,
            )
            spans.append(span)
            evaluations.append(
                evaluation_record(
                    "helpfulness", trace_id=span["trace_id"], score_value=cycle[i % 4]
                )
            )
    insert_spans(con, spans)
    insert_evaluations(con, evaluations)
    con.close()
    return path


def test_metrics_quality_columns(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "metrics",
            "--store",
            str(store),
            "--by",
            "prompt_version",
            "--quality",
            "--format",
            "json",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    rows = {row["prompt_version"]: row for row in json.loads(out)}
    assert rows["v1"]["good_rate"] == pytest.approx(1.0)
    assert rows["v1"]["cost_per_good_answer_usd"] == pytest.approx(COST_V1)
    assert rows["v2"]["good_rate"] == pytest.approx(0.5)
    assert rows["v2"]["cost_per_good_answer_usd"] == pytest.approx(COST_V2 / 0.5)
    assert rows["v2"]["judged_requests"] == 40


def test_recommend_advises_the_rollback(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["recommend", "--store", str(store), "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    kinds = [r["kind"] for r in document["recommendations"]]
    assert "rollback" in kinds
    rollback = document["recommendations"][kinds.index("rollback")]
    assert rollback["tenant"] == "acme"
    assert rollback["evidence"]["candidate"] == "v2"
    assert rollback["evidence"]["candidate_cost_per_request_usd"] == pytest.approx(COST_V2)


def test_compare_scores_quality_as_a_criterion(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "compare",
            "--store",
            str(store),
            "--a",
            "prompt_version=v1",
            "--b",
            "prompt_version=v2",
            "--days",
            "30",
            "--json",
        ]
    )
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    quality = next(r for r in document["matrix"] if r["criterion"] == "quality")
    # v1: every judged answer good (>= 0.95 -> 5); v2: half (< 0.60 -> 1).
    assert (quality["a_score"], quality["b_score"]) == (5.0, 1.0)
    side = {r["metric"]: r for r in document["side_by_side"]}
    assert side["cost_per_good_answer_usd"]["a"] == pytest.approx(COST_V1)
    assert side["cost_per_good_answer_usd"]["b"] == pytest.approx(COST_V2 / 0.5)


def test_topics_finds_a_planted_shift_and_stays_quiet_on_a_control(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np
    from infermeter.collectors.testing import embedding_record, insert_embeddings

    rng = np.random.default_rng(5)
    centres = np.eye(8) * 4.0

    questions: list[dict[str, Any]] = []  # content capture: the user's words per trace

    def window(start: datetime, shares: list[float]) -> list[dict[str, Any]]:
        topics = rng.choice(3, size=240, p=shares)
        rows = []
        for i, t in enumerate(topics):
            trace = f"{len(questions):032x}"
            messages = [
                {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
                {"role": "user", "parts": [{"type": "text", "content": f"topic {t} question"}]},
            ]
            questions.append(
                span_record(
                    start=start + timedelta(minutes=i),
                    trace_id=trace,
                    attributes={"gen_ai.input.messages": json.dumps(messages)},
                )
            )
            rows.append(
                embedding_record(
                    list(centres[t] + rng.normal(0, 0.3, 8)),
                    time=start + timedelta(minutes=i),
                    kind="query",
                    model="text-embedding-3-small",
                    trace_id=trace,
                )
            )
        return rows

    path = tmp_path / "topics.duckdb"
    con = duckdb.connect(str(path))
    apply_migrations(con)
    insert_embeddings(con, window(T0, [0.4, 0.3, 0.3]))  # day 1: reference
    insert_embeddings(con, window(T0 + timedelta(days=1), [0.4, 0.3, 0.3]))  # day 2: same mix
    insert_embeddings(con, window(T0 + timedelta(days=2), [0.1, 0.3, 0.6]))  # day 3: shifted
    insert_spans(con, questions)
    con.close()

    def run(reference: str, current: str) -> dict[str, Any]:
        argv = ["topics", "--store", str(path), "--reference", reference]
        code = main([*argv, "--current", current, "--json"])
        assert code == 0
        result: dict[str, Any] = json.loads(capsys.readouterr().out)
        return result

    day = [(T0 + timedelta(days=d)).date().isoformat() for d in range(4)]
    shifted = run(f"{day[0]}..{day[1]}", f"{day[2]}..{day[3]}")
    control = run(f"{day[0]}..{day[1]}", f"{day[1]}..{day[2]}")
    assert shifted["shifted"] and shifted["k"] == 3
    assert shifted["reference_n"] == shifted["current_n"] == 240
    # day 3 moved from topic 0 to topic 2: the clusters that moved most are those two, and
    # their examples are the captured questions of that topic
    moved = shifted["clusters"][:2]
    assert {c["examples"][0] for c in moved} == {"topic 0 question", "topic 2 question"}
    assert all(len(set(c["examples"])) == 1 for c in shifted["clusters"])
    assert not control["shifted"]
    assert control["p_value"] >= 0.01
