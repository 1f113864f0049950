"""Time buckets and group columns accepted by the metric functions (checked before SQL)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Final

from infermeter.analytics.query._queries import GROUP_COLUMNS

__all__ = ["check_group_columns", "parse_bucket"]

_BUCKET: Final = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d|w)\s*$", re.IGNORECASE)
# DuckDB intervals hold 292,000 years, timedelta 2.7 million; nobody needs a longer bucket.
_MAX_BUCKET: Final = timedelta(days=36_525)
_UNITS: Final = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "min": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}


def parse_bucket(bucket: str | timedelta) -> timedelta:
    """``"1h"``, ``"15m"``, ``"1d"``, ``"1w"`` (or a timedelta) as a positive timedelta.

    Buckets start at DuckDB ``time_bucket``'s origin, so days start at 00:00 UTC and weeks
    on Monday (ISO weeks).
    """
    if isinstance(bucket, timedelta):
        width = bucket
    else:
        match = _BUCKET.match(bucket)
        if match is None:
            raise ValueError(
                f"bucket {bucket!r}: expected a count and a unit s, m, h, d or w (e.g. 1h, 1d)"
            )
        try:
            width = int(match.group(1)) * _UNITS[match.group(2).lower()]
        except OverflowError:
            width = _MAX_BUCKET * 2
    if width > _MAX_BUCKET:
        raise ValueError(f"bucket {bucket!r}: longer than the longest bucket, 100 years")
    if width <= timedelta(0):
        raise ValueError(f"bucket {bucket!r}: must be longer than zero")
    return width


def check_group_columns(by: Sequence[str] | str) -> tuple[str, ...]:
    """``by`` as a tuple of known, distinct group columns (a comma-separated string is
    split), or ``ValueError`` naming the allowed ones."""
    columns = tuple(c.strip() for c in (by.split(",") if isinstance(by, str) else by) if c.strip())
    unknown = [c for c in columns if c not in GROUP_COLUMNS]
    if unknown:
        raise ValueError(f"cannot group by {unknown}: choose from {', '.join(GROUP_COLUMNS)}")
    if len(set(columns)) != len(columns):
        raise ValueError(f"group columns repeat: {list(columns)}")
    return columns
