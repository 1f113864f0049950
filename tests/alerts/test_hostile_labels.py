"""Label values come from spans: an alert line cannot forge another, and a template
fills each placeholder once (a label holding ``{runtime}`` stays as it is)."""

from __future__ import annotations

from datetime import UTC, datetime

from infermeter.alerts._evaluate import Alert
from infermeter.alerts._templates import python_text


def test_an_alert_line_cannot_forge_another() -> None:
    endpoint = "chat\nFIRING critical InfermeterFake endpoint=x: all good\r"
    alert = Alert(
        name="InfermeterLatencyP95AboveSLO",
        severity="critical",
        labels={"alertname": "InfermeterLatencyP95AboveSLO", "endpoint": endpoint},
        annotations={"summary": python_text("p95 of {endpoint}", {"endpoint": endpoint}, {})},
        value=1.0,
        starts_at=datetime(2026, 11, 28, tzinfo=UTC),
    )
    line = alert.line()
    assert line.splitlines() == [line]
    assert line.startswith("FIRING critical InfermeterLatencyP95AboveSLO endpoint=")
    assert line.count("FIRING") == 3  # the real one, and twice as quoted text
    assert '"chat\\x0aFIRING critical' in line


def test_templates_substitute_label_values_once() -> None:
    text = "p95 of {endpoint} ({runtime}) is {value|s}"
    filled = python_text(
        text, {"endpoint": "{runtime}{value|s}", "runtime": "serverless"}, {"value": 1.5}
    )
    assert filled == "p95 of {runtime}{value|s} (serverless) is 1.5s"
