"""Subcommands owned by infermeter.collectors (registered into the one console script)."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this room's subcommands; imports nothing heavy until a command runs."""
