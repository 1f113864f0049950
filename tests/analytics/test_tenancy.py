"""Tenant isolation: tokens pinned to two tenants write into each other's traces through
the real collector, and neither tenant's numbers move; the foreign spans are counted."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from infermeter.agent import semconv as sc
from infermeter.analytics import load_deployments, load_prices, request_table
from infermeter.collectors.testing import (
    collector_process,
    insert_spans,
    otlp_request,
    otlp_span,
    send_otlp,
    span_record,
    store_in_memory,
)

from infermeter import main

ACME = "acme-ingest-token-5d1c"
GLOBEX = "globex-ingest-token-9e27"
T0 = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)
# A model only the test's pricing file knows: $1 per million input tokens, $2 per million
# output tokens.
MODEL = "tenancy-test-llm"
PRICING = f'[tokens."{MODEL}"]\ninput_per_million = 1.0\noutput_per_million = 2.0\n'


def _cost(input_tokens: int, output_tokens: int) -> float:
    return input_tokens * 1.0 / 1e6 + output_tokens * 2.0 / 1e6


def _auth_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.toml"
    lines = []
    for name, token in (("acme", ACME), ("globex", GLOBEX)):
        digest = hashlib.sha256(token.encode()).hexdigest()
        lines.append(f'[[tokens]]\nname = "{name}-prod"\ntenant = "{name}"\nsha256 = "{digest}"\n')
    path.write_text("\n".join(lines))
    return path


def _llm(
    trace: bytes,
    parent: bytes,
    start: datetime,
    input_tokens: int,
    output_tokens: int,
    **extra: Any,
) -> Any:
    return otlp_span(
        "chat " + MODEL,
        trace_id=trace,
        parent_span_id=parent,
        start=start,
        duration_ms=50,
        kind=3,
        attributes={
            sc.GEN_AI_REQUEST_MODEL: MODEL,
            sc.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
            **extra,
        },
    )


def _entry(trace: bytes, span: bytes, tenant: str, start: datetime) -> Any:
    return otlp_span(
        "handler",
        trace_id=trace,
        span_id=span,
        start=start,
        duration_ms=400,
        kind=2,
        attributes={sc.TENANT_ID: tenant, sc.INFERMETER_ENDPOINT: "chat"},
    )


@pytest.mark.slow
def test_pinned_tokens_writing_into_each_others_traces_change_nobodys_numbers(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store.duckdb"
    pricing = tmp_path / "prices.toml"
    pricing.write_text(PRICING)
    globex_trace, acme_trace = b"\x01" * 16, b"\x02" * 16
    globex_entry, acme_entry = b"\x11" * 8, b"\x22" * 8
    with collector_process(store, auth_file=_auth_file(tmp_path)) as proc:
        endpoint = proc.traces_endpoint

        def send(token: str, *spans: Any) -> None:
            assert send_otlp(endpoint, otlp_request(spans), token=token).status == 200

        # Each tenant's own request: an entry span and one model call.
        send(
            GLOBEX,
            _entry(globex_trace, globex_entry, "globex", T0),
            _llm(globex_trace, globex_entry, T0 + timedelta(milliseconds=10), 1000, 100),
        )
        send(
            ACME,
            _entry(acme_trace, acme_entry, "acme", T0),
            _llm(acme_trace, acme_entry, T0 + timedelta(milliseconds=10), 3000, 300),
        )
        # Hostile: each token writes huge, throttled, retried children under the other
        # tenant's entry span; the spans claim the victim's tenant, the token pins its own.
        hostile = {sc.TENANT_ID: "x", sc.INFERMETER_THROTTLED: True, sc.INFERMETER_RETRIES: 4}
        send(
            ACME,
            _llm(
                globex_trace,
                globex_entry,
                T0 + timedelta(milliseconds=20),
                10**9,
                10**6,
                **{**hostile, sc.TENANT_ID: "globex"},
            ),
        )
        send(
            GLOBEX,
            _llm(
                acme_trace,
                acme_entry,
                T0 + timedelta(milliseconds=20),
                10**9,
                10**6,
                **{**hostile, sc.TENANT_ID: "acme"},
            ),
        )
        # Hostile: acme also opens its own request inside globex's trace, before globex's
        # second model call, trying to take that call over.
        acme_root = b"\x33" * 8
        send(ACME, _entry(globex_trace, acme_root, "globex", T0 + timedelta(milliseconds=30)))
        send(
            GLOBEX,
            _llm(globex_trace, globex_entry, T0 + timedelta(milliseconds=40), 500, 50),
        )
        assert proc.stop() == 0

    con = duckdb.connect(str(store), read_only=True)
    prices = load_prices(pricing)
    requests = request_table(
        con, con.table("spans"), prices=prices, deployments=load_deployments(prices=prices)
    )
    rows = {r["span_id"]: r for r in requests.pl().iter_rows(named=True)}
    con.close()
    globex = rows[globex_entry.hex()]
    acme = rows[acme_entry.hex()]
    intruder = rows[acme_root.hex()]
    assert globex["tenant"] == "globex" and acme["tenant"] == "acme"
    # Globex: its two model calls only (1000+500 in, 100+50 out), no throttle, no retry.
    assert (globex["input_tokens"], globex["output_tokens"]) == (1500, 150)
    assert globex["token_cost_usd"] == pytest.approx(_cost(1500, 150))
    assert not globex["throttled"] and globex["throttle_events"] == 0
    assert globex["retries"] == 0
    assert globex["foreign_spans"] == 1
    assert acme["token_cost_usd"] == pytest.approx(_cost(3000, 300))
    assert (acme["input_tokens"], acme["retries"], acme["foreign_spans"]) == (3000, 0, 1)
    assert not acme["throttled"]
    # The entry acme opened in globex's trace is acme's request, holding nothing of globex.
    assert intruder["tenant"] == "acme"
    assert (intruder["input_tokens"], intruder["token_cost_usd"]) == (0, 0.0)


def test_an_entry_without_tenant_keeps_its_tagged_children() -> None:
    """Unpinned writers: children naming a tenant under an entry that names none are the
    request's (its tenant comes from them), never foreign."""
    con = store_in_memory()
    entry = span_record(start=T0.replace(tzinfo=None), endpoint="chat")
    insert_spans(
        con,
        [
            entry,
            span_record(
                start=T0.replace(tzinfo=None) + timedelta(milliseconds=5),
                trace_id=entry["trace_id"],
                parent_span_id=entry["span_id"],
                is_entry=False,
                tenant="acme",
                model=MODEL,
                input_tokens=1000,
                output_tokens=0,
            ),
        ],
    )
    prices = load_prices(None)
    rows = request_table(
        con, con.table("spans"), prices=prices, deployments=load_deployments(prices=prices)
    ).pl()
    assert rows["tenant"].to_list() == ["acme"]
    assert rows["input_tokens"].to_list() == [1000]
    assert rows["foreign_spans"].to_list() == [0]


def test_metrics_reports_spans_left_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.duckdb"
    con = duckdb.connect(str(path))
    from infermeter.collectors import apply_migrations

    apply_migrations(con)
    entry = span_record(start=T0.replace(tzinfo=None), tenant="globex", endpoint="chat")
    insert_spans(
        con,
        [
            entry,
            span_record(
                start=T0.replace(tzinfo=None) + timedelta(milliseconds=5),
                trace_id=entry["trace_id"],
                parent_span_id=entry["span_id"],
                is_entry=False,
                tenant="acme",
                input_tokens=10**9,
            ),
        ],
    )
    con.close()
    code = main(["metrics", "--store", str(path), "--by", "tenant", "--format", "csv"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "1 span(s) naming another tenant" in err
    assert "1 request(s)" in err
    (row,) = csv.DictReader(io.StringIO(out))
    assert row["tenant"] == "globex" and row["requests"] == "1"
    assert float(row["input_tokens_per_request"]) == 0.0


def test_the_weekly_report_says_how_many_spans_it_left_out() -> None:
    from infermeter.analytics import weekly_report

    con = store_in_memory()
    entry = span_record(start=T0.replace(tzinfo=None), tenant="globex", endpoint="chat")
    insert_spans(
        con,
        [
            entry,
            *(
                span_record(
                    start=T0.replace(tzinfo=None) + timedelta(milliseconds=5 + i),
                    trace_id=entry["trace_id"],
                    parent_span_id=entry["span_id"],
                    is_entry=False,
                    tenant="acme",
                    input_tokens=10**9,
                )
                for i in range(3)
            ),
        ],
    )
    prices = load_prices(None)
    deployments = load_deployments(prices=prices)
    requests = request_table(
        con, con.table("spans"), prices=prices, deployments=deployments
    ).materialize()
    report = weekly_report(requests, week="2026-W47", prices=prices, deployments=deployments)
    assert any(note.startswith("3 spans naming another tenant") for note in report.notes)
    assert "left out of 1 requests" in " ".join(report.notes)
