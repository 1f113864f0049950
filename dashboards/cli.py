"""Subcommands owned by infermeter.dashboards (registered into the one console script):
``serve`` (the Prometheus exporter) and ``dashboards push|export``."""

from __future__ import annotations

import argparse
import sys

from infermeter.agent.settings import add_arguments, resolve

__all__ = ["register"]


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this room's subcommands; imports nothing heavy until a command runs."""
    from infermeter.dashboards._settings import EXPORT_SETTINGS, SERVE_SETTINGS
    from infermeter.dashboards.grafana import GRAFANA_SETTINGS

    serve = subcommands.add_parser(
        "serve",
        help="expose the analytics rollups on /metrics for Prometheus",
        description="Serve the store's rollups (p95, cold starts, throttles, cost per "
        "request, drift, recommendations ...) in the Prometheus text format. "
        "Rollups are recomputed in the background every --refresh-interval; a "
        "scrape only reads the latest result.",
    )
    add_arguments(serve, SERVE_SETTINGS)
    serve.set_defaults(handler=_serve)

    dashboards = subcommands.add_parser(
        "dashboards",
        help="provision the Grafana dashboards",
        description="Provision infermeter's Grafana dashboards (overview, unit economics, "
        "runtime rebalancing, drift).",
    )
    actions = dashboards.add_subparsers(dest="action", metavar="ACTION", required=True)
    push = actions.add_parser(
        "push",
        help="create or update folder, Prometheus data source and dashboards",
        description="Create or update (idempotently) the folder, the Prometheus data source "
        "and the dashboards in a Grafana through its HTTP API.",
    )
    add_arguments(push, GRAFANA_SETTINGS)
    push.set_defaults(handler=_push)
    export = actions.add_parser(
        "export",
        help="write Grafana file-provisioning YAML and dashboard JSON",
        description="Write provisioning/datasources/*.yaml, provisioning/dashboards/*.yaml and "
        "dashboards/*.json under --out for Grafana's file provisioning.",
    )
    export.add_argument("--out", required=True, help="directory to write into")
    add_arguments(export, EXPORT_SETTINGS)
    export.set_defaults(handler=_export)


def _explicit(args: argparse.Namespace) -> dict[str, object]:
    return {k: v for k, v in vars(args).items() if k not in {"handler", "command", "action"}}


def _serve(args: argparse.Namespace) -> int:
    from infermeter.dashboards._exporter import serve_forever
    from infermeter.dashboards._settings import SERVE_SETTINGS

    return serve_forever(resolve(SERVE_SETTINGS, _explicit(args)))


def _push(args: argparse.Namespace) -> int:
    from infermeter.dashboards._provision import push_dashboards
    from infermeter.dashboards.grafana import GrafanaTarget

    target = GrafanaTarget.resolve(_explicit(args))
    report = push_dashboards(target)
    for line in report.lines():
        print(line)
    print(
        f"pushed to {target.display_url}: {report.changed()} changed, "
        f"{len(report.actions) - report.changed()} unchanged",
        file=sys.stderr,
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    from infermeter.dashboards._provision import export_dashboards
    from infermeter.dashboards._settings import EXPORT_SETTINGS

    values = resolve(EXPORT_SETTINGS, _explicit(args))
    for path in export_dashboards(args.out, **values):
        print(path)
    return 0
