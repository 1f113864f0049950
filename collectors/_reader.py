"""Read access to a store for report, serve, recommend and drift.

First version: opens the DuckDB file read-only. The collector owns writes; the
consistent-view-while-ingesting design replaces the body of ``open_reader`` without
changing its signature.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

__all__ = ["open_reader"]


def open_reader(store: str | Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the store at ``store`` with the ``spans`` and
    ``embeddings`` tables; raises ``FileNotFoundError`` when there is no store there."""
    import duckdb

    path = Path(store)
    if not path.exists():
        raise FileNotFoundError(f"no store at {path} (create one with `infermeter collect`)")
    return duckdb.connect(str(path), read_only=True)
