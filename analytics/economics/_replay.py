"""Arrival replay: what the measured arrivals would feel with more warm capacity, or elsewhere.

A mean-concurrency rule ("one warm unit per request in flight on average") cannot size warm
capacity for bursty traffic: a burst of 30 simultaneous requests needs 30 environments,
and every one not kept warm starts cold. So capacity is sized by replaying the measured
arrivals - each request's start, end and handler duration - against the proposed capacity.

Serverless (Lambda, Cloud Run, Container Apps), per second of the measured window:

- the concurrency each request meets is the number of requests in flight at its start
  (the measured start/end times; an end at the same instant as a start frees its
  environment first); it needs ``ceil(concurrency / c)`` environments (``c`` requests per
  environment: 1 on Lambda);
- ``warm_units`` environments are always warm (provisioned concurrency / min instances) and
  serve first; on-demand environments stay warm for the platform's keep-alive after the
  last second they were needed and are reused most-recently-used first;
- a request that needs more environments than are warm at that moment starts one: it is
  cold, and its latency becomes its warm handler duration plus INIT (its own measured INIT
  when it was cold, else the workload's mean INIT - an estimate) plus the handler's own
  cold penalty (lazy loading on the first call: the workload's mean cold minus mean warm
  handler duration, never negative). A request measured cold but projected warm sheds that
  penalty.

Idle time is counted from the last *second* an environment was needed, not from the end of
its last request: for requests far shorter than the keep-alive (seconds against ten minutes)
this moves an expiry by at most one request's duration; the tests check the projections
against an exact discrete-event simulation of the same arrivals. Extra INIT time does not
feed back into concurrency (a cold request's environment is busy a little longer).

An always-on fleet (containers): ``slots`` = instances x per-instance concurrency serve the
arrivals first come first served; a request that finds every slot busy waits for the first
to free (latency = wait + handler duration). Nothing starts cold.

Projected p95 is the linear-interpolation quantile (DuckDB ``quantile_cont``) of the
projected latencies, so it compares with the measured p95.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "Arrivals",
    "Projection",
    "replay_fleet",
    "replay_serverless",
    "smallest_size",
]


@dataclass(frozen=True)
class Arrivals:
    """Measured requests of one workload, in seconds since any fixed origin.

    ``init_ms`` is a request's own measured INIT where it was cold and INIT was recorded,
    else NaN; ``init_estimate_ms`` the INIT a projected cold start pays when it has none.
    """

    start_s: npt.NDArray[np.float64]
    end_s: npt.NDArray[np.float64]
    duration_ms: npt.NDArray[np.float64]
    init_ms: npt.NDArray[np.float64]
    init_estimate_ms: float
    # Measured cold (1.0) or warm (0.0), and the handler's cold penalty (ms) per request.
    cold: npt.NDArray[np.float64] | None = None
    penalty_ms: npt.NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        import numpy as np

        size = np.asarray(self.start_s).size
        if self.cold is None:
            object.__setattr__(self, "cold", np.zeros(size))
        if self.penalty_ms is None:
            object.__setattr__(self, "penalty_ms", np.zeros(size))
        order = np.argsort(self.start_s, kind="stable")
        for name in ("start_s", "end_s", "duration_ms", "init_ms", "cold", "penalty_ms"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=float)[order])

    def warm_duration_ms(self) -> npt.NDArray[np.float64]:
        """Each request's handler duration had it run warm (a cold one sheds its penalty)."""
        import numpy as np

        assert self.cold is not None and self.penalty_ms is not None
        shed: npt.NDArray[np.float64] = np.maximum(
            self.duration_ms - self.cold * self.penalty_ms, 0.0
        )
        return shed

    @property
    def count(self) -> int:
        return int(self.start_s.size)

    @property
    def window_s(self) -> float:
        if self.count == 0:
            return 0.0
        return float(self.end_s.max() - self.start_s.min())

    def levels(self) -> npt.NDArray[np.int64]:
        """Requests in flight at each start, itself included (ends first at a tie)."""
        import numpy as np

        ends = np.sort(self.end_s)
        started = np.arange(1, self.count + 1)
        ended = np.searchsorted(ends, self.start_s, side="right")
        levels: npt.NDArray[np.int64] = np.maximum(started - ended, 1).astype(np.int64)
        return levels


@dataclass(frozen=True)
class Projection:
    """What a replay projects for one capacity."""

    requests: int
    cold_starts: int
    p95_ms: float | None
    # Instances / warm units the projection assumed.
    size: int

    @property
    def cold_start_share(self) -> float:
        return self.cold_starts / self.requests if self.requests else 0.0


def _p95(latencies: npt.NDArray[np.float64]) -> float | None:
    import numpy as np

    if latencies.size == 0:
        return None
    return float(np.quantile(latencies, 0.95, method="linear"))


def replay_serverless(
    arrivals: Arrivals,
    *,
    warm_units: int,
    keep_alive_s: float,
    concurrency: int = 1,
    keep_measured_cold: bool = False,
) -> Projection:
    """Cold starts and p95 of ``arrivals`` with ``warm_units`` always-warm environments
    (see the module docstring for the model).

    ``keep_measured_cold`` (the same deployment, more warm capacity): a request measured
    cold stays cold unless a warm unit serves it - platforms recycle environments more
    often than a keep-alive explains (deploys, scale-in, host maintenance), and only
    capacity kept warm removes those cold starts."""
    import numpy as np

    n = arrivals.count
    if n == 0:
        return Projection(0, 0, None, warm_units)
    needed = np.ceil(arrivals.levels() / max(1, concurrency)).astype(np.int64).tolist()
    seconds = np.floor(arrivals.start_s - arrivals.start_s[0]).astype(np.int64).tolist()
    cold = np.zeros(n, dtype=bool)
    assert arrivals.cold is not None
    measured = (arrivals.cold > 0).tolist()
    # Last second each on-demand environment was needed, most recent first.
    pool: list[int] = []
    i = 0
    while i < n:
        second = seconds[i]
        while pool and second - pool[-1] > keep_alive_s:
            pool.pop()
        available = warm_units + len(pool)
        ceiling = available
        peak = 0
        j = i
        while j < n and seconds[j] == second:
            if needed[j] > ceiling:
                cold[j] = True
                ceiling = needed[j]
            elif keep_measured_cold and measured[j] and needed[j] > warm_units:
                cold[j] = True
            peak = max(peak, needed[j])
            j += 1
        pool[:0] = [second] * (ceiling - available)
        used = min(len(pool), max(0, peak - warm_units))
        pool[:used] = [second] * used
        i = j
    init = np.where(np.isnan(arrivals.init_ms), arrivals.init_estimate_ms, arrivals.init_ms)
    assert arrivals.penalty_ms is not None
    latencies = arrivals.warm_duration_ms() + np.where(
        cold, np.maximum(init, 0.0) + arrivals.penalty_ms, 0.0
    )
    return Projection(n, int(cold.sum()), _p95(latencies), warm_units)


def replay_fleet(arrivals: Arrivals, *, slots: int) -> Projection:
    """p95 of ``arrivals`` on an always-on fleet with ``slots`` requests served at once,
    first come first served (no cold starts)."""
    import numpy as np

    n = arrivals.count
    if n == 0:
        return Projection(0, 0, None, slots)
    free = [float(arrivals.start_s[0])] * max(1, slots)
    latencies = np.empty(n)
    # An always-on fleet is warm: each request takes its warm handler duration.
    for k, (start, duration_ms) in enumerate(
        zip(arrivals.start_s.tolist(), arrivals.warm_duration_ms().tolist(), strict=True)
    ):
        begin = max(start, heapq.heappop(free))
        heapq.heappush(free, begin + duration_ms / 1000.0)
        latencies[k] = (begin - start) * 1000.0 + duration_ms
    return Projection(n, 0, _p95(latencies), slots)


def smallest_size(
    project: Callable[[int], Projection], *, low: int, high: int, slo_ms: float
) -> tuple[Projection | None, Projection]:
    """The projection of the smallest size in ``[low, high]`` whose p95 is within
    ``slo_ms`` (None when even ``high`` misses it), and the projection at ``high``.

    More capacity never adds cold starts or waits, so p95 falls with size: binary search.
    """
    best = project(high)
    if best.p95_ms is None or best.p95_ms > slo_ms:
        return None, best
    found = best
    while low < high:
        middle = (low + high) // 2
        trial = project(middle)
        if trial.p95_ms is not None and trial.p95_ms <= slo_ms:
            found, high = trial, middle
        else:
            low = middle + 1
    if found.size != high:
        found = project(high)
    return found, best
