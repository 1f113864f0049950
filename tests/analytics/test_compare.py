"""compare: the scoring matrix on known inputs, weights, selections and the verdict."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from infermeter.analytics import compare, load_deployments, load_prices, metrics, request_table
from infermeter.analytics.economics._compare import (
    DEFAULT_WEIGHTS,
    load_weights,
    matrix_winner,
    parse_selection,
    parse_weights,
    score_matrix,
)
from infermeter.analytics.testing._traffic import DEPLOYMENTS_TOML, synthetic_spans
from infermeter.collectors import apply_migrations
from infermeter.collectors.testing import insert_spans

from infermeter import main

# A Lambda pilot with cold starts driving p95 vs a container fleet (hand-made metric rows).
SERVERLESS: dict[str, Any] = {
    "runtime": "serverless",
    "requests": 1000,
    "p95_ms": 1900.0,
    "warm_p95_ms": 700.0,
    "slo_ms": 800.0,
    "cold_start_rate": 0.08,
    "throttle_rate": 0.0,
    "error_rate": 0.004,
    "cost_per_successful_request_usd": 0.0020,
}
CONTAINER: dict[str, Any] = {
    "runtime": "container",
    "requests": 1000,
    "p95_ms": 900.0,
    "warm_p95_ms": 900.0,
    "slo_ms": 800.0,
    "cold_start_rate": 0.0,
    "throttle_rate": 0.02,
    "error_rate": 0.015,
    "cost_per_successful_request_usd": 0.0030,
}


def scores(matrix: Any, criterion: str) -> tuple[float | None, float | None]:
    row = matrix.filter(matrix["criterion"] == criterion).row(0, named=True)
    return row["a_score"], row["b_score"]


def test_each_criterion_is_scored_by_its_documented_bins() -> None:
    matrix = score_matrix(SERVERLESS, CONTAINER)
    # serverless: warm p95 700 / 800 = 0.875 -> 4 (<= 1.0); container 900 / 800 = 1.125 -> 3.
    assert scores(matrix, "latency_slo") == (4.0, 3.0)
    # 0.0020 is cheapest -> 5; 0.0030 is 1.5x -> 5 - 4 * 0.5 = 3.
    assert scores(matrix, "cost") == (5.0, 3.0)
    # throttle 0 -> 5; 2 % -> 2 (<= 5 %).
    assert scores(matrix, "scaling") == (5.0, 2.0)
    # cold 8 % -> 2 (<= 20 %); 0 -> 5.
    assert scores(matrix, "cold_starts") == (2.0, 5.0)
    # errors 0.4 % -> 4; 1.5 % -> 3.
    assert scores(matrix, "reliability") == (4.0, 3.0)
    assert scores(matrix, "simplicity") == (5.0, 3.0)


def test_weighted_total_and_winner() -> None:
    matrix = score_matrix(SERVERLESS, CONTAINER)
    # a: .3*4 + .3*5 + .15*5 + .1*2 + .1*4 + .05*5 = 4.30
    # b: .3*3 + .3*3 + .15*2 + .1*5 + .1*3 + .05*3 = 3.05
    assert scores(matrix, "weighted_total") == (4.3, 3.05)
    assert matrix_winner(matrix) == "a"


def test_weights_change_the_winner() -> None:
    only_cold_starts = {name: 0.0 for name in DEFAULT_WEIGHTS} | {"cold_starts": 1.0}
    matrix = score_matrix(SERVERLESS, CONTAINER, weights=only_cold_starts)
    assert scores(matrix, "weighted_total") == (2.0, 5.0)
    assert matrix_winner(matrix) == "b"


def test_simplicity_can_be_overridden() -> None:
    matrix = score_matrix(SERVERLESS, CONTAINER, simplicity={"container": 5.0})
    assert scores(matrix, "simplicity") == (5.0, 5.0)


def test_missing_data_is_left_out_of_the_totals_not_scored() -> None:
    unpriced = dict(CONTAINER, cost_per_successful_request_usd=None)
    matrix = score_matrix(SERVERLESS, unpriced)
    assert scores(matrix, "cost") == (None, None)
    total = matrix.filter(matrix["criterion"] == "weighted_total").row(0, named=True)
    assert total["weight"] == pytest.approx(0.70)
    # a: (.3*4 + .15*5 + .1*2 + .1*4 + .05*5) / .7 = 2.8 / .7 = 4.0
    assert total["a_score"] == 4.0


def test_cold_starts_within_the_p95_tail_are_not_mitigated() -> None:
    rare_cold = dict(SERVERLESS, cold_start_rate=0.01)
    # 1 % cold is inside the 5 % tail: p95 1900 / 800 = 2.4 -> 1, no warm-capacity credit.
    assert scores(score_matrix(rare_cold, CONTAINER), "latency_slo")[0] == 1.0


def test_nothing_scored_is_undecided_and_a_near_tie_is_a_tie() -> None:
    empty = score_matrix({}, {})
    assert matrix_winner(empty) == "undecided"
    assert matrix_winner(score_matrix(SERVERLESS, dict(SERVERLESS))) == "tie"


def test_parse_weights_and_errors() -> None:
    assert parse_weights("latency_slo=3, cost=2") == {"latency_slo": 3.0, "cost": 2.0}
    with pytest.raises(ValueError, match="unknown criteria"):
        parse_weights("speed=1")
    with pytest.raises(ValueError, match="not a number"):
        parse_weights("cost=lots")
    with pytest.raises(ValueError, match="non-negative"):
        parse_weights("cost=-1")


def test_load_weights_from_toml_and_yaml(tmp_path: Path) -> None:
    toml = tmp_path / "w.toml"
    toml.write_text("[weights]\ncost = 0.5\n[simplicity]\ncontainer = 4\n")
    assert load_weights(toml) == ({"cost": 0.5}, {"container": 4.0})
    yaml = tmp_path / "w.yaml"
    yaml.write_text("weights:\n  latency_slo: 1\n")
    assert load_weights(yaml) == ({"latency_slo": 1.0}, {})
    bad = tmp_path / "bad.toml"
    bad.write_text("[weigths]\ncost = 1\n")
    with pytest.raises(ValueError, match="unknown sections"):
        load_weights(bad)


def test_parse_selection() -> None:
    assert parse_selection("runtime=serverless") == {"runtime": "serverless"}
    assert parse_selection("runtime=container, tenant=acme") == {
        "runtime": "container",
        "tenant": "acme",
    }
    with pytest.raises(ValueError, match="not one of"):
        parse_selection("colour=blue")
    with pytest.raises(ValueError, match="column=value"):
        parse_selection("runtime")


# --- on a real store ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("store")
    deployments = folder / "deployments.toml"
    deployments.write_text(DEPLOYMENTS_TOML)
    path = folder / "store.duckdb"
    con = duckdb.connect(str(path))
    apply_migrations(con)
    insert_spans(con, synthetic_spans(datetime(2026, 11, 9), days=14, scale=0.05))
    con.close()
    return path, deployments


def test_compare_two_prompt_versions_of_an_endpoint(store: tuple[Path, Path]) -> None:
    path, deployments_file = store
    prices = load_prices()
    deployments = load_deployments(deployments_file, prices=prices)
    con = duckdb.connect(str(path), read_only=True)
    requests = request_table(
        con, con.table("spans"), prices=prices, deployments=deployments
    ).materialize()
    result = compare(
        requests, a={"prompt_version": "v7"}, b={"prompt_version": "v8"}, endpoint="/chat"
    )
    direct = metrics(requests.filter("endpoint = '/chat' AND prompt_version = 'v8'"))
    side = result.side_by_side.rows_by_key("metric", named=True, unique=True)
    assert side["requests"]["b"] == direct["requests"][0]
    assert side["p95_ms"]["b"] == pytest.approx(direct["p95_ms"][0])
    # v8 writes 60 % more output tokens: it costs more per successful request.
    assert side["cost_per_successful_request_usd"]["b_minus_a"] > 0
    assert scores(result.matrix, "cost")[0] == 5.0
    assert result.winner in {"a", "b", "tie"}
    assert json.loads(json.dumps(result.to_dict(), default=str))["endpoint"] == "/chat"
    con.close()


def test_compare_command_prints_the_matrix_and_winner(
    store: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, deployments = store
    code = main(
        [
            "compare",
            "--store",
            str(path),
            "--deployments",
            str(deployments),
            "--a",
            "runtime=serverless",
            "--b",
            "runtime=container",
            "--weights",
            "cost=1,latency_slo=1",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "scoring matrix" in out
    assert "weighted_total" in out
    assert "winner:" in out


def test_compare_command_json_and_thin_slices(
    store: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = store
    assert (
        main(
            [
                "compare",
                "--store",
                str(path),
                "--a",
                "runtime=serverless_container",
                "--b",
                "runtime=container",
                "--json",
            ]
        )
        == 0
    )
    document = json.loads(capsys.readouterr().out)
    assert document["winner"] == "insufficient_data"  # /classify has a handful of requests
    assert document["notes"]


def test_compare_command_rejects_bad_selections(
    store: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = store
    assert (
        main(["compare", "--store", str(path), "--a", "colour=red", "--b", "runtime=container"])
        == 1
    )
    assert "not one of" in capsys.readouterr().err
    assert (
        main(
            [
                "compare",
                "--store",
                str(path),
                "--a",
                "runtime=serverless",
                "--b",
                "runtime=container",
                "--weights",
                "speed=2",
            ]
        )
        == 1
    )
    assert "unknown criteria" in capsys.readouterr().err
