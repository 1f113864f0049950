-- One row per evaluation result linked to the request it judges (im_evaluations ->
-- im_requests; im_spans maps gen_ai.response.id to its trace). Link rules, in order:
--   1. the evaluation's trace id, else the trace of the span that carries its
--      gen_ai.response.id;
--   2. in that trace, the request whose entry span is the evaluated span, else the
--      earliest request of the trace (an evaluation of a nested span, or of a trace
--      only: user feedback).
-- An evaluation that carries a tenant (pinned by its ingest token) links only to that
-- tenant's requests: one tenant cannot grade another's. Evaluations that link to no
-- request in the window are left out.
WITH response_traces AS (
    SELECT json_extract_string(attributes, '$."gen_ai.response.id"') AS response_id,
        any_value(trace_id) AS trace_id
    FROM im_spans
    WHERE json_extract_string(attributes, '$."gen_ai.response.id"') IS NOT NULL
    GROUP BY 1
),
ev AS (
    SELECT row_number() OVER () AS evaluation_key, e.*,
        coalesce(e.trace_id, r.trace_id) AS link_trace
    FROM im_evaluations AS e
    LEFT JOIN response_traces AS r ON e.trace_id IS NULL AND e.response_id = r.response_id
)
SELECT
    q.trace_id, q.span_id AS request_span_id, q.start_time, q.tenant, q.model,
    q.prompt_name, q.prompt_version, q.endpoint, q.runtime, q.provider, q.is_error,
    q.token_cost_usd + coalesce(q.compute_cost_usd, 0) AS cost_usd,
    ev.name, ev.score_value, ev.score_label, ev.source, ev.time AS evaluated_at
FROM ev
JOIN im_requests AS q ON q.trace_id = ev.link_trace
    AND (ev.tenant IS NULL OR ev.tenant IS NOT DISTINCT FROM q.tenant)
QUALIFY row_number() OVER (
    PARTITION BY ev.evaluation_key
    ORDER BY (q.span_id IS NOT DISTINCT FROM ev.span_id) DESC, q.start_time, q.span_id
) = 1
