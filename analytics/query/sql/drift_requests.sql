-- One row per request (entry span): its group keys and typed request features.
-- A request is an entry span plus every span of its trace in the same service (the
-- analytics contract): tokens are summed over those spans, latency is the entry span's.
-- A model missing on the entry span is the main model call's (the span with a model and
-- the most tokens, as in the request table: a RAG request's chat model, not its embedding
-- model); other keys missing on it come from the earliest span carrying them.
-- Relation in: spans. Deterministic order so that sampling and splits are reproducible.
SELECT
    e.trace_id,
    e.span_id,
    e.start_time AS time,
    e.service_name,
    coalesce(e.tenant, arg_min(s.tenant, s.start_time) FILTER (WHERE s.tenant IS NOT NULL)) AS tenant,
    coalesce(
        e.model,
        arg_max(s.model, coalesce(s.input_tokens, 0) + coalesce(s.output_tokens, 0))
            FILTER (WHERE s.model IS NOT NULL)
    ) AS model,
    coalesce(
        e.prompt_version,
        arg_min(s.prompt_version, s.start_time) FILTER (WHERE s.prompt_version IS NOT NULL)
    ) AS prompt_version,
    coalesce(e.endpoint, arg_min(s.endpoint, s.start_time) FILTER (WHERE s.endpoint IS NOT NULL)) AS endpoint,
    e.duration_ms::DOUBLE AS duration_ms,
    coalesce(e.ttft_ms, min(s.ttft_ms))::DOUBLE AS ttft_ms,
    sum(s.input_tokens)::DOUBLE AS input_tokens,
    sum(s.output_tokens)::DOUBLE AS output_tokens,
    sum(s.cache_read_tokens)::DOUBLE AS cache_read_tokens,
    sum(s.reasoning_tokens)::DOUBLE AS reasoning_tokens
FROM spans AS e
JOIN spans AS s
    ON s.trace_id = e.trace_id AND s.service_name IS NOT DISTINCT FROM e.service_name
WHERE e.is_entry
GROUP BY
    e.trace_id, e.span_id, e.start_time, e.service_name, e.tenant, e.model,
    e.prompt_version, e.endpoint, e.duration_ms, e.ttft_ms
ORDER BY time, e.trace_id, e.span_id
