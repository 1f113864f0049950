"""``infermeter clickhouse``: infermeter's objects in a ClickHouse store.

- ``init`` — create (idempotent, versioned) the ``infermeter_spans``,
  ``infermeter_embeddings`` and ``infermeter_events`` views over the OpenTelemetry
  Collector's ``otel_traces`` and ``otel_logs`` (creating those tables with the exporter's
  own DDL when they do not exist yet), with the collector's tenant attributes setting.
- ``load`` — write OTLP files into ``otel_traces`` exactly as the collector's
  ``clickhouseexporter`` would (to try infermeter on ClickHouse with recorded traffic).
- ``sql`` — print the view DDL ``init`` runs, for review by whoever owns the cluster.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infermeter.agent.settings import Setting, add_arguments

if TYPE_CHECKING:
    from infermeter.collectors._store_url import StoreLocation

__all__ = ["register"]

_STORE_HELP = "clickhouse://user:password@host:8123/database or chdb:///path/to/dir"


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``clickhouse`` with its actions."""
    clickhouse = subcommands.add_parser(
        "clickhouse",
        help="set up and fill a ClickHouse store (the OpenTelemetry Collector's otel_traces)",
        description="infermeter on ClickHouse: every reading command takes --store "
        "clickhouse://… or chdb:///… once `init` has created infermeter's views.",
    )
    actions = clickhouse.add_subparsers(dest="clickhouse_command", metavar="ACTION", required=True)
    init = actions.add_parser(
        "init", help="create or upgrade infermeter's views over otel_traces (idempotent)"
    )
    init.add_argument("--store", required=True, help=_STORE_HELP)
    init.add_argument("--table", default="otel_traces", help="the exporter's traces table")
    init.add_argument(
        "--no-create-table",
        action="store_true",
        help="fail instead of creating a missing traces table with the exporter's DDL",
    )
    add_arguments(init, _tenant_setting())
    init.set_defaults(handler=_init)

    load = actions.add_parser(
        "load", help="write OTLP files into otel_traces as the clickhouseexporter does"
    )
    load.add_argument("--store", required=True, help=_STORE_HELP)
    load.add_argument("files", nargs="+", type=Path, metavar="FILE", help="OTLP JSON/protobuf")
    load.add_argument("--table", default="otel_traces", help="the exporter's traces table")
    load.set_defaults(handler=_load)

    sql = actions.add_parser("sql", help="print the views' DDL for a table shape")
    sql.add_argument("--table", default="otel_traces", help="the exporter's traces table")
    sql.add_argument("--json", action="store_true", help="the exporter's `json: true` table")
    sql.add_argument(
        "--no-scope-column", action="store_true", help="an older table without ScopeName"
    )
    add_arguments(sql, _tenant_setting())
    sql.set_defaults(handler=_sql)


def _tenant_setting() -> list[Setting[Any]]:
    """The collector's INFERMETER_TENANT_ATTRIBUTES setting: the views read it as the
    collector does (argument > environment > default)."""
    from infermeter.collectors._settings import COLLECTOR_SETTINGS

    return [s for s in COLLECTOR_SETTINGS if s.name == "tenant_attributes"]


def _clickhouse(store: str) -> StoreLocation:
    from infermeter.collectors._store_url import parse_store

    location = parse_store(store)
    if location.engine == "duckdb":
        raise ValueError(f"{store} is a DuckDB file; this command needs a ClickHouse store URL")
    return location


def _init(args: argparse.Namespace) -> int:
    from infermeter.agent.settings import resolve
    from infermeter.collectors._clickhouse_schema import clickhouse_init

    location = _clickhouse(args.store)
    client = location.client()
    try:
        tenant = resolve(_tenant_setting(), {"tenant_attributes": args.tenant_attributes})
        report = clickhouse_init(
            client,
            table=args.table,
            create_table=not args.no_create_table,
            tenant_attributes=tenant["tenant_attributes"],
        )
    finally:
        client.close()
    shape = "JSON attributes" if report.shape.json else "Map attributes"
    if not report.shape.scope_column:
        shape += ", scope in otel.scope.name"
    made = f"created {args.table}; " if report.created_table else ""
    print(
        f"infermeter clickhouse init: {made}{args.table} ({shape}); schema version "
        f"{report.from_version} -> {report.to_version} on {location.display}; tenant from "
        f"{', '.join(report.tenant_attributes) or '(tenant.id only)'}",
        file=sys.stderr,
    )
    return 0


def _load(args: argparse.Namespace) -> int:
    from infermeter.collectors._clickhouse_otel import insert_otel_traces, otel_traces_arrow
    from infermeter.collectors._clickhouse_schema import detect_shape
    from infermeter.collectors._import import read_otlp

    location = _clickhouse(args.store)
    client = location.client()
    try:
        shape = detect_shape(client, args.table)
        if shape is None:
            raise ValueError(f"no table {args.table}: run `infermeter clickhouse init` first")
        total = 0
        for path in args.files:
            requests = [request for _, request in read_otlp(path)]
            rows = otel_traces_arrow(
                requests, json_column=shape.json, scope_column=shape.scope_column
            )
            insert_otel_traces(client, rows, name=args.table)
            total += rows.num_rows
            print(f"{path}: {rows.num_rows} spans", file=sys.stderr)
    finally:
        client.close()
    print(f"infermeter clickhouse load: {total} spans into {args.table}", file=sys.stderr)
    return 0


def _sql(args: argparse.Namespace) -> int:
    from infermeter.agent.settings import resolve
    from infermeter.collectors._clickhouse_schema import LogsShape, TableShape, view_statements

    shape = TableShape(json=args.json, scope_column=not args.no_scope_column)
    tenant = resolve(_tenant_setting(), {"tenant_attributes": args.tenant_attributes})
    # As init runs them on a fresh database: with the otel_logs table it creates.
    logs = LogsShape(json=args.json, event_name=True)
    for statement in view_statements(
        shape, table=args.table, tenant_attributes=tenant["tenant_attributes"], logs=logs
    ):
        print(statement + ";\n")
    return 0
