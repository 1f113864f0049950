"""infermeter.analytics: metrics, pricing, runtime economics, drift and reports over the store."""

from __future__ import annotations

__all__: list[str] = []
