"""The distribution installs as one namespaced package and nothing bare leaks out."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("agent", "collectors", "analytics", "dashboards", "alerts")


def _pyproject() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)


def _package_folders() -> dict[str, Path]:
    """Every folder the source tree ships (code or package data), by its installed dotted
    name: setuptools drops a folder that is not listed, with only a warning."""
    found: dict[str, Path] = {}
    for folder in ("infermeter", *ROOMS):
        base = ROOT / folder
        for directory in [base, *base.rglob("*")]:
            if not directory.is_dir() or "__pycache__" in directory.parts:
                continue
            relative = directory.relative_to(base).parts
            prefix = ["infermeter"] if folder == "infermeter" else ["infermeter", folder]
            found[".".join([*prefix, *relative])] = directory
    return found


def test_every_package_folder_is_listed_in_pyproject() -> None:
    setuptools_cfg = _pyproject()["tool"]["setuptools"]  # type: ignore[index]
    listed = set(setuptools_cfg["packages"])
    assert listed == set(_package_folders()), "pyproject [tool.setuptools].packages is out of sync"
    mapping = setuptools_cfg["package-dir"]
    for room in ROOMS:
        assert mapping[f"infermeter.{room}"] == room


@pytest.mark.slow
def test_wheel_holds_only_the_infermeter_namespace(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("infermeter-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_levels = {name.split("/")[0] for name in names}
    assert {t for t in top_levels if not t.endswith(".dist-info")} == {"infermeter"}
    for package, folder in _package_folders().items():
        if (folder / "__init__.py").exists():
            assert f"{package.replace('.', '/')}/__init__.py" in names
    for room in ROOMS:
        assert f"infermeter/{room}/py.typed" in names
    # Package data travels with the wheel (the globs are recursive).
    for room in ROOMS:
        for p in (ROOT / room).rglob("*"):
            if (
                p.suffix in {".sql", ".json", ".yaml", ".toml", ".html", ".md"}
                and "__pycache__" not in p.parts
            ):
                assert f"infermeter/{room}/{p.relative_to(ROOT / room).as_posix()}" in names


def test_console_script_is_declared() -> None:
    scripts = _pyproject()["project"]["scripts"]  # type: ignore[index]
    assert scripts == {"infermeter": "infermeter:main"}
