"""Topic shift: a planted move of query topics is found (the cluster that grew most is the
planted one, the chi-square p matches scipy on the true topic counts' table) and a
control drawn from the reference's own mix stays quiet."""

from __future__ import annotations

import numpy as np
import pytest
from infermeter.analytics.quality import choose_k, topic_shift

DIM = 16


def _queries(
    rng: np.random.Generator, shares: tuple[float, ...], n: int
) -> tuple[np.ndarray, np.ndarray]:
    centres = np.eye(DIM)[: len(shares)] * 4.0  # three well separated topics
    topics = rng.choice(len(shares), size=n, p=list(shares))
    vectors = centres[topics] + rng.normal(0.0, 0.3, size=(n, DIM))
    return vectors, topics


def test_a_planted_shift_is_found_and_named() -> None:
    rng = np.random.default_rng(11)
    reference, ref_topics = _queries(rng, (0.5, 0.3, 0.2), 600)
    current, cur_topics = _queries(rng, (0.2, 0.3, 0.5), 600)
    texts = [f"topic {t} query {i}" for i, t in enumerate(cur_topics)]
    assert choose_k(reference) == 3
    result = topic_shift(reference, current, current_texts=texts)
    assert result.k == 3
    assert result.shifted
    # The clustering recovers the planted topics, so its table is the topics' table.
    from scipy.stats import chi2_contingency

    table = np.vstack([np.bincount(ref_topics, minlength=3), np.bincount(cur_topics, minlength=3)])
    oracle = chi2_contingency(table)
    assert result.chi2 == pytest.approx(oracle.statistic)
    assert result.p_value == pytest.approx(oracle.pvalue)
    top = result.clusters[0]
    # the cluster that moved most is topic 0 or 2 (each moved 30 points), and its
    # examples are queries of that topic
    topics_of_top = {int(text.split()[1]) for text in top.examples}
    assert len(topics_of_top) == 1
    (topic,) = topics_of_top
    assert topic in {0, 2}
    expected = np.mean(cur_topics == topic) - np.mean(ref_topics == topic)
    assert top.change == pytest.approx(expected)
    assert (top.reference_n, top.current_n) == (
        int(np.sum(ref_topics == topic)),
        int(np.sum(cur_topics == topic)),
    )


def test_a_control_from_the_same_mix_is_quiet() -> None:
    rng = np.random.default_rng(12)
    reference, _ = _queries(rng, (0.5, 0.3, 0.2), 600)
    current, _ = _queries(rng, (0.5, 0.3, 0.2), 600)
    result = topic_shift(reference, current)
    assert not result.shifted
    assert result.p_value >= 0.01
