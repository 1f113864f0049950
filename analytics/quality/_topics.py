"""Topic shift: did what users ask about move between a reference and a current window?

1. Query embeddings of both windows are L2-normalised (cosine geometry, what embedding
   models are trained for).
2. k-means (scikit-learn, ``n_init=10``, fixed seed) clusters the *reference* window
   (fitted on up to ``max_fit`` = 2,000 of its vectors, drawn with the seed).
   **k rule**: unless given, k in 2..``max_k`` (8, and at most one cluster per 20
   reference queries) maximising the silhouette score (k-means with 3 restarts per
   candidate, scored on up to 1,000 reference vectors) — the number of topics the
   reference actually separates into.
3. Both windows are assigned to the nearest reference centroid; the 2 x k table of counts
   gets a chi-square test of homogeneity (scipy ``chi2_contingency``).
4. Verdict: **shift** when p < ``alpha`` (0.01) *and* some cluster's share moved by at
   least ``min_share_change`` (5 points) — with many queries a tiny, harmless move is
   "significant"; the effect floor keeps the verdict about topics users would notice.

Clustering runs with one BLAS/OpenMP thread: measured here, k-means on 600 vectors took
25 s with the default thread pools on a loaded 2-core machine and 0.4 s with one thread
(oversubscription, not work).

Clusters are reported by how much their share moved, each with up to ``examples`` texts
(the current window's queries nearest the centroid, else the reference's) when content
capture gave texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["TopicCluster", "TopicShift", "choose_k", "topic_shift", "user_text"]

_SILHOUETTE_SAMPLE: Final = 1000
_CHOOSE_INIT: Final = 3  # k-means restarts per candidate k (the final fit uses 10)
_PER_CLUSTER: Final = 20


@dataclass(frozen=True)
class TopicCluster:
    cluster: int
    reference_n: int
    current_n: int
    reference_share: float
    current_share: float
    change: float  # current_share - reference_share
    examples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TopicShift:
    k: int
    chi2: float
    p_value: float
    dof: int
    shifted: bool
    alpha: float
    min_share_change: float
    reference_n: int
    current_n: int
    clusters: list[TopicCluster]  # largest move first

    def summary(self) -> str:
        top = self.clusters[0] if self.clusters else None
        moved = (
            f"; cluster {top.cluster} {top.reference_share:.0%} -> {top.current_share:.0%}"
            if top is not None
            else ""
        )
        verdict = "topic shift" if self.shifted else "no topic shift"
        return (
            f"{verdict}: chi2={self.chi2:.1f}, dof={self.dof}, p={self.p_value:.2g} "
            f"(k={self.k}, {self.reference_n} vs {self.current_n} queries){moved}"
        )


def user_text(messages_json: str | None) -> str | None:
    """The text of the last user message of a ``gen_ai.input.messages`` value (the GenAI
    convention's ``[{"role", "parts": [{"type": "text", "content"}]}]``), or None."""
    import json

    if not messages_json:
        return None
    try:
        messages = json.loads(messages_json)
    except ValueError:
        return None
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        parts = message.get("parts")
        texts = [
            str(part.get("content"))
            for part in (parts if isinstance(parts, list) else [])
            if isinstance(part, dict) and part.get("type") == "text" and part.get("content")
        ]
        if texts:
            return " ".join(texts)
    return None


def _normalise(vectors: npt.ArrayLike) -> np.ndarray:
    import numpy as np

    array = np.asarray(vectors, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError("need a non-empty 2-D array of vectors")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    result: np.ndarray = array / norms
    return result


def choose_k(reference: npt.ArrayLike, *, max_k: int = 8, seed: int = 0) -> int:
    """The k rule of the module docstring."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    with threadpool_limits(1):
        return _choose_k(reference, max_k=max_k, seed=seed)


def _choose_k(reference: npt.ArrayLike, *, max_k: int, seed: int) -> int:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    data = _normalise(reference)
    upper = min(max_k, data.shape[0] // _PER_CLUSTER)
    if upper < 2:
        return 2 if data.shape[0] >= 4 else 1
    best_k, best = 2, -2.0
    for k in range(2, upper + 1):
        labels = KMeans(n_clusters=k, n_init=_CHOOSE_INIT, random_state=seed).fit_predict(data)
        if len(set(labels)) < 2:
            continue
        score = float(
            silhouette_score(
                data,
                labels,
                sample_size=min(_SILHOUETTE_SAMPLE, data.shape[0]),
                random_state=seed,
            )
        )
        if score > best:
            best_k, best = k, score
    return best_k


def _examples(  # noqa: PLR0917 - private helper, called twice
    data: np.ndarray,
    labels: np.ndarray,
    centre: np.ndarray,
    cluster: int,
    texts: Sequence[str | None] | None,
    count: int,
) -> list[str]:
    import numpy as np

    if texts is None or count <= 0:
        return []
    members = np.flatnonzero(labels == cluster)
    if members.size == 0:
        return []
    distance = np.linalg.norm(data[members] - centre, axis=1)
    picked: list[str] = []
    for index in members[np.argsort(distance, kind="stable")]:
        text = texts[int(index)]
        if text:
            picked.append(text[:200])
        if len(picked) == count:
            break
    return picked


def topic_shift(
    reference: npt.ArrayLike,
    current: npt.ArrayLike,
    *,
    k: int | None = None,
    alpha: float = 0.01,
    min_share_change: float = 0.05,
    seed: int = 0,
    reference_texts: Sequence[str | None] | None = None,
    current_texts: Sequence[str | None] | None = None,
    examples: int = 3,
    max_fit: int = 2000,
) -> TopicShift:
    """Cluster ``reference``, assign both windows, test the change of cluster shares."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _topic_shift(
            reference,
            current,
            k=k,
            alpha=alpha,
            min_share_change=min_share_change,
            seed=seed,
            reference_texts=reference_texts,
            current_texts=current_texts,
            examples=examples,
            max_fit=max_fit,
        )


def _topic_shift(
    reference: npt.ArrayLike,
    current: npt.ArrayLike,
    *,
    k: int | None,
    alpha: float,
    min_share_change: float,
    seed: int,
    reference_texts: Sequence[str | None] | None,
    current_texts: Sequence[str | None] | None,
    examples: int,
    max_fit: int,
) -> TopicShift:
    import numpy as np
    from scipy.stats import chi2_contingency
    from sklearn.cluster import KMeans

    ref = _normalise(reference)
    cur = _normalise(current)
    if ref.shape[1] != cur.shape[1]:
        raise ValueError(f"dimensions differ: {ref.shape[1]} vs {cur.shape[1]}")
    fit = ref
    if ref.shape[0] > max_fit:
        picked = np.random.default_rng(seed).choice(ref.shape[0], size=max_fit, replace=False)
        fit = ref[np.sort(picked)]
    chosen = k if k is not None else _choose_k(fit, max_k=8, seed=seed)
    if chosen < 2:
        raise ValueError("need at least 4 reference queries for a topic shift")
    model = KMeans(n_clusters=chosen, n_init=10, random_state=seed).fit(fit)
    ref_labels = model.predict(ref)
    cur_labels = model.predict(cur)
    ref_counts = np.bincount(ref_labels, minlength=chosen)
    cur_counts = np.bincount(cur_labels, minlength=chosen)
    keep = (ref_counts + cur_counts) > 0
    table = np.vstack([ref_counts[keep], cur_counts[keep]])
    chi2, p_value, dof, _ = chi2_contingency(table)
    ref_share = ref_counts / ref_counts.sum()
    cur_share = cur_counts / cur_counts.sum()
    change = cur_share - ref_share
    clusters: list[TopicCluster] = []
    for cluster in np.argsort(-np.abs(change), kind="stable"):
        c = int(cluster)
        centre = model.cluster_centers_[c]
        found = _examples(cur, cur_labels, centre, c, current_texts, examples) or _examples(
            ref, ref_labels, centre, c, reference_texts, examples
        )
        clusters.append(
            TopicCluster(
                cluster=c,
                reference_n=int(ref_counts[c]),
                current_n=int(cur_counts[c]),
                reference_share=float(ref_share[c]),
                current_share=float(cur_share[c]),
                change=float(change[c]),
                examples=found,
            )
        )
    biggest = float(np.abs(change).max())
    return TopicShift(
        k=chosen,
        chi2=float(chi2),
        p_value=float(p_value),
        dof=int(dof),
        shifted=bool(p_value < alpha and biggest >= min_share_change),
        alpha=alpha,
        min_share_change=min_share_change,
        reference_n=int(ref.shape[0]),
        current_n=int(cur.shape[0]),
        clusters=clusters,
    )
