-- Embedding rows without their vectors: group keys, kind, time, vector length and a
-- stable row key. The key orders rows pseudo-randomly (sampling keeps the smallest keys,
-- so a sample is reproducible) and picks the sampled vectors in a second query
-- (drift_embedding_vectors.sql computes the same key). It hashes the row's identity plus
-- the vector's length, first and last component (several vectors of one span event
-- differ there; hashing whole vectors cost 0.5 s per 100,000 rows of 384 floats).
-- Relation in: embeddings.
SELECT
    hash(trace_id, span_id, time, kind, len(vector), vector[1], vector[-1]) AS row_key,
    time,
    service_name,
    tenant,
    model,
    prompt_version,
    endpoint,
    kind,
    len(vector) AS dim
FROM embeddings
