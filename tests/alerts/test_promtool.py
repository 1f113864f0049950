"""The exported Prometheus rules pass `promtool check rules`, and `promtool test rules`
shows Prometheus raising exactly the alerts - labels and annotation text - that the
built-in evaluator raises on the same numbers (and none on quiet numbers)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from infermeter.alerts import DEFAULT_RULES, AlertRule, evaluate, load_rules
from infermeter.alerts._promql import format_duration
from infermeter.analytics.rollup import Snapshot

from infermeter import main

pytestmark = pytest.mark.skipif(
    shutil.which("promtool") is None and not os.environ.get("CI"),
    reason="promtool not installed (apt-get install prometheus)",
)

SCRAPE = {"job": "infermeter", "instance": "exporter:9465"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # promtool's time() starts at 0


def _series(snapshot: Snapshot, samples: int) -> list[dict[str, str]]:
    out = []
    for name, series in snapshot.samples.items():
        from infermeter.analytics.rollup import by_name

        spec = by_name(name)
        for sample in series:
            labels = {k: v for k, v in zip(spec.labels, sample.labels, strict=True) if v}
            labels.update(SCRAPE)
            body = ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
            out.append({"series": f"{name}{{{body}}}", "values": f"{sample.value!r}+0x{samples}"})
    return out


def _test_group(
    rule: AlertRule, snapshot_for: Callable[..., Snapshot], *, fire: bool
) -> dict[str, Any]:
    eval_s = int(rule.for_seconds) + 120
    now = EPOCH + timedelta(seconds=eval_s)
    snapshot = snapshot_for(rule, fire=fire, now=now)
    expected = []
    for alert in evaluate([rule], snapshot, now=now):
        labels = {k: v for k, v in alert.labels.items() if k != "alertname"}
        expected.append(
            {"exp_labels": {**labels, **SCRAPE}, "exp_annotations": dict(alert.annotations)}
        )
    assert bool(expected) == fire, (rule.name, expected)
    return {
        "interval": "1m",
        "input_series": _series(snapshot, eval_s // 60 + 5),
        "alert_rule_test": [
            {"eval_time": format_duration(eval_s), "alertname": rule.name, "exp_alerts": expected}
        ],
    }


def test_cli_export_passes_promtool_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "infermeter.rules.yml"
    assert main(["alerts", "export", "--prometheus", str(target), "--interval", "30s"]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    result = subprocess.run(
        ["promtool", "check", "rules", str(target)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(DEFAULT_RULES)} rules found" in result.stdout


def test_prometheus_and_the_evaluator_raise_the_same_alerts(
    tmp_path: Path, snapshot_for: Callable[..., Snapshot]
) -> None:
    import yaml

    rules = load_rules()
    rule_file = tmp_path / "rules.yml"
    main(["alerts", "export", "--prometheus", str(rule_file)])
    tests = [_test_group(rule, snapshot_for, fire=fire) for rule in rules for fire in (True, False)]
    test_file = tmp_path / "tests.yml"
    test_file.write_text(
        yaml.safe_dump(
            {"rule_files": [rule_file.name], "evaluation_interval": "1m", "tests": tests},
            sort_keys=False,
            width=1000,
        )
    )
    result = subprocess.run(
        ["promtool", "test", "rules", test_file.name], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "SUCCESS" in result.stdout


def test_promtool_catches_a_wrong_expectation(
    tmp_path: Path, snapshot_for: Callable[..., Snapshot]
) -> None:
    """The comparison above can fail: a changed threshold is noticed."""
    import yaml

    rule = next(r for r in load_rules() if r.name == "InfermeterErrorRateHigh")
    rule_file = tmp_path / "rules.yml"
    main(["alerts", "export", "--prometheus", str(rule_file)])
    group = _test_group(rule, snapshot_for, fire=True)
    group["alert_rule_test"][0]["exp_alerts"][0]["exp_annotations"]["summary"] = "wrong"
    test_file = tmp_path / "tests.yml"
    test_file.write_text(yaml.safe_dump({"rule_files": [rule_file.name], "tests": [group]}))
    result = subprocess.run(
        ["promtool", "test", "rules", test_file.name], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode != 0
