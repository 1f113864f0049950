"""Deployments: defaults per runtime, file precedence, derived instance prices, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from infermeter.agent.settings import ConfigurationError
from infermeter.analytics import Deployment, load_deployments, load_prices


def test_defaults_per_runtime() -> None:
    deployments = load_deployments(prices=load_prices())
    lam = deployments.for_workload("chat", "serverless")
    assert isinstance(lam, Deployment)
    assert (lam.platform, lam.memory_mb, lam.concurrency, lam.min_instances) == (
        "aws_lambda",
        1024.0,
        1,
        0,
    )
    assert lam.vcpu == pytest.approx(1024 / 1769)
    # One provisioned-concurrency unit of 1 GB for an hour: warm capacity.
    assert lam.instance_price_per_hour == pytest.approx(0.0000041667 * 3600)
    run = deployments.for_workload("chat", "serverless_container")
    assert (run.platform, run.vcpu, run.memory_mb, run.concurrency) == (
        "gcp_cloud_run",
        1.0,
        512.0,
        80,
    )
    # Instance-based Cloud Run: 1 vCPU + 0.5 GiB for an hour.
    assert run.instance_price_per_hour == pytest.approx((0.000018 + 0.5 * 0.000002) * 3600)
    box = deployments.for_workload(None, "container")
    assert (box.platform, box.vcpu, box.memory_mb, box.min_instances) == ("aws_ec2", 2.0, 8192.0, 1)
    assert box.instance_price_per_hour == 0.1008
    assert (box.slo_ms, box.target_utilization, box.architecture) == (3000.0, 0.7, "x86_64")
    assert deployments.for_workload("x", "something-else").platform == "aws_ec2"


def test_slo_default_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERMETER_SLO_MS", "1500")
    assert load_deployments().for_workload("a", "container").slo_ms == 1500.0
    assert load_deployments(slo_ms=900).for_workload("a", "container").slo_ms == 900.0
    monkeypatch.setenv("INFERMETER_SLO_MS", "fast")
    with pytest.raises(ConfigurationError, match="INFERMETER_SLO_MS"):
        load_deployments()


def test_more_specific_entries_win_field_by_field(tmp_path: Path) -> None:
    file = tmp_path / "deployments.toml"
    file.write_text(
        "[defaults]\nslo_ms = 2500\n"
        '[[workloads]]\nendpoint = "chat"\nslo_ms = 1200\nmemory_mb = 2048\n'
        '[[workloads]]\nendpoint = "chat"\nruntime = "serverless"\narchitecture = "arm64"\n'
        "memory_mb = 1769\n"
        '[[workloads]]\nruntime = "serverless"\nmemory_mb = 512\nslo_ms = 9999\n'
        '[[workloads]]\nruntime = "container"\nplatform = "aws_fargate"\nvcpu = 0.5\n'
        "memory_mb = 1024\nconcurrency = 50\n"
        '[[workloads]]\nruntime = "container"\ninstance_price_per_hour = 0.2\n'
    )
    deployments = load_deployments(file, prices=load_prices())
    chat = deployments.for_workload("chat", "serverless")
    # endpoint+runtime > endpoint > runtime > defaults
    assert (chat.memory_mb, chat.slo_ms, chat.architecture) == (1769.0, 1200.0, "arm64")
    assert chat.vcpu == pytest.approx(1.0)
    assert chat.instance_price_per_hour == pytest.approx(1769 / 1024 * 0.0000033334 * 3600)
    other = deployments.for_workload("search", "serverless")
    assert (other.memory_mb, other.slo_ms) == (512.0, 9999.0)
    assert deployments.for_workload("search", "serverless_container").slo_ms == 2500.0
    box = deployments.for_workload("chat", "container")
    # An explicit price beats the Fargate price the platform would give.
    assert (box.concurrency, box.instance_price_per_hour, box.slo_ms) == (50, 0.2, 1200.0)
    assert str(file) in box.source


def test_fargate_instance_price(tmp_path: Path) -> None:
    file = tmp_path / "deployments.yaml"
    file.write_text(
        "workloads:\n  - runtime: container\n    platform: aws_ecs\n"
        "    vcpu: 1\n    memory_mb: 2048\n"
    )
    box = load_deployments(file).for_workload("any", "container")
    assert box.instance_price_per_hour == pytest.approx(0.04048 + 2 * 0.004445)


def test_container_apps_instance_price(tmp_path: Path) -> None:
    file = tmp_path / "deployments.toml"
    file.write_text(
        '[[workloads]]\nruntime = "serverless_container"\n'
        'platform = "azure_container_apps"\nvcpu = 1\nmemory_mb = 2048\n'
    )
    aca = load_deployments(file).for_workload("x", "serverless_container")
    assert aca.instance_price_per_hour == pytest.approx((0.000024 + 2 * 0.000003) * 3600)


def test_environment_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "d.toml"
    file.write_text("[defaults]\nslo_ms = 700\n")
    monkeypatch.setenv("INFERMETER_DEPLOYMENTS", str(file))
    assert load_deployments().for_workload("a", "container").slo_ms == 700.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[default]\n", "unknown sections"),
        ("[defaults]\nslo = 1\n", "unknown keys"),
        ("[defaults]\nslo_ms = -1\n", ">= 0"),
        ("[defaults]\nslo_ms = 0\n", "> 0"),
        ("[defaults]\nconcurrency = 0\n", "concurrency must be >= 1"),
        ("[defaults]\nmin_instances = 1.5\n", "whole number"),
        ("[defaults]\ntarget_utilization = 1.5\n", r"\(0, 1\]"),
        ('[defaults]\nmemory_mb = "big"\n', "must be a number"),
        ('[[workloads]]\nruntime = "lambda"\n', "must be one of"),
        ('[[workloads]]\nendpoint = ""\n', "must be text"),
        ("workloads = 3\n", "must be a list"),
        ("= = =\n", "not valid TOML"),
    ],
)
def test_bad_files_fail_fast(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "deployments.toml"
    file.write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        load_deployments(file)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_deployments(tmp_path / "missing.toml")
