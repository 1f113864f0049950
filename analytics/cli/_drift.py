"""``infermeter drift``: embedding and request-feature drift per group, stored and shown.

Imports only the light settings module at top level; numpy, polars, DuckDB and (for
``--html`` or ``evidently:*`` methods) Evidently load when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from infermeter.agent.settings import add_arguments
from infermeter.analytics.drift._settings import DRIFT_SETTINGS, drift_config

if TYPE_CHECKING:
    import polars as pl

__all__ = ["register"]

# Exit status of --fail-on-drift when some group drifted (1 and 2 are errors).
EXIT_DRIFT: Final = 3

_DESCRIPTION = """\
Compare a reference window with the current window per group (default model x
prompt_version): embedding drift over the sampled vectors, and drift of request features
(latency, TTFT, tokens, numeric span attributes such as retrieval scores). Prints one row
per group, kind, feature and method, and appends the results to the sidecar file
STORE.infermeter/drift_results.duckdb (read by `infermeter serve`, alerts and the weekly report).

verdicts: drift | no_drift | insufficient_data (fewer than --min-samples values in a window:
never a verdict) | error (the group's data cannot be compared, e.g. NaN or mixed-dimension
vectors; other groups still complete).
"""

_EPILOG = """\
examples:
  infermeter drift --store demo.duckdb     # vs last week; a new version vs the one it replaced
  infermeter drift --store demo.duckdb --reference before-rollout --by model
  infermeter drift --store demo.duckdb --current 2026-11-16..2026-11-22 \\
      --reference 2026-11-01..2026-11-07 --method classifier,evidently:psi --json
  infermeter drift --store demo.duckdb --html drift.html
"""


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``drift`` subcommand."""
    parser = subcommands.add_parser(
        "drift",
        help="embedding and request-feature drift per model / prompt version",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--store",
        required=True,
        metavar="STORE",
        help="the store: DuckDB file, clickhouse://user:password@host:8123/db or chdb:///dir",
    )
    parser.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="also write Evidently's HTML report (needs the 'drift' extra)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--results",
        type=Path,
        metavar="FILE",
        help="results file to append to (default: STORE.infermeter/drift_results.duckdb)",
    )
    parser.add_argument("--no-save", action="store_true", help="do not write the results file")
    parser.add_argument(
        "--fail-on-drift",
        action="store_true",
        help=f"exit with status {EXIT_DRIFT} when any group drifted",
    )
    add_arguments(parser, DRIFT_SETTINGS)
    parser.set_defaults(handler=_run)


def _store_name(store: str) -> str:
    from infermeter.collectors import parse_store

    location = parse_store(store)
    if location.engine == "duckdb" and location.path is not None:
        return location.path.name
    return location.display


def _run(args: argparse.Namespace) -> int:
    explicit = {setting.name: getattr(args, setting.name) for setting in DRIFT_SETTINGS}
    config = drift_config(explicit)  # bad settings fail before the store is opened
    from infermeter.analytics.drift._detect import run_drift
    from infermeter.analytics.drift._results import open_results_for_writing, write_drift_results
    from infermeter.collectors import open_reader

    if args.html is not None and not args.html.parent.is_dir():
        raise OSError(f"cannot write {args.html}: no directory {args.html.parent}")
    if args.results is not None and not args.no_save:
        _check_results_file(Path(args.results))  # before the (long) drift run, not after it
    con = open_reader(args.store)
    try:
        # A cursor of its own: with DuckDB 2 a connection that still holds an unfinished
        # result (e.g. after fetchone()) refuses other work.
        cursor = con.cursor()
        with _progress() as advance:
            results, samples = run_drift(
                cursor,
                cursor.table("spans"),
                cursor.table("embeddings"),
                explicit,
                progress=advance,
                keep_samples=args.html is not None,
            )
        cursor.close()
    finally:
        con.close()
    if not args.no_save:
        import duckdb

        try:
            with (
                duckdb.connect(str(args.results))
                if args.results
                else open_results_for_writing(args.store)
            ) as out:
                write_drift_results(out, results)
        except duckdb.Error as exc:
            raise OSError(f"cannot write the drift results: {_first_line(exc)}") from None
    if args.html is not None:
        from infermeter.analytics.drift._evidently import write_html_report

        print(f"writing {args.html} (Evidently) …", file=sys.stderr)
        write_html_report(args.html, samples, title=f"infermeter drift — {_store_name(args.store)}")
    if args.json:
        rows = [{**row, "reference": reference_used(row)} for row in results.to_dicts()]
        print(json.dumps(rows, default=_json_default, indent=2))
    else:
        _print_table(results, by=",".join(config.by))
    drifted = bool(results.filter(results["verdict"] == "drift").height)
    return EXIT_DRIFT if args.fail_on_drift and drifted else 0


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


@contextmanager
def _progress() -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr (shown on a terminal only) fed by ``advance``."""
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    with Progress(console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("drift: comparing windows", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


_VERDICT_STYLE: Final = {
    "drift": "bold red",
    "no_drift": "green",
    "insufficient_data": "yellow",
    "error": "magenta",
}


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _check_results_file(target: Path) -> None:
    """Refuse a results path that is a folder or a file DuckDB cannot open."""
    import duckdb

    if target.is_dir():
        raise OSError(f"--results {target}: is a folder; give a DuckDB file path")
    if not target.exists():
        if not target.parent.is_dir():
            raise OSError(f"--results {target}: no directory {target.parent}")
        return
    try:
        duckdb.connect(str(target), read_only=True).close()
    except duckdb.Error as exc:
        raise OSError(f"--results {target}: not a DuckDB file ({_first_line(exc)})") from None


def _print_table(results: pl.DataFrame, *, by: str) -> None:
    from infermeter.analytics._text import terminal_text as text
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # piped output: no wrapping at 80 columns
    if results.is_empty():
        console.print("no requests or embeddings in the compared windows")
        return
    # Before a rollout, groups are also keyed by the prompt version they compare.
    keys = str(results["group_by"][0]).split(",")
    table = Table(title=f"drift by {by}")
    numeric = ("score", "threshold", "ref n", "cur n")
    for column in (*keys, "kind", "feature", "method", "verdict", *numeric, "reference"):
        table.add_column(column, justify="right" if column in numeric else "left")
    notes: list[str] = []
    for row in results.iter_rows(named=True):
        values = [_text(row[key]) for key in keys]
        if row["reference_prompt_version"] is not None:
            values[keys.index("prompt_version") if "prompt_version" in keys else -1] += (
                f" (vs {row['reference_prompt_version']})"
            )
        # Group keys come from spans: rich Text, never markup, control characters escaped.
        style = _VERDICT_STYLE.get(row["verdict"], "")
        table.add_row(
            *(text(value) for value in values),
            text(row["kind"]),
            text(row["feature"]),
            text(row["method"]),
            f"[{style}]{row['verdict']}[/]" if style else row["verdict"],
            _number(row["score"]),
            _number(row["threshold"]),
            f"{row['reference_n']:,}",
            f"{row['current_n']:,}",
            reference_used(row),
        )
        if row["verdict"] in ("insufficient_data", "error"):
            where = ", ".join(f"{key}={_text(row[key])}" for key in keys)
            notes.append(f"{where} {row['kind']} {row['feature']}: {row['message']}")
    console.print(table)
    for note in dict.fromkeys(notes):
        console.print(text(f"  {note}"), highlight=False)
    windows = results.select(
        "reference_start", "reference_end", "current_start", "current_end"
    ).unique()
    if windows.height == 1:
        ref_start, ref_end, cur_start, cur_end = windows.row(0)
        console.print(
            f"reference {ref_start} .. {ref_end}, current {cur_start} .. {cur_end} (UTC)",
            highlight=False,
        )
    counts = results["verdict"].value_counts(sort=True).iter_rows()
    console.print("  ".join(f"{verdict}: {count}" for verdict, count in counts), highlight=False)


def reference_used(row: Mapping[str, Any]) -> str:
    """Which reference a result row compared with: the version a rollout replaced, or the
    fixed window (previous week, previous period or START..END) shared by the run."""
    version = row.get("reference_prompt_version")
    if version is not None:
        return f"prompt {version} before the rollout"
    start, end = row.get("reference_start"), row.get("reference_end")
    if start is None or end is None:
        return "none"
    return f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M}"


def _text(value: object) -> str:
    return "(none)" if value is None else str(value)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"
