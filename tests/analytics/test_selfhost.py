"""Self-hosted models on GPUs: the three questions on generated model-server spans whose
answers are worked out here by hand from list prices.

The spans go through the collector's real flattening (vLLM's attribute names, a custom
server's ``@observe(provider="self_hosted")`` names) into a real DuckDB store, and
``infermeter recommend --json`` answers. Expected numbers come from the formulas in
COMPUTE.md / analytics/_gpu.py and the published list prices written out below, never from
the program's output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from infermeter.analytics import load_prices
from infermeter.analytics.economics._gpu import (
    breakeven_tokens_per_month,
    serverless_billed_fraction,
)
from infermeter.analytics.economics._selfhost import plans
from infermeter.collectors import import_otlp
from infermeter.collectors.testing import otlp_json, otlp_request, otlp_span

from infermeter import main

S = 730 * 3600  # seconds in a billing month
# List prices (USD), as published: EC2 g6.xlarge (1x L4) on-demand us-east-1; OpenAI
# gpt-4o per 1M tokens; Cloud Run L4 GPU-second plus 4 vCPU + 16 GiB at instance-based rates.
G6_XLARGE_PER_HOUR = 0.8048
GPT_4O_INPUT_PER_M, GPT_4O_OUTPUT_PER_M = 2.50, 10.00
CLOUD_RUN_L4_PER_S = 0.0001867 + 4 * 0.000018 + 16 * 0.000002
CLOUD_RUN_IDLE_S = 900.0

# Every vLLM call: 1,000 prompt + 200 completion tokens, 0.1 s queued, 2.0 s in the model.
IN_TOKENS, OUT_TOKENS = 1000, 200
MODEL_S, QUEUE_S = 2.0, 0.1
START = datetime(2026, 11, 2)

DEPLOYMENTS = """
[[self_hosted]]
model = "meta-llama/Llama-3.1-8B-Instruct"
api_model = "gpt-4o"
instance = "g6.xlarge"
min_instances = 1
target_utilization = 0.7
"""


def vllm_spans(count: int, every_s: float) -> Iterator[Any]:
    """vLLM v1 ``llm_request`` SERVER spans, one every ``every_s`` seconds."""
    for i in range(count):
        yield otlp_span(
            "llm_request",
            kind=2,
            start=START + timedelta(seconds=i * every_s),
            duration_ms=(QUEUE_S + MODEL_S) * 1000,
            attributes={
                "gen_ai.response.model": "meta-llama/Llama-3.1-8B-Instruct",
                "gen_ai.request.id": f"cmpl-{i}",
                "gen_ai.usage.prompt_tokens": IN_TOKENS,
                "gen_ai.usage.completion_tokens": OUT_TOKENS,
                "gen_ai.latency.time_in_queue": QUEUE_S,
                "gen_ai.latency.time_to_first_token": QUEUE_S + 0.05,
                "gen_ai.latency.time_in_model_inference": MODEL_S,
                "gen_ai.latency.e2e": QUEUE_S + MODEL_S,
            },
        )


def write_store(path: Path, *batches: tuple[Any, dict[str, Any], str]) -> Path:
    """Each (spans, resource, scope) batch as an OTLP/JSON file, loaded with the real
    importer (the collector's decoding and flattening)."""
    files = []
    for i, (spans, resource, scope) in enumerate(batches):
        document = otlp_json(otlp_request(list(spans), resource=resource, scope=scope))
        file = path.with_name(f"{path.stem}-{i}.json")
        file.write_text(json.dumps(document))
        files.append(file)
    import_otlp(path, files)
    return path


def recommend_json(
    store: Path, deployments: Path, capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    assert (
        main(["recommend", "--store", str(store), "--deployments", str(deployments), "--json"]) == 0
    )
    return dict(json.loads(capsys.readouterr().out))


def by_kind(document: dict[str, Any], kind: str) -> dict[str, Any]:
    (found,) = [r for r in document["recommendations"] if r["kind"] == kind]
    return dict(found)


VLLM_RESOURCE = {
    "service.name": "llama-vllm",
    "service.instance.id": "gpu-0",
    "infermeter.runtime": "container",
    "infermeter.gpu.type": "nvidia-l4",
    "infermeter.gpu.count": 1,
}


@pytest.mark.parametrize(
    ("count", "every_s", "verdict"),
    [
        (720, 10.0, "self_host"),  # one call every 10 s for 2 h: 120 tokens/s
        (120, 60.0, "api"),  # one call a minute for 2 h: 20 tokens/s
    ],
)
def test_self_host_or_api_verdict_both_ways_with_break_even(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    count: int,
    every_s: float,
    verdict: str,
) -> None:
    # The bundled tables carry the list prices used here (a changed table fails loudly).
    prices = load_prices()
    assert prices.gpu.instances["g6.xlarge"].usd_per_hour == G6_XLARGE_PER_HOUR
    gpt_4o = prices.token_price("gpt-4o", "openai")
    assert gpt_4o is not None
    assert (gpt_4o.input * 1e6, gpt_4o.output * 1e6) == pytest.approx(
        (GPT_4O_INPUT_PER_M, GPT_4O_OUTPUT_PER_M)
    )
    store = write_store(
        tmp_path / "vllm.duckdb", (vllm_spans(count, every_s), VLLM_RESOURCE, "vllm.llm_engine")
    )
    deployments = tmp_path / "deployments.toml"
    deployments.write_text(DEPLOYMENTS)

    rec = by_kind(recommend_json(store, deployments, capsys), "self_host_or_api")
    evidence = rec["evidence"]

    # By hand. Calls never overlap (2.1 s every >= 10 s): the GPU is busy 2.0 s per call.
    tokens = IN_TOKENS + OUT_TOKENS
    window_s = (count - 1) * every_s + QUEUE_S + MODEL_S
    demand = count * tokens / window_s  # tokens/s
    throughput = tokens / MODEL_S  # 600 tokens per GPU-second
    instances = max(1, math.ceil(demand / (throughput * 1 * 0.7)))
    gpu_monthly = instances * G6_XLARGE_PER_HOUR * 730
    per_token = (IN_TOKENS * GPT_4O_INPUT_PER_M + OUT_TOKENS * GPT_4O_OUTPUT_PER_M) / tokens / 1e6
    api_monthly = demand * S * per_token
    breakeven = 1 * G6_XLARGE_PER_HOUR * 730 / per_token  # tokens per month, one instance

    assert instances == 1
    assert evidence["throughput_per_gpu"] == pytest.approx(throughput)
    assert evidence["tokens_per_s"] == pytest.approx(demand)
    assert evidence["gpu_monthly_usd"] == pytest.approx(gpu_monthly)
    assert evidence["api_per_million_usd"] == pytest.approx(per_token * 1e6)  # $3.75
    assert evidence["api_monthly_usd"] == pytest.approx(api_monthly)
    assert evidence["breakeven_tokens_per_month"] == pytest.approx(breakeven)  # 156.7M
    assert evidence["breakeven_requests_per_s"] == pytest.approx(breakeven / tokens / S)
    assert evidence["utilization"] == pytest.approx(demand / throughput)
    assert evidence["gpu_type"] == "nvidia-l4" and evidence["instance"] == "g6.xlarge"
    # The verdict is the side of the break-even the measured volume falls on.
    assert (demand * S > breakeven) == (verdict == "self_host")
    assert evidence["self_host_verdict"] == verdict
    if verdict == "api":
        # One signed number (recommend JSON schema 2): negative saves.
        assert rec["monthly_cost_change_usd"] == pytest.approx(api_monthly - gpu_monthly, abs=0.01)
        assert "Use the API (gpt-4o)" in rec["title"]
    else:
        assert rec["monthly_cost_change_usd"] is None
        assert rec["title"].startswith("Keep self-hosting")
    assert rec["confidence"] > 0 and rec["confidence_label"] in {"low", "medium", "high"}


def test_no_break_even_when_the_api_is_cheaper_per_token_than_a_busy_gpu() -> None:
    # gpt-4o-mini at $0.15 / $0.60 per 1M, 1000/200 mix: $0.225 per 1M tokens. A g6.xlarge
    # at 600 tokens/s and 70 % utilization costs 0.8048 / (600 * 0.7 * 3600) = $0.532 per 1M.
    per_token = (1000 * 0.15 + 200 * 0.60) / 1200 / 1e6
    assert per_token < G6_XLARGE_PER_HOUR / (600 * 0.7 * 3600)
    assert (
        breakeven_tokens_per_month(
            price_per_hour=G6_XLARGE_PER_HOUR,
            usd_per_token=per_token,
            throughput_per_gpu=600,
            gpus_per_instance=1,
            target_utilization=0.7,
        )
        is None
    )


def custom_server_spans(
    count: int, every_s: float, load_s: float, *, tokens: bool = True
) -> Iterator[Any]:
    """``@observe(operation="embeddings", provider="self_hosted", model=...)`` on a GPU box:
    the first call is the process's cold start and carries the model load as INIT."""
    for i in range(count):
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "embeddings",
            "gen_ai.provider.name": "self_hosted",
            "gen_ai.request.model": "bge-small-en-v1.5",
            "gen_ai.usage.input_tokens": 500,
            "gen_ai.latency.time_in_model_inference": 0.05,
            "infermeter.entry": True,
        }
        if not tokens:  # an image model: no token counts, only GPU time
            del attributes["gen_ai.usage.input_tokens"]
        if i == 0:
            attributes.update({"faas.coldstart": True, "infermeter.init_duration": load_s})
        yield otlp_span(
            "embeddings bge-small-en-v1.5",
            kind=3,
            start=START + timedelta(seconds=i * every_s),
            duration_ms=60.0,
            attributes=attributes,
        )


def test_sparse_load_goes_to_scale_to_zero_serverless_gpu(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One call every 30 min for three days on an always-on g6.xlarge; model load 45 s.
    count, every_s, load_s = 144, 1800.0, 45.0
    store = write_store(
        tmp_path / "embed.duckdb",
        (
            custom_server_spans(count, every_s, load_s),
            {**VLLM_RESOURCE, "service.name": "embedder"},
            "infermeter",
        ),
    )
    deployments = tmp_path / "deployments.toml"
    deployments.write_text(
        '[[self_hosted]]\nmodel = "bge-small-en-v1.5"\napi_model = "text-embedding-3-small"\n'
        'instance = "g6.xlarge"\n'
    )
    document = recommend_json(store, deployments, capsys)
    rec = by_kind(document, "gpu_serverless_or_containers")
    evidence = rec["evidence"]

    window_s = (count - 1) * every_s + 0.06
    rate = count / window_s
    # Replaying the arrivals: after each 60 ms call an instance stays up 15 min, then scales
    # to zero; the next call, 30 min later, is cold and pays the 45 s model load again.
    billed = count * (0.06 + CLOUD_RUN_IDLE_S + load_s) / window_s  # 52.9 %
    serverless_monthly = CLOUD_RUN_L4_PER_S * S * billed
    containers_monthly = G6_XLARGE_PER_HOUR * 730
    f_star = G6_XLARGE_PER_HOUR / (CLOUD_RUN_L4_PER_S * 3600)  # 77 % of the hour

    assert evidence["model_load_s"] == pytest.approx(load_s)
    assert evidence["model_load_source"] == "measured"
    assert evidence["serverless_price_per_hour"] == pytest.approx(CLOUD_RUN_L4_PER_S * 3600)
    assert evidence["serverless_billed_fraction"] == pytest.approx(billed)
    assert evidence["serverless_billed_source"] == "measured arrivals"
    # The Poisson estimate from the mean rate alone, 1 - e^-λT + λ e^-λT L, says 40.9 %:
    # regular arrivals 30 min apart are all cold, which the replay sees and it does not.
    idle_gap = math.exp(-rate * CLOUD_RUN_IDLE_S)
    assert serverless_billed_fraction(
        requests_per_s=rate, idle_timeout_s=CLOUD_RUN_IDLE_S, model_load_s=load_s
    ) == pytest.approx((1 - idle_gap) + rate * idle_gap * load_s)
    assert evidence["serverless_monthly_usd"] == pytest.approx(serverless_monthly)
    assert evidence["gpu_monthly_usd"] == pytest.approx(containers_monthly)
    assert evidence["crossover_billed_fraction"] == pytest.approx(f_star)
    assert evidence["crossover_requests_per_s"] == pytest.approx(
        -math.log(1 - f_star) / CLOUD_RUN_IDLE_S
    )
    assert evidence["gpu_cheaper"] == "serverless" and evidence["gpu_current"] == "containers"
    assert rec["monthly_cost_change_usd"] == pytest.approx(
        serverless_monthly - containers_monthly, abs=0.01
    )
    # Every call would wait for the 45 s model load: the p95 caveat is in the evidence.
    assert evidence["serverless_cold_fraction"] == pytest.approx(1.0)
    assert "Caveat" in rec["rationale"]
    # The same sparse embedding load on the API: 500 tokens x 144 calls is a few cents.
    api = by_kind(document, "self_host_or_api")
    assert api["evidence"]["self_host_verdict"] == "api"
    # The self-hosted model is not charged per token (no "unpriced" flag either).
    assert not [r for r in document["recommendations"] if r["kind"] == "cost_jump"]


def test_steady_load_stays_on_always_on_gpu_containers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = write_store(
        tmp_path / "steady.duckdb", (vllm_spans(120, 60.0), VLLM_RESOURCE, "vllm.llm_engine")
    )
    deployments = tmp_path / "deployments.toml"
    deployments.write_text(DEPLOYMENTS)
    rec = by_kind(recommend_json(store, deployments, capsys), "gpu_serverless_or_containers")
    # A call a minute with a 15-min idle timeout keeps a serverless instance up all month
    # (1 - e^-15 ~ 1): $1.0465/h beats nothing; the g6.xlarge at $0.8048/h wins.
    assert rec["evidence"]["serverless_billed_fraction"] == pytest.approx(1.0, abs=1e-6)
    assert rec["evidence"]["serverless_monthly_usd"] == pytest.approx(CLOUD_RUN_L4_PER_S * S)
    assert rec["evidence"]["gpu_cheaper"] == "containers"
    assert rec["title"].startswith("Keep meta-llama/Llama-3.1-8B-Instruct on always-on")
    assert rec["monthly_cost_change_usd"] is None


def test_glue_and_model_are_priced_as_one_plan() -> None:
    row = {
        "gpu_monthly_usd": 587.50,
        "serverless_monthly_usd": 312.0,
        "api_monthly_usd": 1182.6,
    }
    glue = {"serverless_monthly_usd": 40.0, "container_monthly_usd": 36.04}
    options = plans(row, glue)
    assert options == {
        "CPU glue on serverless + model on GPU containers": pytest.approx(627.50),
        "CPU glue on serverless + model on serverless GPU": pytest.approx(352.0),
        "CPU glue on serverless + model on the API": pytest.approx(1222.6),
        "CPU glue on containers + model on GPU containers": pytest.approx(623.54),
        "CPU glue on containers + model on serverless GPU": pytest.approx(348.04),
        "CPU glue on containers + model on the API": pytest.approx(1218.64),
    }
    assert plans(row, None) == {}


GLUE_COUNT, GLUE_EVERY_S, GLUE_S = 720, 10.0, 2.3


@pytest.fixture(scope="module")
def plan_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """/v1/chat on Lambda (512 MiB, 2.3 s per call: it waits on the model) calls vLLM on a
    g6.xlarge once every 10 s for 2 h; the vLLM span is a child of the glue's span."""
    tmp_path = tmp_path_factory.mktemp("plan")
    count, every_s, glue_s = GLUE_COUNT, GLUE_EVERY_S, GLUE_S
    glue_spans, model_spans = [], []
    for i, span in enumerate(vllm_spans(count, every_s)):
        trace_id = (10_000_000 + i).to_bytes(16, "big")
        glue_id = (20_000_000 + i).to_bytes(8, "big")
        glue_spans.append(
            otlp_span(
                "POST /v1/chat",
                trace_id=trace_id,
                span_id=glue_id,
                start=START + timedelta(seconds=i * every_s),
                duration_ms=glue_s * 1000,
                attributes={"infermeter.endpoint": "/v1/chat", "infermeter.entry": True},
            )
        )
        span.trace_id, span.parent_span_id = trace_id, glue_id
        model_spans.append(span)
    glue_resource = {
        "service.name": "api",
        "infermeter.runtime": "serverless",
        "cloud.platform": "aws_lambda",
        "faas.max_memory": 512 * 1024 * 1024,
    }
    path = write_store(
        tmp_path / "plan.duckdb",
        (glue_spans, glue_resource, "infermeter"),
        (model_spans, VLLM_RESOURCE, "vllm.llm_engine"),
    )
    deployments = tmp_path / "deployments.toml"
    deployments.write_text(DEPLOYMENTS)
    return path, deployments


def test_recommend_prices_the_lambda_glue_and_the_gpu_as_one_plan(
    plan_store: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, deployments = plan_store
    count, every_s, glue_s = GLUE_COUNT, GLUE_EVERY_S, GLUE_S
    document = recommend_json(path, deployments, capsys)
    plan = by_kind(document, "gpu_plan")
    evidence = plan["evidence"]

    # Lambda glue by hand: lambda x S x (M x D x p_GBs + p_req), no cold starts measured.
    rate = count / ((count - 1) * every_s)  # requests over first..last start
    glue_monthly = rate * S * (0.5 * glue_s * 0.0000166667 + 0.0000002)
    gpu_monthly = G6_XLARGE_PER_HOUR * 730
    assert plan["endpoint"] == "/v1/chat" and evidence["glue_runtime"] == "serverless"
    assert evidence["current_plan"] == "CPU glue on serverless + model on GPU containers"
    assert evidence["plan: CPU glue on serverless + model on GPU containers"] == pytest.approx(
        glue_monthly + gpu_monthly, abs=0.01
    )
    options = {k.removeprefix("plan: "): v for k, v in evidence.items() if k.startswith("plan: ")}
    assert evidence["best_plan"] == min(options, key=lambda name: options[name])
    assert evidence["best_plan_monthly_usd"] == pytest.approx(min(options.values()))
    # The model server itself is no CPU workload: no "move to serverless" for it.
    assert not [
        r
        for r in document["recommendations"]
        if r["kind"] in {"move_to_serverless", "move_to_containers"} and r["endpoint"] is None
    ]


def test_compare_and_the_weekly_report_carry_the_gpu_questions(
    plan_store: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, deployments = plan_store
    common = ["--store", str(path), "--deployments", str(deployments)]
    assert (
        main(
            [
                "compare",
                *common,
                "--a",
                "runtime=serverless",
                "--b",
                "runtime=container",
                "--endpoint",
                "/v1/chat",
                "--json",
            ]
        )
        == 0
    )
    compared = json.loads(capsys.readouterr().out)
    kinds = {r["kind"] for r in compared["gpu"]}
    assert kinds == {"self_host_or_api", "gpu_serverless_or_containers", "gpu_plan"}
    assert main(["report", *common, "--week", "2026-W45", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    html = next(tmp_path.glob("*.html")).read_text()
    assert "Self-hosted models on GPUs" in html
    csv = tmp_path / "infermeter-2026-W45-csv"
    gpu_csv = (csv / "gpu_economics.csv").read_text()
    assert "meta-llama/Llama-3.1-8B-Instruct" in gpu_csv and "g6.xlarge" in gpu_csv
    assert "self_host_or_api" in (csv / "recommendations.csv").read_text()


def test_a_server_without_token_counts_is_sized_from_busy_gpu_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Same sparse load, no tokens: the serverless question is still answered (it needs
    # only arrivals, busy time and the model load); self-host vs API is not (no volume).
    count, every_s, load_s = 144, 1800.0, 45.0
    store = write_store(
        tmp_path / "image.duckdb",
        (
            custom_server_spans(count, every_s, load_s, tokens=False),
            {**VLLM_RESOURCE, "service.name": "imager"},
            "infermeter",
        ),
    )
    deployments = tmp_path / "deployments.toml"
    deployments.write_text('[[self_hosted]]\nmodel = "bge-small-en-v1.5"\ninstance = "g6.xlarge"\n')
    document = recommend_json(store, deployments, capsys)
    rec = by_kind(document, "gpu_serverless_or_containers")
    window_s = (count - 1) * every_s + 0.06
    busy = count * 0.05 / window_s  # 50 ms of model time per call, one GPU
    assert rec["evidence"]["busy_fraction"] == pytest.approx(busy)
    assert rec["evidence"]["instances_needed"] == 1
    assert rec["evidence"]["serverless_billed_fraction"] == pytest.approx(
        count * (0.06 + CLOUD_RUN_IDLE_S + load_s) / window_s
    )
    assert rec["evidence"]["gpu_cheaper"] == "serverless"
    assert not [r for r in document["recommendations"] if r["kind"] == "self_host_or_api"]
