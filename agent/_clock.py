"""The time source of observed spans: the wall clock, or a context-local virtual clock.

Simulations (``infermeter demo``) replay weeks of traffic in a minute through the real
decorator and exporter. Simulated requests overlap in simulated time but run one after
another in real time, so each one carries its own clock in a context variable; code
"waiting on a model" advances it instead of sleeping. When no virtual clock is set, the
decorator's only cost is one ``ContextVar.get`` and an ``is None`` check.
"""

from __future__ import annotations

import math
import time
from contextvars import ContextVar
from typing import Final

__all__ = ["VIRTUAL_CLOCK", "VirtualClock", "now_ns"]


class VirtualClock:
    """A simulated clock in integer nanoseconds since the Unix epoch."""

    __slots__ = ("ns",)

    def __init__(self, start_ns: int) -> None:
        self.ns = start_ns

    def advance(self, seconds: float) -> None:
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"cannot advance a clock by {seconds!r} seconds")
        self.ns += round(seconds * 1e9)

    @property
    def seconds(self) -> float:
        """The clock's time as Unix seconds (like ``time.time()``)."""
        return self.ns / 1e9


VIRTUAL_CLOCK: Final[ContextVar[VirtualClock | None]] = ContextVar(
    "infermeter_virtual_clock", default=None
)


def now_ns() -> int:
    clock = VIRTUAL_CLOCK.get()
    return time.time_ns() if clock is None else clock.ns
