"""infermeter.analytics.testing.

Test kits: realistic synthetic traffic and embedding windows with known drift, for
tests, benchmarks and screenshots (deterministic for a seed).
"""

from __future__ import annotations

from infermeter.analytics.testing._drift import ShiftKind, synthetic_embeddings
from infermeter.analytics.testing._invariants import check_decisions
from infermeter.analytics.testing._traffic import DEPLOYMENTS_TOML, synthetic_spans

__all__ = [
    "DEPLOYMENTS_TOML",
    "ShiftKind",
    "check_decisions",
    "synthetic_embeddings",
    "synthetic_spans",
]
