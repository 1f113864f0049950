"""infermeter.agent: the ``@observe`` decorator and everything it needs (OpenTelemetry only)."""

from __future__ import annotations

from infermeter.agent._settings import ConfigurationError

__all__ = ["ConfigurationError", "annotate", "configure", "observe", "span"]


def observe(*args: object, **kwargs: object) -> object:  # placeholder until the agent lands
    raise NotImplementedError


configure = annotate = span = observe
