-- The vectors of the sampled embedding rows, in pick order. `_infermeter_drift_pick`
-- (row_key, ord) is registered by the caller for the duration of this query; identical
-- rows share a key, DISTINCT ON keeps one of them. Relation in: embeddings.
SELECT DISTINCT ON (p.ord) p.ord, e.vector
FROM embeddings AS e
JOIN _infermeter_drift_pick AS p
    ON p.row_key = hash(e.trace_id, e.span_id, e.time, e.kind, e.vector)
ORDER BY p.ord
