"""One analysis session: a store, its prices, its deployments and its drift results.

Every reading command (``metrics``, ``stages``, ``prices check``, ``recommend``,
``compare``, ``report``), ``serve``, ``alerts check`` and the demo start from the same
object, so they assemble the same pieces the same way: one reader (opened through
:func:`infermeter.collectors.open_reader`, which chooses the storage engine and never
blocks ingest), one price book, one set of deployment facts, one definition of "the
newest span" and one place to find the drift results.

The functions the session calls stay pure (they take relations and frames); the session
only owns the connection and the inputs, and closes the connection when it ends.

The session also chooses how a ClickHouse store is read (the one place): a window longer
than ``request_rows_after`` (:data:`STORE_READ_SETTINGS`, ``INFERMETER_REQUEST_ROWS_AFTER``,
default one day; an open-ended window is longer than any) reads request rows merged inside
ClickHouse (step 2: ``collectors._clickhouse_requests``) and prices them here (stage (b) of
the request table); a shorter one pulls the window's spans (step 1). Both give the DuckDB
store's numbers. Commands that need every span (``stages``, ``prices check``, ``drift``,
``export --parquet``) ask for spans (``spans=True``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from infermeter.agent.settings import resolve
from infermeter.analytics._read_settings import STORE_READ_SETTINGS, reads_request_rows
from infermeter.analytics.economics import Deployments, load_deployments
from infermeter.analytics.pricing import PriceBook, load_prices
from infermeter.analytics.query import _queries

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    import duckdb
    import polars as pl
    from infermeter.analytics.economics import Decisions, Recommendation
    from infermeter.analytics.quality import TopicShift
    from infermeter.analytics.report import WeeklyReport
    from infermeter.analytics.rollup import RollupOptions, SealedRequests, Snapshot
    from infermeter.collectors import RequestRows

__all__ = ["Analysis", "open_analysis"]


class Analysis:
    """A read-only view of one store with the prices and deployments that interpret it.

    Use as a context manager (or call :meth:`close`). ``prices`` / ``deployments`` are
    what :func:`load_prices` / :func:`load_deployments` return; the constructor does not
    open anything, :func:`open_analysis` does.
    """

    def __init__(
        self,
        store: str | Path,
        connection: duckdb.DuckDBPyConnection,
        *,
        prices: PriceBook,
        deployments: Deployments,
        request_rows: RequestRows | None = None,
    ) -> None:
        self.store = store
        self.prices = prices
        self.deployments = deployments
        # Set when a ClickHouse store is read as request rows (step 2): requests come from
        # it, and ``spans`` hold only the spans of the requests it cannot answer.
        self.request_rows = request_rows
        self._reader = connection
        # A cursor of our own: nothing the opener left on its connection is in the way.
        self.con: duckdb.DuckDBPyConnection = connection.cursor()
        self.future_spans = 0
        self.future_limit: datetime | None = None
        # (since, until) -> the prices and deployments it was priced with, and the table.
        self._held: dict[
            tuple[datetime | None, datetime | None],
            tuple[PriceBook, Deployments, duckdb.DuckDBPyRelation],
        ] = {}

    # -- the store --------------------------------------------------------------------
    @property
    def spans(self) -> duckdb.DuckDBPyRelation:
        return self.con.table("spans")

    @property
    def embeddings(self) -> duckdb.DuckDBPyRelation:
        return self.con.table("embeddings")

    def newest_span(self) -> datetime | None:
        """The start of the newest span: windows end here (a request belongs to the window
        its entry span starts in), in every command alike. Spans starting more than
        ``FUTURE_TOLERANCE`` after this clock are ignored (and counted in
        :attr:`future_spans`; :meth:`future_note` says so)."""
        from infermeter.analytics.query._clock import future_limit

        limit = future_limit()
        if self.request_rows is not None:
            newest, future = self.request_rows.newest_span(limit)
            self.future_spans, self.future_limit = future, limit
            return newest
        # fetchall frees the cursor
        ((newest, future),) = self.con.execute(_queries.NEWEST_SPAN, {"limit": limit}).fetchall()
        self.future_spans, self.future_limit = int(future), limit
        return newest  # type: ignore[no-any-return]

    def future_note(self) -> str | None:
        """One line about the far-future spans :meth:`newest_span` ignored, or None."""
        from infermeter.analytics.query._clock import Newest

        if self.future_limit is None:
            return None
        return Newest(None, self.future_spans, self.future_limit).note()

    def window(
        self, since: datetime | None, until: datetime | None, *, days: float | None = None
    ) -> tuple[datetime | None, datetime | None]:
        """``since`` / ``until`` as given; without ``since``, ``days`` back from ``until``
        or from the newest span. Without ``until``, the window ends at the far-future limit
        of :meth:`newest_span` (far-future spans are in no window that ends "now")."""
        if since is None and days is not None:
            newest = until or self.newest_span()
            if newest is not None:
                since = newest - timedelta(days=days)
            if until is None:
                until = self.future_limit
        return since, until

    # -- requests and metrics -----------------------------------------------------------
    def requests(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> duckdb.DuckDBPyRelation:
        """The request table of the window, priced now, run once into a temporary table
        (in DuckDB's buffer pool, spilled to disk beyond the reader's memory limit).

        Held once per window, prices and deployments for the session: the reader's view
        never changes, and a report asks for the same window more than once (each hold
        would otherwise keep another copy until the session closes). A ClickHouse store
        read as request rows (step 2) prices ClickHouse's request facts here."""
        from infermeter.analytics.query import request_table
        from infermeter.analytics.query._bind import hold

        held = self._held.get((since, until))
        if held is not None and held[0] is self.prices and held[1] is self.deployments:
            return held[2]
        if self.request_rows is not None:
            relation = self._requests_from_rows(since, until)
        else:
            relation = request_table(
                self.con,
                self.spans,
                prices=self.prices,
                deployments=self.deployments,
                since=since,
                until=until,
            )
        table = hold(relation)
        self._held[(since, until)] = (self.prices, self.deployments, table)
        return table

    def _requests_from_rows(
        self, since: datetime | None, until: datetime | None
    ) -> duckdb.DuckDBPyRelation:
        """Step 2: ClickHouse's request facts plus the facts of the traces it leaves to
        the spans (the request table's stage (a) on them), priced here (stage (b))."""
        from infermeter.analytics.query._bind import hold
        from infermeter.analytics.query._requests import _utc_naive as utc_naive
        from infermeter.analytics.query._requests import (
            priced_requests,
            request_facts,
        )

        assert self.request_rows is not None
        since, until = utc_naive(since), utc_naive(until)
        columns = _queries.REQUEST_FACT_COLUMNS
        # Stage (a)'s types, which ClickHouse's columns are cast to (its timestamps carry
        # UTC): the query's over the connection's span table (only the spans kept so far).
        stage_a = request_facts(self.con, self.spans).select(*columns)
        schema = stage_a.limit(0).arrow().read_all().schema
        held: list[duckdb.DuckDBPyRelation] = []

        def store(part: Any) -> None:
            # A bucket range at a time into a temporary table (DuckDB's buffer pool, spilled
            # beyond it): every request's facts never sit in process memory at once.
            rows = self.con.from_arrow(_conform(part, schema))
            if not held:
                held.append(hold(rows))
            else:
                rows.insert_into(f"temp.main.{held[0].alias}")

        _, spans = self.request_rows.read(since, until, sink=store)
        from_spans = request_facts(
            self.con, self.con.from_arrow(spans), since=since, until=until
        ).select(*columns)
        # The read hands at least one range (possibly empty) to the sink.
        merged = held[0].union(from_spans)
        return priced_requests(self.con, merged, prices=self.prices, deployments=self.deployments)

    def metrics(
        self,
        *,
        by: Sequence[str] = (),
        bucket: str | timedelta | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> pl.DataFrame:
        from infermeter.analytics.query import metrics

        return metrics(self.requests(since, until), by=by, bucket=bucket)

    def stages(
        self,
        *,
        by: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> pl.DataFrame:
        from infermeter.analytics.query import stage_breakdown

        return stage_breakdown(self.con, self.spans, self.requests(since, until), by=by)

    def price_coverage(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> pl.DataFrame:
        from infermeter.analytics.query import price_coverage

        return price_coverage(self.con, self.spans, prices=self.prices, since=since, until=until)

    # -- decisions and reports ----------------------------------------------------------
    def recommendations(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        endpoint: str | None = None,
    ) -> list[Recommendation]:
        return self.decisions(since, until, endpoint=endpoint).recommendations

    def decisions(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        endpoint: str | None = None,
    ) -> Decisions:
        """The recommendations and, per endpoint, every plan priced (chosen, runner-up)."""
        import duckdb
        from infermeter.analytics.economics import decide

        requests = self.requests(since, until)
        if endpoint:
            requests = requests.filter(
                duckdb.ColumnExpression("endpoint") == duckdb.ConstantExpression(endpoint)
            )
        found = decide(
            requests,
            prices=self.prices,
            deployments=self.deployments,
            self_hosted=self.self_hosted(since, until, endpoint=endpoint),
        )
        # Quality rollbacks (analytics.quality) come first, as before.
        return replace(
            found,
            recommendations=[*self._rollout_recommendations(requests), *found.recommendations],
        )

    def self_hosted(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        endpoint: str | None = None,
    ) -> pl.DataFrame:
        """The measured load of every self-hosted model server in the window (those behind
        ``endpoint``, or serving it, when given): what the GPU economics price."""
        import polars as pl
        from infermeter.analytics.query import self_hosted_load

        load = self_hosted_load(self.con, self.spans, since=since, until=until)
        if endpoint:
            load = load.filter(
                (pl.col("glue_endpoint") == endpoint) | (pl.col("endpoint") == endpoint)
            )
        return load

    def gpu_answers(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        endpoint: str | None = None,
    ) -> list[Recommendation]:
        """The three GPU questions (self-host or API, GPU containers or serverless GPU, the
        glue + model plan) for the self-hosted models of the window."""
        from infermeter.analytics.economics import gpu_answers

        return gpu_answers(
            self.requests(since, until),
            self.self_hosted(since, until, endpoint=endpoint),
            prices=self.prices,
            deployments=self.deployments,
        )

    # -- quality (evaluations, feedback, retrieval) -------------------------------------
    def has_evaluations(self) -> bool:
        """Whether the store has the quality tables (a store an older collector wrote is
        migrated when a collector of this version next opens it)."""
        rows = self.con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database()"
            " AND schema_name = 'main' AND table_name = 'evaluations'"
        ).fetchall()
        return bool(rows[0][0])

    def judged(self, requests: duckdb.DuckDBPyRelation) -> pl.DataFrame | None:
        """Evaluations linked to ``requests`` (None for a store without the tables)."""
        from infermeter.analytics.quality import judged_evaluations

        if not self.has_evaluations():
            return None
        return judged_evaluations(self.con, requests, self.con.table("evaluations"), self.spans)

    def _rollout_recommendations(self, requests: duckdb.DuckDBPyRelation) -> list[Recommendation]:
        judged = self.judged(requests)
        if judged is None or judged.is_empty():
            return []
        try:
            from infermeter.analytics.quality import quality_rollouts, rollout_recommendations

            return rollout_recommendations(quality_rollouts(judged, requests))
        except ImportError:  # the rollout test needs scipy (the 'drift' extra)
            return []

    def topic_shift(
        self,
        reference: tuple[datetime, datetime],
        current: tuple[datetime, datetime],
        *,
        kind: str = "query",
        model: str | None = None,
        **options: Any,
    ) -> TopicShift:
        """Topic shift of the sampled ``kind`` embeddings between two windows
        (``[start, end)`` each; see ``analytics.quality.topic_shift`` for the rule). With
        content capture on, each cluster carries example user messages of its traces."""
        import numpy as np
        from infermeter.analytics.quality import topic_shift, user_text

        def vectors(window: tuple[datetime, datetime]) -> tuple[Any, list[str | None]]:
            params = {"kind": kind, "start": window[0], "end": window[1], "model": model}
            rows = self.con.execute(_queries.sql_file("quality_vectors"), params).fetchall()
            if not rows:
                raise ValueError(f"no {kind} embeddings between {window[0]} and {window[1]}")
            texts = [user_text(row[1]) for row in rows]
            return np.array([row[0] for row in rows], dtype=np.float64), texts

        ref_vectors, ref_texts = vectors(reference)
        cur_vectors, cur_texts = vectors(current)
        return topic_shift(
            ref_vectors,
            cur_vectors,
            reference_texts=ref_texts if any(ref_texts) else None,
            current_texts=cur_texts if any(cur_texts) else None,
            **options,
        )

    def with_quality(
        self,
        frame: pl.DataFrame,
        *,
        by: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> pl.DataFrame:
        """``frame`` (a metric table grouped ``by``) plus good rate, cost per good answer,
        negative-feedback rate and retrieval hit rate of the same groups."""
        import polars as pl
        from infermeter.analytics.quality import quality_summary, retrieval_metrics, retrievals

        keys = list(by)
        requests = self.requests(since, until)
        judged = self.judged(requests)
        columns = [
            "judged_requests",
            "good_rate",
            "cost_per_good_answer_usd",
            "negative_feedback_rate",
        ]
        if judged is None:
            return frame.with_columns(
                *(pl.lit(None, pl.Float64).alias(c) for c in [*columns, "retrieval_hit_rate"])
            )
        quality = quality_summary(judged, requests, by=keys).select(*keys, *columns)
        if set(keys) <= {"tenant", "model", "prompt_version", "endpoint"}:
            found = retrievals(self.spans).pl()
            if since is not None:
                found = found.filter(pl.col("start_time") >= since)
            if until is not None:
                found = found.filter(pl.col("start_time") < until)
            hits = retrieval_metrics(found, by=keys).select(
                *keys, pl.col("hit_rate").alias("retrieval_hit_rate")
            )
        else:  # retrieval spans carry only those keys
            hits = quality.select(keys).with_columns(
                pl.lit(None, pl.Float64).alias("retrieval_hit_rate")
            )
        if not keys:
            return pl.concat([frame, quality, hits.select("retrieval_hit_rate")], how="horizontal")
        return frame.join(quality, on=keys, how="left", nulls_equal=True).join(
            hits, on=keys, how="left", nulls_equal=True
        )

    def drift_results(self) -> pl.DataFrame | None:
        """The latest drift results of this store; None when drift is not installed."""
        try:
            from infermeter.analytics.drift._results import read_drift_results, results_path
        except ImportError:
            return None  # drift lives behind its own extra
        if not isinstance(self.store, str | Path) or "://" in str(self.store):
            return None
        return read_drift_results(results_path(self.store))

    def newest_week(self) -> str | None:
        """The ISO week (``2026-W47``) of the newest span; None for an empty store."""
        newest = self.newest_span()
        if newest is None:
            return None
        year, number, _ = newest.isocalendar()
        return f"{year}-W{number:02d}"

    def weekly_report(
        self, week: str, *, drift: pl.DataFrame | None = None, top: int = 5
    ) -> WeeklyReport:
        from infermeter.analytics.report import iso_week_bounds, weekly_report

        start, end = iso_week_bounds(week)
        # The week and the one before it (week-over-week deltas), nothing else.
        requests = self.requests(start - timedelta(days=7), end)
        quality = None
        if self.has_evaluations():
            from infermeter.analytics.quality import quality_section

            quality = quality_section(
                self.con,
                requests,
                self.con.table("evaluations"),
                self.spans,
                start=start,
                end=end,
                previous_start=start - timedelta(days=7),
            )
        return weekly_report(
            requests,
            week=week,
            prices=self.prices,
            deployments=self.deployments,
            drift=drift,
            quality=quality,
            top=top,
            self_hosted=self.self_hosted(start, end),
        )

    def snapshot(
        self,
        options: RollupOptions | None = None,
        *,
        drift: pl.DataFrame | None = None,
        now: datetime | None = None,
        previous_tenants: Iterable[str] = (),
        previous_values: Mapping[str, Iterable[str]] | None = None,
        sealed: SealedRequests | None = None,
    ) -> Snapshot:
        """The rollups ``serve`` exports and ``alerts check`` evaluates.

        ``sealed`` (``serve``'s, kept across its refreshes): the request facts of sealed
        requests are read from it and only the rest are computed from spans; the numbers
        are the same (see :class:`~infermeter.analytics.rollup.SealedRequests` for the one
        limit). A ClickHouse store read as request rows ignores it."""
        from infermeter.analytics.query._clock import future_limit
        from infermeter.analytics.query._requests import _utc_naive as utc_naive
        from infermeter.analytics.rollup import compute_snapshot

        whole: dict[str, Any] = {}
        if self.request_rows is not None:
            # Request rows (step 2): the whole store's requests, and the newest span, from
            # ClickHouse; ``spans`` hold only the traces that need them.
            rows = self.request_rows
            whole = {"all_requests": self.requests(), "newest_span": rows.newest_span}
        elif sealed is not None:
            # The clock compute_snapshot would take, so the newest span is read once.
            now = utc_naive(now or datetime.now(UTC))
            ((newest, future),) = self.con.execute(
                _queries.NEWEST_SPAN, {"limit": future_limit(now)}
            ).fetchall()
            requests = sealed.requests(
                self.con, self.spans, newest, prices=self.prices, deployments=self.deployments
            )
            whole = {
                "all_requests": requests,
                "newest_span": lambda _limit: (newest, int(future)),
            }
        return compute_snapshot(
            self.con,
            **whole,
            prices=self.prices,
            deployments=self.deployments,
            options=options,
            drift=drift,
            now=now,
            previous_tenants=previous_tenants,
            previous_values=previous_values,
        )

    # -- lifetime -----------------------------------------------------------------------
    def close(self) -> None:
        try:
            self.con.close()
        finally:
            if self.request_rows is not None:
                self.request_rows.close()  # also closes the reader connection
            else:
                self._reader.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def open_analysis(
    store: str | Path,
    *,
    prices: PriceBook | str | Path | None = None,
    deployments: Deployments | str | Path | None = None,
    slo_ms: float | None = None,
    request_rows_after: str | None = None,
    spans: bool = False,
    **reader_options: Any,
) -> Analysis:
    """Open ``store`` for analysis (exported as ``infermeter.analytics.open``).

    ``prices`` / ``deployments``: loaded objects, or files to load (default: the
    ``INFERMETER_PRICES`` / ``INFERMETER_DEPLOYMENTS`` files, else the bundled defaults);
    ``slo_ms`` overrides every deployment's SLO. Bad files fail here, before the store is
    opened. ``reader_options`` go to :func:`infermeter.collectors.open_reader`
    (``since``/``until``: the window a ClickHouse store is read for).

    A ClickHouse store whose window (``since``/``until``; open-ended: longer than any) is
    longer than ``request_rows_after`` (:data:`STORE_READ_SETTINGS`) is read as request
    rows (step 2) unless ``spans`` asks for every span (see the module docstring).
    """
    from infermeter.collectors import open_reader, parse_store

    book = prices if isinstance(prices, PriceBook) else load_prices(prices)
    facts = (
        deployments
        if isinstance(deployments, Deployments)
        else load_deployments(deployments, prices=book, slo_ms=slo_ms)
    )
    setting = resolve(STORE_READ_SETTINGS, {"request_rows_after": request_rows_after})
    since, until = reader_options.get("since"), reader_options.get("until")
    if (
        not spans
        and parse_store(store).engine != "duckdb"
        and reads_request_rows(setting["request_rows_after"], since, until)
    ):
        from infermeter.collectors import open_clickhouse_request_rows

        rows = open_clickhouse_request_rows(
            parse_store(store), memory_limit=reader_options.get("memory_limit")
        )
        return Analysis(store, rows.connection, prices=book, deployments=facts, request_rows=rows)
    return Analysis(store, open_reader(store, **reader_options), prices=book, deployments=facts)


def _conform(table: Any, schema: Any) -> Any:
    """``table`` (ClickHouse's Arrow) cast to ``schema`` column by column; UTC timestamps
    become naive UTC, as the store keeps them."""
    import pyarrow as pa

    arrays = []
    for field in schema:
        column = table.column(field.name)
        if pa.types.is_timestamp(column.type) and column.type.tz is not None:
            column = column.cast(pa.timestamp(column.type.unit))
        arrays.append(column.cast(field.type))
    return pa.Table.from_arrays(arrays, schema=schema)
