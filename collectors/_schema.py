"""The store's schema: tables, typed span columns, and migrations between versions.

One row per span in ``spans``; the span-contract attributes get typed columns so that
analytics never parse JSON on the hot path, and everything else stays in
``attributes`` / ``resource_attributes`` / ``events`` / ``links`` (JSON) so nothing an
emitter sent is dropped. Sampled embedding vectors live in ``embeddings``. Results
computed from the spans (drift) are written by analytics into their own tables, never by
the collector.

``ingest_checkpoint`` makes the collector's write-ahead log exactly-once: the highest
log sequence number stored is committed in the same transaction as the rows it carried,
so a replay after a crash skips exactly what already landed. ``import_log`` remembers
which files ``infermeter import`` loaded (by content hash) so a re-run does not
duplicate them.

Migrations are append-only: a store at version N is brought to ``SCHEMA_VERSION`` by
running ``MIGRATIONS[N:]`` in order, each in the same transaction as the version bump.
A released migration is frozen, so its DDL is spelled out here rather than derived
from ``SPAN_COLUMNS`` (which describes the newest version).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "EMBEDDING_COLUMNS",
    "EVALUATION_COLUMNS",
    "EVENT_COLUMNS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SPAN_COLUMNS",
    "apply_migrations",
    "arrow_schema",
    "schema_version",
]

# (column, DuckDB type) in table order, at the newest schema version. The decoder
# produces Arrow columns with these names; analytics query them by name.
_V1_SPAN_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("trace_id", "VARCHAR"),  # 32 lowercase hex
    ("span_id", "VARCHAR"),  # 16 lowercase hex
    ("parent_span_id", "VARCHAR"),  # NULL for a root span
    ("name", "VARCHAR"),
    ("kind", "VARCHAR"),  # INTERNAL | SERVER | CLIENT | PRODUCER | CONSUMER | UNSPECIFIED
    ("service_name", "VARCHAR"),
    ("service_instance", "VARCHAR"),  # resource service.instance.id (host.name when absent)
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

# Added by migration 2.
_V2_SPAN_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("scope_version", "VARCHAR"),
    # [{"name", "time_unix_nano", "attributes"}] — span events other than embeddings
    ("events", "JSON"),
    # [{"trace_id", "span_id", "attributes"}]
    ("links", "JSON"),
)

# Added by migration 3: what a model server reports (vLLM, SGLang, TGI/TEI, Triton, or a
# custom server through annotate) and the GPUs it runs on (resource facts).
_V3_SPAN_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("queue_ms", "DOUBLE"),  # waiting for a batch slot in the model server
    ("model_ms", "DOUBLE"),  # in the model (prefill + decode / compute)
    ("gpu_type", "VARCHAR"),  # infermeter.gpu.type
    ("gpu_count", "INTEGER"),  # infermeter.gpu.count
)

SPAN_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    _V1_SPAN_COLUMNS + _V2_SPAN_COLUMNS + _V3_SPAN_COLUMNS
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

# Added by migration 4: events that arrive as OTLP log records (``/v1/logs``) and GenAI
# evaluation results however they arrive (span event or log record). ``events`` keeps
# every log record whole; the typed evaluation columns are filled for
# ``gen_ai.evaluation.result`` rows, which the writer also copies into ``evaluations``.
EVENT_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("time", "TIMESTAMP"),  # UTC; the record's time, else its observed time
    ("observed_time", "TIMESTAMP"),
    ("trace_id", "VARCHAR"),  # NULL when the record is not tied to a span
    ("span_id", "VARCHAR"),
    ("service_name", "VARCHAR"),
    ("tenant", "VARCHAR"),  # pinned by the ingest token, else the record's tenant.id
    ("event_name", "VARCHAR"),  # LogRecord.event_name, else the span event's name
    ("severity_number", "INTEGER"),
    ("severity_text", "VARCHAR"),
    ("body", "JSON"),
    ("attributes", "JSON"),
    ("resource_attributes", "JSON"),
    ("scope_name", "VARCHAR"),
    ("source", "VARCHAR"),  # log | span_event
    ("evaluation_name", "VARCHAR"),
    ("score_value", "DOUBLE"),
    ("score_label", "VARCHAR"),
    ("explanation", "VARCHAR"),
    ("response_id", "VARCHAR"),
)

# One row per evaluation result, linked to the evaluated request by span id, else trace
# id (its entry span), else gen_ai.response.id — analytics do the join at read time, so
# a result that arrives before or long after its span links all the same.
EVALUATION_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("time", "TIMESTAMP"),
    ("trace_id", "VARCHAR"),
    ("span_id", "VARCHAR"),
    ("response_id", "VARCHAR"),
    ("service_name", "VARCHAR"),
    ("tenant", "VARCHAR"),
    ("name", "VARCHAR"),  # gen_ai.evaluation.name
    ("score_value", "DOUBLE"),
    ("score_label", "VARCHAR"),
    ("explanation", "VARCHAR"),
    ("source", "VARCHAR"),  # log | span_event
    ("attributes", "JSON"),  # the event's other attributes
)


def _create(table: str, columns: tuple[tuple[str, str], ...]) -> str:
    body = ",\n    ".join(f"{name} {sql_type}" for name, sql_type in columns)
    return f"CREATE TABLE IF NOT EXISTS {table} (\n    {body}\n)"


# Each entry upgrades version i to i + 1. Never edit a released entry: add a new one.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        _create("spans", _V1_SPAN_COLUMNS),
        _create("embeddings", EMBEDDING_COLUMNS),
    ),
    (
        *(f"ALTER TABLE spans ADD COLUMN {name} {sql_type}" for name, sql_type in _V2_SPAN_COLUMNS),
        # One row per write-ahead log (its id lives in the log's directory).
        "CREATE TABLE ingest_checkpoint ("
        " wal_id VARCHAR PRIMARY KEY, seq BIGINT NOT NULL, updated_at TIMESTAMP NOT NULL)",
        "CREATE TABLE import_log ("
        " sha256 VARCHAR PRIMARY KEY, path VARCHAR NOT NULL, spans BIGINT NOT NULL,"
        " imported_at TIMESTAMP NOT NULL)",
    ),
    tuple(f"ALTER TABLE spans ADD COLUMN {name} {sql_type}" for name, sql_type in _V3_SPAN_COLUMNS),
    (
        _create("events", EVENT_COLUMNS),
        _create("evaluations", EVALUATION_COLUMNS),
    ),
)

SCHEMA_VERSION: Final = len(MIGRATIONS)


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The version of the store behind ``con`` (0 for an empty database)."""
    # fetchall, not fetchone: a half-read result keeps its transaction open, and an
    # open transaction on one cursor blocks CHECKPOINT on the others.
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database()"
        " AND schema_name = 'main' AND table_name = 'schema_version'"
    ).fetchall()
    if not exists[0][0]:
        return 0
    rows = con.execute("SELECT max(version) FROM schema_version").fetchall()
    return int(rows[0][0]) if rows[0][0] is not None else 0


def apply_migrations(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the store behind ``con`` to ``SCHEMA_VERSION``; returns the version it was at.

    Raises ``ValueError`` for a store written by a newer infermeter (never downgrades).
    """
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    current = schema_version(con)
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


def arrow_schema(columns: tuple[tuple[str, str], ...]) -> Any:
    """The ``pyarrow.Schema`` the decoder builds for ``columns`` (JSON travels as text)."""
    import pyarrow as pa

    types = {
        "VARCHAR": pa.string(),
        "JSON": pa.string(),
        "TIMESTAMP": pa.timestamp("us"),
        "DOUBLE": pa.float64(),
        "BOOLEAN": pa.bool_(),
        "BIGINT": pa.int64(),
        "INTEGER": pa.int32(),
        "FLOAT[]": pa.list_(pa.float32()),
    }
    return pa.schema([(name, types[sql_type]) for name, sql_type in columns])
