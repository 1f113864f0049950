"""request_table(): attribution of nested spans, token cost at query time, compute cost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from infermeter.analytics import (
    Deployments,
    load_deployments,
    load_prices,
    request_table,
    unpriced_models,
)
from infermeter.collectors.testing import insert_spans, span_record, store_in_memory

T0 = datetime(2026, 11, 16, 10, 0, 0)
LAMBDA_GB_S = 0.0000166667
LAMBDA_REQUEST = 0.0000002

CONTRACT_COLUMNS = (
    "trace_id",
    "span_id",
    "start_time",
    "end_time",
    "duration_ms",
    "service_name",
    "service_instance",
    "tenant",
    "endpoint",
    "runtime",
    "platform",
    "provider",
    "model",
    "prompt_name",
    "prompt_version",
    "operation",
    "is_error",
    "cold_start",
    "init_duration_ms",
    "memory_mb",
    "throttled",
    "throttle_events",
    "retries",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "ttft_ms",
    "token_cost_usd",
    "unpriced",
    "compute_cost_usd",
    "cost_usd",
    "slo_ms",
)


def _child(entry: dict[str, Any], at_ms: float, **fields: Any) -> dict[str, Any]:
    fields.setdefault("service_name", entry["service_name"])
    return span_record(
        start=entry["start_time"] + timedelta(milliseconds=at_ms),
        trace_id=entry["trace_id"],
        parent_span_id=fields.pop("parent", entry["span_id"]),
        is_entry=False,
        **fields,
    )


def _table(
    rows: list[dict[str, Any]],
    *,
    prices_file: Path | None = None,
    deployments: Deployments | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    con = store_in_memory()
    insert_spans(con, rows)
    prices = load_prices(prices_file)
    rel = request_table(
        con,
        con.table("spans"),
        prices=prices,
        deployments=deployments or Deployments(prices=prices),
        **kwargs,
    )
    return sorted(rel.to_dicts(), key=lambda r: (r["start_time"], r["span_id"]))


def test_contract_columns_and_one_row_per_entry_span() -> None:
    entry = span_record(start=T0, runtime="serverless", memory_mb=512.0)
    rows = _table([entry, _child(entry, 5, name="db")])
    assert len(rows) == 1
    assert tuple(rows[0])[: len(CONTRACT_COLUMNS)] == CONTRACT_COLUMNS


def test_a_web_frameworks_server_span_around_an_observed_handler_is_not_a_second_request() -> None:
    # FastAPI's instrumentation makes the root (an entry by "no parent"); the decorator's
    # outermost span inside it is the request. A service without the decorator keeps its
    # roots as requests.
    server = span_record(
        start=T0,
        scope_name="opentelemetry.instrumentation.fastapi",
        name="POST /chat",
        duration_ms=130.0,
    )
    handler = {
        **_child(
            server, 5, scope_name="infermeter", endpoint="/chat", duration_ms=120.0, tenant="acme"
        ),
        "is_entry": True,
    }
    llm = _child(
        handler,
        10,
        parent=handler["span_id"],
        scope_name="infermeter",
        model="gpt-4o-mini",
        provider="openai",
        input_tokens=100,
        output_tokens=10,
    )
    health = span_record(
        start=T0,
        scope_name="opentelemetry.instrumentation.fastapi",
        name="GET /health",
        duration_ms=2.0,
    )
    rows = {r["span_id"]: r for r in _table([server, handler, llm, health])}
    assert {span_id: r["duration_ms"] for span_id, r in rows.items()} == {
        handler["span_id"]: 120.0,
        health["span_id"]: 2.0,
    }
    assert rows[handler["span_id"]]["input_tokens"] == 100
    assert rows[handler["span_id"]]["tenant"] == "acme"


def test_nested_spans_are_summed_and_entry_attributes_kept() -> None:
    entry = span_record(
        start=T0,
        duration_ms=2000,
        tenant="acme",
        endpoint="chat",
        runtime="serverless",
        prompt_name="answer",
        prompt_version="7",
        memory_mb=1024.0,
        cold_start=True,
        init_duration_ms=250.0,
    )
    retrieval = _child(entry, 10, duration_ms=100, operation="retrieval")
    llm = _child(
        entry,
        200,
        duration_ms=1500,
        parent=retrieval["span_id"],
        model="gpt-4o",
        provider="openai",
        input_tokens=1200,
        output_tokens=300,
        cache_read_tokens=200,
        reasoning_tokens=100,
        ttft_ms=400.0,
        operation="chat",
    )
    other_service = _child(
        entry, 300, service_name="other", model="gpt-4o", input_tokens=99_999, output_tokens=1
    )
    (row,) = _table([entry, retrieval, llm, other_service])
    assert (row["tenant"], row["endpoint"], row["prompt_version"]) == ("acme", "chat", "7")
    # Model and provider come from the nested LLM span when the entry has none.
    assert (row["model"], row["provider"]) == ("gpt-4o", "openai")
    assert (row["input_tokens"], row["output_tokens"]) == (1200, 300)
    assert (row["cache_read_tokens"], row["reasoning_tokens"]) == (200, 100)
    assert row["span_count"] == 3 and row["llm_spans"] == 1
    assert row["ttft_ms"] == pytest.approx(600.0)  # the LLM call starts 200 ms in
    assert row["cold_start"] is True and row["duration_ms"] == 2000
    # (1200-200)*2.5e-6 + 200*1.25e-6 + (300-100)*1e-5 + 100*1e-5 (reasoning as output).
    assert row["token_cost_usd"] == pytest.approx(0.0025 + 0.00025 + 0.002 + 0.001)
    # Lambda 1 GB: 2 s + 0.25 s INIT at the GB-s price + the request fee.
    assert row["compute_cost_usd"] == pytest.approx(2.25 * LAMBDA_GB_S + LAMBDA_REQUEST)
    assert row["cost_usd"] == pytest.approx(row["token_cost_usd"] + row["compute_cost_usd"])
    assert row["slo_ms"] == 3000.0 and row["platform"] == "aws_lambda"


def test_fan_out_into_one_service_makes_one_request_per_entry() -> None:
    gateway = span_record(start=T0, duration_ms=1000, service_name="gateway")
    calls = []
    for offset in (100, 500):
        worker = span_record(
            start=T0 + timedelta(milliseconds=offset),
            duration_ms=300,
            service_name="worker",
            trace_id=gateway["trace_id"],
            parent_span_id=gateway["span_id"],
            service_instance="w-1",
            runtime="container",
        )
        calls += [
            worker,
            _child(
                worker,
                10,
                model="gpt-4o",
                provider="openai",
                input_tokens=offset,
                output_tokens=0,
                service_instance="w-1",
            ),
        ]
    rows = _table([gateway, *calls])
    workers = [r for r in rows if r["service_name"] == "worker"]
    assert [r["input_tokens"] for r in workers] == [100, 500]
    assert [r["span_count"] for r in workers] == [2, 2]
    gateway_row = next(r for r in rows if r["service_name"] == "gateway")
    assert gateway_row["input_tokens"] == 0  # the workers' tokens are theirs


def test_throttles_and_retries_both_conventions() -> None:
    per_attempt = span_record(start=T0)
    spans = [per_attempt] + [
        _child(per_attempt, 10 * attempt, name="llm", attempt=attempt, throttled=attempt < 3)
        for attempt in (1, 2, 3)
    ]
    # Two separate calls under one parent: the second restarts at attempt 1.
    spans += [
        _child(per_attempt, 100, name="llm", attempt=1),
        _child(per_attempt, 110, name="llm", attempt=2),
    ]
    # One span that reports two earlier attempts it did not record.
    single = span_record(start=T0 + timedelta(seconds=1))
    spans += [single, _child(single, 10, name="llm", attempt=3)]
    first, second = _table(spans)
    assert first["throttled"] is True and first["throttle_events"] == 2
    assert first["retries"] == 3  # 2 for the first call, 1 for the second
    assert second["throttled"] is False and second["retries"] == 2


def test_unpriced_models_are_flagged_never_priced_at_zero() -> None:
    known = span_record(
        start=T0,
        model="gpt-4o",
        provider="openai",
        input_tokens=10,
        output_tokens=10,
        runtime="serverless",
        memory_mb=1024.0,
    )
    unknown = span_record(start=T0 + timedelta(seconds=1), runtime="serverless", memory_mb=1024.0)
    mixed = [
        unknown,
        _child(unknown, 1, model="gpt-4o", provider="openai", input_tokens=10),
        _child(unknown, 2, model="acme-secret-llm", input_tokens=10, output_tokens=1),
    ]
    no_tokens = span_record(start=T0 + timedelta(seconds=2), model="acme-secret-llm")
    rows = _table([known, *mixed, no_tokens])
    assert [r["unpriced"] for r in rows] == [False, True, False]
    assert rows[0]["token_cost_usd"] == pytest.approx(10 * 2.5e-6 + 10 * 1e-5)
    assert rows[1]["token_cost_usd"] is None and rows[1]["cost_usd"] is None
    assert rows[1]["compute_cost_usd"] == pytest.approx(LAMBDA_GB_S * 0.1 + LAMBDA_REQUEST)
    # A model call without readable tokens is untokenized: its cost is unknown, not $0.
    assert [r["untokenized"] for r in rows] == [False, False, True]
    assert rows[2]["token_cost_usd"] is None


def test_unpriced_models_lists_what_to_add_to_a_pricing_file() -> None:
    con = store_in_memory()
    insert_spans(
        con,
        [
            span_record(model="acme-secret-llm", input_tokens=10, output_tokens=5),
            span_record(model="acme-secret-llm", input_tokens=1, output_tokens=0),
            span_record(model="gpt-4o", provider="openai", input_tokens=1),
        ],
    )
    frame = unpriced_models(con, con.table("spans"), prices=load_prices())
    assert frame.select("model", "spans", "input_tokens", "output_tokens").rows() == [
        ("acme-secret-llm", 2, 11, 5)
    ]


def test_history_is_repriced_when_the_pricing_file_changes(tmp_path: Path) -> None:
    rows = [
        span_record(
            start=T0,
            model="gpt-4o",
            provider="openai",
            input_tokens=1_000_000,
            output_tokens=1_000_000,
            cache_read_tokens=0,
        )
    ]
    assert _table(rows)[0]["token_cost_usd"] == pytest.approx(2.5 + 10.0)
    cheaper = tmp_path / "prices.toml"
    cheaper.write_text('[tokens."gpt-4o"]\ninput_per_million = 1.0\noutput_per_million = 4.0\n')
    assert _table(rows, prices_file=cheaper)[0]["token_cost_usd"] == pytest.approx(5.0)
    cheaper.write_text('[tokens."gpt-4o"]\ninput_per_million = 0.5\noutput_per_million = 2.0\n')
    assert _table(rows, prices_file=cheaper)[0]["token_cost_usd"] == pytest.approx(2.5)


def test_response_model_prices_first_and_aliases_price_deployment_names(tmp_path: Path) -> None:
    azure = span_record(
        start=T0,
        model="prod-chat",
        response_model="gpt-4o-mini-2024-07-18",
        provider="azure.ai.openai",
        input_tokens=1_000_000,
    )
    aliased = span_record(
        start=T0 + timedelta(seconds=1), model="prod-chat", input_tokens=1_000_000
    )
    file = tmp_path / "prices.toml"
    file.write_text('[aliases]\n"prod-chat" = "gpt-4o"\n')
    first, second = _table([azure, aliased], prices_file=file)
    # Priced by the response model's Azure entry ($0.15 per 1M input), not "prod-chat".
    assert first["token_cost_usd"] == pytest.approx(0.15)
    assert second["token_cost_usd"] == pytest.approx(2.5)


def test_serverless_provisioned_concurrency_pays_pc_duration_and_no_init() -> None:
    rows = _table(
        [
            span_record(
                start=T0,
                duration_ms=999.2,
                runtime="serverless",
                memory_mb=2048.0,
                cold_start=True,
                init_duration_ms=800.0,
                initialization_type="provisioned-concurrency",
            ),
        ]
    )
    # Billed 1000 ms (1 ms rounding up) at the PC duration price for 2 GB.
    assert rows[0]["compute_cost_usd"] == pytest.approx(2 * 1.0 * 0.0000097222 + LAMBDA_REQUEST)


def test_serverless_arm_uses_the_arm_price(tmp_path: Path) -> None:
    file = tmp_path / "deployments.toml"
    file.write_text('[[workloads]]\nruntime = "serverless"\narchitecture = "arm64"\n')
    prices = load_prices()
    rows = _table(
        [span_record(start=T0, duration_ms=1000, runtime="serverless", memory_mb=1024.0)],
        deployments=load_deployments(file, prices=prices),
    )
    assert rows[0]["compute_cost_usd"] == pytest.approx(0.0000133334 + LAMBDA_REQUEST)


def test_serverless_container_shares_instance_busy_time() -> None:
    # Instance i-1 runs [0, 1000] and [500, 1500] ms: busy 1.5 s, shared 1:1 by duration.
    # Instance i-2 runs one cold request of 1 s after a 2 s startup.
    rows = _table(
        [
            span_record(
                start=T0, duration_ms=1000, runtime="serverless_container", service_instance="i-1"
            ),
            span_record(
                start=T0 + timedelta(milliseconds=500),
                duration_ms=1000,
                runtime="serverless_container",
                service_instance="i-1",
            ),
            span_record(
                start=T0 + timedelta(seconds=5),
                duration_ms=1000,
                runtime="serverless_container",
                service_instance="i-2",
                cold_start=True,
                init_duration_ms=2000.0,
            ),
        ]
    )
    # Cloud Run request-based, default 1 vCPU and 512 MiB.
    per_second = 0.000024 + 0.5 * 0.0000025
    assert rows[0]["compute_cost_usd"] == pytest.approx(0.75 * per_second + 0.0000004)
    assert rows[1]["compute_cost_usd"] == pytest.approx(0.75 * per_second + 0.0000004)
    assert rows[2]["compute_cost_usd"] == pytest.approx(3.0 * per_second + 0.0000004)


def test_azure_container_apps_prices() -> None:
    rows = _table(
        [
            span_record(
                start=T0,
                duration_ms=2000,
                runtime="serverless_container",
                platform="azure_container_apps",
                service_instance="r-1",
            ),
        ]
    )
    # Active vCPU-s $0.000024, GiB-s $0.000003, $0.40 / 1M requests; 1 vCPU, 0.5 GiB.
    assert rows[0]["compute_cost_usd"] == pytest.approx(2 * (0.000024 + 0.5 * 0.000003) + 0.0000004)
    assert rows[0]["platform"] == "azure_container_apps"


def test_container_instance_hours_are_spread_over_the_hour() -> None:
    rows = _table(
        [
            span_record(
                start=T0 + timedelta(minutes=m),
                runtime="container",
                endpoint="rag",
                service_instance=f"pod-{m % 2}",
            )
            for m in (1, 2, 3, 4)
        ]
        + [
            span_record(
                start=T0 + timedelta(hours=1),
                runtime="container",
                endpoint="rag",
                service_instance="pod-0",
            )
        ]
    )
    # Hour 1: 2 pods * $0.1008 over 4 requests; hour 2: 1 pod over 1 request.
    assert [r["compute_cost_usd"] for r in rows] == [pytest.approx(0.0504)] * 4 + [
        pytest.approx(0.1008)
    ]


def test_container_minimum_instances_and_fargate(tmp_path: Path) -> None:
    file = tmp_path / "deployments.toml"
    file.write_text(
        '[[workloads]]\nruntime = "container"\nplatform = "aws_fargate"\nvcpu = 1\n'
        "memory_mb = 2048\nmin_instances = 3\n"
    )
    prices = load_prices()
    rows = _table(
        [span_record(start=T0, runtime="container", service_instance="task-1")],
        deployments=load_deployments(file, prices=prices),
    )
    # Three Fargate tasks of 1 vCPU + 2 GB for the hour: 3 * (0.04048 + 2 * 0.004445).
    assert rows[0]["compute_cost_usd"] == pytest.approx(3 * (0.04048 + 2 * 0.004445))
    assert rows[0]["instance_price_per_hour"] == pytest.approx(0.04048 + 2 * 0.004445)


def test_unknown_runtime_has_no_compute_cost() -> None:
    (row,) = _table([span_record(start=T0, model="gpt-4o", provider="openai", input_tokens=1000)])
    assert row["runtime"] == "unknown"
    assert row["compute_cost_usd"] is None
    assert row["cost_usd"] == pytest.approx(0.0025)


def test_since_and_until_select_requests_by_entry_start() -> None:
    spans = []
    for hour in range(4):
        entry = span_record(
            start=T0 + timedelta(hours=hour, minutes=59, seconds=59), duration_ms=5000
        )
        spans += [entry, _child(entry, 2000, model="gpt-4o", provider="openai", input_tokens=100)]
    rows = _table(
        spans, since=T0 + timedelta(hours=1), until=datetime(2026, 11, 16, 13, 0, tzinfo=UTC)
    )
    # Hours 1 and 2; the child spans that start after ``until`` still count.
    assert [r["start_time"].hour for r in rows] == [11, 12]
    assert [r["input_tokens"] for r in rows] == [100, 100]


def test_works_on_a_store_file_opened_read_only(tmp_path: Path) -> None:
    from infermeter.collectors import open_reader

    path = tmp_path / "store.duckdb"
    con = duckdb.connect(str(path))
    from infermeter.collectors import apply_migrations

    apply_migrations(con)
    insert_spans(con, [span_record(start=T0, runtime="serverless", memory_mb=128.0)])
    con.close()
    reader = open_reader(path)
    # A cursor of its own, as the commands use (nothing the opener ran is in the way).
    cursor = reader.cursor()
    try:
        prices = load_prices()
        rel = request_table(
            cursor, cursor.table("spans"), prices=prices, deployments=Deployments(prices=prices)
        )
        assert rel.shape[0] == 1
    finally:
        cursor.close()
        reader.close()


@pytest.mark.parametrize("order", ["tenant first", "prompt first"])
def test_nested_tags_fill_the_entry_whatever_the_row_order(order: str) -> None:
    # An entry span without tags takes each one from its nested spans: one span may carry
    # the tenant and another the prompt version; neither may hide the other.
    entry = span_record(start=T0, duration_ms=200.0)
    tenant = _child(entry, 5, name="auth", tenant="acme")
    prompt = _child(entry, 10, name="llm", prompt_name="answer", prompt_version="v2")
    children = [tenant, prompt] if order == "tenant first" else [prompt, tenant]
    (row,) = _table([entry, *children])
    assert (row["tenant"], row["prompt_name"], row["prompt_version"]) == ("acme", "answer", "v2")


@pytest.mark.parametrize("order", ["openai first", "anthropic first"])
def test_the_main_calls_model_and_provider_come_from_one_span(order: str) -> None:
    # An entry without a model takes the model and provider of its largest LLM call; two
    # calls with the same token count may give either, never one's model with the other's
    # provider (a pair no span carried).
    entry = span_record(start=T0, duration_ms=500.0)
    openai = _child(entry, 5, model="gpt-4o", provider="openai", input_tokens=100, output_tokens=20)
    anthropic = _child(
        entry,
        10,
        model="claude-sonnet-4-5",
        provider="anthropic",
        input_tokens=110,
        output_tokens=10,
    )
    small = _child(entry, 20, model="gpt-4o-mini", provider="openai", input_tokens=5)
    children = [openai, anthropic] if order == "openai first" else [anthropic, openai]
    (row,) = _table([entry, *children, small])
    assert (row["model"], row["provider"]) in {
        ("gpt-4o", "openai"),
        ("claude-sonnet-4-5", "anthropic"),
    }
    # Both calls are priced at their own list prices (OpenAI gpt-4o $2.50/$10 per 1M;
    # Anthropic Claude Sonnet 4.5 $3/$15 per 1M; gpt-4o-mini $0.15 per 1M input).
    assert row["token_cost_usd"] == pytest.approx(
        100 * 2.5e-6 + 20 * 1e-5 + 110 * 3e-6 + 10 * 1.5e-5 + 5 * 1.5e-7
    )


def test_an_unpriced_main_call_still_names_the_requests_model() -> None:
    entry = span_record(start=T0, duration_ms=500.0)
    call = _child(
        entry, 5, model="house-model-9", provider="acme-ai", input_tokens=100, output_tokens=5
    )
    (row,) = _table([entry, call])
    assert (row["model"], row["provider"]) == ("house-model-9", "acme-ai")
    assert row["unpriced"] is True and row["token_cost_usd"] is None
