"""Drift detection over the store: per group, a reference window against a current window.

For every group (default model x prompt_version) two families of tests run:

- **embedding drift**, per embedding kind (query / document / response), over the sampled
  vectors of the ``embeddings`` table (default method ``classifier``);
- **request-feature drift**, per feature, over the requests (entry spans): latency
  (``duration_ms``), ``ttft_ms``, input/output/cache-read/reasoning tokens (summed over the
  request's spans), and every numeric span attribute (numbers, or arrays of numbers such
  as retrieval scores, averaged per request) — default method ``ks``.

Each (group, kind, feature, method) gives one result row: a ``drift`` / ``no_drift``
verdict with score and threshold, ``insufficient_data`` when either window has fewer than
``min_samples`` values (never a verdict), or ``error`` with a message when that group's
data cannot be compared (NaN or empty vectors, mixed dimensions) — the other groups still
complete. Settings resolve as explicit argument > ``INFERMETER_DRIFT_*`` > default.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from infermeter.analytics.drift._settings import GROUP_COLUMNS, DriftConfig, drift_config
from infermeter.analytics.drift._windows import (
    Window,
    assign_windows,
    parse_current,
    parse_reference,
    resolve_current,
    resolve_reference,
)
from infermeter.analytics.query._queries import sql_file

if TYPE_CHECKING:
    import duckdb
    import numpy as np
    import numpy.typing as npt
    import polars as pl
    from infermeter.analytics.drift._methods import DriftScore, FloatArray

__all__ = [
    "RESULT_COLUMNS",
    "TYPED_FEATURES",
    "GroupSample",
    "detect_drift",
    "empty_results",
    "run_drift",
    "write_drift_report",
]

TYPED_FEATURES: Final = (
    "duration_ms",
    "ttft_ms",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "reasoning_tokens",
)
# Numeric attributes that identify or locate rather than describe a request: drift in a
# thread id or a source line number is noise. Listed features (``features=``) bypass this.
_NOT_FEATURES: Final = re.compile(
    r"^(code|thread|process|network|net|server|client|host|os|telemetry|otel|rpc)\."
    r"|(^|[._])(id|port|pid|lineno|index|seed)$"
)
# Floats per window loaded for one embedding group (32 Mi float32 = 128 MiB): 50,000 x
# 384-dim vectors fit whole; 3,072-dim vectors are sampled down to 10,922 per window.
_MAX_FLOATS_PER_WINDOW: Final = 32 * 1024 * 1024
# Groups' picked vectors are fetched together until a batch holds this many floats.
_FETCH_BATCH_FLOATS: Final = 32 * 1024 * 1024
_PICK_TABLE: Final = "_infermeter_drift_pick"

RESULT_COLUMNS: Final = (
    "computed_at",
    "run_id",
    "group_by",
    "tenant",
    "model",
    "prompt_version",
    "endpoint",
    "service_name",
    "kind",
    "feature",
    "method",
    "score",
    "threshold",
    "p_value",
    "drifted",
    "verdict",
    "reference_n",
    "current_n",
    "reference_start",
    "reference_end",
    "current_start",
    "current_end",
    "reference_prompt_version",
    "message",
)


@dataclass
class GroupSample:
    """What the HTML report shows for one group: its result rows and the data behind them
    (feature values per request as wide frames, a small sample of vectors per kind)."""

    title: str
    results: list[dict[str, Any]]
    features_reference: pl.DataFrame | None = None
    features_current: pl.DataFrame | None = None
    embeddings: dict[str, tuple[FloatArray, FloatArray]] = field(default_factory=dict)


def _select(relation: duckdb.DuckDBPyRelation, name: str, query: str) -> duckdb.DuckDBPyRelation:
    """Run the named query (``sql/<query>.sql``) over ``relation`` seen as table ``name``."""
    result = relation.query(name, sql_file(query))
    if result is None:  # only statements that are not queries return nothing
        raise RuntimeError(f"{query}.sql returned no relation")
    return result


def detect_drift(
    con: duckdb.DuckDBPyConnection,
    spans: duckdb.DuckDBPyRelation | None,
    embeddings: duckdb.DuckDBPyRelation | None = None,
    *,
    by: str | Sequence[str] | None = None,
    reference: str | None = None,
    current: str | None = None,
    method: str | Sequence[str] | None = None,
    alpha: float | None = None,
    min_auc: float | None = None,
    min_ks: float | None = None,
    min_samples: int | None = None,
    max_samples: int | None = None,
    features: str | Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pl.DataFrame:
    """Drift results, one row per group, kind, feature and method (``RESULT_COLUMNS``).

    ``spans`` and ``embeddings`` are relations over the store's tables (either may be
    None) on ``con``, which is only used to hand the sampled row keys to DuckDB.
    ``progress(done, total)`` is called as groups complete.
    """
    settings = {
        "by": by,
        "reference": reference,
        "current": current,
        "method": method,
        "alpha": alpha,
        "min_auc": min_auc,
        "min_ks": min_ks,
        "min_samples": min_samples,
        "max_samples": max_samples,
        "features": features,
    }
    results, _ = run_drift(con, spans, embeddings, settings, progress=progress)
    return results


def write_drift_report(
    path: str | Path,
    con: duckdb.DuckDBPyConnection,
    spans: duckdb.DuckDBPyRelation | None,
    embeddings: duckdb.DuckDBPyRelation | None = None,
    *,
    title: str = "infermeter drift",
    progress: Callable[[int, int], None] | None = None,
    **settings: Any,
) -> pl.DataFrame:
    """:func:`detect_drift`, then Evidently's HTML report of the same results at ``path``
    (needs the ``drift`` extra); returns the results.

    Settings are :func:`detect_drift`'s plus ``html_sample``: vectors per window shown in
    the embedding plots, which bounds the t-SNE Evidently runs for them.
    """
    from infermeter.analytics.drift._evidently import write_html_report

    results, samples = run_drift(
        con, spans, embeddings, settings, progress=progress, keep_samples=True
    )
    write_html_report(Path(path), samples, title=title)
    return results


def run_drift(
    con: duckdb.DuckDBPyConnection,
    spans: duckdb.DuckDBPyRelation | None,
    embeddings: duckdb.DuckDBPyRelation | None,
    settings: Mapping[str, Any],
    *,
    progress: Callable[[int, int], None] | None = None,
    keep_samples: bool = False,
) -> tuple[pl.DataFrame, list[GroupSample]]:
    """``detect_drift`` plus, with ``keep_samples``, the data the HTML report shows."""
    config = drift_config(settings)
    run = _Run(config, keep_samples=keep_samples)
    return run.execute(con, spans, embeddings, progress)


def empty_results() -> pl.DataFrame:
    """A results frame without rows (``RESULT_COLUMNS`` with their types)."""
    return _results_frame([])


def _results_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    import polars as pl

    text = pl.String
    instant = pl.Datetime("us")
    schema: dict[str, Any] = {
        "computed_at": instant,
        "run_id": text,
        "group_by": text,
        "tenant": text,
        "model": text,
        "prompt_version": text,
        "endpoint": text,
        "service_name": text,
        "kind": text,
        "feature": text,
        "method": text,
        "score": pl.Float64,
        "threshold": pl.Float64,
        "p_value": pl.Float64,
        "drifted": pl.Boolean,
        "verdict": text,
        "reference_n": pl.Int64,
        "current_n": pl.Int64,
        "reference_start": instant,
        "reference_end": instant,
        "current_start": instant,
        "current_end": instant,
        "reference_prompt_version": text,
        "message": text,
    }
    assert tuple(schema) == RESULT_COLUMNS
    frame = pl.DataFrame(rows, schema=schema)
    return frame.sort(
        [
            "group_by",
            "model",
            "prompt_version",
            "tenant",
            "endpoint",
            "service_name",
            "kind",
            "feature",
            "method",
        ],
        nulls_last=True,
    )


# --- the run ----------------------------------------------------------------------------


def _key_dict(keys: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(keys, values, strict=True))


def _title(key: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{name}={'(none)' if value is None else value}" for name, value in key.items()
    )


class _Run:
    def __init__(self, config: DriftConfig, *, keep_samples: bool) -> None:
        self.config = config
        self.keep_samples = keep_samples
        self.computed_at = datetime.now(UTC).replace(tzinfo=None)
        self.run_id = uuid.uuid4().hex
        self.rows: list[dict[str, Any]] = []
        self.samples: dict[tuple[Any, ...], GroupSample] = {}
        self.rollout_fallback = False

    # -- orchestration --

    def execute(
        self,
        con: duckdb.DuckDBPyConnection,
        spans: duckdb.DuckDBPyRelation | None,
        embeddings: duckdb.DuckDBPyRelation | None,
        progress: Callable[[int, int], None] | None,
    ) -> tuple[pl.DataFrame, list[GroupSample]]:
        newest = _newest(spans, embeddings)
        current_spec = parse_current(self.config.current)
        if newest is None and not isinstance(current_spec, Window):
            return self._frame(), []
        current = resolve_current(current_spec, newest or datetime.min)
        spec = parse_reference(self.config.reference)
        reference = resolve_reference(spec, current)
        # A group new this week falls back to the version it replaced (auto mode).
        self.rollout_fallback = spec == "auto"
        # Before a rollout the versions' first appearance needs the whole history.
        lower = (
            None
            if reference is None or self.rollout_fallback
            else min(reference.start, current.start)
        )
        upper = current.end if reference is None else max(reference.end, current.end)
        work: list[Callable[[], None]] = []
        if spans is not None:
            work.extend(self._plan_features(spans, current, reference, lower))
        if embeddings is not None:
            work.extend(
                self._plan_embeddings(
                    con, embeddings, current=current, reference=reference, lower=lower, upper=upper
                )
            )
        for done, step in enumerate(work, start=1):
            step()
            if progress is not None:
                progress(done, len(work))
        return self._frame(), list(self.samples.values())

    def _frame(self) -> pl.DataFrame:
        return _results_frame(self.rows)

    def _record(
        self,
        key: Mapping[str, Any],
        info: Mapping[str, Any],
        *,
        kind: str,
        feature: str,
        method: str,
        verdict: str,
        reference_n: int,
        current_n: int,
        message: str,
        score: DriftScore | None = None,
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "computed_at": self.computed_at,
            "run_id": self.run_id,
            "group_by": ",".join(key),
            **dict.fromkeys(GROUP_COLUMNS),
            **key,
            "kind": kind,
            "feature": feature,
            "method": method,
            "score": None if score is None else score.score,
            "threshold": None if score is None else score.threshold,
            "p_value": None if score is None else score.p_value,
            "drifted": None if score is None else score.drifted,
            "verdict": verdict,
            "reference_n": reference_n,
            "current_n": current_n,
            "reference_start": info.get("reference_start"),
            "reference_end": info.get("reference_end"),
            "current_start": info.get("current_start"),
            "current_end": info.get("current_end"),
            "reference_prompt_version": info.get("reference_prompt_version"),
            "message": message,
        }
        self.rows.append(row)
        if self.keep_samples:
            self._sample(key).results.append(row)
        return row

    def _sample(self, key: Mapping[str, Any]) -> GroupSample:
        token = tuple(key.items())
        sample = self.samples.get(token)
        if sample is None:
            sample = self.samples[token] = GroupSample(title=_title(key), results=[])
        return sample

    def _test(
        self,
        key: Mapping[str, Any],
        info: Mapping[str, Any],
        *,
        kind: str,
        feature: str,
        methods: Sequence[str],
        counts: tuple[int, int],
        unit: str,
        run: Callable[[str], DriftScore],
    ) -> None:
        reference_n, current_n = counts
        note = info.get("note")
        minimum = self.config.min_samples
        if note or reference_n < minimum or current_n < minimum:
            message = (
                str(note)
                if note
                else (
                    f"reference window has {reference_n:,} {unit}, current {current_n:,}; "
                    f"need at least {minimum:,} in each"
                )
            )
            for method in methods:
                self._record(
                    key,
                    info,
                    kind=kind,
                    feature=feature,
                    method=method,
                    verdict="insufficient_data",
                    reference_n=reference_n,
                    current_n=current_n,
                    message=message,
                )
            return
        for method in methods:
            try:
                score = run(method)
            except (ValueError, ArithmeticError, MemoryError) as exc:
                self._record(
                    key,
                    info,
                    kind=kind,
                    feature=feature,
                    method=method,
                    verdict="error",
                    reference_n=reference_n,
                    current_n=current_n,
                    message=str(exc) or type(exc).__name__,
                )
                continue
            self._record(
                key,
                info,
                kind=kind,
                feature=feature,
                method=method,
                verdict="drift" if score.drifted else "no_drift",
                reference_n=reference_n,
                current_n=current_n,
                message=score.detail,
                score=score,
            )

    # -- request features --

    def _windowed(
        self, rows: pl.DataFrame, current: Window, reference: Window | None
    ) -> tuple[pl.DataFrame, pl.DataFrame, list[str]] | None:
        """``rows`` labelled reference/current per group, the groups, and their key
        columns; None when there is nothing to compare."""
        if rows.is_empty():
            return None
        labelled, groups = assign_windows(
            rows,
            by=self.config.by,
            current=current,
            reference=reference,
            rollout_fallback=self.rollout_fallback,
        )
        if groups.is_empty():
            return None
        return labelled, groups, [c for c in groups.columns if c in GROUP_COLUMNS]

    def _plan_features(
        self,
        spans: duckdb.DuckDBPyRelation,
        current: Window,
        reference: Window | None,
        lower: datetime | None,
    ) -> list[Callable[[], None]]:
        import duckdb
        import polars as pl

        source = spans
        if lower is not None:
            source = spans.filter(
                duckdb.ColumnExpression("start_time") >= duckdb.ConstantExpression(lower)
            )
        windowed = self._windowed(
            _select(source, "spans", "drift_requests").pl(), current, reference
        )
        if windowed is None:
            return []
        labelled, groups, keys = windowed
        index = ["trace_id", "span_id", "window", *keys]
        long = labelled.unpivot(
            on=list(TYPED_FEATURES), index=index, variable_name="feature", value_name="value"
        )
        first = groups.select(
            pl.min_horizontal(pl.col("reference_start").min(), pl.col("current_start").min())
        ).item()
        attribute_source = spans.filter(
            duckdb.ColumnExpression("start_time") >= duckdb.ConstantExpression(first)
        )
        attributes = _select(attribute_source, "spans", "drift_request_attributes").pl()
        if not attributes.is_empty():
            attributes = attributes.join(
                labelled.select(index), on=["trace_id", "span_id"], how="inner"
            ).select(long.columns)
            long = pl.concat([long, attributes], how="vertical_relaxed")
        long = long.filter(pl.col("value").is_not_null() & pl.col("value").is_finite())
        long = long.filter(self._feature_filter())
        parts = long.partition_by([*keys, "feature"], as_dict=True, maintain_order=True)
        by_group: dict[tuple[Any, ...], list[str]] = {}
        for part_key in parts:
            by_group.setdefault(tuple(part_key[:-1]), []).append(str(part_key[-1]))
        steps: list[Callable[[], None]] = []
        for info in groups.iter_rows(named=True):
            group_values = tuple(info[k] for k in keys)
            names = sorted(by_group.get(group_values, []))
            frames = {name: parts[(*group_values, name)] for name in names}
            steps.append(
                functools.partial(
                    self._features_of_group, _key_dict(keys, group_values), info, frames
                )
            )
        return steps

    def _feature_filter(self) -> pl.Expr:
        import polars as pl

        if self.config.features:
            return pl.col("feature").is_in(list(self.config.features))
        typed = pl.col("feature").is_in(list(TYPED_FEATURES))
        return typed | ~pl.col("feature").str.contains(_NOT_FEATURES.pattern)

    def _features_of_group(
        self, key: dict[str, Any], info: dict[str, Any], frames: dict[str, pl.DataFrame]
    ) -> None:
        import polars as pl

        reference_frames: list[pl.DataFrame] = []
        current_frames: list[pl.DataFrame] = []
        for name, frame in frames.items():
            ref = frame.filter(pl.col("window") == "reference")
            cur = frame.filter(pl.col("window") == "current")
            ref_values = ref["value"].to_numpy()
            cur_values = cur["value"].to_numpy()

            def run(
                method: str, r: FloatArray = ref_values, c: FloatArray = cur_values
            ) -> DriftScore:
                return self._feature_test(method, r, c)

            self._test(
                key,
                info,
                kind="feature",
                feature=name,
                methods=self.config.feature_methods,
                counts=(len(ref_values), len(cur_values)),
                unit="values",
                run=run,
            )
            if self.keep_samples:
                reference_frames.append(ref.select("trace_id", "span_id", "feature", "value"))
                current_frames.append(cur.select("trace_id", "span_id", "feature", "value"))
        if self.keep_samples and frames:
            sample = self._sample(key)
            sample.features_reference = _wide(reference_frames)
            sample.features_current = _wide(current_frames)

    def _feature_test(self, method: str, reference: FloatArray, current: FloatArray) -> DriftScore:
        from infermeter.analytics.drift._methods import ks_drift

        if method == "ks":
            return ks_drift(reference, current, alpha=self.config.alpha, min_ks=self.config.min_ks)
        from infermeter.analytics.drift._evidently import evidently_feature_drift

        return evidently_feature_drift(reference, current, method)

    # -- embeddings --

    def _plan_embeddings(
        self,
        con: duckdb.DuckDBPyConnection,
        embeddings: duckdb.DuckDBPyRelation,
        *,
        current: Window,
        reference: Window | None,
        lower: datetime | None,
        upper: datetime,
    ) -> list[Callable[[], None]]:
        import duckdb

        condition = duckdb.ColumnExpression("time") < duckdb.ConstantExpression(upper)
        if lower is not None:
            condition = condition & (
                duckdb.ColumnExpression("time") >= duckdb.ConstantExpression(lower)
            )
        source = embeddings.filter(condition)
        windowed = self._windowed(
            _select(source, "embeddings", "drift_embedding_rows").pl(), current, reference
        )
        if windowed is None:
            return []
        labelled, groups, keys = windowed
        parts = labelled.partition_by([*keys, "kind"], as_dict=True, maintain_order=True)
        infos = {tuple(info[k] for k in keys): info for info in groups.iter_rows(named=True)}
        plans = [
            self._plan_embedding_group(
                _key_dict(keys, part_key[:-1]),
                infos[tuple(part_key[:-1])],
                str(part_key[-1]),
                part,
            )
            for part_key, part in parts.items()
        ]
        # One fetch per batch of groups with the same vector dimension, up to a budget.
        plans.sort(key=lambda p: (p.dim, p.key_text, p.kind))
        steps: list[Callable[[], None]] = []
        batch: list[_EmbeddingPlan] = []
        floats = 0
        for plan in plans:
            if batch and (plan.dim != batch[-1].dim or floats >= _FETCH_BATCH_FLOATS):
                steps.append(functools.partial(self._embedding_batch, con, source, batch))
                batch, floats = [], 0
            batch.append(plan)
            floats += plan.floats
        if batch:
            steps.append(functools.partial(self._embedding_batch, con, source, batch))
        return steps

    def _plan_embedding_group(
        self, key: dict[str, Any], info: dict[str, Any], kind: str, rows: pl.DataFrame
    ) -> _EmbeddingPlan:
        import polars as pl

        counts = (
            int((rows["window"] == "reference").sum()),
            int((rows["window"] == "current").sum()),
        )
        plan = _EmbeddingPlan(key=key, info=info, kind=kind, counts=counts)
        empty = int(rows.select((pl.col("dim").is_null() | (pl.col("dim") == 0)).sum()).item())
        dims = rows.filter(pl.col("dim") > 0).group_by("dim").len().sort("dim")
        if empty:
            plan.problem = f"{empty:,} of {len(rows):,} vectors are empty"
        elif len(dims) > 1:
            listed = ", ".join(f"{d:,} ({n:,} vectors)" for d, n in dims.iter_rows())
            plan.problem = f"mixed vector dimensions: {listed}"
        if plan.problem or info.get("note") or min(counts) < self.config.min_samples:
            return plan
        dim = int(dims["dim"][0])
        cap = max(1, min(self.config.max_samples, _MAX_FLOATS_PER_WINDOW // dim))
        # The smallest row keys form a reproducible uniform sample of each window.
        for window in ("reference", "current"):
            picked = rows.filter(pl.col("window") == window).sort("row_key").head(cap)["row_key"]
            setattr(plan, f"{window}_keys", picked.to_numpy())
        plan.dim = dim
        return plan

    def _embedding_batch(
        self,
        con: duckdb.DuckDBPyConnection,
        source: duckdb.DuckDBPyRelation,
        plans: list[_EmbeddingPlan],
    ) -> None:
        vectors = _fetch_vectors(con, source, plans)
        for plan in plans:
            self._embedding_group(plan, vectors.get(id(plan)))

    def _embedding_group(
        self, plan: _EmbeddingPlan, arrays: tuple[FloatArray, FloatArray] | None
    ) -> None:
        methods = self.config.embedding_methods
        if plan.problem:
            reference_n, current_n = plan.counts
            for method in methods:
                self._record(
                    plan.key,
                    plan.info,
                    kind="embedding",
                    feature=plan.kind,
                    method=method,
                    verdict="error",
                    reference_n=reference_n,
                    current_n=current_n,
                    message=plan.problem,
                )
            return

        from infermeter.analytics.drift._methods import DriftScore, validate_vectors

        def run(method: str) -> DriftScore:
            assert arrays is not None  # planned groups with enough rows always fetch
            reference, current = arrays
            validate_vectors(reference, "reference")
            validate_vectors(current, "current")
            score = self._embedding_test(method, reference, current)
            sampled = len(reference) < plan.counts[0] or len(current) < plan.counts[1]
            if not sampled:
                return score
            return DriftScore(
                method=score.method,
                score=score.score,
                threshold=score.threshold,
                drifted=score.drifted,
                p_value=score.p_value,
                reference_n=score.reference_n,
                current_n=score.current_n,
                detail=f"{score.detail} (random sample of {plan.counts[0]:,}+"
                f"{plan.counts[1]:,} vectors)",
            )

        self._test(
            plan.key,
            plan.info,
            kind="embedding",
            feature=plan.kind,
            methods=methods,
            counts=plan.counts,
            unit="vectors",
            run=run,
        )
        if self.keep_samples and arrays is not None:
            size = self.config.html_sample
            self._sample(plan.key).embeddings[plan.kind] = (
                arrays[0][:size].copy(),
                arrays[1][:size].copy(),
            )

    def _embedding_test(
        self, method: str, reference: FloatArray, current: FloatArray
    ) -> DriftScore:
        from infermeter.analytics.drift._methods import classifier_drift, mmd_drift

        if method == "classifier":
            return classifier_drift(
                reference, current, alpha=self.config.alpha, min_auc=self.config.min_auc
            )
        if method == "mmd":
            return mmd_drift(reference, current, alpha=self.config.alpha)
        from infermeter.analytics.drift._evidently import evidently_embedding_drift

        return evidently_embedding_drift(reference, current, method)


@dataclass(eq=False)
class _EmbeddingPlan:
    key: dict[str, Any]
    info: dict[str, Any]
    kind: str
    counts: tuple[int, int]
    problem: str | None = None
    dim: int = 0
    reference_keys: npt.NDArray[np.uint64] | None = None
    current_keys: npt.NDArray[np.uint64] | None = None

    @property
    def key_text(self) -> str:
        return repr(sorted((k, str(v)) for k, v in self.key.items()))

    @property
    def floats(self) -> int:
        if self.reference_keys is None or self.current_keys is None:
            return 0
        return (len(self.reference_keys) + len(self.current_keys)) * self.dim


def _fetch_vectors(
    con: duckdb.DuckDBPyConnection,
    source: duckdb.DuckDBPyRelation,
    plans: Iterable[_EmbeddingPlan],
) -> dict[int, tuple[FloatArray, FloatArray]]:
    """The picked vectors of every plan, as (reference, current) float32 matrices."""
    import numpy as np
    import pyarrow as pa

    wanted = [p for p in plans if p.reference_keys is not None and p.current_keys is not None]
    if not wanted:
        return {}
    key_parts: list[npt.NDArray[np.uint64]] = []
    ranges: dict[int, tuple[int, int, int]] = {}
    offset = 0
    for plan in wanted:
        assert plan.reference_keys is not None and plan.current_keys is not None
        middle = offset + len(plan.reference_keys)
        ranges[id(plan)] = (offset, middle, middle + len(plan.current_keys))
        key_parts.extend([plan.reference_keys, plan.current_keys])
        offset = middle + len(plan.current_keys)
    row_keys = np.concatenate(key_parts)
    pick = pa.table(
        {
            "row_key": pa.array(row_keys, type=pa.uint64()),
            "ord": pa.array(np.arange(len(row_keys), dtype=np.int64)),
        }
    )
    con.register(_PICK_TABLE, pick)
    try:
        table = _select(source, "embeddings", "drift_embedding_vectors").to_arrow_table()
    finally:
        con.unregister(_PICK_TABLE)
    # Order by pick (reference rows of a plan first) and keep one row per pick: identical
    # rows share a key and come back once per copy.
    picks, first = np.unique(table.column("ord").to_numpy(), return_index=True)
    lists = table.column("vector").combine_chunks()
    dim = wanted[0].dim  # a batch holds plans of one dimension
    lengths = np.asarray(lists.value_lengths().fill_null(-1))
    if len(lengths) and (lengths != dim).any():
        for plan in wanted:
            plan.problem = "vectors changed length while they were read"
        return {}
    # Null elements inside a vector become NaN here and fail validation later.
    matrix = lists.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
    result: dict[int, tuple[FloatArray, FloatArray]] = {}
    for plan in wanted:
        begin, middle, end = ranges[id(plan)]
        low, split, high = np.searchsorted(picks, [begin, middle, end])
        rows = matrix[first[low:high]].astype(np.float32, copy=False)
        result[id(plan)] = (rows[: split - low], rows[split - low :])
    return result


def _wide(frames: list[pl.DataFrame]) -> pl.DataFrame | None:
    import polars as pl

    if not frames:
        return None
    long = pl.concat(frames)
    if long.is_empty():
        return None
    return long.pivot(
        on="feature", index=["trace_id", "span_id"], values="value", aggregate_function="first"
    )


def _newest(
    spans: duckdb.DuckDBPyRelation | None, embeddings: duckdb.DuckDBPyRelation | None
) -> datetime | None:
    """The newest observation: the latest request start or embedding time."""
    from infermeter.analytics.query._clock import newest_span

    # Far-future observations (a wrong clock, a hostile timestamp) do not move the window.
    candidates: list[datetime] = []
    if spans is not None:
        start = newest_span(spans.filter("is_entry")).start
        if start is not None:
            candidates.append(start)
    if embeddings is not None:
        time = newest_span(embeddings, column="time").start
        if time is not None:
            candidates.append(time)
    return max(candidates) if candidates else None
