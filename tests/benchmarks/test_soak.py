"""The soak's quick mode: the real pipeline for 60 s loses no span and reports no error.

Decorated service processes export OTLP to a real collector while ``infermeter serve``
refreshes and ``report`` / ``recommend`` read the store. Only counts are asserted (sent ==
acknowledged == stored, nothing dropped in the services, no error) — never a time: the
machine running CI is shared.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


@pytest.mark.timeout(900)
def test_quick_soak_loses_nothing_and_reports_no_error(tmp_path: Path) -> None:
    # A fixed modest rate instead of 70 % of the measured capacity: CI shares its cores.
    done = subprocess.run(
        [
            sys.executable,
            str(SOAK),
            "--quick",
            "--rate",
            "400",
            "--services",
            "1",
            "--json",
            "--keep",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=850,
        check=False,
    )
    assert done.stdout.strip(), done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["errors"] == [], result["errors"]
    assert result["sent"] > 0
    assert result["stored"] == result["sent"] == result["acked"]
    assert result["lost"] == 0
    assert result["dropped"] == 0  # no span dropped by a service's BatchSpanProcessor
    assert result["reads"], "report/recommend never ran"
    assert done.returncode == 0, done.stdout[-2000:]
