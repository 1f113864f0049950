"""docs/ARCHITECTURE.md stays true: every file, folder and module it names exists."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ARCHITECTURE.md"
_CODE = re.compile(r"`([^`\s]+)`")
_PATH = re.compile(r"^[\w.\-]+(/[\w.\-]*)+$|^[\w\-]+\.(py|md|toml|sql)$")
_MODULE = re.compile(r"^infermeter(\.\w+)+$")


def _named() -> tuple[set[str], set[str]]:
    paths: set[str] = set()
    modules: set[str] = set()
    for raw in _CODE.findall(DOC.read_text(encoding="utf-8")):
        token = raw.rstrip(",.;:")
        if _MODULE.match(token):
            modules.add(token)
        elif _PATH.match(token) and not token.startswith(("../", "STORE")):
            paths.add(token)
    return paths, modules


def _exists(dotted: str) -> bool:
    """A module, or a name defined by its parent module (``infermeter.analytics.open``)."""
    if importlib.util.find_spec(dotted) is not None:
        return True
    parent, _, name = dotted.rpartition(".")
    return hasattr(importlib.import_module(parent), name)


def test_the_doc_names_real_paths() -> None:
    paths, _ = _named()
    assert len(paths) > 30  # the parser found the doc's paths (guards the regex)
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"docs/ARCHITECTURE.md names paths that do not exist: {missing}"


def test_the_doc_names_real_modules() -> None:
    _, modules = _named()
    assert len(modules) > 10
    missing = sorted(m for m in modules if not _exists(m))
    assert not missing, f"docs/ARCHITECTURE.md names modules that do not exist: {missing}"


def test_every_room_and_analytics_subpackage_is_described() -> None:
    text = DOC.read_text(encoding="utf-8")
    rooms = ("agent", "collectors", "analytics", "dashboards", "alerts")
    subpackages = sorted(p.parent.name for p in (ROOT / "analytics").glob("*/__init__.py"))
    for name in (*(f"`{r}/`" for r in rooms), *(f"analytics/{s}/" for s in subpackages)):
        assert name in text, f"docs/ARCHITECTURE.md does not describe {name}"
