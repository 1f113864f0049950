"""Subcommands owned by infermeter.alerts (registered into the one console script):
``alerts push | export | check``."""

from __future__ import annotations

import argparse
import sys

from infermeter.agent.settings import add_arguments, resolve

__all__ = ["register"]


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this room's subcommands; imports nothing heavy until a command runs."""
    from infermeter.alerts._settings import CHECK_SETTINGS, EXPORT_SETTINGS, PUSH_SETTINGS

    alerts = subcommands.add_parser(
        "alerts",
        help="alert rules: push to Grafana, export for Prometheus, check a store",
        description="infermeter's alert rules (SLO, cold starts, throttles, errors, cost, "
        "budgets, drift, rebalancing), defined once and overridable by a YAML "
        "file (--rules).",
    )
    actions = alerts.add_subparsers(dest="action", metavar="ACTION", required=True)
    push = actions.add_parser(
        "push",
        help="provision Grafana-managed alert rules, contact point and policy",
        description="Create or update (idempotently) the folder, the Prometheus data source, "
        "the 'infermeter' rule group, a contact point and a notification route "
        "for source=infermeter in a Grafana.",
    )
    add_arguments(push, PUSH_SETTINGS)
    push.set_defaults(handler=_push)
    export = actions.add_parser(
        "export",
        help="write Prometheus alerting rules over the exporter's metrics",
        description="Write a Prometheus rule file (check it with `promtool check rules`).",
    )
    export.add_argument("--prometheus", required=True, metavar="FILE", help="rule file to write")
    add_arguments(export, EXPORT_SETTINGS)
    export.set_defaults(handler=_export)
    check = actions.add_parser(
        "check",
        help="evaluate the rules on a store; exit 3 while anything fires",
        description="Evaluate the rules straight from the store and print what fires; "
        "optionally post Alertmanager-format webhooks or hand the alerts to an "
        "Alertmanager. Exit status: 0 nothing fires, 3 something fires, "
        "1 error, 2 configuration error.",
    )
    add_arguments(check, CHECK_SETTINGS)
    check.add_argument(
        "--json", action="store_true", help="print the Alertmanager webhook bodies instead of lines"
    )
    check.set_defaults(handler=_check)


def _explicit(args: argparse.Namespace) -> dict[str, object]:
    skip = {"handler", "command", "action", "json", "prometheus"}
    return {k: v for k, v in vars(args).items() if k not in skip}


def _push(args: argparse.Namespace) -> int:
    from infermeter.agent.settings import ConfigurationError
    from infermeter.alerts._grafana import Contact, push_alerts
    from infermeter.alerts._rules import load_rules
    from infermeter.alerts._settings import PUSH_SETTINGS
    from infermeter.dashboards.grafana import GrafanaTarget

    values = resolve(PUSH_SETTINGS, _explicit(args))
    target = GrafanaTarget.resolve(
        {
            k: values[k]
            for k in (
                "grafana_url",
                "token",
                "prometheus_url",
                "folder_uid",
                "folder_title",
                "datasource_uid",
                "timeout",
            )
        }
    )
    if not values["webhook"] and not values["emails"]:
        raise ConfigurationError(
            "no contact point: pass --webhook URL or --emails ADDRESSES "
            "(or INFERMETER_ALERT_WEBHOOK / INFERMETER_ALERT_EMAILS)"
        )
    if values["webhook"] and values["emails"]:
        raise ConfigurationError("give either --webhook or --emails, not both")
    contact = Contact(webhook_url=values["webhook"], emails=values["emails"] or ())
    report = push_alerts(
        target,
        load_rules(values["rules"]),
        contact,
        interval_s=_grafana_interval(values["interval"]),
        editable=values["editable"],
    )
    for line in report.lines():
        print(line)
    print(
        f"pushed to {target.display_url}: {report.changed()} changed, "
        f"{len(report.actions) - report.changed()} unchanged",
        file=sys.stderr,
    )
    return 0


def _grafana_interval(seconds: float) -> int:
    from infermeter.agent.settings import ConfigurationError

    # Grafana evaluates rule groups on multiples of its 10 s base interval.
    whole = int(seconds)
    if whole < 10 or whole % 10:
        raise ConfigurationError("--interval must be a multiple of 10s for Grafana")
    return whole


def _export(args: argparse.Namespace) -> int:
    from infermeter.alerts._promql import format_duration, write_prometheus_rules
    from infermeter.alerts._rules import load_rules
    from infermeter.alerts._settings import EXPORT_SETTINGS

    values = resolve(EXPORT_SETTINGS, _explicit(args))
    path = write_prometheus_rules(
        args.prometheus, load_rules(values["rules"]), interval=format_duration(values["interval"])
    )
    print(path)
    return 0


def _check(args: argparse.Namespace) -> int:
    from infermeter.agent.settings import ConfigurationError
    from infermeter.alerts._check import run_check
    from infermeter.alerts._settings import CHECK_SETTINGS, EXIT_FIRING

    values = resolve(CHECK_SETTINGS, _explicit(args))
    if not values["store"]:
        raise ConfigurationError("no store: pass --store PATH or set INFERMETER_STORE")
    alerts = run_check(values, as_json=args.json)
    return EXIT_FIRING if alerts else 0
