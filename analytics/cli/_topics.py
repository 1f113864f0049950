"""``infermeter topics``: did what users ask about shift between two windows?

The rule (k-means on the reference window's query embeddings, chi-square on the cluster
shares) is ``infermeter.analytics.quality.topic_shift``'s. Windows are ``START..END``
(ISO, UTC, end exclusive); the default compares the last ``--days`` before the newest
span with the same length before that.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta

from infermeter.analytics.cli._metrics import parse_moment
from infermeter.analytics.cli._report import _common, _session, _status

__all__ = ["register"]


def _range(text: str) -> tuple[datetime, datetime]:
    start, sep, end = text.partition("..")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r} is not START..END (ISO dates or timestamps)")
    # The one --since/--until parser of the CLI (ISO, or a duration back from now).
    low, high = parse_moment(start), parse_moment(end)
    if low >= high:
        raise argparse.ArgumentTypeError(f"{text!r}: START must be before END")
    return low, high


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    topics = subcommands.add_parser(
        "topics",
        help="topic shift of the sampled query embeddings between two windows",
        description="Cluster the reference window's query embeddings (k-means, k by "
        "silhouette), assign both windows and test the change of cluster shares "
        "(chi-square; shift when p < 0.01 and a share moved >= 5 points).",
    )
    _common(topics)
    topics.add_argument("--reference", type=_range, default=None, help="START..END")
    topics.add_argument("--current", type=_range, default=None, help="START..END")
    topics.add_argument(
        "--days", type=float, default=7.0, help="window length without --reference/--current"
    )
    topics.add_argument("--kind", default="query", help="embedding kind (default query)")
    topics.add_argument("--model", default=None, help="only this embedding model")
    topics.add_argument("--json", action="store_true", help="print the result as JSON")
    topics.set_defaults(handler=_run_topics)


def _run_topics(args: argparse.Namespace) -> int:
    with _session(args, spans=True) as analysis:  # embeddings
        current, reference = args.current, args.reference
        if current is None:
            newest = analysis.newest_span()
            if newest is None:
                raise ValueError(f"store {args.store} has no spans")
            end = newest + timedelta(microseconds=1)
            current = (end - timedelta(days=args.days), end)
        if reference is None:
            length = current[1] - current[0]
            reference = (current[0] - length, current[0])
        with _status("clustering query embeddings"):
            result = analysis.topic_shift(reference, current, kind=args.kind, model=args.model)
    if args.json:
        document = {
            "reference": [reference[0].isoformat(), reference[1].isoformat()],
            "current": [current[0].isoformat(), current[1].isoformat()],
            "shifted": result.shifted,
            "k": result.k,
            "chi2": result.chi2,
            "dof": result.dof,
            "p_value": result.p_value,
            "reference_n": result.reference_n,
            "current_n": result.current_n,
            "clusters": [vars(c) for c in result.clusters],
        }
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(result.summary())
    for cluster in result.clusters:
        print(
            f"  cluster {cluster.cluster}: {cluster.reference_share:.1%} -> "
            f"{cluster.current_share:.1%} ({cluster.change:+.1%})"
        )
        for example in cluster.examples:
            print(f"      e.g. {example!r}")
    return 0
