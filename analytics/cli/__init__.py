"""Subcommands owned by infermeter.analytics (registered into the one console script).

Each command family registers from its own module so that the modules stay small and
import nothing heavy until a command runs.
"""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this room's subcommands; imports nothing heavy until a command runs."""
    from infermeter.analytics.cli import _drift, _metrics, _report, _topics

    _metrics.register(subcommands)
    _report.register(subcommands)
    _drift.register(subcommands)
    _topics.register(subcommands)
