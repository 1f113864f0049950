"""Reference and current windows for drift: parsing the specs and labelling rows.

Current window (``--current``): a duration such as ``7d``, ``24h``, ``2w`` ending at the
newest observation in the store, or ``START..END``.
Reference window (``--reference``):

- ``auto`` (the default): ``previous-week`` for a group that has data a week earlier; a
  group with none there - a prompt version new this week - is compared with the version it
  replaced, as ``before-rollout`` does. Each row says which it used
  (``reference_prompt_version`` is set for the rollout comparison);
- ``previous-week``: the current window moved back 7 days (week over week, so daily and
  weekly seasonality cancel out);
- ``previous``: the window of the same length right before the current one;
- ``before-rollout``: per series (the grouping without ``prompt_version``), the current
  window holds the newest prompt version (from its rollout on) and the reference holds the
  version before it, over a window of the current window's length ending at the rollout;
- ``START..END``: a fixed baseline.

``START..END``: dates (``2026-11-01``) or ISO timestamps; a date as END includes that whole
day, a timestamp END is exclusive. Timestamps with an offset are converted to UTC; naive
ones are UTC (like the store). Windows are half-open ``[start, end)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Sequence

    import polars as pl

__all__ = [
    "REFERENCE_MODES",
    "Window",
    "assign_windows",
    "parse_current",
    "parse_reference",
    "resolve_current",
    "resolve_reference",
]

REFERENCE_MODES: Final = ("auto", "previous-week", "previous", "before-rollout")
PROMPT_VERSION: Final = "prompt_version"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_ALL: Final = "_infermeter_series"
_GROUP_INFO: Final = (
    "reference_start",
    "reference_end",
    "current_start",
    "current_end",
    "reference_prompt_version",
    "note",
)


@dataclass(frozen=True)
class Window:
    """A half-open time range ``[start, end)`` in naive UTC."""

    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def shifted(self, by: timedelta) -> Window:
        return Window(self.start - by, self.end - by)

    def overlaps(self, other: Window) -> bool:
        return self.start < other.end and other.start < self.end

    def __str__(self) -> str:
        return f"{self.start.isoformat(sep=' ')} .. {self.end.isoformat(sep=' ')}"


def _instant(text: str, *, is_end: bool) -> datetime:
    text = text.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        start = datetime(day.year, day.month, day.day)
        return start + timedelta(days=1) if is_end else start
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO timestamp") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _range(text: str) -> Window | None:
    if ".." not in text:
        return None
    start_text, _, end_text = text.partition("..")
    window = Window(_instant(start_text, is_end=False), _instant(end_text, is_end=True))
    if window.end <= window.start:
        raise ValueError(f"{text!r}: the end must be after the start")
    return window


def parse_current(text: str) -> timedelta | Window:
    """``7d`` / ``24h`` / ``2w`` / ``90m`` / ``3600s`` → a duration; ``START..END`` → a window."""
    window = _range(text)
    if window is not None:
        return window
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r}: expected a duration such as 7d, 24h, 2w or a range START..END")
    duration = timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    if duration <= timedelta(0):
        raise ValueError(f"{text!r}: the duration must be positive")
    return duration


def parse_reference(text: str) -> str | Window:
    """One of ``REFERENCE_MODES`` or a fixed ``START..END`` window."""
    mode = text.strip().lower()
    if mode in REFERENCE_MODES:
        return mode
    window = _range(text)
    if window is None:
        raise ValueError(f"{text!r}: expected one of {', '.join(REFERENCE_MODES)} or START..END")
    return window


def resolve_current(spec: timedelta | Window, newest: datetime) -> Window:
    """The current window; a duration ends at the first whole second after the newest
    observation (so that observation is inside the half-open window)."""
    if isinstance(spec, Window):
        return spec
    end = newest.replace(microsecond=0) + timedelta(seconds=1)
    return Window(end - spec, end)


def resolve_reference(spec: str | Window, current: Window) -> Window | None:
    """The reference window shared by every group (None for ``before-rollout``)."""
    if isinstance(spec, Window):
        reference = spec
    elif spec in {"previous-week", "auto"}:
        reference = current.shifted(timedelta(days=7))
    elif spec == "previous":
        reference = current.shifted(current.length)
    else:
        return None
    if reference.overlaps(current):
        raise ValueError(
            f"the reference window ({reference}) overlaps the current window ({current}); "
            "use --reference previous or a fixed START..END"
        )
    return reference


def assign_windows(
    rows: pl.DataFrame,
    *,
    by: Sequence[str],
    current: Window,
    reference: Window | None,
    rollout_fallback: bool = False,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Label ``rows`` (with ``time``, ``prompt_version`` and the ``by`` columns) with the
    window they fall in; returns ``(labelled, groups)``.

    ``labelled``: the rows inside a window, with ``window`` ("reference" | "current").
    Groups are keyed by the ``by`` columns, plus ``prompt_version`` in ``before-rollout``
    mode (``reference is None``), where a group compares two versions of one series.
    In that mode a reference row's ``prompt_version`` is replaced by the current version
    it is compared with, so both windows of a group share its key. ``groups``: one row per
    group (its key columns) with ``reference_start/_end``, ``current_start/_end``,
    ``reference_prompt_version`` and ``note`` (why a group has no comparison, else null).

    ``rollout_fallback`` (the ``auto`` mode, with a fixed ``reference``): a group keyed by
    ``prompt_version`` without a row in the reference window is compared with the version
    rolled out before it instead (as ``before-rollout``; ``rows`` must then hold the history).
    """
    import polars as pl

    keys = list(by)
    if reference is not None:
        window = (
            pl.when((pl.col("time") >= current.start) & (pl.col("time") < current.end))
            .then(pl.lit("current"))
            .when((pl.col("time") >= reference.start) & (pl.col("time") < reference.end))
            .then(pl.lit("reference"))
        )
        labelled = rows.with_columns(window.alias("window")).filter(pl.col("window").is_not_null())
        groups = (
            labelled.select(keys)
            .unique(maintain_order=True)
            .with_columns(
                pl.lit(reference.start).alias("reference_start"),
                pl.lit(reference.end).alias("reference_end"),
                pl.lit(current.start).alias("current_start"),
                pl.lit(current.end).alias("current_end"),
                pl.lit(None, dtype=pl.String).alias("reference_prompt_version"),
                pl.lit(None, dtype=pl.String).alias("note"),
            )
        )
        if rollout_fallback and PROMPT_VERSION in keys:
            return _fall_back_to_rollout(rows, keys, current, labelled, groups)
        return labelled, groups
    # Before a rollout, a group is also keyed by the prompt version it compares.
    return _before_rollout(
        rows, [*keys, PROMPT_VERSION] if PROMPT_VERSION not in keys else keys, current
    )


def _fall_back_to_rollout(
    rows: pl.DataFrame,
    keys: list[str],
    current: Window,
    labelled: pl.DataFrame,
    groups: pl.DataFrame,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Groups with no reference rows (new this week) compare with the version they replaced."""
    import polars as pl

    with_reference = labelled.filter(pl.col("window") == "reference").select(keys).unique()
    missing = groups.select(keys).join(with_reference, on=keys, how="anti", nulls_equal=True)
    if missing.is_empty():
        return labelled, groups
    rollout_rows, rollout_groups = _before_rollout(rows, keys, current)
    replaced = rollout_groups.join(missing, on=keys, how="semi", nulls_equal=True).filter(
        pl.col("reference_prompt_version").is_not_null()
    )
    if replaced.is_empty():
        return labelled, groups
    chosen = replaced.select(keys)
    kept_rows = labelled.join(chosen, on=keys, how="anti", nulls_equal=True)
    new_rows = rollout_rows.join(chosen, on=keys, how="semi", nulls_equal=True)
    kept_groups = groups.join(chosen, on=keys, how="anti", nulls_equal=True)
    return (
        pl.concat([kept_rows, new_rows.select(kept_rows.columns)], how="vertical_relaxed"),
        pl.concat([kept_groups, replaced.select(kept_groups.columns)], how="vertical_relaxed"),
    )


def _before_rollout(
    rows: pl.DataFrame, keys: list[str], current: Window
) -> tuple[pl.DataFrame, pl.DataFrame]:
    import polars as pl

    by_series = [key for key in keys if key != PROMPT_VERSION]
    # A constant series column when the grouping is prompt_version alone keeps one code path.
    series = by_series or [_ALL]
    versioned = rows.filter(pl.col(PROMPT_VERSION).is_not_null())
    if not by_series:
        versioned = versioned.with_columns(pl.lit(0).alias(_ALL))
    first_seen = versioned.group_by([*series, PROMPT_VERSION]).agg(
        pl.col("time").min().alias("first_seen")
    )
    in_window = (pl.col("time") >= current.start) & (pl.col("time") < current.end)
    live = (
        versioned.filter(in_window)
        .select([*series, PROMPT_VERSION])
        .unique()
        .join(first_seen, on=[*series, PROMPT_VERSION], nulls_equal=True)
    )
    # The newest version serving in the current window, per series, and its rollout time.
    newest = (
        live.sort("first_seen")
        .group_by(series, maintain_order=True)
        .last()
        .rename({PROMPT_VERSION: "current_version", "first_seen": "rollout"})
    )
    # The version rolled out last before it.
    previous = (
        first_seen.join(newest, on=series, nulls_equal=True)
        .filter(pl.col("first_seen") < pl.col("rollout"))
        .sort("first_seen")
        .group_by(series, maintain_order=True)
        .last()
        .select([*series, pl.col(PROMPT_VERSION).alias("reference_version")])
    )
    plan = newest.join(previous, on=series, how="left", nulls_equal=True).with_columns(
        (pl.col("rollout") - current.length).alias("reference_start"),
        pl.col("rollout").alias("reference_end"),
        pl.max_horizontal(pl.col("rollout"), pl.lit(current.start)).alias("current_start"),
        pl.lit(current.end).alias("current_end"),
    )
    in_current = (
        (pl.col(PROMPT_VERSION) == pl.col("current_version"))
        & (pl.col("time") >= pl.col("current_start"))
        & (pl.col("time") < pl.col("current_end"))
    )
    in_reference = (
        (pl.col(PROMPT_VERSION) == pl.col("reference_version"))
        & (pl.col("time") >= pl.col("reference_start"))
        & (pl.col("time") < pl.col("reference_end"))
    )
    labelled = (
        versioned.join(plan, on=series, nulls_equal=True)
        .with_columns(
            pl.when(in_current)
            .then(pl.lit("current"))
            .when(in_reference)
            .then(pl.lit("reference"))
            .alias("window")
        )
        .filter(pl.col("window").is_not_null())
        .with_columns(pl.col("current_version").alias(PROMPT_VERSION))
        .select([*rows.columns, "window"])
    )
    groups = plan.select(
        *by_series,
        pl.col("current_version").alias(PROMPT_VERSION),
        "reference_start",
        "reference_end",
        "current_start",
        "current_end",
        pl.col("reference_version").alias("reference_prompt_version"),
        pl.when(pl.col("reference_version").is_null())
        .then(pl.lit("no earlier prompt version to compare with"))
        .alias("note"),
    ).select([*keys, *_GROUP_INFO])
    return labelled, groups
