"""Evidently is the oracle: the fast path's verdicts equal Evidently's correctly
configured methods on the same data, and the Evidently adapters call it correctly."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from infermeter.analytics.drift._evidently import (
    evidently_embedding_drift,
    evidently_feature_drift,
    import_evidently,
)
from infermeter.analytics.drift._methods import classifier_drift, ks_drift
from infermeter.analytics.drift._settings import EVIDENTLY_FEATURE_TESTS
from infermeter.analytics.testing._drift import synthetic_embeddings

pytestmark = [
    pytest.mark.slow,  # imports Evidently (~5 s)
    # Evidently's Anderson-Darling wrapper uses SciPy's capped p-values and old arguments.
    pytest.mark.filterwarnings("ignore::UserWarning:evidently"),
]


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread() -> Iterator[None]:
    """One BLAS thread: the suite shares 2 cores with other suites, and OpenBLAS threads
    spin-waiting for each other on these small matrices made the tests 3-4x slower."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


# Raw isotropic and normalised anisotropic vectors at both dimensions, with and without the
# issue's shift (Mahalanobis 2); the full matrix of the fast path is in test_drift_methods.
CASES = [
    (dim, look, look, shift)
    for dim, look, shift in itertools.product((32, 384), (False, True), (0.0, 2.0))
]


@pytest.fixture(scope="module")
def evidently_methods() -> tuple[object, object]:
    import_evidently()
    from evidently.metrics.embeddings import DistanceDriftMethod, ModelDriftMethod

    # Correctly configured (the drift issue): the domain classifier with its 0.55 AUC
    # threshold on >= 1,000 rows; the mean distance against its bootstrap percentile.
    return ModelDriftMethod(), DistanceDriftMethod(bootstrap=True)


@pytest.mark.parametrize(("dim", "normalise", "anisotropic", "shift"), CASES)
def test_fast_path_verdicts_equal_evidentlys(
    evidently_methods: tuple[object, object],
    dim: int,
    normalise: bool,
    anisotropic: bool,
    shift: float,
) -> None:
    model, distance = evidently_methods
    reference, current = synthetic_embeddings(
        1_500,
        1_500,
        dim,
        shift=shift,
        normalise=normalise,
        anisotropic=anisotropic,
        seed=dim + 2 * normalise + anisotropic,
    )
    ours = classifier_drift(reference, current).drifted
    # Current first; fresh frames because Evidently adds a column to them.
    by_model = model(pd.DataFrame(current), pd.DataFrame(reference))  # type: ignore[operator]
    by_distance = distance(pd.DataFrame(current), pd.DataFrame(reference))  # type: ignore[operator]
    assert ours is bool(by_model[1]) is bool(by_distance[1]) is (shift > 0)


def test_evidently_adapters_give_the_same_verdicts() -> None:
    for shift in (0.0, 2.0):
        reference, current = synthetic_embeddings(1_200, 1_200, 64, shift=shift, seed=7)
        before = reference.copy()
        for method in ("evidently:model", "evidently:distance"):
            result = evidently_embedding_drift(reference, current, method)
            assert result.drifted is (shift > 0), result.detail
            assert result.method == method
            assert (result.reference_n, result.current_n) == (1_200, 1_200)
        np.testing.assert_array_equal(reference, before)  # our arrays are never touched
    assert os.environ["DO_NOT_TRACK"] == "1"


def test_small_windows_use_evidentlys_bootstrap_for_its_classifier() -> None:
    reference, current = synthetic_embeddings(300, 300, 16, seed=1)
    result = evidently_embedding_drift(reference, current, "evidently:model")
    assert result.threshold is None and "bootstrap" in result.detail


@pytest.mark.parametrize("seed", range(3))
def test_feature_verdicts_equal_evidentlys_default_for_large_samples(seed: int) -> None:
    # Evidently's default numeric test above 1,000 rows: normed Wasserstein >= 0.1.
    rng = np.random.default_rng(seed)
    latency = rng.lognormal(6, 0.5, (2, 3_000))
    for current in (latency[1], latency[1] * 1.5):
        ours = ks_drift(latency[0], current)
        theirs = evidently_feature_drift(latency[0], current, "evidently:wasserstein")
        assert ours.drifted is theirs.drifted


def test_ks_p_value_equals_evidentlys_ks() -> None:
    rng = np.random.default_rng(3)
    reference, current = rng.normal(0, 1, 800), rng.normal(0.1, 1, 700)
    theirs = evidently_feature_drift(reference, current, "evidently:ks")
    assert ks_drift(reference, current).p_value == pytest.approx(theirs.score)
    assert theirs.p_value == theirs.score


def test_the_listed_evidently_tests_exist_and_point_the_right_way() -> None:
    import_evidently()
    from evidently.legacy.calculations.stattests.registry import get_registered_stattest
    from evidently.legacy.core import ColumnType

    rng = np.random.default_rng(0)
    same = rng.normal(0, 1, (2, 600))
    far = (same[0], same[1] + 3)
    for name, is_p_value in EVIDENTLY_FEATURE_TESTS.items():
        assert get_registered_stattest(name, ColumnType.Numerical).name == name
        calm = evidently_feature_drift(same[0], same[1], f"evidently:{name}")
        moved = evidently_feature_drift(*far, f"evidently:{name}")
        assert not calm.drifted and moved.drifted, name
        # p-values fall when the samples part; distances grow.
        assert (moved.score < calm.score) is is_p_value, name
