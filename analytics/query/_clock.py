"""The newest span, ignoring spans from the far future.

Windows that end "at the newest data" (``recommend``'s look-back, the report's default
week, the exporter's ``window_end = newest``, drift's current window) would be moved by
one span with a wrong clock or a hostile timestamp (year 2262, the end of DuckDB's
nanosecond range): every window would then hold nothing but that span. Spans starting
more than ``FUTURE_TOLERANCE`` after the reader's clock are left out of "newest", out of
windows without an explicit end, and counted so the caller can say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import duckdb

__all__ = ["FUTURE_TOLERANCE", "Newest", "future_limit", "newest_span"]

# Clock skew between hosts is seconds; a day also covers a replay a little ahead.
FUTURE_TOLERANCE: Final = timedelta(days=1)


def future_limit(now: datetime | None = None) -> datetime:
    """The latest start time still believed (naive UTC): ``now`` + ``FUTURE_TOLERANCE``."""
    moment = now or datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment + FUTURE_TOLERANCE


@dataclass(frozen=True)
class Newest:
    """The newest believable start time, and the spans left out as from the future."""

    start: datetime | None
    future_spans: int
    limit: datetime

    def note(self) -> str | None:
        """One line saying what was ignored, or None."""
        if not self.future_spans:
            return None
        return (
            f"{self.future_spans:,} span(s) start after {self.limit:%Y-%m-%d %H:%M} UTC "
            f"(more than {FUTURE_TOLERANCE.days} day ahead of this clock): ignored for the "
            "newest span and for windows without an end"
        )


def newest_span(
    spans: duckdb.DuckDBPyRelation, *, now: datetime | None = None, column: str = "start_time"
) -> Newest:
    """The latest ``column`` (``start_time``, or ``time`` for embeddings) of ``spans`` that
    is not beyond :func:`future_limit`, and how many are."""
    import duckdb

    if column not in {"start_time", "time"}:
        raise ValueError(f"newest_span: unknown time column {column!r}")
    limit = future_limit(now)
    time = duckdb.ColumnExpression(column)
    cutoff = duckdb.ConstantExpression(limit)
    ((start,),) = spans.filter(time <= cutoff).aggregate(f"max({column})").fetchall()
    ((future,),) = spans.filter(time > cutoff).aggregate("count(*)").fetchall()
    return Newest(start, int(future), limit)
