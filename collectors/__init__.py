"""infermeter.collectors: the OTLP/HTTP receiver, file importers and the DuckDB store."""

from __future__ import annotations

__all__: list[str] = []
