"""``infermeter metrics``, ``infermeter stages`` and ``infermeter prices``.

Nothing heavy is imported until a command runs. The store is opened read-only through
``infermeter.collectors.open_reader``; requests are priced at query time with the bundled
prices, a pricing file (``--prices`` / ``INFERMETER_PRICES``) and a deployments file
(``--deployments`` / ``INFERMETER_DEPLOYMENTS``).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from infermeter.agent.settings import add_arguments
from infermeter.analytics._read_settings import STORE_READ_SETTINGS
from infermeter.analytics.economics._deployments import DEPLOYMENT_SETTINGS
from infermeter.analytics.pricing._prices import PRICE_SETTINGS
from infermeter.analytics.query._queries import GROUP_COLUMNS

if TYPE_CHECKING:
    import polars as pl
    from infermeter.analytics._session import Analysis

__all__ = ["register"]

# What a terminal table shows unless --columns says otherwise (csv/json carry every column).
TABLE_COLUMNS: Final = (
    "requests",
    "error_rate",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "ttft_p95_ms",
    "cold_start_rate",
    "cold_start_penalty_ms",
    "slo_breach_rate",
    "throttle_rate",
    "input_tokens_per_request",
    "output_tokens_per_request",
    "cost_per_request_usd",
    "cost_per_successful_request_usd",
    "total_cost_usd",
    "unpriced_requests",
    "untokenized_requests",
    "peak_concurrency",
    "utilization",
)

_SIDEWAYS_MAX_ROWS: Final = 8
_KEY_COLUMNS: Final = frozenset({*GROUP_COLUMNS, "bucket"})

_RELATIVE: Final = re.compile(r"^\s*(\d+)\s*(m|h|d|w)\s*$", re.IGNORECASE)
_RELATIVE_UNITS: Final = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_moment(text: str) -> datetime:
    """An ISO date/time (naive = UTC) or a duration back from now (``24h``, ``7d``)."""
    relative = _RELATIVE.match(text)
    if relative:
        amount = int(relative.group(1))
        try:
            delta = timedelta(**{_RELATIVE_UNITS[relative.group(2).lower()]: amount})
            return (datetime.now(UTC) - delta).replace(tzinfo=None)
        except OverflowError:
            raise argparse.ArgumentTypeError(
                f"{text!r} reaches back before year 1; give a shorter duration"
            ) from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an ISO date/time (2026-11-16, 2026-11-16T08:00) "
            "nor a duration back from now (24h, 7d)"
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _store_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        required=True,
        help="the store: DuckDB file, clickhouse://user:password@host:8123/db or chdb:///dir",
    )
    parser.add_argument(
        "--since",
        type=parse_moment,
        default=None,
        help="requests starting at or after (ISO, UTC; or 24h, 7d back from now)",
    )
    parser.add_argument(
        "--until",
        type=parse_moment,
        default=None,
        help="requests starting before (ISO, UTC; or a duration back from now)",
    )


def _format_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="table (terminal), csv or json (every column); default table",
    )


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``metrics``, ``stages`` and ``prices``."""
    metrics = subcommands.add_parser(
        "metrics",
        help="latency tails, cold starts, throttles, tokens and cost per request",
        description="The metric table of the requests in the store, grouped by any of "
        f"{', '.join(GROUP_COLUMNS)} and a time bucket.",
    )
    _store_args(metrics)
    add_arguments(metrics, (*PRICE_SETTINGS, *DEPLOYMENT_SETTINGS, *STORE_READ_SETTINGS))
    metrics.add_argument(
        "--by", default="", help=f"comma-separated group columns ({', '.join(GROUP_COLUMNS)})"
    )
    metrics.add_argument(
        "--bucket",
        default=None,
        help="time bucket per row: e.g. 1h, 1d, 1w (UTC; weeks start Monday)",
    )
    metrics.add_argument(
        "--columns", default=None, help="comma-separated metric columns for the table, or 'all'"
    )
    metrics.add_argument(
        "--quality",
        action="store_true",
        help="add quality next to cost: good rate, cost per good answer, negative-feedback "
        "rate (from evaluations) and retrieval hit rate",
    )
    _format_arg(metrics)
    metrics.set_defaults(handler=_run_metrics)

    stages = subcommands.add_parser(
        "stages",
        help="share of request latency per stage (retrieval, rerank, inference …)",
        description="Where the time of requests with nested spans goes, per stage.",
    )
    _store_args(stages)
    add_arguments(stages, (*PRICE_SETTINGS, *DEPLOYMENT_SETTINGS))
    stages.add_argument("--by", default="", help="comma-separated group columns")
    _format_arg(stages)
    stages.set_defaults(handler=_run_stages)

    prices = subcommands.add_parser(
        "prices",
        help="the token and compute prices behind every cost number",
        description="Show how a model is priced, list the compute prices with their "
        "sources, or check which models in a store have no price.",
    )
    actions = prices.add_subparsers(dest="prices_command", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="the price of one model (as a span names it)")
    show.add_argument("model", help="model name, e.g. gpt-4o-2024-08-06 or openai/gpt-4o")
    show.add_argument(
        "--provider", default=None, help="gen_ai.provider.name of the span (openai, aws.bedrock, …)"
    )
    add_arguments(show, PRICE_SETTINGS)
    show.set_defaults(handler=_run_prices_show)
    compute = actions.add_parser("compute", help="compute list prices with source and date")
    add_arguments(compute, PRICE_SETTINGS)
    _format_arg(compute)
    compute.set_defaults(handler=_run_prices_compute)
    check = actions.add_parser(
        "check", help="how each model in a store is priced; exit 1 when some are unpriced"
    )
    _store_args(check)
    add_arguments(check, PRICE_SETTINGS)
    _format_arg(check)
    check.set_defaults(handler=_run_prices_check)


@contextmanager
def _status(message: str) -> Iterator[None]:
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield


def _session(
    args: argparse.Namespace, *, deployments: bool = True, spans: bool = False
) -> Analysis:
    """The command's analysis session (prices and deployments load before the store opens,
    so a bad file fails first). ``spans``: the command reads every span of the window (a
    ClickHouse store is then never read as request rows)."""
    from infermeter.analytics._session import open_analysis

    return open_analysis(
        args.store,
        prices=args.prices,
        deployments=args.deployments if deployments else None,
        slo_ms=getattr(args, "slo_ms", None),
        request_rows_after=getattr(args, "request_rows_after", None),
        spans=spans,
        # A ClickHouse store pulls only this window's spans (a DuckDB file ignores it).
        since=getattr(args, "since", None),
        until=getattr(args, "until", None),
    )


def _check_window(args: argparse.Namespace) -> None:
    if args.since is not None and args.until is not None and args.since >= args.until:
        raise ValueError(f"--since {args.since} is not before --until {args.until}")


def _run_metrics(args: argparse.Namespace) -> int:
    from infermeter.analytics.query._buckets import check_group_columns, parse_bucket
    from infermeter.analytics.query._metrics import METRIC_COLUMNS, metrics

    by = check_group_columns(args.by)
    if args.bucket is not None:
        parse_bucket(args.bucket)
        if args.quality:
            raise ValueError("--quality groups by --by only; leave --bucket out")
    columns = _table_columns(args.columns, METRIC_COLUMNS)
    if args.quality:
        columns += [c for c in _QUALITY_COLUMNS if c not in columns]
    _check_window(args)
    # --quality reads retrieval spans: every span of the window.
    with _session(args, spans=args.quality) as analysis, _status("computing metrics"):
        requests = analysis.requests(args.since, args.until)
        frame = metrics(requests, by=by, bucket=args.bucket)
        (foreign,) = requests.aggregate(
            "coalesce(sum(foreign_spans), 0), count(*) FILTER (WHERE foreign_spans > 0)"
        ).fetchall()
        if args.quality:
            frame = analysis.with_quality(frame, by=by, since=args.since, until=args.until)
    keys = [*by, *(["bucket"] if args.bucket else [])]
    _emit(frame, args.format, [*keys, *columns], title="requests")
    if foreign[0]:
        sys.stderr.write(
            f"infermeter metrics: {foreign[0]:,} span(s) naming another tenant than their "
            f"request's entry span were left out of {foreign[1]:,} request(s) (written into "
            "another tenant's trace; see the request table's foreign_spans).\n"
        )
    unpriced = int(frame["unpriced_requests"].sum() or 0) if frame.height else 0
    if unpriced and args.format == "table":
        # Totals must not pass for complete: say what they leave out.
        sys.stdout.write(
            f"Token and total costs exclude {unpriced:,} unpriced request(s) (models without "
            "a price: `infermeter prices check` lists them).\n"
        )
    return 0


_QUALITY_COLUMNS: Final = (
    "judged_requests",
    "good_rate",
    "cost_per_good_answer_usd",
    "negative_feedback_rate",
    "retrieval_hit_rate",
)


def _table_columns(requested: str | None, known: Sequence[str]) -> list[str]:
    if requested is None:
        return list(TABLE_COLUMNS)
    if requested.strip().lower() == "all":
        return list(known)
    columns = [c.strip() for c in requested.split(",") if c.strip()]
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise ValueError(f"unknown columns {unknown}; choose from {', '.join(known)}")
    return columns


def _run_stages(args: argparse.Namespace) -> int:
    from infermeter.analytics.query._buckets import check_group_columns

    by = check_group_columns(args.by)
    _check_window(args)
    with _session(args, spans=True) as analysis, _status("attributing latency to stages"):
        frame = analysis.stages(by=by, since=args.since, until=args.until)
    _emit(frame, args.format, list(frame.columns), title="latency per stage")
    return 0


def _run_prices_show(args: argparse.Namespace) -> int:
    from infermeter.analytics.pricing._prices import load_prices

    book = load_prices(args.prices)
    price = book.token_price(args.model, args.provider)
    if price is None:
        raise ValueError(
            f"no price for model {args.model!r}; add it to a pricing file "
            f'([tokens."{args.model}"] input_per_million = …) or alias it ([aliases])'
        )
    out = sys.stdout
    out.write(
        f"model        {args.model}"
        + (f" (provider {args.provider})" if args.provider else "")
        + "\n"
    )
    out.write(
        f"priced by    {price.model} [{price.match}]"
        + (f", provider {price.provider}" if price.provider else "")
        + (f", mode {price.mode}" if price.mode else "")
        + "\n"
    )
    for label, value in (
        ("input", price.input),
        ("output", price.output),
        ("cache read", price.cache_read),
        ("cache write", price.cache_write),
        ("reasoning", price.reasoning),
    ):
        out.write(f"{label:<12} ${value * 1e6:,.4f} per 1M tokens\n")
    out.write(f"source       {price.source}\n")
    return 0


def _run_prices_compute(args: argparse.Namespace) -> int:
    import polars as pl
    from infermeter.analytics.pricing._prices import load_prices

    book = load_prices(args.prices)
    compute = book.compute
    rows = [
        {
            "price": name,
            "value_usd": getattr(compute, name),
            "unit": source.unit,
            "source": source.source,
            "date": source.date,
            "note": source.note,
        }
        for name, source in compute.sources.items()
    ]
    # GPU instances (list, on-demand) and serverless GPU, named gpu:<instance>.
    gpu = book.gpu
    stale = "" if gpu.refetched else "not re-fetched when bundled; "
    rows += [
        {
            "price": f"gpu:{instance.name}",
            "value_usd": instance.usd_per_hour,
            "unit": f"USD per instance-hour ({instance.gpus}x {instance.gpu_type}, "
            f"{instance.vcpu:g} vCPU, {instance.memory_gib:g} GiB)",
            "source": instance.source,
            "date": instance.date,
            "note": (stale if instance.provider != "custom" else "") + instance.note,
        }
        for instance in gpu.instances.values()
    ]
    rows += [
        {
            "price": f"gpu:{service.name}",
            "value_usd": service.usd_per_second,
            "unit": f"USD per instance-second while up ({service.gpus}x {service.gpu_type} "
            "+ the vCPU and memory it requires)",
            "source": service.source,
            "date": service.date,
            "note": f"scale to zero after {service.idle_timeout_s:.0f} s idle",
        }
        for service in gpu.serverless.values()
    ]
    frame = pl.DataFrame(rows)
    _emit(frame, args.format, list(frame.columns), title="compute list prices")
    if args.format == "table":
        sys.stdout.write("free tiers (monthly, per account; not subtracted per request):\n")
        for tier in compute.free_tiers.values():
            parts = [
                f"{k} {v:,.0f}"
                for k, v in (
                    ("requests", tier.requests),
                    ("GB-s", tier.gb_s),
                    ("vCPU-s", tier.vcpu_s),
                    ("GiB-s", tier.gib_s),
                )
                if v
            ]
            sys.stdout.write(f"  {tier.name}: {', '.join(parts) or 'none'} ({tier.source})\n")
    return 0


def _run_prices_check(args: argparse.Namespace) -> int:

    _check_window(args)
    with _session(args, deployments=False, spans=True) as analysis, _status("checking prices"):
        frame = analysis.price_coverage(since=args.since, until=args.until)
    columns = [
        "model",
        "response_model",
        "provider",
        "spans",
        "input_tokens",
        "output_tokens",
        "priced_by",
        "match",
        "input_per_million",
        "output_per_million",
        "token_cost_usd",
        "unpriced",
        "untokenized_spans",
        "ambiguous",
    ]
    if frame["emitter_cost_usd"].is_not_null().any():
        columns += ["emitter_cost_usd", "cost_difference_usd"]
    _emit(
        frame,
        args.format,
        columns if args.format == "table" else list(frame.columns),
        title="token prices per model",
    )
    from infermeter.analytics._text import printable

    ambiguous = frame.filter(frame["ambiguous"].is_not_null())
    for row in ambiguous.iter_rows(named=True):
        sys.stderr.write(
            f"infermeter prices check: {printable(row['model'])!r} names no provider and "
            "several listings at different prices could mean it "
            f"({printable(row['ambiguous'])}); priced as {row['priced_by']}. Set "
            "gen_ai.provider.name or pin it with [aliases].\n"
        )
    unpriced = sorted({printable(m) for m in frame.filter(frame["unpriced"])["model"].to_list()})
    if unpriced:
        sys.stderr.write(
            f"infermeter prices check: tokens without a price for {', '.join(unpriced)}; "
            "their requests count as unpriced (token_cost_usd NULL). Add them to a pricing "
            'file ([tokens."name"] or [aliases]) and pass --prices.\n'
        )
    untokenized = frame.filter(frame["untokenized_spans"] > 0)
    if untokenized.height:
        names = sorted({str(m) for m in untokenized["model"].to_list()})
        calls = int(untokenized["untokenized_spans"].sum())
        sys.stderr.write(
            f"infermeter prices check: {calls} LLM call(s) of {', '.join(names)} reported no "
            "token counts; their requests count as untokenized (token_cost_usd NULL). Make "
            "the instrumentation record gen_ai.usage.* (for OpenAI streams: "
            "stream_options={'include_usage': True}).\n"
        )
    return 1 if unpriced or untokenized.height else 0


# Cost columns whose NULL means "tokens without a price", never "nothing".
_UNPRICED_WHEN_NULL: Final = frozenset(
    {"token_cost_usd", "total_cost_usd", "cost_per_request_usd", "cost_per_successful_request_usd"}
)


def _number(column: str, value: float) -> str:
    if column.endswith("_rate") or column in {"utilization", "share", "mean_share"}:
        return f"{value:.1%}"
    if column.endswith(("_usd", "_per_million")):
        return f"${value:,.6g}"
    if column.endswith("_ms"):
        return f"{value:,.0f}"
    return f"{value:,.4g}"


def _cell(column: str, value: Any) -> str:
    if value is None and column in _UNPRICED_WHEN_NULL:
        text = "unpriced"
    elif value is None:
        text = "-"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = _number(column, value)
    elif isinstance(value, datetime):
        text = value.isoformat(sep=" ", timespec="seconds")
    else:
        text = str(value)
    return text


def _emit(frame: pl.DataFrame, fmt: str, columns: list[str], *, title: str) -> None:
    if fmt == "csv":
        from infermeter.analytics._text import csv_safe

        csv_safe(frame).write_csv(sys.stdout)
        return
    if fmt == "json":
        sys.stdout.write((frame.write_json() or "[]") + "\n")
        return
    from infermeter.analytics._text import terminal_text as text
    from rich.console import Console
    from rich.table import Table

    # Cells are rich Text (never parsed as markup) with control characters escaped: the
    # values come from spans.
    console = Console(file=sys.stdout, highlight=False)
    rows = list(frame.select(columns).iter_rows(named=True))
    # Many metrics for a few groups read better turned sideways: one column per group.
    if len(columns) * 9 > console.width and 0 < len(rows) <= _SIDEWAYS_MAX_ROWS:
        keys = [c for c in columns if c in _KEY_COLUMNS]
        table = Table(title=f"{title} ({frame.height} rows)")
        table.add_column("metric")
        for row in rows:
            label = " / ".join(_cell(k, row[k]) for k in keys) or "all"
            table.add_column(text(label), justify="right", overflow="fold")
        for column in columns:
            if column not in keys:
                table.add_row(column, *(text(_cell(column, row[column])) for row in rows))
        console.print(table)
        return
    table = Table(title=f"{title} ({frame.height} rows)")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(text(_cell(column, row[column])) for column in columns))
    console.print(table)
