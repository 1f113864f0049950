"""GPU prices: the bundled table carries a source and date for every instance, a pricing
file overrides or adds instances, and bad entries fail with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
from infermeter.agent import ConfigurationError
from infermeter.analytics import load_deployments, load_prices
from infermeter.analytics.pricing import normalize_gpu_type


def test_every_bundled_instance_has_a_source_a_date_and_its_gpus() -> None:
    gpu = load_prices().gpu
    assert not gpu.refetched  # the table says its numbers were not re-fetched
    for name in (
        "g5.xlarge",
        "g6.xlarge",
        "p4d.24xlarge",
        "p5.48xlarge",
        "g2-standard-4",
        "a2-highgpu-1g",
        "a3-highgpu-8g",
        "Standard_NC24ads_A100_v4",
    ):
        instance = gpu.instances[name]
        assert instance.source and instance.date and instance.gpus >= 1
        assert instance.usd_per_hour > 0
    # The compute table's g5.xlarge and the GPU table agree.
    assert gpu.instances["g5.xlarge"].usd_per_hour == load_prices().compute.gpu_vm_hour
    # Cloud Run L4: GPU-second + 4 vCPU + 16 GiB at instance-based rates (COMPUTE.md: ~$1.047/h).
    run = gpu.serverless["gcp_cloud_run_l4"]
    assert run.usd_per_second == pytest.approx(0.0001867 + 4 * 0.000018 + 16 * 0.000002)
    assert run.usd_per_hour == pytest.approx(1.0465, abs=1e-4)


def test_cheapest_instance_for_a_gpu_prefers_the_same_cloud() -> None:
    gpu = load_prices().gpu
    assert gpu.cheapest("NVIDIA-L4").name == "g2-standard-4"  # type: ignore[union-attr]
    assert gpu.cheapest("nvidia-l4", provider="aws").name == "g6.xlarge"  # type: ignore[union-attr]
    assert gpu.cheapest("l4", gpus=4, provider="aws").name == "g6.12xlarge"  # type: ignore[union-attr]
    assert gpu.cheapest("tpu-v5e") is None
    assert normalize_gpu_type("nvidia-tesla-t4") == "t4"


def test_a_pricing_file_overrides_and_adds_gpu_instances(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(
        '[gpu_instances."g6.xlarge"]\nusd_per_hour = 0.70\nsource = "EDP"\n'
        '[gpu_instances."rented-h100"]\nusd_per_hour = 2.10\ngpu_type = "H100"\n'
    )
    gpu = load_prices(path).gpu
    assert gpu.instances["g6.xlarge"].usd_per_hour == 0.70
    assert gpu.instances["g6.xlarge"].source == "EDP"
    assert gpu.instances["g6.xlarge"].gpu_type == "l4"  # the rest of the entry is kept
    assert gpu.instances["rented-h100"].gpu_type == "h100"
    assert gpu.cheapest("h100").name == "rented-h100"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[gpu_instances."new"]\nusd_per_hour = 1.0\n', "needs usd_per_hour and gpu_type"),
        ('[gpu_instances."g6.xlarge"]\nusd_per_hour = -1\n', "must be >= 0"),
        ('[gpu_instances."g6.xlarge"]\nprice = 1\n', "unknown keys"),
        ('[gpu_instances."g6.xlarge"]\ngpus = 1.5\n', "whole number"),
    ],
)
def test_bad_gpu_entries_fail_with_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        load_prices(path)


def test_deployments_self_hosted_entries(tmp_path: Path) -> None:
    path = tmp_path / "infermeter.toml"
    path.write_text(
        '[[self_hosted]]\nmodel = "bge"\napi_model = "text-embedding-3-small"\n'
        'instance = "g6.xlarge"\nmin_instances = 2\nmodel_load_s = 30\n'
    )
    (entry,) = load_deployments(path).self_hosted
    assert (entry.model, entry.instance, entry.min_instances, entry.model_load_s) == (
        "bge",
        "g6.xlarge",
        2,
        30.0,
    )
    for text, message in (
        ('[[self_hosted]]\napi_model = "x"\n', "needs model"),
        ('[[self_hosted]]\nmodel = "x"\ntarget_utilization = 1.5\n', r"in \(0, 1\]"),
        ('[[self_hosted]]\nmodel = "x"\ngpu = "l4"\n', "unknown keys"),
    ):
        path.write_text(text)
        with pytest.raises(ConfigurationError, match=message):
            load_deployments(path)
