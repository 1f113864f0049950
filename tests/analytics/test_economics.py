"""Runtime economics: the worked examples of COMPUTE.md reproduced to the cent."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from infermeter.analytics.economics._math import (
    SECONDS_PER_MONTH,
    cold_start_probability,
    container_monthly_usd,
    crossover_utilization,
    fleet_size,
    provisioned_concurrency_breakeven,
    serverless_monthly_usd,
    warm_capacity_monthly_usd,
)
from infermeter.analytics.economics._runtime import runtime_economics

# COMPUTE.md list prices (2026-11-28).
LAMBDA_X86_GBS = 0.0000166667
LAMBDA_REQ = 0.20 / 1_000_000
LAMBDA_PC_GBS = 0.0000041667
LAMBDA_PC_DURATION_GBS = 0.0000097222
FARGATE_VCPU_H = 0.04048
FARGATE_GB_H = 0.004445
M7I_LARGE_H = 0.1008

# Case A: Lambda 1,769 MB (≈1 vCPU), D = 0.2 s vs Fargate 1 vCPU / 2 GB, c = 1.
CASE_A_GB = 1769 / 1024
CASE_A_FARGATE_H = 1 * FARGATE_VCPU_H + 2 * FARGATE_GB_H  # $0.04937/h


def case_a_lambda(requests_per_s: float) -> float:
    return serverless_monthly_usd(
        requests_per_s=requests_per_s,
        duration_s=0.2,
        price_per_request_second=CASE_A_GB * LAMBDA_X86_GBS,
        price_per_request=LAMBDA_REQ,
    )


def case_a_fleet(requests_per_s: float) -> tuple[int, float]:
    n = fleet_size(
        requests_per_s=requests_per_s, duration_s=0.2, concurrency=1, target_utilization=0.7
    )
    return n, container_monthly_usd(instances=n, price_per_hour=CASE_A_FARGATE_H)


def test_month_is_730_hours() -> None:
    assert SECONDS_PER_MONTH == 2_628_000


def test_case_a_fargate_task_costs_36_04_per_month() -> None:
    assert round(container_monthly_usd(instances=1, price_per_hour=CASE_A_FARGATE_H), 2) == 36.04


def test_case_a_crossover_is_46_percent_on_fargate_and_47_on_m7i() -> None:
    fargate = crossover_utilization(
        price_per_hour=CASE_A_FARGATE_H,
        concurrency=1,
        price_per_request_second=CASE_A_GB * LAMBDA_X86_GBS,
        price_per_request=LAMBDA_REQ,
        duration_s=0.2,
    )
    m7i = crossover_utilization(
        price_per_hour=M7I_LARGE_H,
        concurrency=2,
        price_per_request_second=CASE_A_GB * LAMBDA_X86_GBS,
        price_per_request=LAMBDA_REQ,
        duration_s=0.2,
    )
    assert round(fargate, 2) == 0.46
    assert round(m7i, 2) == 0.47


def test_case_a_one_request_per_second_stays_on_lambda() -> None:
    assert round(case_a_lambda(1), 2) == 15.66
    n, fleet = case_a_fleet(1)
    assert n == 1
    assert fleet > case_a_lambda(1)


def test_case_a_five_requests_per_second_is_about_even() -> None:
    assert round(case_a_lambda(5), 2) == 78.29
    n, fleet = case_a_fleet(5)
    assert n == 2
    assert round(fleet, 2) == 72.08


def test_case_a_twenty_requests_per_second_moves_to_containers() -> None:
    assert round(case_a_lambda(20), 2) == 313.18
    n, fleet = case_a_fleet(20)
    assert n == 6
    assert round(fleet, 2) == 216.24


def test_case_b_io_bound_orchestration_crosses_over_at_1_6_percent() -> None:
    memory_gb, wait_s = 0.5, 3.0
    fargate_half = 0.5 * FARGATE_VCPU_H + 1 * FARGATE_GB_H
    per_request = serverless_monthly_usd(
        requests_per_s=1 / SECONDS_PER_MONTH,
        duration_s=wait_s,
        price_per_request_second=memory_gb * LAMBDA_X86_GBS,
        price_per_request=LAMBDA_REQ,
    )
    assert round(per_request, 7) == 0.0000252
    task = container_monthly_usd(instances=1, price_per_hour=fargate_half)
    assert round(task, 2) == 18.02
    breakeven_requests = task / per_request
    assert round(breakeven_requests, -3) == 715_000
    assert round(breakeven_requests / SECONDS_PER_MONTH, 2) == 0.27
    u_star = crossover_utilization(
        price_per_hour=fargate_half,
        concurrency=50,
        price_per_request_second=memory_gb * LAMBDA_X86_GBS,
        price_per_request=LAMBDA_REQ,
        duration_s=wait_s,
    )
    assert round(u_star, 3) == 0.016


def test_case_c_keeping_warm() -> None:
    def monthly(per_second: float) -> float:
        return round(warm_capacity_monthly_usd(units=1, price_per_unit_second=per_second), 2)

    assert monthly(LAMBDA_PC_GBS) == 10.95  # 1 PC unit at 1 GB
    assert monthly(1 * 0.0000025 + 1 * 0.0000025) == 13.14  # Cloud Run 1 vCPU/1 GiB idle
    assert monthly(1 * 0.000003 + 2 * 0.000003) == 23.65  # ACA 1 vCPU/2 GiB idle replica


def test_provisioned_concurrency_pays_off_above_60_percent() -> None:
    breakeven = provisioned_concurrency_breakeven(
        price_per_gb_second=LAMBDA_X86_GBS,
        provisioned_price_per_gb_second=LAMBDA_PC_GBS,
        provisioned_duration_price_per_gb_second=LAMBDA_PC_DURATION_GBS,
    )
    assert round(breakeven, 2) == 0.60
    assert (
        provisioned_concurrency_breakeven(
            price_per_gb_second=1.0,
            provisioned_price_per_gb_second=1.0,
            provisioned_duration_price_per_gb_second=1.0,
        )
        == math.inf
    )


def test_cold_start_probability_matches_compute_md() -> None:
    def cold(requests_per_s: float) -> float:
        return cold_start_probability(requests_per_s=requests_per_s, keep_alive_s=600.0)

    assert round(cold(1 / 3600), 2) == 0.85
    assert round(cold(1 / 600), 2) == 0.37
    assert cold(1 / 60) < 0.0001


def test_cold_starts_add_init_duration_at_the_duration_rate() -> None:
    warm_only = case_a_lambda(1)
    with_init = serverless_monthly_usd(
        requests_per_s=1,
        duration_s=0.2,
        price_per_request_second=CASE_A_GB * LAMBDA_X86_GBS,
        price_per_request=LAMBDA_REQ,
        cold_starts_per_s=0.01,
        init_duration_s=0.5,
    )
    expected_init = 0.01 * SECONDS_PER_MONTH * 0.5 * CASE_A_GB * LAMBDA_X86_GBS
    assert with_init - warm_only == pytest.approx(expected_init)


def test_fleet_size_respects_min_instances_and_rejects_nonsense() -> None:
    assert (
        fleet_size(
            requests_per_s=0, duration_s=1, concurrency=1, target_utilization=0.7, min_instances=2
        )
        == 2
    )
    with pytest.raises(ValueError, match="concurrency"):
        fleet_size(requests_per_s=1, duration_s=1, concurrency=0, target_utilization=0.7)


# --- runtime_economics over a metrics frame ------------------------------------------------

COMPUTE = {
    "lambda_x86_gb_s": LAMBDA_X86_GBS,
    "lambda_arm_gb_s": 0.0000133334,
    "lambda_request": LAMBDA_REQ,
    "lambda_pc_x86_gb_s": LAMBDA_PC_GBS,
    "lambda_pc_duration_x86_gb_s": LAMBDA_PC_DURATION_GBS,
    "lambda_pc_arm_gb_s": 0.0000033334,
    "lambda_pc_duration_arm_gb_s": 0.0000077778,
    "cloud_run_request_vcpu_s": 0.000024,
    "cloud_run_request_gib_s": 0.0000025,
    "cloud_run_request": 0.40 / 1_000_000,
    "cloud_run_idle_vcpu_s": 0.0000025,
    "cloud_run_idle_gib_s": 0.0000025,
    "container_apps_active_vcpu_s": 0.000024,
    "container_apps_idle_vcpu_s": 0.000003,
    "container_apps_gib_s": 0.000003,
    "container_apps_request": 0.40 / 1_000_000,
}


@dataclass(frozen=True)
class FakeDeployment:
    slo_ms: float = 1000.0
    memory_mb: float = 1769.0
    vcpu: float = 1.0
    concurrency: int = 1
    instance_price_per_hour: float = CASE_A_FARGATE_H
    min_instances: int = 1
    platform: str = "aws_lambda"
    architecture: str = "x86_64"
    target_utilization: float = 0.7


@dataclass
class FakeDeployments:
    """One deployment per endpoint, describing both sides (as a user file could)."""

    by_endpoint: dict[str, FakeDeployment] = field(default_factory=dict)
    asked: list[tuple[str | None, str | None]] = field(default_factory=list)

    def for_workload(self, endpoint: str | None, runtime: str | None) -> FakeDeployment:
        self.asked.append((endpoint, runtime))
        return self.by_endpoint.get(endpoint or "", FakeDeployment())


@dataclass(frozen=True)
class FakePrices:
    compute: dict[str, float] = field(default_factory=lambda: dict(COMPUTE))


TWO_WEEKS_S = 14 * 86_400.0


def workload(**columns: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "endpoint": "/score",
        "runtime": "serverless",
        "requests": 1000,
        "requests_per_s": 1.0,
        "mean_duration_ms": 200.0,
        "cold_starts": 0,
        "window_s": TWO_WEEKS_S,
    }
    row.update(columns)
    return row


def economics(*rows: dict[str, Any], deployments: FakeDeployments | None = None) -> Any:
    return runtime_economics(
        pl.DataFrame(list(rows)), prices=FakePrices(), deployments=deployments or FakeDeployments()
    ).rows_by_key("endpoint", named=True, unique=True)


def test_runtime_economics_reproduces_case_a_at_20_requests_per_second() -> None:
    row = economics(workload(requests_per_s=20.0))["/score"]
    assert round(row["serverless_monthly_usd"], 2) == 313.18
    assert row["container_instances"] == 6
    assert round(row["container_monthly_usd"], 2) == 216.24
    assert round(row["crossover_utilization"], 2) == 0.46
    # lambda x D = 4 in flight over 6 single-request tasks.
    assert row["measured_utilization"] == pytest.approx(4 / 6)
    assert row["cheaper_runtime"] == "container"
    assert round(row["monthly_saving_usd"], 2) == round(313.18 - 216.24, 2)
    assert row["current_monthly_usd"] == row["serverless_monthly_usd"]


def test_runtime_economics_keeps_one_request_per_second_on_serverless() -> None:
    row = economics(workload(requests_per_s=1.0))["/score"]
    assert round(row["serverless_monthly_usd"], 2) == 15.66
    assert row["cheaper_runtime"] == "serverless"
    assert row["monthly_saving_usd"] == 0.0


def test_runtime_economics_case_b_io_bound_prefers_a_concurrent_container() -> None:
    fargate_half = 0.5 * FARGATE_VCPU_H + 1 * FARGATE_GB_H
    deployments = FakeDeployments(
        {
            "/chat": FakeDeployment(
                memory_mb=512, vcpu=0.5, concurrency=50, instance_price_per_hour=fargate_half
            )
        }
    )
    row = economics(
        workload(endpoint="/chat", requests_per_s=0.5, mean_duration_ms=3000.0),
        deployments=deployments,
    )["/chat"]
    # 0.5 req/s x 2,628,000 s x $0.0000252 = $33.11 vs one task $18.02.
    assert round(row["serverless_monthly_usd"], 2) == 33.11
    assert round(row["container_monthly_usd"], 2) == 18.02
    assert round(row["crossover_utilization"], 3) == 0.016
    assert row["cheaper_runtime"] == "container"


def test_runtime_economics_adds_billed_init_for_measured_cold_starts() -> None:
    # 1,000 cold starts over two weeks, 500 ms INIT each, at 1769 MB.
    row = economics(workload(cold_starts=1000, mean_init_duration_ms=500.0))["/score"]
    cold_per_s = 1000 / TWO_WEEKS_S
    expected = cold_per_s * SECONDS_PER_MONTH * 0.5 * CASE_A_GB * LAMBDA_X86_GBS
    assert row["serverless_init_monthly_usd"] == pytest.approx(expected)
    assert row["serverless_monthly_usd"] == pytest.approx(15.659 + expected, abs=0.001)


def test_init_cost_is_an_estimate_floored_at_zero_without_measured_init() -> None:
    # Cold starts without infermeter.init_duration whose calls happened to be shorter than
    # the warm ones: the p95 penalty is negative, INIT cannot be a refund.
    row = economics(workload(cold_starts=1000, cold_start_penalty_ms=-120.0))["/score"]
    assert row["init_duration_s"] == 0.0
    assert row["serverless_init_monthly_usd"] == 0.0
    assert row["serverless_monthly_usd"] == pytest.approx(15.659, abs=0.001)
    assert row["init_duration_source"].startswith("estimate")
    assert "INIT cost is an estimate" in row["note"]
    # A positive penalty is used, and still called an estimate.
    row = economics(workload(cold_starts=1000, cold_start_penalty_ms=400.0))["/score"]
    cold_per_s = 1000 / TWO_WEEKS_S
    expected = cold_per_s * SECONDS_PER_MONTH * 0.4 * CASE_A_GB * LAMBDA_X86_GBS
    assert row["serverless_init_monthly_usd"] == pytest.approx(expected)
    assert row["init_duration_source"].startswith("estimate")
    measured = economics(workload(cold_starts=1000, mean_init_duration_ms=500.0))["/score"]
    assert measured["init_duration_source"] == "measured"


def test_warm_capacity_case_c_one_provisioned_unit_at_1_gb() -> None:
    deployments = FakeDeployments({"/score": FakeDeployment(memory_mb=1024)})
    row = economics(workload(requests_per_s=1.0), deployments=deployments)["/score"]
    # lambda x D = 0.2 in flight -> 1 unit; 1 GB x $0.0000041667 x 2,628,000 s.
    assert row["warm_capacity_kind"] == "provisioned_concurrency"
    assert row["warm_capacity_units"] == 1
    assert round(row["warm_capacity_monthly_usd"], 2) == 10.95
    assert row["warm_capacity_utilization"] == pytest.approx(0.2)
    assert round(row["warm_capacity_breakeven_utilization"], 2) == 0.60
    # 0.2 of the unit's GB-s pay $0.0000097222 instead of $0.0000166667.
    offset = 0.2 * SECONDS_PER_MONTH * (LAMBDA_X86_GBS - LAMBDA_PC_DURATION_GBS)
    assert row["warm_capacity_net_monthly_usd"] == pytest.approx(10.95 - offset, abs=0.01)


def test_cloud_run_and_container_apps_price_warm_instances_at_idle_rates() -> None:
    deployments = FakeDeployments(
        {
            "/run": FakeDeployment(platform="gcp_cloud_run", memory_mb=1024, concurrency=80),
            "/aca": FakeDeployment(platform="azure_container_apps", memory_mb=2048, concurrency=10),
        }
    )
    rows = economics(
        workload(endpoint="/run", runtime="serverless_container"),
        workload(endpoint="/aca", runtime="serverless_container"),
        deployments=deployments,
    )
    assert rows["/run"]["warm_capacity_kind"] == "min_instances"
    assert round(rows["/run"]["warm_capacity_monthly_usd"], 2) == 13.14
    assert round(rows["/aca"]["warm_capacity_monthly_usd"], 2) == 23.65
    # Cloud Run request-based: (1 vCPU x 0.000024 + 1 GiB x 0.0000025) shared by 80 requests.
    assert rows["/run"]["price_per_request_second"] == pytest.approx(0.0000265 / 80)


def test_a_container_workload_projects_its_serverless_cold_starts() -> None:
    row = economics(workload(runtime="container", requests_per_s=1 / 600, utilization=0.05))
    result = row["/score"]
    # one arrival per 10 min with a 10 min keep-alive: 37 % of them would be cold.
    assert result["cold_starts_per_s"] == pytest.approx((1 / 600) * math.exp(-1))
    assert result["measured_utilization"] == 0.05
    assert result["current_monthly_usd"] == result["container_monthly_usd"]
    assert "projected" in result["note"]


def test_no_load_gives_nulls_and_a_note_not_a_verdict() -> None:
    row = economics(workload(requests=0, requests_per_s=0.0, mean_duration_ms=None))["/score"]
    assert row["serverless_monthly_usd"] is None
    assert row["cheaper_runtime"] is None
    assert "no measured load" in row["note"]


def test_unknown_runtime_has_no_saving() -> None:
    row = economics(workload(runtime="unknown", requests_per_s=20.0))["/score"]
    assert row["cheaper_runtime"] == "container"
    assert row["monthly_saving_usd"] is None


def test_economics_columns_are_the_contract() -> None:
    frame = runtime_economics(
        pl.DataFrame([workload()]), prices=FakePrices(), deployments=FakeDeployments()
    )
    contract = [
        "endpoint",
        "runtime",
        "requests_per_s",
        "mean_duration_s",
        "memory_gb",
        "serverless_monthly_usd",
        "container_monthly_usd",
        "container_instances",
        "crossover_utilization",
        "measured_utilization",
        "warm_capacity_units",
        "warm_capacity_monthly_usd",
        "cheaper_runtime",
        "monthly_saving_usd",
    ]
    assert set(contract) <= set(frame.columns)


def test_each_side_is_priced_with_its_own_deployment() -> None:
    deployments = FakeDeployments()
    runtime_economics(
        pl.DataFrame(
            [
                workload(endpoint="/a", runtime="serverless_container"),
                workload(endpoint="/b", runtime="container"),
            ]
        ),
        prices=FakePrices(),
        deployments=deployments,
    )
    assert deployments.asked == [
        ("/a", "serverless_container"),
        ("/a", "container"),
        ("/b", "serverless"),
        ("/b", "container"),
    ]


def test_bundled_prices_and_a_deployments_file_reproduce_case_a(tmp_path: Path) -> None:
    """The real PriceBook and Deployments (not fakes) give COMPUTE.md's case A."""
    from infermeter.analytics import load_deployments, load_prices

    deployments_file = tmp_path / "deployments.toml"
    deployments_file.write_text(
        '[[workloads]]\nendpoint = "/score"\nruntime = "serverless"\nmemory_mb = 1769\n\n'
        '[[workloads]]\nendpoint = "/score"\nruntime = "container"\nplatform = "aws_fargate"\n'
        "vcpu = 1\nmemory_mb = 2048\nconcurrency = 1\nmin_instances = 1\n"
        "target_utilization = 0.7\n"
    )
    prices = load_prices()
    deployments = load_deployments(deployments_file, prices=prices)
    frame = runtime_economics(
        pl.DataFrame([workload(requests_per_s=20.0)]), prices=prices, deployments=deployments
    )
    row = frame.row(0, named=True)
    assert round(row["serverless_monthly_usd"], 2) == 313.18
    assert row["container_instances"] == 6
    assert round(row["container_monthly_usd"], 2) == 216.24
    assert round(row["crossover_utilization"], 2) == 0.46
    assert row["warm_capacity_kind"] == "provisioned_concurrency"
