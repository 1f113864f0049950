"""Serve's incremental refresh: the request facts of sealed requests, kept across refreshes.

The lifetime counters and the label ranking of a snapshot need every request of the store.
Building the whole request table on every refresh made ``serve``'s refresh time and peak
memory grow with the store. The request table is two stages (``analytics.query``):

- stage (a), :func:`request_facts`: spans -> one unpriced fact row per request. The costly
  part (aggregating every span), and a computation per trace (``_queries.TRACES_STARTING``);
- stage (b), :func:`priced_requests`: facts -> the priced request table. Cheap, and it reads
  other requests of the table (the serverless-container busy share of an instance, the
  container hours), so it runs over every fact on every refresh.

:class:`SealedRequests` computes stage (a) once per *sealed* slice of requests and keeps the
facts in Parquet files (read back by each refresh's own connection: they never sit in
process memory, and DuckDB streams them within the reader's buffer pool). A request is
sealed when its entry span starts before the watermark: the newest span's start minus
``seal_after``, aligned down to a multiple of ``seal_after`` (whole hours at the default
hour, so there are few slices). Each refresh runs stage (a) once, over every span of the
traces that have a span from the previous watermark on: the requests that started before
the new watermark are appended as a new slice, the rest are the tail. Stage (b) prices
sealed + tail now (facts are unpriced: a price change applies to every request). The
result equals the from-scratch request table of the store as long as every span of a
request is stored before its request is sealed.

The one limit: a span stored after its request was sealed (its request started more than
``seal_after``, plus up to ``seal_after`` of alignment, before the newest span) is not
counted by a running ``serve``; it is counted after a restart, which recomputes every slice
(the files of a previous run are deleted, never trusted: spans older than the watermark may
have been imported since). That is also true of a whole request whose entry span is
stored that late.
"""

from __future__ import annotations

import contextlib
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from infermeter.analytics.query import _queries
from infermeter.analytics.query._bind import hold, sql_over

if TYPE_CHECKING:
    import duckdb
    from infermeter.analytics.economics import Deployments
    from infermeter.analytics.pricing import PriceBook

__all__ = ["DEFAULT_SEAL_AFTER", "SealedRequests"]

# The request table's own look-ahead for child spans (``SPANS_IN_WINDOW``): a request's
# spans are expected within an hour of its start.
DEFAULT_SEAL_AFTER: Final = timedelta(hours=1)
# Sealed slices beyond this many files are merged into one (a month of hourly slices would
# otherwise be 720 files to open on every refresh).
_MAX_FILES: Final = 24
_EPOCH: Final = datetime(1970, 1, 1)


class SealedRequests:
    """The sealed request facts of one store, for one ``serve`` process.

    ``directory`` is this object's own (created, emptied at start, removed by
    :meth:`close`). ``seal_after``: see the module docstring.
    """

    def __init__(self, directory: Path, *, seal_after: timedelta = DEFAULT_SEAL_AFTER) -> None:
        if seal_after <= timedelta(0):
            raise ValueError("seal_after must be positive")
        self.directory = directory
        self.seal_after = seal_after
        # Requests whose entry span starts before this are in ``files``; None: none yet.
        self.watermark: datetime | None = None
        self.files: list[Path] = []
        # Spans stage (a) has read, over every refresh (what the sealed facts save).
        self.span_reads = 0
        self._slices = 0
        if directory.exists():
            shutil.rmtree(directory)  # a previous run's facts are never trusted
        directory.mkdir(parents=True)

    def watermark_for(self, newest: datetime) -> datetime:
        """The seal watermark for a store whose newest span starts at ``newest``."""
        step = self.seal_after
        return _EPOCH + ((newest - step) - _EPOCH) // step * step

    def requests(
        self,
        con: duckdb.DuckDBPyConnection,
        spans: duckdb.DuckDBPyRelation,
        newest: datetime | None,
        *,
        prices: PriceBook,
        deployments: Deployments,
    ) -> duckdb.DuckDBPyRelation:
        """The whole store's request table (held in ``con``'s buffer pool): the sealed
        facts, the facts of requests sealed now, and the tail's, priced now."""
        from infermeter.analytics.query._requests import priced_requests

        # One stage (a) pass over the traces with a span from the watermark on: the requests
        # sealed now and the tail, split below by their entry span's start.
        facts = self._facts(con, spans, self.watermark)
        if newest is not None:
            target = self.watermark_for(newest)
            if self.watermark is None or target > self.watermark:
                self._write(con, _starting(con, facts, self.watermark, target))
                self.watermark = target
        tail = _starting(con, facts, self.watermark, None)
        if self.files:
            sealed = con.read_parquet([str(f) for f in self.files])
            tail = sealed.select(*_queries.REQUEST_FACT_COLUMNS).union(tail)
        return hold(priced_requests(con, tail, prices=prices, deployments=deployments))

    def _write(self, con: duckdb.DuckDBPyConnection, facts: duckdb.DuckDBPyRelation) -> None:
        """``facts`` as the next sealed slice (a file renamed into place when complete)."""
        self._slices += 1
        path = self.directory / f"slice-{self._slices:06d}.parquet"
        partial = path.with_suffix(".partial")
        facts.write_parquet(str(partial))
        partial.replace(path)
        self.files.append(path)
        if len(self.files) > _MAX_FILES:
            self._merge(con)

    def _merge(self, con: duckdb.DuckDBPyConnection) -> None:
        """Every sealed slice into one file (DuckDB streams it, bounded by its pool)."""
        self._slices += 1
        path = self.directory / f"slice-{self._slices:06d}.parquet"
        partial = path.with_suffix(".partial")
        con.read_parquet([str(f) for f in self.files]).write_parquet(str(partial))
        partial.replace(path)
        for old in self.files:
            old.unlink()
        self.files = [path]

    def _facts(
        self,
        con: duckdb.DuckDBPyConnection,
        spans: duckdb.DuckDBPyRelation,
        since: datetime | None,
    ) -> duckdb.DuckDBPyRelation:
        """Stage (a), held, for every request of the traces with a span starting at or
        after ``since`` (every trace when None), from all of their spans."""
        from infermeter.analytics.query._requests import request_facts

        ((oldest,),) = spans.aggregate("min(start_time)").fetchall()
        if since is None or oldest is None or oldest >= since:
            # Every trace (the first refresh, or a store younger than the watermark): the
            # spans as read from scratch.
            source = spans
        else:
            params = {"since": since, "until": None}
            traces = hold(sql_over(con, _queries.TRACES_STARTING, params=params, im_spans=spans))
            ((first,),) = sql_over(
                con, _queries.TRACE_FIRST_SPAN, im_spans=spans, im_traces=traces
            ).fetchall()
            # Read lazily (each read of stage (a) scans from ``first`` on, skipping older
            # row groups, and probes the trace set): holding a copy of the spans cost more
            # than the reads it saved when the tail is most of the store.
            source = sql_over(
                con,
                _queries.SPANS_OF_TRACES,
                params={"first": first},
                im_spans=spans,
                im_traces=traces,
            )
        ((count,),) = source.aggregate("count(*)").fetchall()
        self.span_reads += int(count)
        # Held before any slice is filtered out of it: a filter on the entry's start pushed
        # into stage (a) ran out of a 1 GiB buffer pool on 1.3M requests.
        return hold(request_facts(con, source).select(*_queries.REQUEST_FACT_COLUMNS))

    def close(self) -> None:
        """Remove the files (the process is done with them)."""
        self.files = []
        with contextlib.suppress(OSError):
            shutil.rmtree(self.directory)


def _starting(
    con: duckdb.DuckDBPyConnection,
    facts: duckdb.DuckDBPyRelation,
    since: datetime | None,
    until: datetime | None,
) -> duckdb.DuckDBPyRelation:
    """The ``facts`` of requests whose entry span starts in ``[since, until)``."""
    return sql_over(
        con, _queries.REQUESTS_STARTING, params={"since": since, "until": until}, im_facts=facts
    )
