"""infermeter.analytics.query.

Requests and metrics over the store's spans: the request table, the metric table,
concurrency, stages and workload frames. Every SQL text of analytics lives here
(``_queries.py`` for the metric queries, ``sql/`` for the longer ones): one home, so an
engine twin (ClickHouse) can sit beside it.
"""

from __future__ import annotations

from infermeter.analytics.query._buckets import check_group_columns, parse_bucket
from infermeter.analytics.query._clock import FUTURE_TOLERANCE, Newest, future_limit, newest_span
from infermeter.analytics.query._concurrency import concurrency
from infermeter.analytics.query._metrics import METRIC_COLUMNS, metric_inputs, metrics, with_bucket
from infermeter.analytics.query._queries import LLM_OPERATIONS, REQUEST_FACT_COLUMNS
from infermeter.analytics.query._requests import (
    price_coverage,
    priced_requests,
    request_facts,
    request_table,
    unpriced_models,
)
from infermeter.analytics.query._self_hosted import self_hosted_load
from infermeter.analytics.query._stages import stage_breakdown
from infermeter.analytics.query._workloads import arrival_frame, version_frame, workload_frame

__all__ = [
    "FUTURE_TOLERANCE",
    "LLM_OPERATIONS",
    "METRIC_COLUMNS",
    "REQUEST_FACT_COLUMNS",
    "Newest",
    "arrival_frame",
    "check_group_columns",
    "concurrency",
    "future_limit",
    "metric_inputs",
    "metrics",
    "newest_span",
    "parse_bucket",
    "price_coverage",
    "priced_requests",
    "request_facts",
    "request_table",
    "self_hosted_load",
    "stage_breakdown",
    "unpriced_models",
    "version_frame",
    "with_bucket",
    "workload_frame",
]
