"""infermeter.collectors: the OTLP/HTTP receiver, file importers and the DuckDB store.

- :class:`Collector` — receive OTLP/HTTP (``infermeter collect``) into a store,
  durably (write-ahead log) and with backpressure.
- :func:`open_reader` — THE way to read a store, consistent and never blocking ingest.
- :func:`parse_store` — which engine a store name is on (DuckDB path, ``clickhouse://``,
  ``chdb:///``); the one place the engine is chosen.
- :func:`import_otlp` / :func:`read_otlp` — OTLP JSON / protobuf files (``infermeter import``).
- :func:`write_parquet` — Parquet partitioned by day (``infermeter export``).
- :class:`StorePaths` — where a store keeps its side files (``STORE.infermeter/``: WAL,
  snapshots, runtime file, drift results).
- ``SPAN_COLUMNS`` / ``EMBEDDING_COLUMNS`` / :func:`apply_migrations` — the store schema.
- ``ATTRIBUTE_MAP`` / ``SIGNAL_MAP`` — which attribute of which GenAI/OTel convention
  (semconv current and pre-1.27, OpenLIT, OpenLLMetry, OpenInference, HTTP) fills which
  typed column, newest name first; any other engine's view over spans reads the same table.

Nothing heavy (duckdb, pyarrow) is imported until one of these runs.
"""

from __future__ import annotations

from infermeter.collectors._clickhouse_reader import (
    RequestRead,
    RequestRows,
    open_clickhouse_request_rows,
)
from infermeter.collectors._collector import Collector
from infermeter.collectors._conventions import (
    ATTRIBUTE_MAP,
    SIGNAL_MAP,
    AttributeMapping,
    SignalMapping,
)
from infermeter.collectors._export import ExportResult, write_parquet
from infermeter.collectors._import import ImportReport, import_otlp, read_otlp
from infermeter.collectors._reader import open_reader, reader_memory_limit
from infermeter.collectors._schema import (
    EMBEDDING_COLUMNS,
    SCHEMA_VERSION,
    SPAN_COLUMNS,
    apply_migrations,
)
from infermeter.collectors._settings import COLLECTOR_SETTINGS
from infermeter.collectors._sidecar import StoreBusyError, StorePaths
from infermeter.collectors._store_url import StoreLocation, parse_store

__all__ = [
    "ATTRIBUTE_MAP",
    "COLLECTOR_SETTINGS",
    "EMBEDDING_COLUMNS",
    "SCHEMA_VERSION",
    "SIGNAL_MAP",
    "SPAN_COLUMNS",
    "AttributeMapping",
    "Collector",
    "ExportResult",
    "ImportReport",
    "RequestRead",
    "RequestRows",
    "SignalMapping",
    "StoreBusyError",
    "StoreLocation",
    "StorePaths",
    "apply_migrations",
    "import_otlp",
    "open_clickhouse_request_rows",
    "open_reader",
    "parse_store",
    "read_otlp",
    "reader_memory_limit",
    "write_parquet",
]
