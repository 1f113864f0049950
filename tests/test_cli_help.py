"""``infermeter COMMAND [SUBCOMMAND] --help`` works for every command the CLI has."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest

from infermeter import _parser, main


def _commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((*prefix, name))
                found += _commands(sub, (*prefix, name))
    return found


COMMANDS = _commands(_parser())


def test_the_walk_finds_the_commands() -> None:
    assert {("collect",), ("import",), ("metrics",), ("prices", "check")} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_of_every_command(command: tuple[str, ...]) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert out.getvalue().startswith("usage: ")
