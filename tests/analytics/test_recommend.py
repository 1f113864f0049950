"""recommend: each rule on hand-built metric frames with known answers, then the whole
pipeline (store -> request table -> metrics -> rules) and the command."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from infermeter.analytics import load_deployments, load_prices, recommend, request_table
from infermeter.analytics.economics._recommend import (
    Recommendation,
    RecommendationThresholds,
    confidence,
    confidence_label,
    decide_from_frames,
    recommend_from_frames,
    recommendations_to_json,
)
from infermeter.analytics.testing._traffic import DEPLOYMENTS_TOML, synthetic_spans
from infermeter.collectors import apply_migrations
from infermeter.collectors.testing import insert_spans, span_record, store_in_memory

from infermeter import main

TWO_WEEKS_S = 14 * 86_400.0


def workload(**columns: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "endpoint": "/chat",
        "runtime": "serverless",
        "requests": 10_000,
        "window_s": TWO_WEEKS_S,
        "requests_per_s": 10_000 / TWO_WEEKS_S,
        "p95_ms": 900.0,
        "warm_p95_ms": 850.0,
        "cold_p95_ms": 2100.0,
        "slo_ms": 1000.0,
        "cold_start_rate": 0.01,
        "cold_starts": 100,
        "throttle_rate": 0.0,
        "throttled": 0,
        "throttle_events": 0,
        "error_rate": 0.0,
    }
    row.update(columns)
    return row


def econ(**columns: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "endpoint": "/chat",
        "runtime": "serverless",
        "requests": 10_000,
        "window_s": TWO_WEEKS_S,
        "requests_per_s": 20.0,
        "mean_duration_s": 0.2,
        "memory_gb": 1769 / 1024,
        "serverless_monthly_usd": 313.18,
        "container_monthly_usd": 216.24,
        "container_instances": 6,
        "container_concurrency": 1,
        "container_price_per_hour": 0.04937,
        "crossover_utilization": 0.46,
        "measured_utilization": 4 / 6,
        "cheaper_runtime": "container",
        "current_monthly_usd": 313.18,
        "monthly_saving_usd": 313.18 - 216.24,
        "warm_capacity_kind": "provisioned_concurrency",
        "warm_capacity_units": 4,
        "warm_capacity_monthly_usd": 43.80,
        "warm_capacity_net_monthly_usd": 10.5,
        "cold_starts_per_s": 0.0,
    }
    row.update(columns)
    return row


def frame(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), infer_schema_length=None)


def kinds(recs: list[Recommendation]) -> list[str]:
    return [r.kind for r in recs]


def test_confidence_grows_with_volume_and_window() -> None:
    assert confidence(49, TWO_WEEKS_S) == 0.0
    assert confidence(5000, 3599) == 0.0
    assert confidence(50, 3600) == pytest.approx(0.5 * (0.5 + 0.5 * 3600 / TWO_WEEKS_S), abs=1e-3)
    assert confidence(5000, TWO_WEEKS_S) == 1.0
    assert confidence(500, TWO_WEEKS_S) == 0.75  # log10(10)/log10(100) = 0.5 -> 0.75 x 1
    assert [confidence_label(v) for v in (0.0, 0.3, 0.5, 0.8)] == ["none", "low", "medium", "high"]


def test_too_little_data_says_so_and_gives_no_verdict() -> None:
    recs = recommend_from_frames(
        frame(workload(requests=12, window_s=600.0, p95_ms=5000.0, cold_start_rate=0.5)),
        economics=frame(econ()),
    )
    assert kinds(recs) == ["insufficient_data"]
    assert recs[0].confidence == 0.0
    assert "12 requests" in recs[0].rationale
    assert "10 min" in recs[0].rationale


def test_empty_store_is_an_explicit_notice() -> None:
    empty = pl.DataFrame(schema={"endpoint": pl.String, "runtime": pl.String})
    recs = recommend_from_frames(empty)
    assert kinds(recs) == ["insufficient_data"]
    assert recs[0].endpoint is None


def test_move_to_containers_with_its_numbers() -> None:
    (rec,) = recommend_from_frames(frame(workload()), economics=frame(econ()))
    assert rec.kind == "move_to_containers"
    assert rec.title == "Move /chat on serverless to containers: save $97/month"
    # One signed number: the bill changes by 216.24 - 313.18 (negative saves).
    assert rec.monthly_cost_change_usd == -96.94
    assert rec.plan == "all_containers" and rec.runner_up == "stay"
    assert rec.evidence["serverless_monthly_usd"] == 313.18
    assert rec.evidence["container_instances"] == 6
    assert rec.evidence["crossover_utilization"] == 0.46
    assert "wall-clock" in rec.rationale
    assert "Projection" in rec.rationale
    # Saving is 31 % of today's cost (margin factor 1): confidence is the data's, 10k/14 d.
    assert rec.confidence == 1.0
    # An always-on fleet serves at the warm p95 (850 ms) instead of today's 900 ms.
    assert rec.p95_gain_ms == 50.0


def test_a_saving_below_the_floor_is_not_recommended() -> None:
    small = econ(
        serverless_monthly_usd=40.0,
        container_monthly_usd=38.0,
        current_monthly_usd=40.0,
        monthly_saving_usd=2.0,
    )
    assert recommend_from_frames(frame(workload()), economics=frame(small)) == []


def test_near_break_even_lowers_confidence() -> None:
    near = econ(
        current_monthly_usd=100.0,
        serverless_monthly_usd=100.0,
        container_monthly_usd=85.0,
        monthly_saving_usd=15.0,
    )
    (rec,) = recommend_from_frames(frame(workload()), economics=frame(near))
    # 15 % saving over a 30 % margin scale: 0.5 + 0.5 x 0.5 = 0.75 of the data confidence.
    assert rec.confidence == 0.75


def idle_fleet(**columns: Any) -> dict[str, Any]:
    return econ(
        runtime="container",
        requests_per_s=1 / 600,
        serverless_monthly_usd=0.5,
        container_monthly_usd=36.04,
        current_monthly_usd=36.04,
        cheaper_runtime="serverless",
        monthly_saving_usd=35.54,
        cold_starts_per_s=(1 / 600) * 0.3679,
        **columns,
    )


def test_move_to_serverless_warns_about_projected_cold_starts() -> None:
    # No SLO: cost decides, and the rationale says how many requests would start cold.
    row = workload(runtime="container", slo_ms=None)
    (rec,) = recommend_from_frames(frame(row), economics=frame(idle_fleet()))
    assert rec.kind == "move_to_serverless"
    assert rec.monthly_cost_change_usd == -35.54
    assert rec.evidence["projected_cold_start_fraction"] == pytest.approx(0.3679)
    assert "37% of requests would start cold" in rec.rationale


def test_no_move_to_serverless_when_its_cold_starts_break_the_slo() -> None:
    # With a 1 s SLO, 37 % cold starts make p95 ~ warm 850 ms + 800 ms assumed INIT (COMPUTE.md:
    # cold share above 5 % puts INIT into p95): the move saves money but misses the SLO.
    (decision,) = decide_from_frames(
        frame(workload(runtime="container")), economics=frame(idle_fleet())
    ).endpoints
    assert decision.chosen.kind == "stay"
    move = decision.runner_up
    assert move is not None and move.kind == "all_serverless"
    assert move.projected_p95_ms == pytest.approx(850.0 + 800.0)
    assert not move.meets_slo
    assert "misses the 1,000 ms SLO" in decision.why


def test_warm_capacity_is_not_advised_when_moving_is_cheaper() -> None:
    # Cold starts drive p95 past the SLO, but the always-on fleet ($216) is cheaper than the
    # function ($313) and serves at the warm p95: one plan, the move, never "keep warm" too.
    row = workload(p95_ms=2100.0, warm_p95_ms=800.0, cold_start_rate=0.08)
    recs = recommend_from_frames(frame(row), economics=frame(econ()))
    assert kinds(recs) == ["move_to_containers"]
    assert recs[0].monthly_cost_change_usd == -96.94
    assert recs[0].p95_gain_ms == 1300.0


def test_no_warm_capacity_when_cold_starts_stay_inside_the_tail() -> None:
    row = workload(p95_ms=2100.0, warm_p95_ms=2000.0, cold_start_rate=0.04)
    even = econ(monthly_saving_usd=0.0, container_monthly_usd=400.0)
    assert recommend_from_frames(frame(row), economics=frame(even)) == []


def test_throttles_concentrated_on_one_tenant_rebalance_it() -> None:
    row = workload(throttle_rate=0.05, throttled=500, throttle_events=700)
    tenants = frame(
        {
            "endpoint": "/chat",
            "runtime": "serverless",
            "tenant": "acme",
            "requests": 1000,
            "throttled": 400,
        },
        {
            "endpoint": "/chat",
            "runtime": "serverless",
            "tenant": "globex",
            "requests": 9000,
            "throttled": 100,
        },
    )
    (rec,) = recommend_from_frames(frame(row), tenants=tenants)
    assert rec.kind == "rebalance_tenant"
    assert rec.tenant == "acme"
    # acme: 10 % of traffic, 80 % of throttles -> lift 8.
    assert rec.evidence["tenant_traffic_share"] == 0.1
    assert rec.evidence["tenant_throttle_share"] == 0.8
    assert rec.evidence["tenant_throttle_lift"] == 8.0


def test_spread_throttles_raise_the_concurrency_limit() -> None:
    row = workload(throttle_rate=0.05, throttled=500)
    tenants = frame(
        {
            "endpoint": "/chat",
            "runtime": "serverless",
            "tenant": "acme",
            "requests": 5000,
            "throttled": 260,
        },
        {
            "endpoint": "/chat",
            "runtime": "serverless",
            "tenant": "globex",
            "requests": 5000,
            "throttled": 240,
        },
    )
    (rec,) = recommend_from_frames(frame(row), tenants=tenants)
    assert rec.kind == "raise_concurrency_limit"
    assert rec.tenant is None
    assert rec.evidence["throttle_rate"] == 0.05


def test_rare_throttles_say_nothing() -> None:
    row = workload(throttle_rate=0.005, throttled=50)
    assert recommend_from_frames(frame(row)) == []


def version(
    model: str, prompt: str, cost: float, first: int, requests: int = 500
) -> dict[str, Any]:
    return {
        "endpoint": "/chat",
        "model": model,
        "prompt_version": prompt,
        "requests": requests,
        "cost_per_request_usd": cost,
        "first_seen": datetime(2026, 11, first),
        "window_s": 7 * 86_400.0,
    }


def test_cost_jump_after_a_prompt_version_change() -> None:
    versions = frame(version("gpt-4o", "v1", 0.0020, 1), version("gpt-4o", "v2", 0.0030, 9))
    recs = recommend_from_frames(frame(workload(requests_per_s=1.0)), versions=versions)
    (rec,) = recs
    assert rec.kind == "cost_jump"
    assert rec.evidence["change"] == pytest.approx(0.5)
    assert rec.evidence["before"] == "model gpt-4o / prompt v1"
    assert rec.evidence["after"] == "model gpt-4o / prompt v2"
    # $0.001 more per request x 1 req/s x 2,628,000 s; reverting changes the bill by minus it.
    assert rec.monthly_cost_change_usd == -2628.0


def test_a_sliver_of_fallback_traffic_is_not_a_version() -> None:
    # 40 requests that fell back to a cheap model (say, when the main call was throttled)
    # appear after the main version: comparing against them would invent a jump.
    versions = frame(
        version("gpt-4o", "v1", 0.0020, 1, requests=2000),
        version("gpt-4o", "v2", 0.0030, 9, requests=2000),
        version("embedding-small", "v2", 0.0001, 10, requests=40),
    )
    (rec,) = recommend_from_frames(frame(workload(requests_per_s=1.0)), versions=versions)
    assert rec.evidence["before"] == "model gpt-4o / prompt v1"
    assert rec.evidence["after"] == "model gpt-4o / prompt v2"


def test_small_changes_and_thin_versions_are_not_jumps() -> None:
    small = frame(version("m", "v1", 0.0020, 1), version("m", "v2", 0.0022, 9))
    assert recommend_from_frames(frame(workload()), versions=small) == []
    thin = frame(version("m", "v1", 0.0020, 1), version("m", "v2", 0.0040, 9, requests=5))
    assert recommend_from_frames(frame(workload()), versions=thin) == []
    cheaper = frame(version("m", "v1", 0.0040, 1), version("m", "v2", 0.0020, 9))
    assert recommend_from_frames(frame(workload()), versions=cheaper) == []


def test_thresholds_are_overridable() -> None:
    row = workload(throttle_rate=0.005, throttled=50)
    lenient = RecommendationThresholds(min_throttle_rate=0.001)
    recs = recommend_from_frames(frame(row), thresholds=lenient)
    assert kinds(recs) == ["raise_concurrency_limit"]


def test_recommendations_are_ordered_and_json_is_stable() -> None:
    rows = frame(
        workload(p95_ms=2100.0, warm_p95_ms=800.0, cold_start_rate=0.08),
        workload(endpoint="/new", requests=3),
    )
    decisions = decide_from_frames(rows, economics=frame(econ()))
    recs = decisions.recommendations
    assert kinds(recs) == ["insufficient_data", "move_to_containers"]
    document = recommendations_to_json(
        recs, endpoints=decisions.endpoints, generated_at="2026-11-28T00:00:00Z", store="s"
    )
    text = json.dumps(document)
    assert json.loads(text)["schema_version"] == 2
    first = document["recommendations"][1]
    assert set(first) == {
        "kind",
        "endpoint",
        "runtime",
        "tenant",
        "title",
        "rationale",
        "evidence",
        "confidence",
        "confidence_label",
        "monthly_cost_change_usd",
        "p95_gain_ms",
        "plan",
        "runner_up",
    }
    assert document["thresholds"]["min_requests"] == 50
    (endpoint,) = document["endpoints"]
    assert endpoint["chosen"] == "all_containers" and endpoint["runner_up"] == "stay"
    plans = {p["kind"]: p for p in endpoint["plans"]}
    assert plans["stay"]["monthly_cost_usd"] == 313.18
    assert plans["all_containers"]["monthly_cost_change_usd"] == -96.94
    assert plans["stay"]["meets_slo"] is False  # p95 2100 ms > 1000 ms


# --- on a real store: request_table + metrics + rules ------------------------------------


def synthetic_store(path: Path, scale: float = 0.1) -> Path:
    con = duckdb.connect(str(path))
    apply_migrations(con)
    insert_spans(con, synthetic_spans(datetime(2026, 11, 9), days=14, scale=scale))
    con.close()
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("store")
    deployments = folder / "deployments.toml"
    deployments.write_text(DEPLOYMENTS_TOML)
    return synthetic_store(folder / "store.duckdb"), deployments


def test_every_rule_fires_on_the_synthetic_scenario(
    store: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, deployments = store
    assert (
        main(["recommend", "--store", str(path), "--deployments", str(deployments), "--json"]) == 0
    )
    document = json.loads(capsys.readouterr().out)
    assert document["schema_version"] == 2
    found = {(r["kind"], r["endpoint"], r["tenant"]) for r in document["recommendations"]}
    assert ("insufficient_data", "/classify", None) in found
    assert ("add_warm_capacity", "/chat", None) in found
    assert ("move_to_serverless", "/embed", None) in found
    assert ("rebalance_tenant", "/chat", "acme") in found
    assert ("cost_jump", "/chat", None) in found
    by_kind = {r["kind"]: r for r in document["recommendations"]}
    warm = by_kind["add_warm_capacity"]
    assert warm["p95_gain_ms"] > 0
    assert warm["evidence"]["cold_start_rate"] > 0.05
    assert warm["evidence"]["p95_ms"] > warm["evidence"]["slo_ms"] == 3000
    embed = by_kind["move_to_serverless"]
    # Two always-on m7i.large instances: 2 x $0.1008 x 730 h.
    assert embed["evidence"]["container_monthly_usd"] == pytest.approx(147.168)
    assert embed["monthly_cost_change_usd"] < -140
    jump = by_kind["cost_jump"]
    assert jump["evidence"]["before"].endswith("prompt v7")
    assert jump["evidence"]["after"].endswith("prompt v8")
    assert jump["evidence"]["change"] > 0.2
    assert document["window"]["since"].startswith("2026-11-")


def test_recommend_prints_numbers_for_humans(
    store: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, deployments = store
    assert (
        main(
            [
                "recommend",
                "--store",
                str(path),
                "--deployments",
                str(deployments),
                "--endpoint",
                "/embed",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "[move_to_serverless] Move /embed on containers to serverless" in out
    assert "[plans] /embed: chosen all traffic on /embed on serverless" in out
    assert "evidence: " in out
    assert "/chat" not in out


def test_a_busy_long_waiting_function_moves_to_containers(tmp_path: Path) -> None:
    # 2,000 requests of ~16 s on a 3 GiB Lambda within two hours: 0.28 req/s, 4.4 in flight.
    rows = [
        span_record(
            start=datetime(2026, 11, 20, 8) + timedelta(seconds=3.6 * i),
            duration_ms=16_000.0,
            endpoint="/summarize",
            runtime="serverless",
            platform="aws_lambda",
            memory_mb=3008.0,
            tenant="acme",
            status_code="OK",
        )
        for i in range(2000)
    ]
    con = store_in_memory()
    insert_spans(con, rows)
    deployments_file = tmp_path / "deployments.toml"
    deployments_file.write_text(DEPLOYMENTS_TOML)
    prices = load_prices()
    deployments = load_deployments(deployments_file, prices=prices)
    requests = request_table(con, con.table("spans"), prices=prices, deployments=deployments)
    recs = recommend(requests, prices=prices, deployments=deployments)
    # 16 s handlers never meet the 3 s SLO: said once; cost still decides among the plans
    # that keep p95 where it is, and the concurrent container serves at the same p95.
    assert kinds(recs) == ["move_to_containers", "slo_out_of_reach"]
    rec = recs[0]
    # Serverless: 0.2778 req/s x 2,628,000 s x (2.9375 GiB x 16 s x $0.0000166667 + $0.0000002).
    expected = (
        (2000 / rec.evidence["window_s"])
        * 2_628_000
        * (3008 / 1024 * 16 * 0.0000166667 + 0.0000002)
    )
    assert rec.evidence["serverless_monthly_usd"] == pytest.approx(expected, rel=1e-3)
    # One Fargate task of 0.5 vCPU / 1 GB serving 50 at once: $0.024685/h x 730 h.
    assert rec.evidence["container_monthly_usd"] == pytest.approx(18.02, abs=0.01)
    assert rec.monthly_cost_change_usd == pytest.approx(18.02 - expected, abs=0.05)
    assert rec.confidence_label in {"low", "medium"}  # two hours of data is not 14 days
    con.close()


def test_recommend_command_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", "--store", str(tmp_path / "nope.duckdb")]) == 1
    assert "no store at" in capsys.readouterr().err


def test_impact_words_say_whether_a_change_saves_or_costs() -> None:
    def rec(kind: str, saving: float | None, gain: float | None = None) -> Recommendation:
        return Recommendation(
            kind=kind,
            endpoint="/e",
            runtime="serverless",
            tenant=None,
            title="t",
            rationale="r",
            evidence={},
            confidence=1.0,
            confidence_label="high",
            monthly_cost_change_usd=None if saving is None else -saving,
            p95_gain_ms=gain,
        )

    assert rec("move_to_containers", 77.75).impact() == ["saves ~$77.75/month (projection)"]
    assert rec("add_warm_capacity", -9.93, 789.2).impact() == [
        "costs ~$9.93/month (projection)",
        "p95 -789 ms",
    ]
    assert rec("cost_jump", 8.13).impact() == ["reverting saves ~$8.13/month (projection)"]
    assert rec("raise_concurrency_limit", None).impact() == []


def test_small_shares_are_not_printed_as_zero() -> None:
    # A fleet at 0.4 % utilization is not "0%".
    quiet = econ(measured_utilization=0.004, crossover_utilization=0.016)
    (rec,) = recommend_from_frames(frame(workload()), economics=frame(quiet))
    assert "would run at 0.4% utilization, crossover 1.6%" in rec.rationale
    assert "at 0% utilization" not in rec.rationale


def test_the_invariant_catches_a_contradictory_pair() -> None:
    # What the demo used to say about /v1/ingest: "move the pod to serverless (save $9)"
    # next to "keep the Lambda warm (costs $11)" - a loss while claiming a saving.
    from infermeter.analytics.economics import Decisions
    from infermeter.analytics.testing import check_decisions

    def rec(kind: str, runtime: str, change: float) -> Recommendation:
        return Recommendation(
            kind=kind,
            endpoint="/v1/ingest",
            runtime=runtime,
            tenant=None,
            title=kind,
            rationale="",
            evidence={},
            confidence=0.5,
            confidence_label="medium",
            monthly_cost_change_usd=change,
        )

    pair = [
        rec("move_to_serverless", "container", -9.18),
        rec("add_warm_capacity", "serverless", 10.95),
    ]
    with pytest.raises(AssertionError, match="runtime decisions"):
        check_decisions(Decisions(pair, []))
    negative = rec("move_to_containers", "serverless", -3.0)
    negative.evidence["container_monthly_usd"] = -1.0
    with pytest.raises(AssertionError, match="negative container_monthly_usd"):
        check_decisions(Decisions([negative], []))


def test_recommend_takes_the_since_durations_metrics_takes(
    store: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, deployments = store
    argv = ["recommend", "--store", str(path), "--deployments", str(deployments), "--json"]
    week = timedelta(days=7)
    before = datetime.now(UTC).replace(tzinfo=None) - week  # the store is naive UTC
    assert main([*argv, "--since", "7d"]) == 0
    after = datetime.now(UTC).replace(tzinfo=None) - week
    since = datetime.fromisoformat(json.loads(capsys.readouterr().out)["window"]["since"])
    assert before <= since <= after
