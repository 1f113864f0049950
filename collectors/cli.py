"""Subcommands owned by infermeter.collectors: ``collect``, ``import``, ``export``, ``migrate``.

Registered into the one console script; nothing heavy is imported until a command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infermeter.agent.settings import add_arguments
from infermeter.collectors._settings import COLLECTOR_SETTINGS

__all__ = ["register"]


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this room's subcommands; imports nothing heavy until a command runs."""
    collect = subcommands.add_parser(
        "collect",
        help="receive OTLP/HTTP spans into a DuckDB store",
        description=(
            "Serve OTLP/HTTP (POST /v1/traces, protobuf or JSON, gzip) and store every span "
            "in the DuckDB file at --store. A span answered with 2xx survives a crash (it "
            "is in the write-ahead log next to the store). SIGTERM/SIGINT: stop accepting, "
            "store everything received, exit 0. The address is printed on stderr and "
            "written to <store>.infermeter/collector.json."
        ),
    )
    collect.add_argument(
        "--store",
        required=True,
        help="the store: DuckDB file, or clickhouse://user:password@host:8123/db (chdb:///dir)",
    )
    add_arguments(collect, COLLECTOR_SETTINGS)
    collect.set_defaults(handler=_collect)

    load = subcommands.add_parser(
        "import",
        help="load OTLP JSON / protobuf files into a store",
        description=(
            "Load OTLP trace files: OTLP/JSON (one ExportTraceServiceRequest per file, or "
            "one per line as the OpenTelemetry Collector's file exporter writes them; .gz "
            "accepted) and binary OTLP protobuf. Each file is loaded atomically; a file "
            "already imported (same content) is skipped. When a collector is running on "
            "the store the spans are sent through it."
        ),
    )
    load.add_argument("--store", required=True, type=Path, help="DuckDB store file")
    load.add_argument("files", nargs="+", type=Path, metavar="FILE", help="files to load")
    load.add_argument(
        "--force", action="store_true", help="load files even if they were imported before"
    )
    load.set_defaults(handler=_import)

    export = subcommands.add_parser(
        "export",
        help="write the store as Parquet partitioned by day",
        description=(
            "Write spans and embeddings as Parquet, hive-partitioned by UTC day: "
            "DIR/spans/date=YYYY-MM-DD/*.parquet and DIR/embeddings/date=YYYY-MM-DD/*.parquet. "
            "Works while a collector is running (reads its snapshot)."
        ),
    )
    export.add_argument(
        "--store",
        required=True,
        help="the store: DuckDB file, clickhouse://user:password@host:8123/db or chdb:///dir",
    )
    export.add_argument("--parquet", required=True, type=Path, metavar="DIR", help="output folder")
    export.add_argument(
        "--overwrite", action="store_true", help="replace an existing non-empty output folder"
    )
    export.set_defaults(handler=_export)

    migrate = subcommands.add_parser(
        "migrate",
        help="upgrade a store written by an older infermeter",
        description=(
            "Bring the store's schema up to this infermeter's (readers such as report and "
            "metrics never write, so they refuse an older store until it is upgraded; a "
            "collector upgrades the store it opens by itself). A DuckDB file that is not an "
            "infermeter store is refused and left untouched."
        ),
    )
    migrate.add_argument("--store", required=True, type=Path, help="DuckDB store file")
    migrate.set_defaults(handler=_migrate)

    from infermeter.collectors import _cli_clickhouse

    _cli_clickhouse.register(subcommands)


def _collect(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from infermeter.collectors._collector import Collector, tune_gc_for_ingest

    settings = {s.name: getattr(args, s.name) for s in COLLECTOR_SETTINGS}
    collector = Collector(args.store, **settings)
    logging.basicConfig(
        level=collector.settings["log_level"],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        collector.start()
        tune_gc_for_ingest()
        print(
            f"infermeter collect: listening on {collector.url} (store {collector.paths.store})",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
        print("infermeter collect: stopping; storing what is queued", file=sys.stderr, flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        drained = collector.stop()
    return 0 if drained else 1


def _import(args: argparse.Namespace) -> int:
    from infermeter.agent.settings import resolve
    from infermeter.collectors._flatten import Limits
    from infermeter.collectors._import import import_otlp
    from infermeter.collectors._settings import COLLECTOR_SETTINGS

    # Files are read with the collector's tenant attributes (INFERMETER_TENANT_ATTRIBUTES).
    tenant_setting = [s for s in COLLECTOR_SETTINGS if s.name == "tenant_attributes"]
    limits = Limits(tenant_attributes=resolve(tenant_setting)["tenant_attributes"])
    report = import_otlp(args.store, args.files, force=args.force, progress=True, limits=limits)
    for line in report.lines():
        print(line, file=sys.stderr)
    return 0 if not report.failed else 1


def _export(args: argparse.Namespace) -> int:
    from infermeter.collectors._export import write_parquet

    result = write_parquet(args.store, args.parquet, overwrite=args.overwrite)
    print(
        f"infermeter export: {result.spans} spans, {result.embeddings} embeddings, "
        f"{result.days} day(s) → {result.directory}",
        file=sys.stderr,
    )
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from infermeter.collectors._reader import migrate_store

    before, after = migrate_store(args.store)
    if before == after:
        print(f"infermeter migrate: {args.store} is already at schema {after}", file=sys.stderr)
    else:
        print(
            f"infermeter migrate: {args.store} upgraded from schema {before} to {after}",
            file=sys.stderr,
        )
    return 0
