"""Suite-wide set-up: test the installed package, never the source folder it came from.

``python -m pytest`` puts the working directory first on ``sys.path``. From the
repository root that makes the facade's source folder ``infermeter/`` (which holds only
the facade, not ``agent/``, ``collectors/`` …) shadow the installed package, and a
non-editable install then fails to import ``infermeter.agent``. The root is dropped from
``sys.path`` before any test imports ``infermeter``; an editable install still maps every
room back to this checkout through its own finder.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]


def _is_root(entry: str) -> bool:
    try:
        return Path(entry or ".").resolve() == _ROOT
    except OSError:
        return False


sys.path[:] = [entry for entry in sys.path if not _is_root(entry)]
for _name in [n for n in sys.modules if n == "infermeter" or n.startswith("infermeter.")]:
    _module = sys.modules[_name]
    _file = getattr(_module, "__file__", None) or ""
    if _file and Path(_file).resolve().is_relative_to(_ROOT / "infermeter"):
        del sys.modules[_name]  # imported from the source folder by a plugin: re-import
