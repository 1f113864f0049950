"""Peak and mean concurrency of requests from the overlap of their spans."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from infermeter.analytics.query import _queries
from infermeter.analytics.query._bind import is_held, query_frame
from infermeter.analytics.query._buckets import check_group_columns
from infermeter.analytics.query._metrics import with_bucket

if TYPE_CHECKING:
    import duckdb
    import polars as pl

__all__ = ["concurrency"]


def concurrency(
    requests: duckdb.DuckDBPyRelation,
    *,
    by: Sequence[str] = (),
    bucket: str | timedelta | None = None,
) -> pl.DataFrame:
    """``peak_concurrency`` and ``mean_concurrency`` of ``requests`` per group (and bucket).

    Peak: a sweep over start (+1) and end (-1) events in time order, an end before a start
    at the same instant (back-to-back requests do not overlap). Mean: total busy time over
    the observed window from the first start to the last end (Little's law, L = λ·W).
    """
    columns = check_group_columns(by)
    table = is_held(requests)
    source = requests if bucket is None else with_bucket(requests, bucket)
    frame = query_frame(
        source,
        "im_requests",
        _queries.concurrency_sql(columns, bucket=bucket is not None, table=table),
    )
    keys = [*columns, *(["bucket"] if bucket is not None else [])]
    return frame.sort(keys, nulls_last=True) if keys else frame
