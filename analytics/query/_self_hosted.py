"""The measured load of self-hosted model servers, read from the spans.

The SQL is ``sql/self_hosted_load.sql``; the GPU economics
(``infermeter.analytics.economics``) price what it returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from infermeter.analytics.query._bind import sql_over
from infermeter.analytics.query._queries import sql_file
from infermeter.analytics.query._requests import _utc_naive as utc_naive

if TYPE_CHECKING:
    from datetime import datetime

    import duckdb
    import polars as pl

__all__ = ["self_hosted_load"]


def self_hosted_load(
    con: duckdb.DuckDBPyConnection,
    spans: duckdb.DuckDBPyRelation,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pl.DataFrame:
    """One row per self-hosted model server (model, service, runtime) of ``spans`` starting
    in ``[since, until)``: requests, window, tokens, queue / model time, GPU busy seconds,
    cold starts and their INIT (and the newest model load up to ``until``), GPU type and
    count, the gaps between calls, and the glue endpoint calling it.

    A span counts when its ``gen_ai.provider.name`` is ``self_hosted`` or a model server
    reported queue or model time; instrument the server side, not also the client call.
    """
    params = {"since": utc_naive(since), "until": utc_naive(until)}
    frame: pl.DataFrame = sql_over(
        con, sql_file("self_hosted_load"), params=params, im_window=spans
    ).pl()
    return frame
