"""``infermeter import`` (every OTLP file format, atomic per file, de-duplicated, routed
through a running collector) and ``infermeter export`` (Parquet by day)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from infermeter.agent import semconv as sc
from infermeter.collectors import import_otlp, read_otlp, write_parquet
from infermeter.collectors._store import StoreWriter
from infermeter.collectors.testing import (
    collector_process,
    embedding_record,
    insert_embeddings,
    insert_spans,
    otlp_json,
    otlp_request,
    otlp_span,
    send_otlp,
    span_record,
)

from infermeter import main

SPEC_EXAMPLE = json.loads((Path(__file__).parent / "data" / "otlp_spec_example.json").read_text())


def _request(n: int, tenant: str = "t") -> object:
    return otlp_request(
        [
            otlp_span(
                attributes={sc.TENANT_ID: tenant},
                events=[(sc.EMBEDDING_EVENT, {sc.EMBEDDING_VECTOR: [0.5]})],
            )
            for _ in range(n)
        ]
    )


def _count(store: Path, sql: str = "SELECT count(*) FROM spans") -> int:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return int(con.execute(sql).fetchall()[0][0])
    finally:
        con.close()


@pytest.fixture
def otlp_files(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    files = {
        "lines.jsonl": "\n".join(json.dumps(otlp_json(_request(2))) for _ in range(3)) + "\n",
        "pretty.json": json.dumps(otlp_json(_request(2)), indent=2),
        "spec.json": json.dumps(SPEC_EXAMPLE),
    }
    out = {}
    for name, text in files.items():
        (folder / name).write_text(text)
        out[name] = folder / name
    stream = b"".join(
        len(body).to_bytes(4, "big") + body
        for body in (_request(1).SerializeToString(), _request(2).SerializeToString())  # type: ignore[attr-defined]
    )
    (folder / "stream.pb").write_bytes(stream)
    (folder / "single.pb").write_bytes(_request(1).SerializeToString())  # type: ignore[attr-defined]
    lines = "\n".join(json.dumps(otlp_json(_request(1))) for _ in range(2))
    (folder / "lines.jsonl.gz").write_bytes(gzip.compress(lines.encode()))
    out.update({n: folder / n for n in ("stream.pb", "single.pb", "lines.jsonl.gz")})
    return out


EXPECTED = {
    "lines.jsonl": 6,
    "pretty.json": 2,
    "spec.json": 1,
    "stream.pb": 3,
    "single.pb": 1,
    "lines.jsonl.gz": 2,
}


def test_every_format_is_read(otlp_files: dict[str, Path]) -> None:
    for name, path in otlp_files.items():
        spans = sum(
            len(ss.spans)
            for _, request in read_otlp(path)
            for rs in request.resource_spans
            for ss in rs.scope_spans
        )
        assert spans == EXPECTED[name], name


def test_import_loads_every_file_and_skips_repeats(
    tmp_path: Path, otlp_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store.duckdb"
    assert main(["import", "--store", str(store), *map(str, otlp_files.values())]) == 0
    err = capsys.readouterr().err
    assert "15 spans from 6 file(s); 0 failed, 0 skipped" in err
    assert _count(store) == 15
    assert _count(store, "SELECT count(*) FROM embeddings") == 14  # the spec example has none
    assert _count(store, "SELECT count(*) FROM spans WHERE trace_id = lower(trace_id)") == 15

    assert main(["import", "--store", str(store), str(otlp_files["pretty.json"])]) == 0
    assert "skipped (same content imported from" in capsys.readouterr().err
    assert _count(store) == 15
    assert main(["import", "--store", str(store), "--force", str(otlp_files["pretty.json"])]) == 0
    assert _count(store) == 17


def test_a_malformed_file_fails_alone_and_atomically(
    tmp_path: Path, otlp_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(otlp_json(_request(4))) + "\n{not json\n")
    zstd = tmp_path / "x.zst"
    zstd.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 10)
    store = tmp_path / "store.duckdb"
    code = main(
        ["import", "--store", str(store), str(bad), str(otlp_files["spec.json"]), str(zstd)]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert f"{bad}: failed ({bad}:line 2: malformed JSON" in err
    assert "zstd -d x.zst" in err
    assert _count(store) == 1  # only the good file; none of bad.jsonl's first line
    report = import_otlp(store, [tmp_path / "missing.json"])
    assert report.failed and "No such file" in report.failed[0].message


def test_import_goes_through_a_running_collector(
    tmp_path: Path, otlp_files: dict[str, Path]
) -> None:
    store = tmp_path / "store.duckdb"
    with collector_process(store) as proc:
        report = import_otlp(store, [otlp_files["lines.jsonl"], otlp_files["stream.pb"]])
        assert report.via_collector == proc.url
        assert [f.spans for f in report.files] == [6, 3]
        assert "not atomic per file" in report.lines()[0]
        assert proc.stop() == 0
    assert _count(store) == 9


def test_import_reports_a_store_held_by_a_reader(
    tmp_path: Path, otlp_files: dict[str, Path]
) -> None:
    store = tmp_path / "store.duckdb"
    StoreWriter(store).close()
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(store)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
        with pytest.raises(OSError, match="close the program reading it"):
            import_otlp(store, [otlp_files["spec.json"]])
    finally:
        reader.kill()
        reader.wait()
    assert import_otlp(store, [otlp_files["spec.json"]]).spans == 1


# Another process holding the store open read-only until killed.
READER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("open", flush=True)
time.sleep(600)
"""


def _filled_store(path: Path) -> None:
    day = datetime(2026, 11, 16, 23, 0, tzinfo=UTC)
    con = duckdb.connect(str(path))
    from infermeter.collectors import apply_migrations

    apply_migrations(con)
    insert_spans(
        con,
        [span_record(start=day, tenant="a", attributes={"k": 1}) for _ in range(3)]
        + [span_record(start=day + timedelta(hours=2), tenant="b") for _ in range(2)],
    )
    insert_embeddings(con, [embedding_record([1.0, 2.0], tenant="a")])
    con.close()


def test_export_writes_parquet_partitioned_by_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store.duckdb"
    _filled_store(store)
    out = tmp_path / "out"
    assert main(["export", "--store", str(store), "--parquet", str(out)]) == 0
    assert "5 spans, 1 embeddings, 2 day(s)" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "spans").iterdir()) == [
        "date=2026-11-16",
        "date=2026-11-17",
    ]
    con = duckdb.connect()
    rows = con.execute(
        "SELECT date::VARCHAR, tenant, count(*), any_value(attributes) FROM read_parquet(?, "
        "hive_partitioning = true) GROUP BY ALL ORDER BY ALL",
        [str(out / "spans" / "**" / "*.parquet")],
    ).fetchall()
    assert [(*r[:3], r[3] and json.loads(r[3])) for r in rows] == [
        ("2026-11-16", "a", 3, {"k": 1}),
        ("2026-11-17", "b", 2, None),
    ]
    vector = con.execute(
        "SELECT vector FROM read_parquet(?, hive_partitioning = true)",
        [str(out / "embeddings" / "**" / "*.parquet")],
    ).fetchall()
    assert vector == [([1.0, 2.0],)]

    (out / "README.txt").write_text("mine")
    with pytest.raises(ValueError, match="--overwrite"):
        write_parquet(store, out)
    result = write_parquet(store, out, overwrite=True)
    assert (result.spans, result.embeddings, result.days) == (5, 1, 2)
    assert (out / "README.txt").read_text() == "mine"


@pytest.mark.slow
def test_export_works_while_a_collector_ingests(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    out = tmp_path / "out"
    with collector_process(store) as proc:
        assert send_otlp(proc.traces_endpoint, _request(25)).status == 200  # type: ignore[arg-type]
        result = write_parquet(store, out)
        assert send_otlp(proc.traces_endpoint, _request(5)).status == 200  # type: ignore[arg-type]
    assert (result.spans, result.embeddings, result.days) == (25, 25, 1)
