"""``infermeter recommend``, ``compare`` and ``report``: decisions and the weekly report.

Nothing heavy is imported until a command runs. Every command opens the store read-only
through ``infermeter.collectors.open_reader`` and prices requests at query time with the
pricing and deployments files (``--prices`` / ``INFERMETER_PRICES``, ``--deployments`` /
``INFERMETER_DEPLOYMENTS``).

``recommend --json`` prints one JSON document (stable; ``schema_version`` 2)::

    {"schema_version": 2, "generated_at": "...Z", "store": "...",
     "window": {"since": "...", "until": "..."},
     "projection_note": "...", "thresholds": {"min_requests": 50, ...},
     "recommendations": [{"kind": "move_to_containers", "endpoint": "/summarize",
        "runtime": "serverless", "tenant": null, "title": "...", "rationale": "...",
        "evidence": {"serverless_monthly_usd": 103.2, ...}, "confidence": 0.82,
        "confidence_label": "high", "monthly_cost_change_usd": -85.1, "p95_gain_ms": null,
        "plan": "all_containers", "runner_up": "stay"}],
     "endpoints": [{"endpoint": "/summarize", "slo_ms": 3000.0,
        "deployments": [{"name": "/summarize on Lambda", "runtime": "serverless"}],
        "chosen": "all_containers", "runner_up": "stay", "why": "...",
        "plans": [{"kind": "stay", "description": "...", "monthly_cost_usd": 103.2,
            "monthly_cost_change_usd": 0.0, "projected_p95_ms": 2100.0,
            "projected_cold_start_share": 0.01, "meets_slo": true, "warm_units": 0,
            "instances": null, "changes": [], "notes": []}, ...]}]}

``kind`` is one of insufficient_data, add_warm_capacity, move_to_containers,
move_to_serverless, rebalance_tenant, raise_concurrency_limit, cost_jump, slo_out_of_reach,
rollback, cheaper_at_equal_quality (from evaluations, see ``analytics.quality``).
``monthly_cost_change_usd`` is the one signed effect of following a recommendation: < 0
saves, > 0 costs (schema 1's ``monthly_saving_usd`` had the opposite sign for some kinds).
Fields are only ever added within a schema version.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from infermeter.agent.settings import add_arguments
from infermeter.analytics._read_settings import STORE_READ_SETTINGS
from infermeter.analytics.cli._metrics import parse_moment
from infermeter.analytics.economics._deployments import DEPLOYMENT_SETTINGS
from infermeter.analytics.pricing._prices import PRICE_SETTINGS

if TYPE_CHECKING:
    from infermeter.analytics._session import Analysis

__all__ = ["register"]

# Compute Optimizer looks back 14 days; so does `recommend` unless told otherwise.
DEFAULT_LOOKBACK_DAYS: Final = 14
# Beyond this a look-back reaches before year 1 (and no store holds that much history).
_MAX_DAYS: Final = 36_500


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        required=True,
        help="the store: DuckDB file, clickhouse://user:password@host:8123/db or chdb:///dir",
    )
    add_arguments(parser, (*PRICE_SETTINGS, *DEPLOYMENT_SETTINGS, *STORE_READ_SETTINGS))


def _window_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since",
        type=parse_moment,
        default=None,
        help="first request start to include (ISO, UTC; or 24h, 7d back from now)",
    )
    parser.add_argument(
        "--until",
        type=parse_moment,
        default=None,
        help="requests starting before this (ISO, UTC; or a duration back from now)",
    )
    parser.add_argument(
        "--days",
        type=_positive_days,
        default=DEFAULT_LOOKBACK_DAYS,
        help="without --since: look back this many days from the newest span "
        f"(default {DEFAULT_LOOKBACK_DAYS}, like AWS Compute Optimizer)",
    )


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``recommend``, ``compare`` and ``report``."""
    recommend = subcommands.add_parser(
        "recommend",
        help="where each workload should run, warm capacity, throttling, cost jumps",
        description="Rebalancing recommendations with the numbers behind them, a confidence "
        "that reflects the data volume and the projected saving or p95 gain.",
    )
    _common(recommend)
    _window_args(recommend)
    recommend.add_argument("--endpoint", default=None, help="only this endpoint")
    recommend.add_argument("--json", action="store_true", help="print the stable JSON document")
    recommend.set_defaults(handler=_run_recommend)

    compare = subcommands.add_parser(
        "compare",
        help="two runtimes / endpoints / prompt versions side by side, scored 1-5",
        description="Compare two slices of the traffic (e.g. --a runtime=serverless "
        "--b runtime=container) and score them on the decision criteria.",
    )
    _common(compare)
    _window_args(compare)
    compare.add_argument("--a", required=True, help="first slice: column=value[,column=value]")
    compare.add_argument("--b", required=True, help="second slice: column=value[,column=value]")
    compare.add_argument("--endpoint", default=None, help="restrict both slices to an endpoint")
    compare.add_argument(
        "--weights",
        default=None,
        help="criterion weights, e.g. latency_slo=3,cost=2 (criteria: "
        "latency_slo, cost, scaling, cold_starts, reliability, simplicity)",
    )
    compare.add_argument(
        "--weights-file",
        default=None,
        help="TOML/YAML file with [weights] and optional [simplicity] tables",
    )
    compare.add_argument("--json", action="store_true", help="print JSON")
    compare.set_defaults(handler=_run_compare)

    report = subcommands.add_parser(
        "report",
        help="weekly unit-economics report (HTML with charts, Markdown, CSV)",
        description="Write the weekly report of an ISO week against the previous week.",
    )
    _common(report)
    report.add_argument(
        "--week", default=None, help="ISO week YYYY-Www (default: the week of the newest span)"
    )
    report.add_argument("--out", required=True, help="directory to write the report into")
    report.add_argument("--top", type=int, default=5, help="top movers to list (default 5)")
    report.add_argument(
        "--no-drift",
        action="store_true",
        help="leave the drift section out even when drift results exist",
    )
    report.set_defaults(handler=_run_report)


def _session(args: argparse.Namespace, *, spans: bool = False) -> Analysis:
    """The command's analysis session (prices and deployments load before the store opens,
    so a bad file fails first). ``spans``: the command reads spans or embeddings (a
    ClickHouse store is then never read as request rows)."""
    from infermeter.analytics._session import open_analysis

    return open_analysis(
        args.store,
        prices=args.prices,
        deployments=args.deployments,
        slo_ms=args.slo_ms,
        request_rows_after=args.request_rows_after,
        spans=spans,
    )


def _positive_days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if not 1 <= days <= _MAX_DAYS:
        raise argparse.ArgumentTypeError(f"{days} days: give 1 to {_MAX_DAYS}")
    return days


def _window(
    analysis: Analysis, args: argparse.Namespace
) -> tuple[datetime | None, datetime | None]:
    window = analysis.window(args.since, args.until, days=args.days)
    _say_future(analysis)
    return window


def _say_future(analysis: Analysis) -> None:
    """Say on stderr when far-future spans were left out of "the newest span"."""
    note = analysis.future_note()
    if note:
        print(f"infermeter: {note}", file=sys.stderr)


def _status(message: str) -> Any:
    from rich.console import Console

    return Console(stderr=True).status(message)


def _run_recommend(args: argparse.Namespace) -> int:
    from infermeter.analytics.economics._recommend import recommendations_to_json

    with _session(args) as analysis:
        since, until = _window(analysis, args)
        with _status("computing recommendations"):
            decisions = analysis.decisions(since, until, endpoint=args.endpoint)
            recs = decisions.recommendations
    if args.json:
        document = recommendations_to_json(
            recs,
            endpoints=decisions.endpoints,
            generated_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            store=str(args.store),
        )
        document["window"] = {
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
        }
        json.dump(document, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    from infermeter.analytics._text import printable

    out = sys.stdout
    for rec in recs:
        numbers = [f"{rec.confidence_label} confidence {rec.confidence:.2f}", *rec.impact()]
        # Titles and rationales name endpoints and tenants from spans: one line each.
        out.write(
            f"[{rec.kind}] {printable(rec.title)}\n    ({printable('; '.join(numbers))})\n"
            f"    {printable(rec.rationale)}\n"
        )
        evidence = ", ".join(f"{k}={v}" for k, v in rec.evidence.items())
        out.write(f"    evidence: {printable(evidence)}\n\n")
    for decision in decisions.endpoints:
        # Descriptions name endpoints from spans: printable, one line each.
        out.write(
            printable(
                f"[plans] {decision.endpoint}: chosen {decision.chosen.description}; {decision.why}"
            )
            + "\n"
        )
        for plan in decision.plans:
            p95 = plan.projected_p95_ms
            out.write(
                f"    {plan.kind:<22} ${plan.monthly_cost_usd:>10,.2f}/mo "
                f"({plan.monthly_cost_change_usd:+,.2f})  p95 "
                + ("?" if p95 is None else f"{p95:,.0f} ms")
                + ("" if plan.meets_slo else "  misses SLO")
                + f"  {printable(plan.description)}\n"
            )
        out.write("\n")
    out.write("Costs are projections of the measured load to a 730-hour month at list prices.\n")
    return 0


def _run_compare(args: argparse.Namespace) -> int:
    from infermeter.analytics.economics._compare import (
        compare,
        load_weights,
        parse_selection,
        parse_weights,
    )

    a, b = parse_selection(args.a), parse_selection(args.b)
    weights: dict[str, float] = {}
    simplicity: dict[str, float] = {}
    if args.weights_file:
        weights, simplicity = load_weights(args.weights_file)
    if args.weights:
        weights.update(parse_weights(args.weights))
    with _session(args) as analysis:
        since, until = _window(analysis, args)
        with _status("comparing"):
            requests = analysis.requests(since, until)
            result = compare(
                requests,
                a=a,
                b=b,
                endpoint=args.endpoint,
                weights=weights or None,
                simplicity=simplicity or None,
                judged=analysis.judged(requests),
            )
            # The GPU questions of the self-hosted models behind the compared endpoint.
            answers = analysis.gpu_answers(since, until, endpoint=args.endpoint)
            result = dataclasses.replace(result, gpu=[r.to_dict() for r in answers])
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    _print_comparison(result, args.a, args.b)
    return 0


def _print_comparison(result: Any, a_label: str, b_label: str) -> None:
    from infermeter.analytics._text import printable
    from infermeter.analytics._text import terminal_text as text
    from infermeter.analytics.report._render import format_value
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    side = Table(title=text("side by side" + (f" ({result.endpoint})" if result.endpoint else "")))
    for header in ("metric", f"a: {a_label}", f"b: {b_label}"):
        side.add_column(text(header), overflow="fold")
    for row in result.side_by_side.iter_rows(named=True):
        side.add_row(
            row["label"],
            format_value(row["metric"], row["a"]),
            format_value(row["metric"], row["b"]),
        )
    console.print(side)
    matrix = Table(title="scoring matrix (1-5, higher is better)")
    for header in ("criterion", "weight", "a", "b", "basis a", "basis b"):
        matrix.add_column(header, overflow="fold")
    for row in result.matrix.iter_rows(named=True):
        matrix.add_row(
            row["criterion"],
            f"{row['weight']:.2f}",
            "-" if row["a_score"] is None else f"{row['a_score']:g}",
            "-" if row["b_score"] is None else f"{row['b_score']:g}",
            text(row["a_basis"]),
            text(row["b_basis"]),
        )
    console.print(matrix)
    labels = {"a": f"a ({a_label})", "b": f"b ({b_label})"}
    console.print(text(f"winner: {labels.get(result.winner, result.winner)}"))
    for note in result.notes:
        console.print(text(f"note: {printable(note)}"))
    for answer in result.gpu:
        # Titles and rationales name models and endpoints from spans: one line each.
        console.print(
            text(
                f"gpu: [{answer['kind']}] {printable(answer['title'])} "
                f"({answer['confidence_label']} confidence)"
            )
        )
        console.print(text(f"     {printable(answer['rationale'])}"))


def _read_drift(args: argparse.Namespace, analysis: Analysis) -> Any:
    """The store's latest drift results, or None when there are none (the report then
    leaves its drift section out)."""
    if args.no_drift:
        return None
    results = analysis.drift_results()
    if results is None:
        # Drift lives behind its own extra; a report without it is still a report.
        print(
            "infermeter report: drift section skipped (drift extra not installed)", file=sys.stderr
        )
        return None
    return None if results.is_empty() else results


def _run_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from infermeter.analytics.report._weekly import iso_week_bounds

    if args.week is not None:
        iso_week_bounds(args.week)  # a malformed week fails before the store is read
    with _session(args) as analysis:
        week = args.week or analysis.newest_week()
        if args.week is None:
            _say_future(analysis)
        if week is None:
            raise ValueError(f"store {args.store} has no spans; pass --week to report anyway")
        with _status(f"computing the report of {week}"):
            report = analysis.weekly_report(week, drift=_read_drift(args, analysis), top=args.top)
        with _status("writing HTML, Markdown and CSV"):
            written = report.write(Path(args.out))
    for kind, path in written.items():
        if isinstance(path, list):
            print(f"{kind}: {len(path)} files in {path[0].parent if path else args.out}")
        else:
            print(f"{kind}: {path}")
    return 0
