"""infermeter: meter every inference of an AI service.

``from infermeter import observe`` is the front door; everything else lives in the
rooms (``infermeter.agent``, ``.collectors``, ``.analytics``, ``.dashboards``,
``.alerts``). This module only re-exports the decorator API and composes the one
console script out of the subcommands each room registers.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from infermeter.agent import annotate, configure, evaluate, feedback, observe, span

__all__ = ["annotate", "configure", "evaluate", "feedback", "main", "observe", "span"]

# Each room owns its subcommands; a module here must import nothing heavy at top level
# (argument parsing happens before any extra is needed).
_CLI_MODULES = (
    "infermeter.collectors.cli",
    "infermeter.analytics.cli",
    "infermeter.dashboards.cli",
    "infermeter.alerts.cli",
    "infermeter._demo",
)

# Extra that provides each top-level import, for the "missing dependency" message.
_EXTRA_FOR_MODULE = {
    "duckdb": "collector",
    "pyarrow": "collector",
    "polars": "analytics",
    "plotly": "analytics",
    "rich": "analytics",
    "yaml": "analytics",
    "google": "collector",  # googleapis-common-protos: the OTLP error bodies
    "evidently": "drift",
    "pandas": "drift",
    "numpy": "drift",
    "scipy": "drift",
    "sklearn": "drift",
    "threadpoolctl": "drift",
    "grafana_client": "grafana",
    "clickhouse_connect": "clickhouse",
    "chdb": "clickhouse",
    "prometheus_client": "grafana",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="infermeter",
        description="Meter AI inference: cost per request, p95, cold starts, throttles, drift.",
    )
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in _CLI_MODULES:
        importlib.import_module(module_name).register(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``infermeter`` console script; returns the process exit code."""
    from infermeter.agent import ConfigurationError

    parser = _parser()
    args = parser.parse_args(argv)
    debug = os.environ.get("INFERMETER_DEBUG", "") not in {"", "0", "false"}
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        print("infermeter: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`infermeter metrics ... | head`): not an error of ours.
        # Point stdout at devnull so the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except ModuleNotFoundError as exc:
        if debug:
            raise
        top = (exc.name or "").split(".")[0]
        extra = _EXTRA_FOR_MODULE.get(top)
        if extra is None:
            raise
        print(
            f"infermeter {args.command}: needs the '{extra}' extra "
            f"(pip install 'infermeter[{extra}]'); missing module {top!r}",
            file=sys.stderr,
        )
        return 2
    except ConfigurationError as exc:
        print(f"infermeter {args.command}: configuration error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, OverflowError) as exc:
        # OverflowError: a number from the command line too large for a date or interval.
        if debug:
            raise
        print(f"infermeter {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return code
