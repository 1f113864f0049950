"""PriceBook: bundled token and compute prices, name normalisation, user overrides."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from infermeter.agent.settings import ConfigurationError
from infermeter.analytics import ComputePrices, TokenPrice, load_prices, normalize_model_name
from infermeter.analytics.pricing.build import build_token_prices, main

SHARED_MAP = Path(__file__).resolve().parents[3] / "shared/data/pricing/litellm_model_prices.json"


def _bundled_table() -> dict[str, object]:
    text = (
        resources.files("infermeter.analytics.pricing")
        .joinpath("data/token_prices.json")
        .read_text()
    )
    table: dict[str, object] = json.loads(text)
    return table


def test_bundled_token_table_keeps_license_version_and_date() -> None:
    table = _bundled_table()
    assert "MIT License" in str(table["notice"]) and "Berri AI" in str(table["notice"])
    assert table["litellm_version"] == "1.110.2"
    assert table["taken"] == "2026-11-28"
    assert table["fields"] == [
        "input",
        "output",
        "cache_read",
        "cache_write",
        "reasoning",
        "provider",
        "mode",
    ]
    notice = resources.files("infermeter.analytics.pricing").joinpath("data/NOTICE.md").read_text()
    assert "litellm 1.110.2" in notice and "Copyright (c) 2023 Berri AI" in notice


@pytest.mark.skipif(not SHARED_MAP.exists(), reason="LiteLLM's map is not next to the repo")
def test_bundled_table_is_what_the_build_script_makes(tmp_path: Path) -> None:
    out = tmp_path / "token_prices.json"
    assert (
        main([str(SHARED_MAP), "--version", "1.110.2", "--taken", "2026-11-28", "--out", str(out)])
        == 0
    )
    assert json.loads(out.read_text()) == _bundled_table()


def test_build_keeps_only_token_prices() -> None:
    table = build_token_prices(
        {
            "sample_spec": {"input_cost_per_token": 0.0},
            "m-chat": {
                "input_cost_per_token": 1e-6,
                "output_cost_per_token": 2e-6,
                "cache_read_input_token_cost": 1e-7,
                "cache_creation_input_token_cost": 1.25e-6,
                "output_cost_per_reasoning_token": 3e-6,
                "litellm_provider": "acme",
                "mode": "chat",
                "max_tokens": 10,
            },
            "m-image": {"output_cost_per_image": 0.04, "litellm_provider": "acme"},
            "m-bad": {"input_cost_per_token": "free", "output_cost_per_token": -1},
        },
        litellm_version="x",
        taken="2026-01-01",
    )
    assert table["models"] == {"m-chat": [1e-6, 2e-6, 1e-7, 1.25e-6, 3e-6, "acme", "chat"]}


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("GPT-4o", "gpt-4o"),
        ("openai/gpt-4o", "gpt-4o"),
        ("bedrock/us.anthropic.claude-3-5-sonnet-20240620-v1:0", "claude-3-5-sonnet-20240620"),
        ("anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku-20240307"),
        ("vertex_ai/claude-3-5-sonnet@20240620", "claude-3-5-sonnet-20240620"),
        ("accounts/fireworks/models/llama-v3p1-8b-instruct", "llama-v3p1-8b-instruct"),
    ],
)
def test_normalize_model_name(name: str, normalized: str) -> None:
    assert normalize_model_name(name) == normalized


@pytest.mark.parametrize(
    ("model", "provider", "entry", "match", "input_per_million"),
    [
        ("gpt-4o", None, "gpt-4o", "exact", 2.5),
        ("gpt-4o-2024-08-06", None, "gpt-4o-2024-08-06", "exact", 2.5),
        # A snapshot the map does not list prices as its undated model.
        ("gpt-4o-2031-01-01", "openai", "gpt-4o", "undated", 2.5),
        ("openai/gpt-4o", None, "gpt-4o", "normalized", 2.5),
        ("GPT-4O", "openai", "gpt-4o", "normalized", 2.5),
        # The span's provider picks the provider's entry.
        ("gpt-4o", "azure.ai.openai", "azure/gpt-4o", "normalized", 2.5),
        (
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "aws.bedrock",
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "exact",
            3.0,
        ),
        ("claude-sonnet-4-5-20250929", "anthropic", "claude-sonnet-4-5-20250929", "exact", 3.0),
        ("gemini-2.5-pro", "gcp.vertex_ai", "gemini-2.5-pro", "exact", 1.25),
        ("text-embedding-3-small", "openai", "text-embedding-3-small", "exact", 0.02),
    ],
)
def test_token_price_lookup(
    model: str, provider: str | None, entry: str, match: str, input_per_million: float
) -> None:
    price = load_prices().token_price(model, provider)
    assert price is not None
    assert (price.model, price.match) == (entry, match)
    assert price.input * 1e6 == pytest.approx(input_per_million)


def test_unknown_models_have_no_price() -> None:
    book = load_prices()
    assert book.token_price("acme-internal-llm") is None
    assert book.token_price(None) is None
    assert book.token_price("  ") is None


def test_cost_follows_the_genai_token_semantics() -> None:
    price = TokenPrice(
        model="m",
        provider=None,
        mode="chat",
        input=1.0,
        output=10.0,
        cache_read=0.1,
        cache_write=1.25,
        reasoning=20.0,
        source="test",
    )
    # input 100 of which 30 cached and 10 written; output 50 of which 20 reasoning.
    assert price.cost(100, 50, 30, 10, 20) == pytest.approx(60 + 3 + 12.5 + 300 + 400)


def test_missing_cache_and_reasoning_prices_fall_back() -> None:
    price = load_prices().token_price("gpt-4o")
    assert price is not None
    assert price.cache_read * 1e6 == pytest.approx(1.25)  # listed by LiteLLM
    assert price.cache_write == price.input  # not listed: charged as input
    assert price.reasoning == price.output  # not listed: charged as output


def test_compute_prices_carry_source_and_date() -> None:
    compute = load_prices().compute
    assert isinstance(compute, ComputePrices)
    prices = [
        f.name
        for f in dataclasses.fields(ComputePrices)
        if (f.type == "float" and not f.name.startswith("vm_")) or f.name == "vm_hour"
    ]
    assert set(prices) <= set(compute.sources)
    for name in prices:
        assert compute.sources[name].source and compute.sources[name].date, name
    assert compute.lambda_x86_gb_s == 0.0000166667
    assert compute.lambda_arm_gb_s == 0.0000133334
    assert compute.lambda_request == 0.0000002
    assert compute.lambda_pc_x86_gb_s == 0.0000041667
    assert compute.lambda_pc_duration_x86_gb_s == 0.0000097222
    assert (compute.fargate_x86_vcpu_h, compute.fargate_x86_gb_h) == (0.04048, 0.004445)
    assert compute.cloud_run_request_vcpu_s == 0.000024
    assert compute.cloud_run_instance_vcpu_s == 0.000018
    assert compute.container_apps_idle_vcpu_s == 0.000003
    assert (compute.vm_hour, compute.vm_instance_type) == (0.1008, "m7i.large")
    assert compute.fargate_hour(1, 2) == pytest.approx(0.04937)  # COMPUTE.md case A
    assert compute.free_tiers["lambda"].requests == 1_000_000
    assert compute.free_tiers["lambda"].gb_s == 400_000
    assert compute.free_tiers["cloud_run_instance"].vcpu_s == 240_000


def test_user_file_overrides_tokens_compute_and_adds_models(tmp_path: Path) -> None:
    file = tmp_path / "prices.toml"
    file.write_text(
        '[tokens."gpt-4o"]\n'
        "input_per_million = 2.0\n"
        "reasoning_per_token = 0.00003\n"
        '[tokens."acme-llm"]\n'
        'input_per_million = 1.0\noutput_per_million = 3.0\nprovider = "acme"\n'
        "[compute]\n"
        "lambda_x86_gb_s = 0.0000221\n"
        'vm_hour = { value = 0.12, source = "EDP contract", date = "2026-12-01" }\n'
    )
    book = load_prices(file)
    gpt = book.token_price("gpt-4o")
    assert gpt is not None and gpt.source == str(file)
    assert gpt.input == pytest.approx(2e-6)
    assert gpt.output == pytest.approx(1e-5)  # kept from the bundled entry
    assert gpt.reasoning == pytest.approx(3e-5)
    acme = book.token_price("acme-llm")
    assert acme is not None and (acme.input, acme.output) == (
        pytest.approx(1e-6),
        pytest.approx(3e-6),
    )
    assert acme.cache_read == acme.input
    assert book.compute.lambda_x86_gb_s == 0.0000221
    assert book.compute.sources["lambda_x86_gb_s"].source == str(file)
    assert book.compute.sources["lambda_x86_gb_s"].unit == "USD per GB-second"
    assert book.compute.vm_hour == 0.12
    assert book.compute.sources["vm_hour"].source == "EDP contract"
    assert book.compute.sources["vm_hour"].date == "2026-12-01"
    assert str(file) in book.sources


def test_yaml_file_and_env_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "prices.yaml"
    file.write_text(
        "tokens:\n  acme-llm:\n    input_per_million: 4\naliases:\n  prod-chat: acme-llm\n"
    )
    monkeypatch.setenv("INFERMETER_PRICES", str(file))
    book = load_prices()
    alias = book.token_price("prod-chat")
    assert alias is not None and alias.model == "acme-llm" and alias.match == "alias"
    assert alias.input == pytest.approx(4e-6)
    # An explicit path wins over the environment.
    explicit = tmp_path / "explicit.toml"
    explicit.write_text('[tokens."acme-llm"]\ninput_per_million = 5\n')
    price = load_prices(explicit).token_price("acme-llm")
    assert price is not None and price.input == pytest.approx(5e-6)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tokenz]\n", "unknown sections"),
        ('[tokens."x"]\ninput = 1.0\n', "unknown keys"),
        ('[tokens."x"]\ninput_per_token = 1.0\ninput_per_million = 1.0\n', "both"),
        ('[tokens."x"]\ninput_per_million = -1\n', ">= 0"),
        ('[tokens."x"]\ninput_per_million = "cheap"\n', "must be a number"),
        ('[tokens."new-model"]\nprovider = "acme"\n', "needs at least"),
        ("[compute]\nlambda_gb_s = 1.0\n", "unknown compute price"),
        ("[compute]\nvm_hour = { price = 1.0 }\n", "takes value"),
        ("[aliases]\nx = 1\n", "aliases"),
        ("this is not toml = = =\n", "not valid TOML"),
    ],
)
def test_bad_pricing_files_fail_fast_with_a_clear_message(
    tmp_path: Path, text: str, message: str
) -> None:
    file = tmp_path / "prices.toml"
    file.write_text(text)
    with pytest.raises(ConfigurationError, match=message) as info:
        load_prices(file)
    assert str(file) in str(info.value)


def test_missing_pricing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_prices(tmp_path / "nope.toml")


def test_compute_price_file_is_valid_toml_with_every_field() -> None:
    text = resources.files("infermeter.analytics.pricing").joinpath("data/compute_prices.toml")
    data = tomllib.loads(text.read_text())
    fields = {f.name for f in dataclasses.fields(ComputePrices) if f.type == "float"}
    assert fields - {"vm_vcpu", "vm_memory_gib"} == set(data["prices"])
