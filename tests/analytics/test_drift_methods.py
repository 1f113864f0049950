"""The array-level drift tests: right verdicts by default, calibrated, and equal to the
library estimators they re-implement lean."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np
import pytest
from infermeter.analytics.drift._methods import (
    classifier_drift,
    ks_drift,
    mmd_drift,
    shrunk_lda_direction,
    validate_vectors,
)
from infermeter.analytics.testing._drift import synthetic_embeddings
from scipy import stats


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread() -> Iterator[None]:
    """One BLAS thread: the suite shares 2 cores with other suites, and OpenBLAS threads
    spin-waiting for each other on these small matrices made the tests 3-4x slower."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


# The drift issue's shift: 0.1 sigma on every coordinate of 384-dim vectors is a Mahalanobis
# distance of ~2 between the window means (best possible AUC 0.92); the same effect size
# is used at every dimension.
SHIFT = 2.0

MATRIX = list(
    itertools.product(
        (200, 2_000),  # vectors per window (50,000 in benchmarks/bench_drift.py)
        (32, 384),  # dimensions
        (False, True),  # unit-normalised (as embedding APIs return them) or raw
        (False, True),  # anisotropic, correlated, offset (like real models) or isotropic
    )
)


@pytest.mark.parametrize(("size", "dim", "normalise", "anisotropic"), MATRIX)
def test_default_embedding_method_has_no_false_alarm_and_no_miss(
    size: int, dim: int, normalise: bool, anisotropic: bool
) -> None:
    # Two seeds; the shift is spread over all coordinates or along one direction.
    for seed, kind in ((1, "mean"), (2, "direction")):
        for shift in (0.0, SHIFT):
            reference, current = synthetic_embeddings(
                size,
                size,
                dim,
                shift=shift,
                kind=kind,  # type: ignore[arg-type]
                normalise=normalise,
                anisotropic=anisotropic,
                seed=seed,
            )
            result = classifier_drift(reference, current)
            assert result.drifted is (shift > 0), (seed, kind, shift, result.detail)
            assert result.drifted is (result.score >= result.threshold)  # type: ignore[operator]


def test_default_embedding_method_handles_unequal_windows() -> None:
    for shift in (0.0, SHIFT):
        reference, current = synthetic_embeddings(
            150, 4_000, 384, shift=shift, normalise=True, anisotropic=True, seed=5
        )
        assert classifier_drift(reference, current).drifted is (shift > 0)


def test_a_weak_shift_is_found_once_there_is_enough_data() -> None:
    # Mahalanobis 0.57 (best AUC 0.66): too weak to call on 200 vectors, clear on 2,000.
    reference, current = synthetic_embeddings(2_000, 2_000, 32, shift=0.57, seed=3)
    result = classifier_drift(reference, current)
    assert result.drifted
    assert 0.6 < result.score < 0.7


def test_classifier_p_values_are_uniform_without_drift() -> None:
    # The held-out AUC is a Mann-Whitney statistic: its null distribution is exact.
    p_values = np.array(
        [
            classifier_drift(
                *synthetic_embeddings(120, 120, 48, anisotropic=True, seed=100 + s), seed=s
            ).p_value
            for s in range(300)
        ],
        dtype=float,
    )
    assert stats.kstest(p_values, "uniform").pvalue > 0.001
    assert 0.02 < float((p_values < 0.05).mean()) < 0.09


def test_threshold_combines_significance_and_minimum_effect() -> None:
    small = classifier_drift(*synthetic_embeddings(100, 100, 16, seed=1))
    large = classifier_drift(*synthetic_embeddings(20_000, 20_000, 16, seed=1))
    # 50 held-out vectors per side: the critical AUC at alpha 0.001 is far above 0.55 ...
    z = stats.norm.isf(0.001)
    assert small.threshold == pytest.approx(0.5 + z * math.sqrt(101 / (12 * 50 * 50)))
    # ... while with 15,000 per side the minimum effect (Evidently's 0.55) decides.
    assert large.threshold == 0.55
    assert not small.drifted and not large.drifted


def test_a_tiny_but_significant_shift_is_not_drift_at_scale() -> None:
    # Mahalanobis 0.1 (best AUC 0.53) on 40,000 vectors per side: significant, negligible.
    result = classifier_drift(*synthetic_embeddings(40_000, 40_000, 16, shift=0.1, seed=4))
    assert result.p_value is not None and result.p_value < 1e-6
    assert result.score < 0.55
    assert not result.drifted


def test_classifier_is_deterministic_and_does_not_touch_its_inputs() -> None:
    reference, current = synthetic_embeddings(500, 500, 64, shift=SHIFT, seed=9)
    before = (reference.copy(), current.copy())
    first, second = classifier_drift(reference, current), classifier_drift(reference, current)
    assert first == second
    np.testing.assert_array_equal(reference, before[0])
    np.testing.assert_array_equal(current, before[1])


def test_identical_constant_vectors_are_not_drift_and_two_points_are() -> None:
    same = np.ones((200, 8), dtype=np.float32)
    assert not classifier_drift(same, same.copy()).drifted
    assert classifier_drift(same, same * 2).drifted


def test_lda_direction_matches_scikit_learn() -> None:
    from sklearn.covariance import ledoit_wolf_shrinkage
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    for rows, dim in ((60, 128), (2_000, 64)):
        a, b = synthetic_embeddings(rows, rows, dim, shift=SHIFT, anisotropic=True, seed=rows)
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        centred = np.concatenate([a64 - a64.mean(axis=0), b64 - b64.mean(axis=0)])
        shrinkage = ledoit_wolf_shrinkage(centred, assume_centered=True)
        # Equal class sizes and a fixed shrinkage: scikit-learn's per-class shrunk
        # covariances average to the pooled shrunk covariance used here.
        lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=shrinkage).fit(
            np.concatenate([a64, b64]), np.r_[np.zeros(rows), np.ones(rows)]
        )
        ours = shrunk_lda_direction(a64, b64)
        cosine = ours @ lda.coef_[0] / (np.linalg.norm(ours) * np.linalg.norm(lda.coef_[0]))
        assert cosine == pytest.approx(1.0, abs=1e-9)


def test_ks_matches_scipy_and_uses_the_larger_threshold() -> None:
    rng = np.random.default_rng(0)
    reference, current = rng.lognormal(5, 1, 400), rng.lognormal(5.3, 1, 300)
    result = ks_drift(reference, current)
    expected = stats.ks_2samp(reference, current)
    assert result.score == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    critical = math.sqrt(-math.log(0.001 / 2) / 2) * math.sqrt(700 / (400 * 300))
    assert result.threshold == pytest.approx(max(0.1, critical))
    assert result.drifted


@pytest.mark.parametrize("seed", range(5))
def test_ks_verdicts_on_request_like_features(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for size in (300, 2_000, 50_000):
        latency = rng.lognormal(6, 0.8, (2, size))  # heavy-tailed
        tokens = rng.poisson(300, (2, size)).astype(float)  # discrete, many ties
        for sample in (latency, tokens):
            assert not ks_drift(sample[0], sample[1]).drifted
        assert ks_drift(latency[0], latency[1] * 2).drifted  # requests twice as slow
        assert ks_drift(tokens[0], tokens[1] + 40).drifted  # prompts 40 tokens longer
    # A 1 % latency change is significant on 500,000 requests but not drift.
    big = rng.lognormal(6, 0.8, (2, 500_000))
    result = ks_drift(big[0], big[1] * 1.01)
    assert result.p_value is not None and result.p_value < 0.001
    assert not result.drifted


def test_ks_drops_non_finite_values() -> None:
    values = np.array([1.0, 2.0, np.nan, np.inf, 3.0] * 40)
    result = ks_drift(values, values)
    assert (result.reference_n, result.current_n) == (120, 120)
    with pytest.raises(ValueError, match="need values in both windows"):
        ks_drift(np.array([np.nan]), values)


def test_mmd_finds_mean_and_spread_changes_without_false_alarms() -> None:
    for seed in (1, 2):
        for kind, shift in (("mean", 0.0), ("mean", SHIFT), ("scale", 0.3)):
            reference, current = synthetic_embeddings(
                600,
                600,
                32,
                shift=shift,
                kind=kind,
                normalise=True,  # type: ignore[arg-type]
                anisotropic=True,
                seed=seed,
            )
            result = mmd_drift(reference, current)
            assert result.drifted is (shift > 0), (seed, kind, result.detail)


def test_the_classifier_is_blind_to_a_pure_spread_change() -> None:
    # Documented limit of the linear default: a spread change with the same mean.
    reference, current = synthetic_embeddings(2_000, 2_000, 32, shift=0.3, kind="scale", seed=1)
    assert not classifier_drift(reference, current).drifted


@pytest.mark.parametrize(
    ("vectors", "message"),
    [
        (np.zeros((10, 0)), "empty"),
        (np.array([[1.0, np.nan], [1.0, 2.0]]), "1 of 2 reference vectors contain NaN"),
        (np.array([[1.0, np.inf]]), "NaN or infinite"),
        (np.zeros(5), "2-D"),
    ],
)
def test_bad_vectors_are_a_clear_error(vectors: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_vectors(vectors, "reference")


def test_windows_of_different_dimensions_are_an_error() -> None:
    with pytest.raises(ValueError, match="reference vectors have 8 dimensions, current vectors 16"):
        classifier_drift(np.ones((50, 8)), np.ones((50, 16)))
