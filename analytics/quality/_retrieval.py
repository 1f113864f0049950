"""Retrieval signals: documents returned, top score, hit rate, and top-k overlap.

A retrieval span carries ``infermeter.retrieval.ids`` (rank order), optionally
``infermeter.retrieval.used_ids`` (what the answer used or cited), ``.scores``,
``.query_fingerprint`` and ``.index_version`` (``infermeter.annotate(retrieved_ids=…,
used_ids=…)`` sets them; other emitters can send the same attribute names).

- **hit**: at least one used id is among the retrieved ids; spans without ``used_ids``
  have no hit value and are left out of the hit rate.
- **top-k overlap** of the same query (same fingerprint) between two versions (prompt or
  index version, or time buckets): the latest top-``k`` list of each side, compared by
  Jaccard (|A and B| / |A or B|, order ignored) and rank-biased overlap (Webber, Moffat & Zobel
  2010, extrapolated RBO, eq. 32, persistence ``p`` = 0.9: the top ranks weigh most;
  identical lists score 1, disjoint 0). Consecutive versions, in order of first use, are
  compared; the result averages over the queries both sides answered.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from infermeter.analytics.query._buckets import check_group_columns, parse_bucket
from infermeter.analytics.query._queries import sql_file

if TYPE_CHECKING:
    import duckdb
    import polars as pl

__all__ = [
    "RBO_PERSISTENCE",
    "jaccard",
    "rank_biased_overlap",
    "retrieval_metrics",
    "retrievals",
    "topk_overlap",
]

RBO_PERSISTENCE: Final = 0.9


def jaccard(a: Sequence[str], b: Sequence[str]) -> float:
    """|A and B| / |A or B| of two id lists (1.0 for two empty lists)."""
    left, right = set(a), set(b)
    union = left | right
    return len(left & right) / len(union) if union else 1.0


def rank_biased_overlap(a: Sequence[str], b: Sequence[str], p: float = RBO_PERSISTENCE) -> float:
    """Extrapolated rank-biased overlap of two rankings (Webber et al. 2010, eq. 32),
    for lists of possibly different lengths without ties; duplicates count once."""
    left = list(dict.fromkeys(a))
    right = list(dict.fromkeys(b))
    if not left and not right:
        return 1.0
    if not left or not right:
        return 0.0
    long, short = (left, right) if len(left) >= len(right) else (right, left)
    big, small = len(long), len(short)
    seen_long: set[str] = set()
    seen_short: set[str] = set()
    overlap = 0
    agreement_sum = 0.0
    x_small = 0
    for d in range(1, big + 1):
        item = long[d - 1]
        if item in seen_short:
            overlap += 1
        seen_long.add(item)
        if d <= small:
            other = short[d - 1]
            if other in seen_long:
                overlap += 1
            seen_short.add(other)
        if d == small:
            x_small = overlap
        agreement_sum += overlap / d * p**d
    tail = sum(x_small * (d - small) / (small * d) * p**d for d in range(small + 1, big + 1))
    return (1 - p) / p * (agreement_sum + tail) + ((overlap - x_small) / big + x_small / small) * (
        p**big
    )


def retrievals(spans: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """One row per retrieval span of ``spans`` (``query/sql/quality_retrievals.sql``): keys,
    ``ids, used_ids, scores, query_fingerprint, index_version, docs_returned, top_score,
    hit``."""
    result = spans.query("im_spans", sql_file("quality_retrievals"))
    assert result is not None
    return result


def retrieval_metrics(rows: pl.DataFrame, *, by: Sequence[str] = ()) -> pl.DataFrame:
    """Per group: ``retrievals, mean_docs_returned, mean_top_score, labelled, hits,
    hit_rate`` (hit rate over retrievals that said which ids were used)."""
    import polars as pl

    keys = check_group_columns(by)
    aggregates = [
        pl.len().alias("retrievals"),
        pl.col("docs_returned").mean().alias("mean_docs_returned"),
        pl.col("top_score").mean().alias("mean_top_score"),
        pl.col("hit").count().alias("labelled"),
        pl.col("hit").sum().alias("hits"),
    ]
    grouped = rows.group_by(keys).agg(aggregates) if keys else rows.select(aggregates)
    out = grouped.with_columns(
        pl.when(pl.col("labelled") > 0)
        .then(pl.col("hits") / pl.col("labelled"))
        .otherwise(None)
        .alias("hit_rate")
    )
    return out.sort(keys, nulls_last=True) if keys else out


def topk_overlap(
    rows: pl.DataFrame,
    *,
    compare: str = "index_version",
    by: Sequence[str] = (),
    k: int = 10,
    bucket: str | timedelta | None = None,
    p: float = RBO_PERSISTENCE,
) -> pl.DataFrame:
    """Top-``k`` overlap of the same queries between consecutive values of ``compare``
    (``index_version``, ``prompt_version``, …, or ``"bucket"`` with ``bucket`` = "1d" for
    change over time): ``*by, baseline, candidate, queries, mean_jaccard, mean_rbo``."""
    import polars as pl

    keys = check_group_columns(by)
    data = rows.filter(pl.col("query_fingerprint").is_not_null())
    if compare == "bucket":
        if bucket is None:
            raise ValueError("compare='bucket' needs a bucket width such as '1d'")
        width = parse_bucket(bucket)
        data = data.with_columns(
            pl.col("start_time")
            .dt.truncate(f"{int(width.total_seconds())}s")
            .cast(pl.String)
            .alias("bucket")
        )
    data = data.filter(pl.col(compare).is_not_null())
    out: list[dict[str, Any]] = []
    groups = data.group_by(keys, maintain_order=True) if keys else [((), data)]
    for group_key, group in groups:
        order = (
            group.group_by(compare)
            .agg(pl.col("start_time").min().alias("first"))
            .sort("first")[compare]
            .to_list()
        )
        latest = (
            group.sort("start_time")
            .group_by([compare, "query_fingerprint"])
            .agg(pl.col("ids").last())
        )
        lists: dict[tuple[Any, str], list[str]] = {
            (row[compare], row["query_fingerprint"]): list(row["ids"] or [])[:k]
            for row in latest.iter_rows(named=True)
        }
        for baseline, candidate in itertools.pairwise(order):
            before = {q: ids for (v, q), ids in lists.items() if v == baseline}
            after = {q: ids for (v, q), ids in lists.items() if v == candidate}
            common = sorted(before.keys() & after.keys())
            if not common:
                continue
            jaccards = [jaccard(before[q], after[q]) for q in common]
            rbos = [rank_biased_overlap(before[q], after[q], p) for q in common]
            out.append(
                {
                    **dict(zip(keys, group_key, strict=True)),
                    "baseline": str(baseline),
                    "candidate": str(candidate),
                    "queries": len(common),
                    "mean_jaccard": sum(jaccards) / len(jaccards),
                    "mean_rbo": sum(rbos) / len(rbos),
                }
            )
    schema: dict[str, Any] = {
        **{key: pl.String for key in keys},
        "baseline": pl.String,
        "candidate": pl.String,
        "queries": pl.Int64,
        "mean_jaccard": pl.Float64,
        "mean_rbo": pl.Float64,
    }
    return pl.DataFrame(out, schema=schema)
