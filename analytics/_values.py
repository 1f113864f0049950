"""Reading numbers out of result rows: the one helper every analytics module uses."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["number"]


def number(row: Mapping[str, Any], key: str) -> float | None:
    """``row[key]`` as a float; None when it is missing, NULL or NaN (no measurement)."""
    value = row.get(key)
    if value is None:
        return None
    result = float(value)
    return None if math.isnan(result) else result
