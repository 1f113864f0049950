"""infermeter.analytics.quality.

Quality next to cost: GenAI evaluation results (``gen_ai.evaluation.result``) and user
feedback joined to the requests they judge, cost per good answer, rollback advice when a
rollout's scores drop, retrieval hit rate and top-k overlap, and topic shift of the
queries. Each module's docstring states its rules.
"""

from __future__ import annotations

from infermeter.analytics.quality._evaluations import (
    NEGATIVE_LABELS,
    PASS_THRESHOLD,
    POSITIVE_LABELS,
    judged_evaluations,
    quality_by_evaluation,
    quality_summary,
)
from infermeter.analytics.quality._retrieval import (
    RBO_PERSISTENCE,
    jaccard,
    rank_biased_overlap,
    retrieval_metrics,
    retrievals,
    topk_overlap,
)
from infermeter.analytics.quality._rollout import (
    ROLLOUT_COLUMNS,
    RolloutThresholds,
    quality_rollouts,
    rollout_recommendations,
)
from infermeter.analytics.quality._section import (
    QualitySection,
    quality_html,
    quality_markdown,
    quality_section,
)
from infermeter.analytics.quality._topics import (
    TopicCluster,
    TopicShift,
    choose_k,
    topic_shift,
    user_text,
)

__all__ = [
    "NEGATIVE_LABELS",
    "PASS_THRESHOLD",
    "POSITIVE_LABELS",
    "RBO_PERSISTENCE",
    "ROLLOUT_COLUMNS",
    "QualitySection",
    "RolloutThresholds",
    "TopicCluster",
    "TopicShift",
    "choose_k",
    "jaccard",
    "judged_evaluations",
    "quality_by_evaluation",
    "quality_html",
    "quality_markdown",
    "quality_rollouts",
    "quality_section",
    "quality_summary",
    "rank_biased_overlap",
    "retrieval_metrics",
    "retrievals",
    "rollout_recommendations",
    "topic_shift",
    "topk_overlap",
    "user_text",
]
