"""The house rules between rooms, enforced on every import statement (lazy ones included).

1. **Layers.** Data flows one way: agent -> collectors -> analytics -> dashboards -> alerts,
   and the root facade (``infermeter/``) sits on top. A room never imports a room above it.
2. **Seams.** A room uses another room only through its public names: no import path
   with a ``_private`` part into another room (``infermeter.collectors._wal``), and no
   ``from infermeter.collectors import _wal``.
3. **Tests** follow the same seams: ``tests/<room>/`` may reach into its own room's
   private modules (that is what unit tests are for); every other test file uses public
   paths only.

``benchmarks/`` measure internals on purpose (decode-only vs end to end) and are exempt.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Lower layers first; a room may import only rooms at or below its own rank.
LAYERS: tuple[str, ...] = ("agent", "collectors", "analytics", "dashboards", "alerts")
FACADE = "infermeter"


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _owner(relative: Path) -> tuple[str, bool]:
    """(room whose privates this file may use, is product code)."""
    parts = relative.parts
    if parts[0] == "tests":
        room = parts[1] if len(parts) > 2 and parts[1] in LAYERS else ""
        return room, False
    return parts[0], True


def _imports(tree: ast.AST) -> Iterator[tuple[int, str, tuple[str, ...]]]:
    """(line, module, imported names) for every import statement, lazy ones included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module, tuple(alias.name for alias in node.names)


def check_file(path: Path, root: Path) -> list[Violation]:
    relative = path.relative_to(root)
    own_room, product = _owner(relative)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Violation] = []
    for line, module, names in _imports(tree):
        parts = module.split(".")
        if parts[0] != FACADE or len(parts) < 2:
            continue
        target = parts[1]
        if target not in LAYERS:
            continue  # the facade's own modules (infermeter._demo …)
        if product and own_room in LAYERS and LAYERS.index(target) > LAYERS.index(own_room):
            found.append(Violation(str(relative), line, f"upward import of {module}"))
        if target == own_room:
            continue
        private = [p for p in parts[2:] if p.startswith("_")]
        private += [f"{module}.{n}" for n in names if n.startswith("_") and n != "__version__"]
        if private:
            found.append(
                Violation(str(relative), line, f"private import across rooms: {module} {private}")
            )
    return found


def check_tree(root: Path) -> list[Violation]:
    found: list[Violation] = []
    for top in (*LAYERS, FACADE, "tests"):
        for path in sorted((root / top).rglob("*.py")):
            found += check_file(path, root)
    return found


def test_main_keeps_the_layers_and_the_seams() -> None:
    violations = check_tree(ROOT)
    assert not violations, "\n".join(map(str, violations))


@pytest.mark.parametrize(
    ("where", "source", "expected"),
    [
        ("agent/_planted.py", "from infermeter.collectors import Collector\n", "upward import"),
        (
            "collectors/_planted.py",
            "def f():\n    from infermeter.dashboards import serve\n",
            "upward import",
        ),
        ("analytics/_planted.py", "from infermeter.collectors._wal import X\n", "private import"),
        ("alerts/_planted.py", "from infermeter.dashboards import _exporter\n", "private import"),
        ("infermeter/_planted.py", "import infermeter.agent._observe\n", "private import"),
        ("tests/test_planted.py", "from infermeter.agent._observe import x\n", "private import"),
        (
            "tests/analytics/test_planted.py",
            "from infermeter.collectors._wal import X\n",
            "private import",
        ),
    ],
)
def test_a_planted_violation_is_caught(
    tmp_path: Path, where: str, source: str, expected: str
) -> None:
    planted = tmp_path / where
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text(source)
    violations = check_file(planted, tmp_path)
    assert [v.message for v in violations if expected in v.message], violations


@pytest.mark.parametrize(
    ("where", "source"),
    [
        ("tests/collectors/test_ok.py", "from infermeter.collectors._wal import X\n"),
        ("analytics/query/_ok.py", "from infermeter.analytics.pricing._prices import X\n"),
        ("dashboards/_ok.py", "from infermeter.analytics.rollup import Catalog\n"),
        ("infermeter/_ok.py", "from infermeter.alerts import CHECK_SETTINGS\n"),
    ],
)
def test_allowed_imports_pass(tmp_path: Path, where: str, source: str) -> None:
    planted = tmp_path / where
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text(source)
    assert check_file(planted, tmp_path) == []
