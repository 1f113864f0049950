"""``infermeter export``: the store as Parquet, hive-partitioned by UTC day.

Layout: ``DIR/spans/date=YYYY-MM-DD/data_0.parquet`` and
``DIR/embeddings/date=YYYY-MM-DD/data_0.parquet`` — what DuckDB, polars, pandas, Spark
and ClickHouse read with hive partitioning (``read_parquet('DIR/spans/**/*.parquet',
hive_partitioning = true)``). The partition column is not repeated inside the files.
The export reads through :func:`open_reader`, so it works while a collector ingests.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from infermeter.collectors._reader import open_reader
from infermeter.collectors._store import quote_path

__all__ = ["ExportResult", "write_parquet"]

# (table, timestamp column that decides the day)
_TABLES: Final = (("spans", "start_time"), ("embeddings", "time"))


@dataclass(frozen=True, slots=True)
class ExportResult:
    directory: Path
    spans: int
    embeddings: int
    days: int


def write_parquet(
    store: str | Path, directory: str | Path, *, overwrite: bool = False
) -> ExportResult:
    """Write every span and embedding of ``store`` under ``directory`` (see the module).

    An existing ``spans``/``embeddings`` folder there is an error unless ``overwrite``
    (then only those two folders are replaced; nothing else in ``directory`` is touched).
    """
    out = Path(directory).expanduser()
    targets = {table: out / table for table, _ in _TABLES}
    existing = [str(p) for p in targets.values() if p.exists() and any(p.iterdir())]
    if existing and not overwrite:
        raise ValueError(f"{', '.join(existing)} already exists; pass --overwrite to replace it")
    con = open_reader(store)
    try:
        counts: dict[str, int] = {}
        days: set[str] = set()
        for table, column in _TABLES:
            target = targets[table]
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            row = con.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 — fixed names
            counts[table] = int(row[0]) if row else 0
            if not counts[table]:
                continue
            con.execute(
                f"COPY (SELECT *, CAST({column} AS DATE) AS date FROM {table}) "  # noqa: S608
                f"TO {quote_path(target)} (FORMAT parquet, PARTITION_BY (date), COMPRESSION zstd)"
            )
            days.update(
                str(r[0])
                for r in con.execute(
                    f"SELECT DISTINCT CAST({column} AS DATE) FROM {table}"  # noqa: S608
                ).fetchall()
            )
    finally:
        con.close()
    return ExportResult(out, counts["spans"], counts["embeddings"], len(days))
