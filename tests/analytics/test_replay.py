"""The arrival replay against hand-counted cases and an exact discrete-event simulation."""

from __future__ import annotations

import heapq
import random

import numpy as np
import pytest
from infermeter.analytics.economics._replay import (
    Arrivals,
    replay_fleet,
    replay_serverless,
    smallest_size,
)


def arrivals(starts: list[float], durations_ms: list[float], init_ms: float = 1500.0) -> Arrivals:
    start = np.array(starts)
    duration = np.array(durations_ms)
    return Arrivals(
        start_s=start,
        end_s=start + duration / 1000.0,
        duration_ms=duration,
        init_ms=np.full(start.size, np.nan),
        init_estimate_ms=init_ms,
    )


def simulate(a: Arrivals, *, warm_units: int, keep_alive_s: float) -> tuple[int, float]:
    """Exact event-level simulation of the same model: each request takes an idle
    environment at its start (provisioned ones first, then the most recently freed on-demand
    one still within its keep-alive), else starts a new one cold; an environment frees at
    its request's end. Returns (cold starts, p95 of the projected latencies)."""
    busy: list[tuple[float, int, bool]] = []  # (free at, id, provisioned)
    idle_warm = warm_units
    idle: list[tuple[float, int]] = []  # on-demand: (freed at, id)
    cold = np.zeros(a.count, dtype=bool)
    next_id = 0
    for i in range(a.count):
        t = a.start_s[i]
        while busy and busy[0][0] <= t:
            freed, env, provisioned = heapq.heappop(busy)
            if provisioned:
                idle_warm += 1
            else:
                idle.append((freed, env))
        idle = [(f, e) for f, e in idle if t - f <= keep_alive_s]
        if idle_warm:
            idle_warm -= 1
            heapq.heappush(busy, (a.end_s[i], -1, True))
            continue
        if idle:
            idle.sort()
            _, env = idle.pop()  # most recently freed
        else:
            cold[i] = True
            env, next_id = next_id, next_id + 1
        heapq.heappush(busy, (a.end_s[i], env, False))
    latency = a.duration_ms + np.where(cold, a.init_estimate_ms, 0.0)
    return int(cold.sum()), float(np.quantile(latency, 0.95, method="linear"))


def bursty(seed: int, bursts: int = 40, size: int = 30, gap_s: float = 900.0) -> Arrivals:
    """Dozens of requests within a second every ``gap_s`` seconds (a webhook fan-out), plus a
    trickle in between."""
    rng = random.Random(seed)
    starts: list[float] = []
    for b in range(bursts):
        at = b * gap_s
        starts += [at + rng.random() * 0.5 for _ in range(rng.randint(size // 2, size))]
        starts += [at + rng.uniform(1, gap_s) for _ in range(3)]
    durations = [rng.uniform(150, 400) for _ in starts]
    return arrivals(starts, durations)


def test_a_burst_needs_one_environment_per_request_in_flight() -> None:
    # Bursts of 30 simultaneous 300 ms requests every 15 min, keep-alive 10 min: every
    # environment has expired by the next burst, so k warm units leave 30 - k cold per burst.
    starts = [b * 900.0 + i * 0.001 for b in range(10) for i in range(30)]
    a = arrivals(starts, [300.0] * len(starts))
    for k in (0, 1, 10, 29, 30, 31):
        p = replay_serverless(a, warm_units=k, keep_alive_s=600.0)
        assert p.cold_starts == 10 * max(0, 30 - k)
    # p95 over 300 requests sits at sorted index 0.95 x 299 = 284.05: with one warm unit 290
    # of 300 are cold (300 + 1500 ms), with 15 still 150; only 30 removes every cold start.
    assert replay_serverless(a, warm_units=1, keep_alive_s=600.0).p95_ms == pytest.approx(1800)
    assert replay_serverless(a, warm_units=15, keep_alive_s=600.0).p95_ms == pytest.approx(1800)
    assert replay_serverless(a, warm_units=30, keep_alive_s=600.0).p95_ms == pytest.approx(300)


def test_environments_within_the_keep_alive_are_reused() -> None:
    # Bursts every 5 min (< 10-min keep-alive): only the first burst is cold.
    starts = [b * 300.0 + i * 0.001 for b in range(10) for i in range(30)]
    a = arrivals(starts, [300.0] * len(starts))
    assert replay_serverless(a, warm_units=0, keep_alive_s=600.0).cold_starts == 30


def test_the_smallest_size_meeting_the_slo() -> None:
    starts = [b * 900.0 + i * 0.001 for b in range(10) for i in range(30)]
    a = arrivals(starts, [300.0] * len(starts))

    def project(units: int):  # type: ignore[no-untyped-def]
        return replay_serverless(a, warm_units=units, keep_alive_s=600.0)

    # p95 index 284.05 is warm once at most 15 of 300 are cold: 30 - k <= 1.5 per burst,
    # i.e. k >= 29 (10 cold, sorted positions 290..299).
    found, best = smallest_size(project, low=1, high=30, slo_ms=1000.0)
    assert found is not None and found.size == 29
    assert best.size == 30
    # An SLO under the warm latency cannot be met by any size.
    none, _ = smallest_size(project, low=1, high=30, slo_ms=200.0)
    assert none is None


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("units", [0, 5, 15])
def test_the_replay_agrees_with_a_discrete_event_simulation(seed: int, units: int) -> None:
    a = bursty(seed)
    projected = replay_serverless(a, warm_units=units, keep_alive_s=600.0)
    cold, p95 = simulate(a, warm_units=units, keep_alive_s=600.0)
    assert projected.cold_starts == pytest.approx(cold, rel=0.05, abs=3)
    assert projected.p95_ms == pytest.approx(p95, rel=0.05)


def test_poisson_traffic_agrees_with_the_simulation_and_compute_md() -> None:
    # One request every 10 min on average, keep-alive 10 min: P(cold) ~ e^-1 = 37 %.
    rng = random.Random(7)
    t, starts = 0.0, []
    for _ in range(3000):
        t += rng.expovariate(1 / 600.0)
        starts.append(t)
    a = arrivals(starts, [200.0] * len(starts))
    projected = replay_serverless(a, warm_units=0, keep_alive_s=600.0)
    cold, _ = simulate(a, warm_units=0, keep_alive_s=600.0)
    assert projected.cold_starts == pytest.approx(cold, rel=0.02)
    assert projected.cold_start_share == pytest.approx(np.exp(-1.0), abs=0.03)


def test_a_fleet_queues_what_its_slots_cannot_hold() -> None:
    # 4 simultaneous 1 s requests on 2 slots: two wait 1 s. Latencies 1000, 1000, 2000, 2000.
    a = arrivals([0.0, 0.0, 0.0, 0.0], [1000.0] * 4)
    p = replay_fleet(a, slots=2)
    assert p.cold_starts == 0
    assert p.p95_ms == pytest.approx(2000.0)
    assert replay_fleet(a, slots=4).p95_ms == pytest.approx(1000.0)


def test_a_lazy_first_call_is_part_of_the_cold_start() -> None:
    # Two requests 15 min apart, the first measured cold: its handler took 300 ms + a 1700 ms
    # lazy load (mean cold 2000 - mean warm 300 = 1700 ms penalty), INIT 500 ms outside.
    start = np.array([0.0, 900.0, 1800.0])
    duration = np.array([2000.0, 300.0, 300.0])
    a = Arrivals(
        start_s=start,
        end_s=start + duration / 1000.0,
        duration_ms=duration,
        init_ms=np.array([500.0, np.nan, np.nan]),
        init_estimate_ms=500.0,
        cold=np.array([1.0, 0.0, 0.0]),
        penalty_ms=np.full(3, 1700.0),
    )
    # One warm unit: nobody is cold, the first call sheds its lazy load too.
    assert replay_serverless(a, warm_units=1, keep_alive_s=600.0).p95_ms == pytest.approx(300.0)
    # No warm unit, 10-min keep-alive: all three are cold, each 300 + 1700 + 500 ms.
    none = replay_serverless(a, warm_units=0, keep_alive_s=600.0)
    assert none.cold_starts == 3
    assert none.p95_ms == pytest.approx(2500.0)
    assert replay_fleet(a, slots=1).p95_ms == pytest.approx(300.0)


def test_measured_cold_starts_the_keep_alive_cannot_explain_stay_until_warm_capacity_serves() -> (
    None
):
    # One 500 ms request a minute (never two at once), every 10th measured cold: the keep-alive
    # would keep one environment warm, yet the platform recycled it. Staying on it, those
    # cold starts are facts; one provisioned unit serves every request and removes them.
    start = np.arange(100) * 60.0
    duration = np.full(100, 500.0)
    measured = (np.arange(100) % 10 == 0).astype(float)
    a = Arrivals(
        start_s=start,
        end_s=start + 0.5,
        duration_ms=duration,
        init_ms=np.where(measured > 0, 900.0, np.nan),
        init_estimate_ms=900.0,
        cold=measured,
    )
    kept = replay_serverless(a, warm_units=0, keep_alive_s=600.0, keep_measured_cold=True)
    assert kept.cold_starts == 10
    assert replay_serverless(a, warm_units=0, keep_alive_s=600.0).cold_starts == 1
    warm = replay_serverless(a, warm_units=1, keep_alive_s=600.0, keep_measured_cold=True)
    assert warm.cold_starts == 0 and warm.p95_ms == pytest.approx(500.0)
