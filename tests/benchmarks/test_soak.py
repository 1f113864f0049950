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
from typing import Any

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
    # Each read timed twice: its wall seconds and its own CPU seconds.
    assert all(r["recommend_cpu"] > 0 and r["report_cpu"] > 0 for _, r in result["reads"])
    assert done.returncode == 0, done.stdout[-2000:]


def _soak_module() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("soak", SOAK)
    assert spec is not None and spec.loader is not None
    soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak)
    return soak


def test_a_timed_read_reports_the_readers_own_cpu_seconds_apart_from_its_wall_time() -> None:
    """The soak tells a reader's own work from its waits for a core: CPU seconds come from
    the child's rusage. A child that burns 0.3 s of CPU reports at least that; a child that
    sleeps 0.5 s reports wall time of at least that and far less CPU."""
    soak = _soak_module()
    burn = "import time\nwhile time.process_time() < 0.3: pass"
    status, _, _, cpu = soak.run_timed([sys.executable, "-c", burn], timeout=60)
    assert status == 0
    assert cpu >= 0.3
    status, stderr, wall, cpu = soak.run_timed(
        [sys.executable, "-c", "import sys, time; time.sleep(0.5); sys.exit('slept')"],
        timeout=60,
    )
    assert (status, stderr.strip()) == (1, "slept")
    assert wall >= 0.5
    assert cpu < 0.5  # the sleep is not the child's work


def test_the_capacity_store_holds_copies_of_the_services_spans_over_the_soaks_length(
    tmp_path: Path,
) -> None:
    """The store the third capacity ramp reads: exactly the asked number of spans, copies
    of the source's (their own trace ids, their durations), starts spread evenly over the
    soak's length before now."""
    import itertools
    from datetime import UTC, datetime, timedelta

    import duckdb
    from infermeter.collectors import apply_migrations
    from infermeter.collectors.testing import insert_spans, span_record

    soak = _soak_module()

    source = tmp_path / "source.duckdb"
    con = duckdb.connect(str(source))
    apply_migrations(con)
    start = datetime(2026, 1, 5, 12, 0)
    insert_spans(
        con,
        [
            # One trace posted again and again, as the capacity run posts its batches.
            span_record(
                start=start + timedelta(seconds=i),
                duration_ms=100.0 * (i + 1),
                trace_id="a" * 32,
                span_id="b" * 16,
            )
            for i in range(3)
        ],
    )
    con.close()

    before = datetime.now(UTC).replace(tzinfo=None)
    soak.prefill(tmp_path / "full.duckdb", source, 10, 600.0)
    after = datetime.now(UTC).replace(tzinfo=None)
    con = duckdb.connect(str(tmp_path / "full.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT trace_id, start_time, end_time FROM spans ORDER BY start_time"
    ).fetchall()
    assert len(rows) == 10
    assert len({r[0] for r in rows}) == 10  # each span a trace of its own
    # 10 starts, 60 s apart, the newest 60 s before the moment of the copy.
    starts = [r[1] for r in rows]
    assert all(b - a == timedelta(seconds=60) for a, b in itertools.pairwise(starts))
    assert before - timedelta(seconds=600) <= starts[0] <= after - timedelta(seconds=600)
    # Durations come from the source: three whole copies, and one span of a fourth.
    durations = [(r[2] - r[1]) / timedelta(milliseconds=1) for r in rows]
    assert set(durations) == {100.0, 200.0, 300.0}
    assert sorted(durations.count(d) for d in (100.0, 200.0, 300.0)) == [3, 3, 4]
