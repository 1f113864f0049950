"""Reference and current windows: parsing, resolution and labelling of rows."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest
from infermeter.analytics.drift._windows import (
    Window,
    assign_windows,
    parse_current,
    parse_reference,
    resolve_current,
    resolve_reference,
)

NEWEST = datetime(2026, 11, 22, 17, 30, 12, 345678)


def test_durations_and_ranges_parse() -> None:
    assert parse_current("7d") == timedelta(days=7)
    assert parse_current(" 24h ") == timedelta(hours=24)
    assert parse_current("2w") == timedelta(weeks=2)
    assert parse_current("90m") == timedelta(minutes=90)
    # A date END includes its whole day; timestamps are exact and offsets become UTC.
    assert parse_current("2026-11-16..2026-11-22") == Window(
        datetime(2026, 11, 16), datetime(2026, 11, 23)
    )
    assert parse_reference("2026-11-01T06:00+02:00..2026-11-02T00:00Z") == Window(
        datetime(2026, 11, 1, 4), datetime(2026, 11, 2)
    )
    assert parse_reference("Previous-Week") == "previous-week"
    assert parse_reference("before-rollout") == "before-rollout"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("7x", "expected a duration"),
        ("0d", "must be positive"),
        ("2026-11-22..2026-11-01", "end must be after the start"),
        ("2026-13-01..2026-11-02", "not a date"),
    ],
)
def test_bad_current_windows_are_clear_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_current(text)


def test_bad_reference_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="previous-week, previous, before-rollout"):
        parse_reference("last-month")


def test_a_duration_ends_just_after_the_newest_observation() -> None:
    window = resolve_current(timedelta(days=7), NEWEST)
    assert window.end == datetime(2026, 11, 22, 17, 30, 13)
    assert window.start == window.end - timedelta(days=7)
    assert window.start <= NEWEST < window.end


def test_reference_modes() -> None:
    current = resolve_current(timedelta(days=1), NEWEST)
    assert resolve_reference("previous-week", current) == current.shifted(timedelta(days=7))
    assert resolve_reference("previous", current) == Window(
        current.start - timedelta(days=1), current.start
    )
    assert resolve_reference("before-rollout", current) is None
    fixed = Window(datetime(2026, 10, 1), datetime(2026, 10, 8))
    assert resolve_reference(fixed, current) == fixed


def test_an_overlapping_reference_is_refused() -> None:
    current = resolve_current(timedelta(days=14), NEWEST)
    with pytest.raises(ValueError, match="overlaps the current window"):
        resolve_reference("previous-week", current)


def _rows(*rows: tuple[str, str | None, datetime]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"model": m, "prompt_version": v, "time": t} for m, v, t in rows],
        schema={"model": pl.String, "prompt_version": pl.String, "time": pl.Datetime("us")},
    )


def test_fixed_windows_label_rows_by_time() -> None:
    current = Window(datetime(2026, 11, 16), datetime(2026, 11, 23))
    reference = current.shifted(timedelta(days=7))
    rows = _rows(
        ("a", "v1", datetime(2026, 11, 9)),  # reference (start is inclusive)
        ("a", "v1", datetime(2026, 11, 16)),  # current
        ("a", "v1", datetime(2026, 11, 23)),  # after the current window (end exclusive)
        ("b", None, datetime(2026, 11, 1)),  # before the reference window
    )
    labelled, groups = assign_windows(rows, by=["model"], current=current, reference=reference)
    assert labelled["window"].to_list() == ["reference", "current"]
    assert groups.to_dicts() == [
        {
            "model": "a",
            "reference_start": reference.start,
            "reference_end": reference.end,
            "current_start": current.start,
            "current_end": current.end,
            "reference_prompt_version": None,
            "note": None,
        }
    ]


def test_before_rollout_compares_the_newest_version_with_the_one_before() -> None:
    day = timedelta(days=1)
    rollout = datetime(2026, 11, 18)
    current = Window(datetime(2026, 11, 16), datetime(2026, 11, 23))
    rows = _rows(
        ("m", "v0", datetime(2026, 10, 1)),  # an older version: not the reference
        ("m", "v1", datetime(2026, 10, 20)),  # v1, too long before the rollout
        ("m", "v1", rollout - 6 * day),  # v1 in the 7 days before v2 appeared
        ("m", "v1", rollout - day),
        ("m", "v1", rollout + day),  # v1 still serving after the rollout: not compared
        ("m", "v2", rollout),  # v2 from its rollout on
        ("m", "v2", rollout + 2 * day),
        ("s", "v5", datetime(2026, 11, 20)),  # a series with a single version
        ("s", None, datetime(2026, 11, 20)),  # no version: not part of any comparison
    )
    labelled, groups = assign_windows(rows, by=["model"], current=current, reference=None)
    m = labelled.filter(pl.col("model") == "m").sort("time")
    assert m["window"].to_list() == ["reference", "reference", "current", "current"]
    assert set(m["prompt_version"]) == {"v2"}  # reference rows carry the compared version
    plan = {row["model"]: row for row in groups.iter_rows(named=True)}
    assert plan["m"]["prompt_version"] == "v2"
    assert plan["m"]["reference_prompt_version"] == "v1"
    assert (plan["m"]["reference_start"], plan["m"]["reference_end"]) == (
        rollout - 7 * day,
        rollout,
    )
    assert (plan["m"]["current_start"], plan["m"]["current_end"]) == (rollout, current.end)
    assert plan["s"]["note"] == "no earlier prompt version to compare with"
    assert plan["s"]["reference_prompt_version"] is None


def test_before_rollout_by_prompt_version_alone() -> None:
    current = Window(datetime(2026, 11, 16), datetime(2026, 11, 23))
    rows = _rows(
        ("a", "v1", datetime(2026, 11, 14)),
        ("b", "v2", datetime(2026, 11, 17)),
    )
    labelled, groups = assign_windows(rows, by=["prompt_version"], current=current, reference=None)
    assert labelled["window"].to_list() == ["reference", "current"]
    assert groups.row(0, named=True)["reference_prompt_version"] == "v1"
