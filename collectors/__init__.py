"""infermeter.collectors: the OTLP/HTTP receiver, file importers and the DuckDB store."""

from __future__ import annotations

from infermeter.collectors._reader import open_reader
from infermeter.collectors._schema import SCHEMA_VERSION, apply_migrations

__all__ = ["SCHEMA_VERSION", "apply_migrations", "open_reader"]
