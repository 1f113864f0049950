"""Evidently (the ``drift`` extra): its methods as opt-in alternatives, and the HTML report.

Evidently 0.7.23 takes ~4-6 s to import and ~1 GB installed, so nothing imports this
module until an ``evidently:*`` method or ``--html`` is asked for. Facts that shape the
code (verified in its source, ``evidently/legacy/metrics/data_drift``):

- Embedding methods are called ``method(current_df, reference_df)`` — current first — and
  add a ``target`` column to both frames, so each call gets fresh frames.
- Frames must be pandas; polars is not accepted.
- ``EmbeddingsDrift`` in a Report runs a t-SNE over up to 2,500 rows per side for its plot
  (20-80 s). The report therefore gets a small random sample of the vectors for the
  picture, while its verdict is the one computed on every sampled vector (a
  ``DriftMethod`` that returns the precomputed result), so the page and the results table
  never disagree.
"""

from __future__ import annotations

import contextvars
import functools
import html
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from infermeter.analytics.drift._methods import DriftScore, check_pair
from infermeter.analytics.drift._settings import (
    EVIDENTLY_EMBEDDING_METHODS,
    EVIDENTLY_FEATURE_TESTS,
)

if TYPE_CHECKING:
    from infermeter.analytics.drift._detect import GroupSample
    from infermeter.analytics.drift._methods import FloatArray

__all__ = [
    "evidently_embedding_drift",
    "evidently_feature_drift",
    "import_evidently",
    "write_html_report",
]

# Evidently's bootstrap switch for its classifier: below this many reference rows it
# compares the AUC with random-guess AUCs instead of its fixed 0.55 (its own default rule).
_MODEL_BOOTSTRAP_BELOW: Final = 1_000
# Rows per side given to Evidently's embedding methods (memory and time grow with rows).
_EVIDENTLY_MAX_ROWS: Final = 50_000
# Rows per side of each feature shown in the HTML report's histograms.
_HTML_FEATURE_ROWS: Final = 50_000
_NATIVE_KS_TEST: Final = "infermeter-ks"

# {column: (score, drifted)} of the report being rendered; read by the registered test.
_precomputed_columns: contextvars.ContextVar[dict[str, tuple[float, bool]]] = (
    contextvars.ContextVar("infermeter_drift_precomputed", default={})  # noqa: B039
)


def import_evidently() -> None:
    """Import Evidently with its usage telemetry switched off (it only exists in
    Evidently's UI service, which infermeter does not run; switched off anyway)."""
    os.environ["DO_NOT_TRACK"] = "1"
    # Its import chain emits deprecation warnings of its own dependencies (litestar,
    # numpy.core) that say nothing to an infermeter user.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import evidently  # noqa: F401


def _subsample(vectors: FloatArray, rows: int, seed: int) -> FloatArray:
    if len(vectors) <= rows:
        return vectors
    picked = np.random.default_rng(seed).choice(len(vectors), rows, replace=False)
    return vectors[np.sort(picked)]


def evidently_embedding_drift(
    reference: FloatArray,
    current: FloatArray,
    method: str,
    *,
    max_rows: int = _EVIDENTLY_MAX_ROWS,
    seed: int = 0,
) -> DriftScore:
    """Run Evidently's ``evidently:model`` (domain classifier; bootstrap below 1,000
    reference rows, else AUC > 0.55) or ``evidently:distance`` (euclidean distance between
    the means against its bootstrap 95th percentile) on two matrices of vectors."""
    import_evidently()
    import pandas as pd
    from evidently.metrics.embeddings import DistanceDriftMethod, ModelDriftMethod

    if method not in EVIDENTLY_EMBEDDING_METHODS:
        raise ValueError(f"unknown Evidently embedding method {method!r}")
    check_pair(reference, current)
    ref = _subsample(reference, max_rows, seed)
    cur = _subsample(current, max_rows, seed + 1)
    threshold: float | None
    if method == "evidently:model":
        bootstrap = len(ref) < _MODEL_BOOTSTRAP_BELOW
        drift_method = ModelDriftMethod(bootstrap=bootstrap)
        threshold = None if bootstrap else float(drift_method.threshold)
        rule = "AUC vs random-guess AUCs (bootstrap)" if bootstrap else "AUC > 0.55"
    else:
        drift_method = DistanceDriftMethod(bootstrap=True)
        threshold = None
        rule = "distance of means vs its bootstrap 95th percentile"
    # Fresh frames: Evidently adds a target column to the frames it is given.
    score, drifted, _ = drift_method(pd.DataFrame(cur), pd.DataFrame(ref))
    return DriftScore(
        method=method,
        score=float(score),
        threshold=threshold,
        drifted=bool(drifted),
        p_value=None,
        reference_n=len(reference),
        current_n=len(current),
        detail=f"Evidently {method.split(':', 1)[1]}: score {float(score):.3g} ({rule}); "
        f"{len(ref):,}+{len(cur):,} vectors",
    )


def evidently_feature_drift(reference: FloatArray, current: FloatArray, method: str) -> DriftScore:
    """Run one of Evidently's numeric column tests (``evidently:wasserstein``,
    ``evidently:psi`` …) with its default threshold; non-finite values are dropped."""
    import_evidently()
    import pandas as pd
    from evidently.legacy.calculations.stattests.registry import get_registered_stattest
    from evidently.legacy.core import ColumnType

    name = method.split(":", 1)[1]
    if name not in EVIDENTLY_FEATURE_TESTS:
        raise ValueError(f"unknown Evidently stat test {name!r}")
    ref = np.asarray(reference, dtype=np.float64).ravel()
    cur = np.asarray(current, dtype=np.float64).ravel()
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if len(ref) == 0 or len(cur) == 0:
        raise ValueError(f"need values in both windows, got {len(ref)} and {len(cur)}")
    test = get_registered_stattest(name, ColumnType.Numerical)
    result = test(pd.Series(ref), pd.Series(cur), ColumnType.Numerical, None)
    score = float(result.drift_score)
    is_p_value = EVIDENTLY_FEATURE_TESTS[name]
    relation = "<=" if is_p_value else ">="
    return DriftScore(
        method=method,
        score=score,
        threshold=float(result.actual_threshold),
        drifted=bool(result.drifted),
        p_value=score if is_p_value else None,
        reference_n=len(ref),
        current_n=len(cur),
        detail=f"Evidently {test.display_name}: {score:.3g} (drift when {relation} "
        f"{float(result.actual_threshold):g})",
    )


# --- HTML report ---------------------------------------------------------------------------


@functools.cache
def _precomputed_method_class() -> Any:
    """A DriftMethod returning a verdict computed elsewhere (defined once, after import)."""
    import_evidently()
    from evidently.legacy.metrics.data_drift.embedding_drift_methods import DriftMethod

    class PrecomputedDriftMethod(DriftMethod):  # type: ignore[misc]
        class Config:
            type_alias = "infermeter:drift_method:PrecomputedDriftMethod"

        score: float
        drifted: bool
        method_name: str

        def __call__(self, current_emb: Any, reference_emb: Any) -> tuple[float, bool, str]:
            return self.score, self.drifted, self.method_name

    return PrecomputedDriftMethod


@functools.cache
def _register_native_tests() -> None:
    """Register infermeter's KS test with Evidently so ValueDrift shows its verdict."""
    import_evidently()
    from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
    from evidently.legacy.core import ColumnType

    def precomputed(reference: Any, current: Any, feature_type: Any, threshold: float) -> Any:
        return _precomputed_columns.get()[str(reference.name)]

    register_stattest(
        StatTest(
            name=_NATIVE_KS_TEST,
            display_name="Kolmogorov-Smirnov distance (infermeter: alpha and minimum effect)",
            allowed_feature_types=[ColumnType.Numerical],
            default_threshold=0.1,
        ),
        precomputed,
    )


@contextmanager
def _columns(verdicts: dict[str, tuple[float, bool]]) -> Iterator[None]:
    token = _precomputed_columns.set(verdicts)
    try:
        yield
    finally:
        _precomputed_columns.reset(token)


_SUMMARY_COLUMNS: Final = (
    "group",
    "kind",
    "feature",
    "method",
    "verdict",
    "score",
    "threshold",
    "reference n",
    "current n",
    "message",
)


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _feature_widgets(sample: GroupSample) -> list[Any]:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    if sample.features_reference is None or sample.features_current is None:
        return []
    metrics: list[Any] = []
    native: dict[str, tuple[float, bool]] = {}
    columns: list[str] = []
    for row in sample.results:
        if row["kind"] != "feature" or row["verdict"] not in ("drift", "no_drift"):
            continue
        feature, method = str(row["feature"]), str(row["method"])
        if feature not in columns:
            columns.append(feature)
        if method == "ks":
            native[feature] = (float(row["score"]), bool(row["drifted"]))
            metrics.append(
                ValueDrift(column=feature, method=_NATIVE_KS_TEST, threshold=row["threshold"])
            )
        else:
            metrics.append(ValueDrift(column=feature, method=method.split(":", 1)[1]))
    if not metrics:
        return []
    definition = DataDefinition(numerical_columns=columns)

    def frame(data: Any, seed: int) -> Any:
        data = data.select(columns)
        if len(data) > _HTML_FEATURE_ROWS:
            data = data.sample(_HTML_FEATURE_ROWS, seed=seed)
        return Dataset.from_pandas(pd.DataFrame(data.to_pandas()), data_definition=definition)

    with _columns(native):
        snapshot = Report(metrics).run(
            frame(sample.features_current, 1), frame(sample.features_reference, 0)
        )
    widgets: list[Any] = snapshot._widgets
    return widgets


def _embedding_widgets(sample: GroupSample) -> list[Any]:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import EmbeddingsDrift

    precomputed = _precomputed_method_class()
    widgets: list[Any] = []
    for kind, (reference, current) in sample.embeddings.items():
        row = next(
            (
                r
                for r in sample.results
                if r["kind"] == "embedding"
                and r["feature"] == kind
                and r["verdict"] in ("drift", "no_drift")
            ),
            None,
        )
        if row is None:
            continue
        columns = [f"{kind}_{i}" for i in range(reference.shape[1])]
        definition = DataDefinition(embeddings={kind: columns})
        method = precomputed(
            score=float(row["score"]),
            drifted=bool(row["drifted"]),
            method_name=f"{row['method']} on {row['reference_n']:,}+{row['current_n']:,} "
            f"vectors; plot: {len(reference):,}+{len(current):,}",
        )
        snapshot = Report([EmbeddingsDrift(embeddings_name=kind, drift_method=method)]).run(
            Dataset.from_pandas(pd.DataFrame(current, columns=columns), data_definition=definition),
            Dataset.from_pandas(
                pd.DataFrame(reference, columns=columns), data_definition=definition
            ),
        )
        widgets.extend(snapshot._widgets)
    return widgets


@contextmanager
def _single_threaded() -> Iterator[None]:
    """Evidently's plots run scikit-learn's PCA and t-SNE on a few hundred vectors: on a
    busy 2-core machine their spin-waiting BLAS/OpenMP threads made one plot take 26 s
    instead of 1 s (measured on the demo's store), so they get one thread of each."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    with threadpool_limits(limits=1):
        yield


def write_html_report(path: Path, samples: Sequence[GroupSample], *, title: str) -> None:
    """One self-contained HTML page: a results table, then per group Evidently's feature
    histograms and embedding plots (with infermeter's verdicts)."""
    import_evidently()
    from evidently.core.metric_types import render_widgets
    from evidently.legacy.renderers.html_widgets import (
        group_widget,
        header_text,
        table_data,
        text_widget,
    )

    _register_native_tests()
    summary = [
        [
            sample.title,
            *(
                _fmt(row[key])
                for key in (
                    "kind",
                    "feature",
                    "method",
                    "verdict",
                    "score",
                    "threshold",
                    "reference_n",
                    "current_n",
                    "message",
                )
            ),
        ]
        for sample in samples
        for row in sample.results
    ]
    widgets: list[Any] = [
        header_text(label=title),
        table_data(column_names=list(_SUMMARY_COLUMNS), data=summary, title="Results"),
    ]
    for sample in samples:
        notes = [
            f"- **{row['kind']} {row['feature']}** ({row['method']}): {row['verdict']} — "
            f"{html.escape(str(row['message']))}"
            for row in sample.results
            if row["verdict"] in ("insufficient_data", "error")
        ]
        group: list[Any] = []
        if notes:
            group.append(text_widget(title="Not compared", text="\n".join(notes)))
        with _single_threaded():
            group.extend(_feature_widgets(sample))
            group.extend(_embedding_widgets(sample))
        widgets.append(group_widget(title=sample.title, widgets=group))
    path.write_text(render_widgets(widgets), encoding="utf-8")
