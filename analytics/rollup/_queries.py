"""The exporter's own SQL, in one place: the newest span, and per-cohort sums of the
request table's per-request facts (the counters and the window sums).

Every per-request fact (is it an error, was it throttled, its tokens and cost) is defined
once by ``infermeter.analytics.request_table``; these queries only add them up, so a sum
here always agrees with ``metrics()`` on the same requests.
"""

from __future__ import annotations

from typing import Final

__all__ = ["COHORT_SUMS", "NEWEST_SPAN_END", "SUM_COLUMNS"]

NEWEST_SPAN_END: Final = "SELECT max(end_time) FROM spans"

# Columns COHORT_SUMS returns besides the cohort keys.
SUM_COLUMNS: Final = (
    "requests",
    "errors",
    "throttled",
    "throttle_events",
    "cold_starts",
    "retries",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "reasoning_tokens",
    "token_cost_usd",
    "compute_cost_usd",
    "unpriced_requests",
)

# Over a request-table relation registered as ``im_requests``; one row per cohort.
COHORT_SUMS: Final = """
SELECT tenant, model, prompt_version, endpoint, runtime, provider,
    count(*) AS requests,
    count(*) FILTER (WHERE is_error) AS errors,
    count(*) FILTER (WHERE throttled) AS throttled,
    coalesce(sum(throttle_events), 0) AS throttle_events,
    count(*) FILTER (WHERE cold_start) AS cold_starts,
    coalesce(sum(retries), 0) AS retries,
    coalesce(sum(input_tokens), 0) AS input_tokens,
    coalesce(sum(output_tokens), 0) AS output_tokens,
    coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens,
    coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens,
    coalesce(sum(token_cost_usd), 0) AS token_cost_usd,
    coalesce(sum(compute_cost_usd), 0) AS compute_cost_usd,
    count(*) FILTER (WHERE unpriced) AS unpriced_requests
FROM im_requests
GROUP BY tenant, model, prompt_version, endpoint, runtime, provider
"""
