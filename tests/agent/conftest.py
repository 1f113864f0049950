"""Fixtures for the agent's tests: a clean environment and an in-memory capture."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from infermeter.agent import _pipeline, testing
from infermeter.agent._runtime import DETECTION_ENV_VARS


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No runtime, OTEL_* or INFERMETER_* variables leak in from the machine running tests,
    and no configuration leaks out of a test."""
    for name in list(os.environ):
        if name in DETECTION_ENV_VARS or name.startswith(("OTEL_", "INFERMETER_")):
            monkeypatch.delenv(name)
    _pipeline.reset_global_pipeline()
    yield
    _pipeline.shutdown(timeout=1.0)
    _pipeline.reset_global_pipeline()


@pytest.fixture
def cap() -> Iterator[testing.Capture]:
    """Capture spans and metrics; the first outermost call is a cold start."""
    with testing.capture(fresh_process=True) as capture:
        yield capture
