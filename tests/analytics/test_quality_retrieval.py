"""Retrieval signals from span attributes: hit rate by arithmetic, Jaccard and
rank-biased overlap (Webber et al. 2010, eq. 32) computed by hand."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from infermeter.agent import semconv as sc
from infermeter.analytics.quality import (
    jaccard,
    rank_biased_overlap,
    retrieval_metrics,
    retrievals,
    topk_overlap,
)
from infermeter.collectors.testing import insert_spans, span_record, store_in_memory

T0 = datetime(2026, 11, 16, 10, 0, 0)


def test_jaccard_and_rbo_by_hand() -> None:
    assert jaccard(["a", "b", "c"], ["a", "c", "d"]) == pytest.approx(2 / 4)
    assert rank_biased_overlap(["a", "b"], ["a", "b"]) == pytest.approx(1.0)
    assert rank_biased_overlap(["a", "b"], ["c", "d"]) == pytest.approx(0.0)
    # X1 = 1, X2 = 1, X3 = 2 (p = 0.9)
    p = 0.9
    expected = (1 - p) / p * (1 * p + 1 / 2 * p**2 + 2 / 3 * p**3) + 2 / 3 * p**3
    assert rank_biased_overlap(["a", "b", "c"], ["a", "c", "d"]) == pytest.approx(expected)
    # uneven lengths: long [a b c d], short [b a]: X1 = 0, X2 = X3 = X4 = 2, s = 2, l = 4
    agreement = 0 + 2 / 2 * p**2 + 2 / 3 * p**3 + 2 / 4 * p**4
    tail = 2 * 1 / (2 * 3) * p**3 + 2 * 2 / (2 * 4) * p**4
    expected = (1 - p) / p * (agreement + tail) + (0 / 4 + 2 / 2) * p**4
    assert rank_biased_overlap(["a", "b", "c", "d"], ["b", "a"]) == pytest.approx(expected)
    assert rank_biased_overlap(["b", "a"], ["a", "b", "c", "d"]) == pytest.approx(expected)


def _retrieval(entry: dict[str, Any], **attributes: Any) -> dict[str, Any]:
    return span_record(
        start=entry["start_time"] + timedelta(milliseconds=1),
        trace_id=entry["trace_id"],
        parent_span_id=entry["span_id"],
        is_entry=False,
        name="retrieve",
        attributes=attributes,
    )


def test_hit_rate_and_overlap_across_index_versions() -> None:
    con = store_in_memory()
    rows: list[dict[str, Any]] = []
    plan = [
        # (index version, fingerprint, ids, used ids)
        ("idx-1", "q1", ["a", "b", "c"], ["b"]),
        ("idx-1", "q2", ["d", "e"], []),
        ("idx-1", "q3", ["f"], None),
        ("idx-2", "q1", ["a", "c", "d"], ["z"]),
        ("idx-2", "q2", ["d", "e"], ["d"]),
    ]
    for i, (index, fingerprint, ids, used) in enumerate(plan):
        entry = span_record(start=T0 + timedelta(minutes=i), tenant="acme", prompt_version="v1")
        attributes: dict[str, Any] = {
            sc.INFERMETER_RETRIEVAL_IDS: ids,
            sc.INFERMETER_RETRIEVAL_SCORES: [0.9 - 0.1 * n for n in range(len(ids))],
            sc.INFERMETER_QUERY_FINGERPRINT: fingerprint,
            sc.INFERMETER_INDEX_VERSION: index,
        }
        if used is not None:
            attributes[sc.INFERMETER_RETRIEVAL_USED_IDS] = used
        rows += [entry, _retrieval(entry, **attributes)]
    insert_spans(con, rows)
    found = retrievals(con.table("spans")).pl()
    assert found.height == 5
    assert set(found["tenant"].to_list()) == {"acme"}  # from the entry span
    (summary,) = retrieval_metrics(found, by=["tenant"]).to_dicts()
    # labelled: 4 (q3 said nothing); hits: idx-1 q1 (b) and idx-2 q2 (d)
    assert summary["retrievals"] == 5
    assert summary["labelled"] == 4
    assert summary["hit_rate"] == pytest.approx(2 / 4)
    assert summary["mean_docs_returned"] == pytest.approx((3 + 2 + 1 + 3 + 2) / 5)
    assert summary["mean_top_score"] == pytest.approx(0.9)
    (overlap,) = topk_overlap(found, compare="index_version").to_dicts()
    assert (overlap["baseline"], overlap["candidate"], overlap["queries"]) == ("idx-1", "idx-2", 2)
    assert overlap["mean_jaccard"] == pytest.approx((2 / 4 + 1.0) / 2)
    assert overlap["mean_rbo"] == pytest.approx(
        (rank_biased_overlap(["a", "b", "c"], ["a", "c", "d"]) + 1.0) / 2
    )
    by_day = topk_overlap(found, compare="bucket", bucket="1d")
    assert by_day.height == 0  # one day only: nothing to compare over time
