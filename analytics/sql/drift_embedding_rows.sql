-- Embedding rows without their vectors: group keys, kind, time, vector length and a
-- stable row key. The key orders rows pseudo-randomly (sampling keeps the smallest keys,
-- so a sample is reproducible) and picks the sampled vectors in a second query.
-- Relation in: embeddings.
SELECT
    hash(trace_id, span_id, time, kind, vector) AS row_key,
    time,
    service_name,
    tenant,
    model,
    prompt_version,
    endpoint,
    kind,
    len(vector) AS dim
FROM embeddings
