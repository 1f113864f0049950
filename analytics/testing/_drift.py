"""Generated embedding windows with a known amount of drift, for tests and benchmarks.

The effect size is the Mahalanobis distance ``shift`` between the two windows' means, so
it means the same thing at every dimension: the best possible classifier separates the
windows with ROC AUC Φ(shift/√2) (0.5 for 0; 0.92 for 2, which is the 0.1-sigma-per-coordinate
shift of 384-dim vectors used in the drift issue).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = ["ShiftKind", "synthetic_embeddings"]

ShiftKind = Literal["mean", "direction", "scale"]


def synthetic_embeddings(
    n_reference: int,
    n_current: int,
    dim: int,
    *,
    shift: float = 0.0,
    kind: ShiftKind = "mean",
    normalise: bool = False,
    anisotropic: bool = False,
    seed: int = 0,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Reference and current vectors (float32, one per row).

    ``kind``: ``"mean"`` moves every coordinate by ``shift/√dim`` standard deviations;
    ``"direction"`` moves the mean by ``shift`` along one random direction; ``"scale"``
    keeps the mean and multiplies the spread by ``1 + shift``.
    ``anisotropic`` gives the vectors a decaying spectrum, correlated coordinates and a
    common offset, like real embedding models; ``normalise`` scales every vector to unit
    length (as most embedding APIs return them).
    """
    rng = np.random.default_rng(seed)
    scales = np.arange(1, dim + 1) ** -0.5 if anisotropic else np.ones(dim)
    move = np.zeros(dim)
    spread = 1.0
    if kind == "mean":
        move = np.full(dim, shift / np.sqrt(dim))
    elif kind == "direction":
        unit = rng.standard_normal(dim)
        move = shift * unit / np.linalg.norm(unit)
    elif kind == "scale":
        spread = 1.0 + shift
    else:
        raise ValueError(f"unknown shift kind {kind!r}")

    def window(rows: int, offset: npt.NDArray[np.float64], factor: float) -> Any:
        return (rng.standard_normal((rows, dim)) * factor + offset) * scales

    reference = window(n_reference, np.zeros(dim), 1.0)
    current = window(n_current, move, spread)
    if anisotropic:
        rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        common = rng.standard_normal(dim) * scales * 2.0
        reference = reference @ rotation + common
        current = current @ rotation + common
    if normalise:
        reference /= np.linalg.norm(reference, axis=1, keepdims=True)
        current /= np.linalg.norm(current, axis=1, keepdims=True)
    return reference.astype(np.float32), current.astype(np.float32)
