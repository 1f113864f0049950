"""Analytics test set-up shared by every test module of this room."""

from __future__ import annotations

from typing import Any

import pytest


# Invariant over every recommendation the analytics tests produce: each call of the one
# function all recommendations pass through (recommend, the weekly report, the rollups) is
# checked by ``check_decisions`` - no negative cost, one runtime decision per endpoint,
# never a combined loss while one recommendation claims a saving.
@pytest.fixture(autouse=True)
def _recommendation_invariants(monkeypatch: pytest.MonkeyPatch) -> None:
    from infermeter.analytics.economics import _recommend
    from infermeter.analytics.testing import check_decisions

    original = _recommend.decide_from_frames

    def checked(*args: Any, **kwargs: Any) -> Any:
        decisions = original(*args, **kwargs)
        check_decisions(decisions)
        return decisions

    monkeypatch.setattr(_recommend, "decide_from_frames", checked)
