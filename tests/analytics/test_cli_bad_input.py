"""Bad numbers and paths on the command line: one line naming the problem and a non-zero
exit, never a traceback, and nothing written."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from infermeter.collectors import apply_migrations

from infermeter import main


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bad-input") / "store.duckdb"
    con = duckdb.connect(str(path))
    apply_migrations(con)
    con.close()
    return path


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage error
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("infermeter ")
    return last


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["metrics", "--bucket", "99999999999999999999d"], "longest bucket"),
        (["metrics", "--bucket", "40000d"], "longest bucket"),
        (["metrics", "--since", "999999999d"], "before year 1"),
        (["metrics", "--since", "999999w"], "before year 1"),
        (["recommend", "--days", "-5"], "give 1 to"),
        (["recommend", "--days", "0"], "give 1 to"),
        (["recommend", "--days", "99999999999"], "give 1 to"),
    ],
)
def test_numbers_out_of_range_are_one_line(
    store: Path, capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    last = _fails(capsys, [argv[0], "--store", str(store), *argv[1:]])
    assert fragment in last


def test_drift_results_must_be_a_duckdb_file(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    assert "is a folder" in _fails(
        capsys, ["drift", "--store", str(store), "--results", str(folder)]
    )
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    assert "not a DuckDB file" in _fails(
        capsys, ["drift", "--store", str(store), "--results", str(text)]
    )
    assert text.read_text() == "not a database\n"  # untouched
