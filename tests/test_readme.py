"""The README stays true: its commands parse, its code compiles, its tables name every
setting, and what it shows exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from infermeter.agent import SETTINGS
from infermeter.collectors import COLLECTOR_SETTINGS

import infermeter

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def _commands() -> list[list[str]]:
    """Every ``infermeter …`` command line of the README's bash blocks."""
    found = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part.split("#", 1)[0])
                if words and words[0].endswith("infermeter") and len(words) > 1:
                    found.append(words[1:])
    return found


def test_the_readme_shows_commands() -> None:
    assert len(_commands()) >= 20


@pytest.mark.parametrize("argv", _commands(), ids=lambda argv: " ".join(argv[:2]))
def test_every_command_in_the_readme_parses(argv: list[str]) -> None:
    # Optional parts written as [--flag x] in the README are not shell syntax: drop them.
    argv = [word for word in argv if not word.startswith("[") and not word.endswith("]")]
    args = infermeter._parser().parse_args(argv)
    assert callable(args.handler)


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_every_python_block_compiles(index: int) -> None:
    compile(_blocks("python")[index], f"README.md python block {index}", "exec")


@pytest.mark.parametrize("setting", [*SETTINGS, *COLLECTOR_SETTINGS], ids=lambda s: s.env)
def test_every_setting_is_documented(setting: object) -> None:
    env = setting.env  # type: ignore[attr-defined]
    prefix = "INFERMETER_COLLECTOR_"
    # The collector table folds host/port into one row: `INFERMETER_COLLECTOR_HOST` / `_PORT`.
    short = "_" + env.removeprefix(prefix) if env.startswith(prefix) else env
    assert f"`{env}`" in README or f"`{short}`" in README, env


def test_pictures_exist() -> None:
    for path in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README):
        assert (ROOT / path).is_file(), path
