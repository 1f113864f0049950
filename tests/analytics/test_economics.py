"""Runtime economics: the worked examples of COMPUTE.md reproduced to the cent."""

from __future__ import annotations

import math

import pytest
from infermeter.analytics._economics_math import (
    SECONDS_PER_MONTH,
    cold_start_probability,
    container_monthly_usd,
    crossover_utilization,
    fleet_size,
    provisioned_concurrency_breakeven,
    serverless_monthly_usd,
    warm_capacity_monthly_usd,
)

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
        requests_per_s=requests_per_s, duration_s=0.2,
        price_per_request_second=CASE_A_GB * LAMBDA_X86_GBS, price_per_request=LAMBDA_REQ,
    )


def case_a_fleet(requests_per_s: float) -> tuple[int, float]:
    n = fleet_size(requests_per_s=requests_per_s, duration_s=0.2, concurrency=1,
                   target_utilization=0.7)
    return n, container_monthly_usd(instances=n, price_per_hour=CASE_A_FARGATE_H)


def test_month_is_730_hours() -> None:
    assert SECONDS_PER_MONTH == 2_628_000


def test_case_a_fargate_task_costs_36_04_per_month() -> None:
    assert round(container_monthly_usd(instances=1, price_per_hour=CASE_A_FARGATE_H), 2) == 36.04


def test_case_a_crossover_is_46_percent_on_fargate_and_47_on_m7i() -> None:
    fargate = crossover_utilization(
        price_per_hour=CASE_A_FARGATE_H, concurrency=1,
        price_per_request_second=CASE_A_GB * LAMBDA_X86_GBS, price_per_request=LAMBDA_REQ,
        duration_s=0.2,
    )
    m7i = crossover_utilization(
        price_per_hour=M7I_LARGE_H, concurrency=2,
        price_per_request_second=CASE_A_GB * LAMBDA_X86_GBS, price_per_request=LAMBDA_REQ,
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
        requests_per_s=1 / SECONDS_PER_MONTH, duration_s=wait_s,
        price_per_request_second=memory_gb * LAMBDA_X86_GBS, price_per_request=LAMBDA_REQ,
    )
    assert round(per_request, 7) == 0.0000252
    task = container_monthly_usd(instances=1, price_per_hour=fargate_half)
    assert round(task, 2) == 18.02
    breakeven_requests = task / per_request
    assert round(breakeven_requests, -3) == 715_000
    assert round(breakeven_requests / SECONDS_PER_MONTH, 2) == 0.27
    u_star = crossover_utilization(
        price_per_hour=fargate_half, concurrency=50,
        price_per_request_second=memory_gb * LAMBDA_X86_GBS, price_per_request=LAMBDA_REQ,
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
        price_per_gb_second=LAMBDA_X86_GBS, provisioned_price_per_gb_second=LAMBDA_PC_GBS,
        provisioned_duration_price_per_gb_second=LAMBDA_PC_DURATION_GBS,
    )
    assert round(breakeven, 2) == 0.60
    assert provisioned_concurrency_breakeven(
        price_per_gb_second=1.0, provisioned_price_per_gb_second=1.0,
        provisioned_duration_price_per_gb_second=1.0,
    ) == math.inf


def test_cold_start_probability_matches_compute_md() -> None:
    def cold(requests_per_s: float) -> float:
        return cold_start_probability(requests_per_s=requests_per_s, keep_alive_s=600.0)

    assert round(cold(1 / 3600), 2) == 0.85
    assert round(cold(1 / 600), 2) == 0.37
    assert cold(1 / 60) < 0.0001


def test_cold_starts_add_init_duration_at_the_duration_rate() -> None:
    warm_only = case_a_lambda(1)
    with_init = serverless_monthly_usd(
        requests_per_s=1, duration_s=0.2, price_per_request_second=CASE_A_GB * LAMBDA_X86_GBS,
        price_per_request=LAMBDA_REQ, cold_starts_per_s=0.01, init_duration_s=0.5,
    )
    expected_init = 0.01 * SECONDS_PER_MONTH * 0.5 * CASE_A_GB * LAMBDA_X86_GBS
    assert with_init - warm_only == pytest.approx(expected_init)


def test_fleet_size_respects_min_instances_and_rejects_nonsense() -> None:
    assert fleet_size(requests_per_s=0, duration_s=1, concurrency=1, target_utilization=0.7,
                      min_instances=2) == 2
    with pytest.raises(ValueError, match="concurrency"):
        fleet_size(requests_per_s=1, duration_s=1, concurrency=0, target_utilization=0.7)
