"""The store's schema: tables, typed span columns, and migrations between versions.

One row per span in ``spans``; the span-contract attributes get typed columns so that
analytics never parse JSON on the hot path, and everything else stays in
``attributes`` / ``resource_attributes`` (JSON) so nothing an emitter sent is dropped.
Sampled embedding vectors live in ``embeddings``. Results computed from the spans
(drift) are written by analytics into their own tables, never by the collector.

Migrations are append-only: a store at version N is brought to ``SCHEMA_VERSION`` by
running ``MIGRATIONS[N:]`` in order, each in the same transaction as the version bump.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "EMBEDDING_COLUMNS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SPAN_COLUMNS",
    "apply_migrations",
]

# (column, DuckDB type) in table order. The decoder produces Arrow columns with these
# names; analytics query them by name.
SPAN_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("trace_id", "VARCHAR"),  # 32 lowercase hex
    ("span_id", "VARCHAR"),  # 16 lowercase hex
    ("parent_span_id", "VARCHAR"),  # NULL for a root span
    ("name", "VARCHAR"),
    ("kind", "VARCHAR"),  # INTERNAL | SERVER | CLIENT | PRODUCER | CONSUMER | UNSPECIFIED
    ("service_name", "VARCHAR"),
    ("service_instance", "VARCHAR"),  # resource service.instance.id (host/pod when absent)
    ("start_time", "TIMESTAMP"),  # UTC
    ("end_time", "TIMESTAMP"),  # UTC
    ("duration_ms", "DOUBLE"),
    ("status_code", "VARCHAR"),  # UNSET | OK | ERROR
    ("status_message", "VARCHAR"),
    ("error_type", "VARCHAR"),
    ("is_entry", "BOOLEAN"),  # infermeter.entry, else "has no parent"
    ("tenant", "VARCHAR"),
    ("model", "VARCHAR"),
    ("response_model", "VARCHAR"),
    ("provider", "VARCHAR"),
    ("prompt_name", "VARCHAR"),
    ("prompt_version", "VARCHAR"),
    ("endpoint", "VARCHAR"),
    ("operation", "VARCHAR"),
    ("runtime", "VARCHAR"),
    ("platform", "VARCHAR"),
    ("cloud_provider", "VARCHAR"),
    ("region", "VARCHAR"),
    ("faas_name", "VARCHAR"),
    ("cold_start", "BOOLEAN"),
    ("init_duration_ms", "DOUBLE"),
    ("initialization_type", "VARCHAR"),
    ("memory_mb", "DOUBLE"),
    ("input_tokens", "BIGINT"),
    ("output_tokens", "BIGINT"),
    ("cache_read_tokens", "BIGINT"),
    ("cache_write_tokens", "BIGINT"),
    ("reasoning_tokens", "BIGINT"),
    ("ttft_ms", "DOUBLE"),
    ("stream", "BOOLEAN"),
    ("throttled", "BOOLEAN"),
    ("retry_after_s", "DOUBLE"),
    ("attempt", "INTEGER"),  # 1 + infermeter.retries
    ("attributes", "JSON"),  # the remaining span attributes
    ("resource_attributes", "JSON"),  # the remaining resource attributes
    ("scope_name", "VARCHAR"),
)

EMBEDDING_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("trace_id", "VARCHAR"),
    ("span_id", "VARCHAR"),
    ("time", "TIMESTAMP"),  # UTC, the event's timestamp
    ("service_name", "VARCHAR"),
    ("tenant", "VARCHAR"),
    ("model", "VARCHAR"),
    ("prompt_version", "VARCHAR"),
    ("endpoint", "VARCHAR"),
    ("kind", "VARCHAR"),  # query | document | response
    ("dim", "INTEGER"),
    ("vector", "FLOAT[]"),
)


def _create(table: str, columns: tuple[tuple[str, str], ...]) -> str:
    body = ",\n    ".join(f"{name} {sql_type}" for name, sql_type in columns)
    return f"CREATE TABLE IF NOT EXISTS {table} (\n    {body}\n)"


# Each entry upgrades version i to i + 1. Never edit a released entry: add a new one.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        _create("spans", SPAN_COLUMNS),
        _create("embeddings", EMBEDDING_COLUMNS),
    ),
)

SCHEMA_VERSION: Final = len(MIGRATIONS)


def apply_migrations(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the store behind ``con`` to ``SCHEMA_VERSION``; returns the version it was at."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    current = int(row[0]) if row and row[0] is not None else 0
    if current > SCHEMA_VERSION:
        raise ValueError(
            f"store schema version {current} is newer than this infermeter ({SCHEMA_VERSION}); "
            "upgrade infermeter"
        )
    for version in range(current, SCHEMA_VERSION):
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in MIGRATIONS[version]:
                con.execute(statement)
            con.execute("INSERT INTO schema_version VALUES (?)", [version + 1])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return current
