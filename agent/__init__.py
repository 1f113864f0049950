"""infermeter.agent: the ``@observe`` decorator and everything it needs (OpenTelemetry only).

``observe`` / ``span`` / ``annotate`` emit spans and metrics following the span contract
(``infermeter.agent.semconv``); ``configure`` sets up OTLP/HTTP export (explicit argument >
``OTEL_*`` / ``INFERMETER_*`` environment variable > default, see ``SETTINGS``);
``shutdown`` / ``force_flush`` end and flush it. ``evaluate`` / ``feedback`` record GenAI
evaluation results (span event or OTLP log record). Test helpers live in
``infermeter.agent.testing``.
"""

from __future__ import annotations

from infermeter.agent._config import SETTINGS, AgentSettings
from infermeter.agent._observe import ObservedSpan, annotate, current_span, observe, span
from infermeter.agent._pipeline import Configuration, configure, force_flush, shutdown
from infermeter.agent._quality import evaluate, feedback
from infermeter.agent.settings import ConfigurationError

__all__ = [
    "SETTINGS",
    "AgentSettings",
    "Configuration",
    "ConfigurationError",
    "ObservedSpan",
    "annotate",
    "configure",
    "current_span",
    "evaluate",
    "feedback",
    "force_flush",
    "observe",
    "shutdown",
    "span",
]
