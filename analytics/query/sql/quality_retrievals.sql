-- One row per retrieval span of im_spans: a span carrying infermeter.retrieval.ids.
-- Tenant, model, prompt version and endpoint come from the span, else from the entry
-- span of its trace (retrieval usually runs in a nested span of the request).
WITH r AS (
    SELECT trace_id, span_id, start_time, tenant, model, prompt_version, endpoint,
        CAST(json_extract(attributes, '$."infermeter.retrieval.ids"') AS VARCHAR[]) AS ids,
        CAST(json_extract(attributes, '$."infermeter.retrieval.used_ids"') AS VARCHAR[])
            AS used_ids,
        CAST(json_extract(attributes, '$."infermeter.retrieval.scores"') AS DOUBLE[])
            AS scores,
        json_extract_string(attributes, '$."infermeter.retrieval.query_fingerprint"')
            AS query_fingerprint,
        json_extract_string(attributes, '$."infermeter.retrieval.index_version"')
            AS index_version
    FROM im_spans
    WHERE json_type(attributes, '$."infermeter.retrieval.ids"') = 'ARRAY'
),
entries AS (
    SELECT trace_id, any_value(tenant) AS tenant, any_value(model) AS model,
        any_value(prompt_version) AS prompt_version, any_value(endpoint) AS endpoint
    FROM im_spans
    WHERE is_entry AND trace_id IN (SELECT trace_id FROM r)
    GROUP BY trace_id
)
SELECT r.trace_id, r.span_id, r.start_time,
    coalesce(r.tenant, e.tenant) AS tenant,
    coalesce(r.model, e.model) AS model,
    coalesce(r.prompt_version, e.prompt_version) AS prompt_version,
    coalesce(r.endpoint, e.endpoint) AS endpoint,
    r.ids, r.used_ids, r.scores, r.query_fingerprint, r.index_version,
    len(r.ids) AS docs_returned,
    list_max(r.scores) AS top_score,
    CASE WHEN r.used_ids IS NULL THEN NULL
        ELSE len(list_intersect(r.ids, r.used_ids)) > 0 END AS hit
FROM r
LEFT JOIN entries AS e ON r.trace_id = e.trace_id
