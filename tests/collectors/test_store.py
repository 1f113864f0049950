"""The store: schema, a real migration from version 1, atomic writes with the ingest
checkpoint, and snapshots."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from infermeter.collectors import (
    EMBEDDING_COLUMNS,
    SCHEMA_VERSION,
    SPAN_COLUMNS,
    apply_migrations,
)
from infermeter.collectors._flatten import flatten_request, to_arrow
from infermeter.collectors._schema import (
    EVALUATION_COLUMNS,
    EVENT_COLUMNS,
    MIGRATIONS,
    schema_version,
)
from infermeter.collectors._store import (
    StoreWriter,
    decode_batch,
    decode_batch_events,
    encode_batch,
)
from infermeter.collectors.testing import (
    embedding_record,
    insert_embeddings,
    insert_spans,
    otlp_request,
    otlp_span,
    span_record,
    store_in_memory,
)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE {table}").fetchall()]


def test_a_fresh_store_has_exactly_the_declared_columns() -> None:
    con = store_in_memory()
    assert _columns(con, "spans") == list(SPAN_COLUMNS)
    assert _columns(con, "embeddings") == list(EMBEDDING_COLUMNS)
    assert _columns(con, "events") == list(EVENT_COLUMNS)
    assert schema_version(con) == SCHEMA_VERSION


def test_a_version_1_store_is_migrated_without_losing_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    # Write a store exactly as version 1 did, with a row in it.
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for statement in MIGRATIONS[0]:
        con.execute(statement)
    con.execute("INSERT INTO schema_version VALUES (1)")
    con.execute(
        "INSERT INTO spans (trace_id, span_id, name, start_time, tenant, input_tokens) "
        "VALUES ('t', 's', 'old span', TIMESTAMP '2026-01-01 00:00:00', 'acme', 7)"
    )
    con.close()

    con = duckdb.connect(str(path))
    assert apply_migrations(con) == 1
    assert schema_version(con) == SCHEMA_VERSION == 4
    assert _columns(con, "spans") == list(SPAN_COLUMNS)
    assert _columns(con, "events") == list(EVENT_COLUMNS)
    assert _columns(con, "evaluations") == list(EVALUATION_COLUMNS)
    assert con.execute(
        "SELECT name, tenant, input_tokens, events, queue_ms, gpu_type FROM spans"
    ).fetchall() == [
        ("old span", "acme", 7, None, None, None),
    ]
    assert con.execute("SELECT count(*) FROM ingest_checkpoint").fetchone() == (0,)
    # Running again is a no-op.
    assert apply_migrations(con) == SCHEMA_VERSION
    con.close()


def test_a_store_from_a_newer_infermeter_is_refused() -> None:
    con = store_in_memory()
    con.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION + 1])
    with pytest.raises(ValueError, match="newer than this infermeter"):
        apply_migrations(con)


def test_a_failing_migration_leaves_the_store_at_its_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from infermeter.collectors import _schema

    con = duckdb.connect(":memory:")
    broken = (*MIGRATIONS, ("CREATE TABLE extra (x INTEGER)", "THIS IS NOT SQL"))
    monkeypatch.setattr(_schema, "MIGRATIONS", broken)
    monkeypatch.setattr(_schema, "SCHEMA_VERSION", len(broken))
    with pytest.raises(duckdb.ParserException):
        _schema.apply_migrations(con)
    assert schema_version(con) == len(MIGRATIONS)
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert "extra" not in tables


def test_test_helpers_fill_every_column() -> None:
    con = store_in_memory()
    insert_spans(con, [span_record(tenant="a", attributes={"k": 1}), span_record(tenant="b")])
    insert_embeddings(con, [embedding_record([1.0, 2.0], tenant="a")])
    assert con.execute("SELECT count(*), count(DISTINCT tenant) FROM spans").fetchone() == (2, 2)
    assert con.execute("SELECT attributes->>'$.k' FROM spans WHERE tenant = 'a'").fetchone() == (
        "1",
    )
    assert con.execute("SELECT vector FROM embeddings").fetchone() == ([1.0, 2.0],)


def _tables(n: int, tenant: str = "t") -> tuple[pa.Table, pa.Table]:
    from infermeter.agent import semconv as sc

    spans = [
        otlp_span(
            attributes={sc.TENANT_ID: tenant},
            events=[(sc.EMBEDDING_EVENT, {sc.EMBEDDING_VECTOR: [float(i), 1.0]})],
        )
        for i in range(n)
    ]
    return to_arrow(flatten_request(otlp_request(spans)))


def test_write_appends_rows_and_the_checkpoint_together(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path / "s.duckdb")
    spans, embeddings = _tables(3)
    writer.write(spans, embeddings, wal_id="log-a", seq=5)
    assert writer.checkpoint("log-a") == 5
    assert writer.checkpoint("log-b") == 0
    con = writer.connection()
    assert con.execute("SELECT count(*) FROM spans").fetchone() == (3,)
    assert con.execute("SELECT count(*) FROM embeddings").fetchone() == (3,)

    # A batch the store refuses leaves neither rows nor a checkpoint behind.
    bad = spans.set_column(
        spans.column_names.index("attributes"), "attributes", pa.array(["{not json"] * 3)
    )
    with pytest.raises(duckdb.Error):
        writer.write(bad, embeddings, wal_id="log-a", seq=6)
    assert writer.checkpoint("log-a") == 5
    assert con.execute("SELECT count(*) FROM spans").fetchone() == (3,)
    assert con.execute("SELECT count(*) FROM embeddings").fetchone() == (3,)
    con.close()
    writer.close()


def test_write_by_name_loads_batches_from_an_older_schema(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path / "s.duckdb")
    spans, embeddings = _tables(2)
    older = spans.drop_columns(["events", "links", "scope_version"])
    writer.write(older, embeddings)
    con = writer.connection()
    assert con.execute("SELECT count(*), count(events) FROM spans").fetchone() == (2, 0)
    con.close()
    writer.close()


def test_log_payloads_round_trip() -> None:
    spans, embeddings = _tables(4)
    payload = b"".join(bytes(part) for part in encode_batch(spans, embeddings))
    back_spans, back_embeddings = decode_batch(payload)
    assert back_spans.equals(spans)
    assert back_embeddings.equals(embeddings)


def test_snapshots_are_consistent_copies(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path / "s.duckdb")
    writer.write(*_tables(2), wal_id="w", seq=1)
    first = writer.snapshot(tmp_path / "snap-1.duckdb", wal_id="w")
    assert (first.spans, first.seq) == (2, 1)
    reader = duckdb.connect(str(first.path), read_only=True)
    assert reader.execute("SELECT count(*) FROM spans").fetchone() == (2,)

    writer.write(*_tables(3), wal_id="w", seq=2)
    second = writer.snapshot(tmp_path / "snap-2.duckdb", wal_id="w", base=first)
    assert (second.spans, second.seq, second.incremental) == (5, 2, True)
    assert second.rows == {"spans": 5, "embeddings": 5, "events": 0, "evaluations": 0}
    # A reader of the previous snapshot keeps its view; a new reader sees the new one.
    assert reader.execute("SELECT count(*) FROM spans").fetchone() == (2,)
    fresh = duckdb.connect(str(second.path), read_only=True)
    assert fresh.execute("SELECT count(*), count(DISTINCT span_id) FROM spans").fetchone() == (5, 5)
    assert fresh.execute("SELECT count(*) FROM embeddings").fetchone() == (5,)
    assert fresh.execute("SELECT max(version) FROM schema_version").fetchone() == (SCHEMA_VERSION,)
    assert (
        json.loads(
            str(fresh.execute("SELECT resource_attributes FROM spans LIMIT 1").fetchone()[0])  # type: ignore[index]
        )
        == {}
    )
    reader.close()
    fresh.close()
    writer.close()
    assert not list(tmp_path.glob("*.tmp"))


def test_an_incremental_snapshot_equals_a_full_copy_and_a_wrong_base_is_caught(
    tmp_path: Path,
) -> None:
    writer = StoreWriter(tmp_path / "s.duckdb")
    writer.write(*_tables(4), wal_id="w", seq=1)
    first = writer.snapshot(tmp_path / "a.duckdb", wal_id="w")
    for seq in range(2, 5):
        writer.write(*_tables(seq), wal_id="w", seq=seq)
    incremental = writer.snapshot(tmp_path / "b.duckdb", wal_id="w", base=first)
    full = writer.snapshot(tmp_path / "c.duckdb", wal_id="w")
    assert incremental.incremental and not full.incremental
    assert (
        incremental.rows
        == full.rows
        == {"spans": 13, "embeddings": 13, "events": 0, "evaluations": 0}
    )

    def content(path: Path) -> list[tuple[object, ...]]:
        con = duckdb.connect(str(path), read_only=True)
        try:
            return sorted(
                con.execute(
                    "SELECT s.span_id, s.trace_id, s.attributes, e.vector FROM spans s"
                    " JOIN embeddings e USING (span_id)"
                ).fetchall()
            )
        finally:
            con.close()

    assert content(incremental.path) == content(full.path)
    # A base whose counts do not match the store is not trusted.
    from dataclasses import replace

    wrong = replace(first, rows={"spans": 1, "embeddings": 1})
    rebuilt = writer.snapshot(tmp_path / "d.duckdb", wal_id="w", base=wrong)
    assert not rebuilt.incremental and rebuilt.rows == full.rows
    writer.close()


def test_checkpoint_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    writer = StoreWriter(path)
    writer.write(*_tables(1), wal_id="w", seq=41)
    writer.close()
    again = StoreWriter(path)
    assert again.checkpoint("w") == 41
    again.close()
    _ = datetime.now(UTC)


def test_a_log_payload_with_events_round_trips_and_old_payloads_still_decode() -> None:
    from infermeter.collectors._logs import event_row, events_to_arrow

    flat = flatten_request(otlp_request([otlp_span()]))
    spans, embeddings = to_arrow(flat)
    events = events_to_arrow(
        [
            event_row(
                time_us=1,
                observed_us=None,
                trace_id=None,
                span_id=None,
                service_name="svc",
                tenant=None,
                event_name="gen_ai.evaluation.result",
                attributes={"gen_ai.evaluation.name": "x", "gen_ai.evaluation.score.value": 2},
                source="log",
            )
        ]
    )
    with_events = b"".join(bytes(p) for p in encode_batch(spans, embeddings, events))
    back = decode_batch_events(with_events)
    assert back[0].equals(spans)
    assert back[1].equals(embeddings)
    assert back[2] is not None
    assert back[2].equals(events)
    assert back[2].column("score_value").to_pylist() == [2.0]
    old = b"".join(bytes(p) for p in encode_batch(spans, embeddings))
    assert decode_batch_events(old)[2] is None
    assert decode_batch(with_events)[0].equals(spans)
