"""infermeter.analytics.drift.

Drift: reference/current windows, the two-sample methods, Evidently (lazy), results.
"""

from __future__ import annotations

from infermeter.analytics.drift._detect import (
    RESULT_COLUMNS,
    TYPED_FEATURES,
    GroupSample,
    detect_drift,
    empty_results,
    run_drift,
    write_drift_report,
)
from infermeter.analytics.drift._evidently import (
    evidently_embedding_drift,
    evidently_feature_drift,
    import_evidently,
    write_html_report,
)
from infermeter.analytics.drift._methods import (
    DriftScore,
    check_pair,
    classifier_drift,
    ks_drift,
    mmd_drift,
    shrunk_lda_direction,
    validate_vectors,
)
from infermeter.analytics.drift._results import (
    RESULTS_TABLE,
    open_results_for_writing,
    read_drift_results,
    results_path,
    write_drift_results,
)
from infermeter.analytics.drift._settings import (
    DEFAULT_ALPHA,
    DEFAULT_MIN_AUC,
    DEFAULT_MIN_KS,
    DRIFT_SETTINGS,
    EMBEDDING_METHODS,
    EVIDENTLY_EMBEDDING_METHODS,
    EVIDENTLY_FEATURE_TESTS,
    FEATURE_METHODS,
    GROUP_COLUMNS,
    DriftConfig,
    drift_config,
)
from infermeter.analytics.drift._windows import (
    REFERENCE_MODES,
    Window,
    assign_windows,
    parse_current,
    parse_reference,
    resolve_current,
    resolve_reference,
)

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_MIN_AUC",
    "DEFAULT_MIN_KS",
    "DRIFT_SETTINGS",
    "EMBEDDING_METHODS",
    "EVIDENTLY_EMBEDDING_METHODS",
    "EVIDENTLY_FEATURE_TESTS",
    "FEATURE_METHODS",
    "GROUP_COLUMNS",
    "REFERENCE_MODES",
    "RESULTS_TABLE",
    "RESULT_COLUMNS",
    "TYPED_FEATURES",
    "DriftConfig",
    "DriftScore",
    "GroupSample",
    "Window",
    "assign_windows",
    "check_pair",
    "classifier_drift",
    "detect_drift",
    "drift_config",
    "empty_results",
    "evidently_embedding_drift",
    "evidently_feature_drift",
    "import_evidently",
    "ks_drift",
    "mmd_drift",
    "open_results_for_writing",
    "parse_current",
    "parse_reference",
    "read_drift_results",
    "resolve_current",
    "resolve_reference",
    "results_path",
    "run_drift",
    "shrunk_lda_direction",
    "validate_vectors",
    "write_drift_report",
    "write_drift_results",
    "write_html_report",
]
