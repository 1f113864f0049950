"""Drift results in their own DuckDB file inside the store's folder.

The store belongs to the collector (one writer process), so drift results live in their
own file beside the store's other companions: ``demo.duckdb`` →
``demo.duckdb.infermeter/drift_results.duckdb``, table ``drift_results`` (stores made
before this layout kept them in ``demo.results.duckdb``; that file is still read while
the new one does not exist). Every run
appends its rows (``computed_at`` and ``run_id`` identify the run), so history is kept;
readers (the exporter, alerts, the weekly report) take the latest run's rows per group and
feature with :func:`read_drift_results`.

A writer holds the file only for the one transaction that appends a run; a reader that
finds it locked retries for a few seconds (DuckDB refuses even read-only opens while
another process writes).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

from infermeter.analytics.drift._detect import RESULT_COLUMNS, empty_results
from infermeter.analytics.query._queries import sql_file

if TYPE_CHECKING:
    import duckdb
    import polars as pl

__all__ = [
    "RESULTS_TABLE",
    "open_results_for_writing",
    "read_drift_results",
    "results_path",
    "write_drift_results",
]

RESULTS_TABLE: Final = "drift_results"
_LEGACY_SUFFIX: Final = ".results.duckdb"
_LOCK_RETRY_S: Final = 5.0


def results_path(store: str | Path) -> Path:
    """The drift results file of ``store``: ``STORE.infermeter/drift_results.duckdb``.

    Writers create its folder (:func:`open_results_for_writing`); for reading, a store
    made before this layout still has ``x.results.duckdb`` beside it, which is returned
    while the new file does not exist."""
    from infermeter.collectors import StorePaths

    current = StorePaths.of(store).drift_results
    if not current.exists():
        legacy = _legacy_results_path(Path(store).expanduser().resolve())
        if legacy.exists():
            return legacy
    return current


def _legacy_results_path(store: Path) -> Path:
    if store.suffix == ".duckdb":
        return store.with_name(store.stem + _LEGACY_SUFFIX)
    return store.with_name(store.name + _LEGACY_SUFFIX)


def open_results_for_writing(store: str | Path) -> duckdb.DuckDBPyConnection:
    """A connection to ``store``'s drift results file, its folder created if needed."""
    import duckdb
    from infermeter.collectors import StorePaths

    target = StorePaths.of(store).drift_results
    target.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(target))


def write_drift_results(con: duckdb.DuckDBPyConnection, results: pl.DataFrame) -> int:
    """Append ``results`` (from :func:`detect_drift`) to ``drift_results`` on ``con`` in one
    transaction, creating the table if needed; returns the number of rows written."""
    missing = [c for c in RESULT_COLUMNS if c not in results.columns]
    if missing:
        raise ValueError(f"not drift results: missing columns {missing}")
    con.execute(sql_file("drift_results_schema"))
    if results.is_empty():
        return 0
    batch = results.select(RESULT_COLUMNS).to_arrow()
    columns = ", ".join(RESULT_COLUMNS)
    con.register("_infermeter_drift_batch", batch)
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                f"INSERT INTO {RESULTS_TABLE} ({columns}) "  # noqa: S608 - fixed column names
                f"SELECT {columns} FROM _infermeter_drift_batch"
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.unregister("_infermeter_drift_batch")
    return len(results)


def read_drift_results(
    source: duckdb.DuckDBPyConnection | str | Path, *, latest: bool = True
) -> pl.DataFrame:
    """Stored drift results (columns as :func:`detect_drift` returns them).

    ``source``: a connection to the results file, or the results file's path (see
    :func:`results_path`; a missing file gives an empty frame). ``latest``: only the
    latest run's rows of every group and feature (what dashboards and alerts show);
    otherwise every run, oldest first.
    """
    import polars as pl

    query = sql_file("drift_results_latest" if latest else "drift_results_all")
    if not isinstance(source, str | Path):
        if not _has_table(source):
            return empty_results()
        return pl.DataFrame(source.sql(query).pl()).select(RESULT_COLUMNS)
    path = Path(source)
    if not path.exists():
        return empty_results()
    con = _open_read_only(path)
    try:
        if not _has_table(con):
            return empty_results()
        return pl.DataFrame(con.sql(query).pl()).select(RESULT_COLUMNS)
    finally:
        con.close()


def _has_table(con: duckdb.DuckDBPyConnection) -> bool:
    ((count,),) = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [RESULTS_TABLE]
    ).fetchall()
    return bool(count)


def _open_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    import duckdb

    deadline = time.monotonic() + _LOCK_RETRY_S
    while True:
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.IOException:
            # Another process is appending a run; it holds the file for one transaction.
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)
