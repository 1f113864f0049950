"""Drift settings: method names, defaults and the one table behind the API and the CLI.

Imports nothing heavy: the ``drift`` command builds its flags from ``DRIFT_SETTINGS``
before numpy, polars or Evidently are needed.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from infermeter.agent.settings import (
    ConfigurationError,
    Setting,
    parse_positive_int,
    resolve,
)
from infermeter.analytics.drift._windows import REFERENCE_MODES, parse_current, parse_reference

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
    "DriftConfig",
    "drift_config",
]

GROUP_COLUMNS: Final = ("model", "prompt_version", "tenant", "endpoint", "service_name")

# Native methods (numpy/scipy, see _drift_methods).
EMBEDDING_METHODS: Final = ("classifier", "mmd")
FEATURE_METHODS: Final = ("ks",)
# Evidently's methods, run by _drift_evidently ("evidently:<name>"). Embeddings: its domain
# classifier and bootstrap mean distance, configured as the drift issue found them right;
# its MMD (quadratic memory, wrong bootstrap quantile) and ratio (noisy per-dimension
# Wasserstein on small samples) defaults are left out.
EVIDENTLY_EMBEDDING_METHODS: Final = ("evidently:model", "evidently:distance")
# Evidently's numeric column tests, with whether the score is a p-value (drift when the
# score is at most the threshold) rather than a distance (drift when at least).
EVIDENTLY_FEATURE_TESTS: Final[dict[str, bool]] = {
    "anderson": True,
    "cramer_von_mises": True,
    "ed": False,
    "empirical_mmd": True,
    "es": True,
    "hellinger": False,
    "jensenshannon": False,
    "kl_div": False,
    "ks": True,
    "mannw": True,
    "psi": False,
    "t_test": True,
    "wasserstein": False,
}

# One false alarm per ~1,000 (group, feature) tests that did not drift: a weekly run over
# dozens of groups and features stays quiet unless something moved.
DEFAULT_ALPHA: Final = 0.001
# Evidently's threshold for the same score (its domain classifier's ROC AUC).
DEFAULT_MIN_AUC: Final = 0.55
# A tenth of the requests moved across some value of the feature.
DEFAULT_MIN_KS: Final = 0.1


class _InvalidValueError(argparse.ArgumentTypeError, ValueError):
    """A bad setting value: argparse prints its message, Setting reports the variable."""


def _split(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _parse_by(raw: str) -> tuple[str, ...]:
    columns = _split(raw)
    unknown = [c for c in columns if c not in GROUP_COLUMNS]
    if unknown or not columns:
        raise _InvalidValueError(
            f"{raw!r}: group by a comma-separated subset of {', '.join(GROUP_COLUMNS)}"
        )
    return tuple(dict.fromkeys(columns))


def _parse_methods(raw: str) -> tuple[str, ...]:
    methods = _split(raw)
    known = {
        *EMBEDDING_METHODS,
        *EVIDENTLY_EMBEDDING_METHODS,
        *FEATURE_METHODS,
        *(f"evidently:{name}" for name in EVIDENTLY_FEATURE_TESTS),
    }
    unknown = [m for m in methods if m not in known]
    if unknown or not methods:
        raise _InvalidValueError(
            f"{raw!r}: unknown method {', '.join(unknown) or '(none)'}; embeddings: "
            f"{', '.join((*EMBEDDING_METHODS, *EVIDENTLY_EMBEDDING_METHODS))}; features: "
            f"{', '.join(FEATURE_METHODS)}, evidently:<test> "
            f"({', '.join(sorted(EVIDENTLY_FEATURE_TESTS))})"
        )
    return tuple(dict.fromkeys(methods))


def _parse_features(raw: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_split(raw)))


def _parse_reference(raw: str) -> str:
    try:
        parse_reference(raw)
    except ValueError as exc:
        raise _InvalidValueError(str(exc)) from None
    return raw.strip()


def _parse_current(raw: str) -> str:
    try:
        parse_current(raw)
    except ValueError as exc:
        raise _InvalidValueError(str(exc)) from None
    return raw.strip()


def _parse_alpha(raw: str) -> float:
    value = float(raw)
    if not 0.0 < value < 0.5:
        raise _InvalidValueError(f"{raw!r}: expected a significance level between 0 and 0.5")
    return value


def _parse_min_auc(raw: str) -> float:
    value = float(raw)
    if not 0.5 <= value < 1.0:
        raise _InvalidValueError(f"{raw!r}: expected an AUC from 0.5 up to (not including) 1")
    return value


def _parse_min_ks(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value < 1.0:
        raise _InvalidValueError(f"{raw!r}: expected a KS distance from 0 up to (not including) 1")
    return value


DRIFT_SETTINGS: Final[tuple[Setting[Any], ...]] = (
    Setting(
        "by",
        "INFERMETER_DRIFT_BY",
        ("model", "prompt_version"),
        _parse_by,
        f"group by these columns, comma-separated ({', '.join(GROUP_COLUMNS)})",
    ),
    Setting(
        "reference",
        "INFERMETER_DRIFT_REFERENCE",
        "auto",
        _parse_reference,
        f"reference window: {', '.join(REFERENCE_MODES)} or START..END",
    ),
    Setting(
        "current",
        "INFERMETER_DRIFT_CURRENT",
        "7d",
        _parse_current,
        "current window: a duration ending at the newest data (7d, 24h) or START..END",
    ),
    Setting(
        "method",
        "INFERMETER_DRIFT_METHOD",
        ("classifier", "ks"),
        _parse_methods,
        "drift methods, comma-separated: for embeddings classifier, mmd, "
        "evidently:model or evidently:distance; for features ks or evidently:<test>",
    ),
    Setting(
        "alpha",
        "INFERMETER_DRIFT_ALPHA",
        DEFAULT_ALPHA,
        _parse_alpha,
        "significance level of every test (false alarms per test without drift)",
    ),
    Setting(
        "min_auc",
        "INFERMETER_DRIFT_MIN_AUC",
        DEFAULT_MIN_AUC,
        _parse_min_auc,
        "smallest held-out classifier AUC that counts as embedding drift",
    ),
    Setting(
        "min_ks",
        "INFERMETER_DRIFT_MIN_KS",
        DEFAULT_MIN_KS,
        _parse_min_ks,
        "smallest KS distance that counts as feature drift",
    ),
    Setting(
        "min_samples",
        "INFERMETER_DRIFT_MIN_SAMPLES",
        100,
        parse_positive_int,
        "fewer values than this in either window gives insufficient_data",
    ),
    Setting(
        "max_samples",
        "INFERMETER_DRIFT_MAX_SAMPLES",
        50_000,
        parse_positive_int,
        "embedding vectors per window and group (a reproducible random sample above)",
    ),
    Setting(
        "features",
        "INFERMETER_DRIFT_FEATURES",
        (),
        _parse_features,
        "request features to test, comma-separated (default: typed columns and every "
        "numeric span attribute)",
    ),
    # Evidently's embedding plot runs a t-SNE (1,000 iterations) over what it is given:
    # 250+250 vectors take seconds, its own 2,500+2,500 cap took 20-80 s.
    Setting(
        "html_sample",
        "INFERMETER_DRIFT_HTML_SAMPLE",
        250,
        parse_positive_int,
        "vectors per window in the HTML report's embedding plot (bounds its t-SNE)",
    ),
)


@dataclass(frozen=True)
class DriftConfig:
    """Resolved drift settings (see ``DRIFT_SETTINGS``)."""

    by: tuple[str, ...]
    reference: str
    current: str
    method: tuple[str, ...]
    alpha: float
    min_auc: float
    min_ks: float
    min_samples: int
    max_samples: int
    features: tuple[str, ...]
    html_sample: int

    @property
    def embedding_methods(self) -> tuple[str, ...]:
        chosen = tuple(
            m for m in self.method if m in EMBEDDING_METHODS or m in EVIDENTLY_EMBEDDING_METHODS
        )
        return chosen or ("classifier",)

    @property
    def feature_methods(self) -> tuple[str, ...]:
        chosen = tuple(
            m
            for m in self.method
            if m not in EMBEDDING_METHODS and m not in EVIDENTLY_EMBEDDING_METHODS
        )
        return chosen or ("ks",)


def drift_config(
    explicit: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> DriftConfig:
    """Resolve every drift setting: explicit (not None) > ``INFERMETER_DRIFT_*`` > default.
    Raises ``ConfigurationError`` naming the argument or variable on a bad value."""
    # Explicit values go through the same parsers as the environment and the CLI.
    normalised = {
        key: None
        if value is None
        else (",".join(value) if isinstance(value, list | tuple) else str(value))
        for key, value in (explicit or {}).items()
    }
    unknown = set(normalised) - {setting.name for setting in DRIFT_SETTINGS}
    if unknown:
        raise ConfigurationError(f"unknown drift settings: {sorted(unknown)}")
    return DriftConfig(**resolve(DRIFT_SETTINGS, normalised, environ))
