-- The vectors of the sampled embedding rows with their pick order. `_infermeter_drift_pick`
-- (row_key, ord) is registered by the caller for the duration of this query; the key is
-- drift_embedding_rows.sql's. Unordered: the caller orders (and de-duplicates) in numpy,
-- cheaper than sorting rows that carry whole vectors. Relation in: embeddings.
SELECT p.ord, e.vector
FROM embeddings AS e
JOIN _infermeter_drift_pick AS p
    ON p.row_key = hash(e.trace_id, e.span_id, e.time, e.kind, len(e.vector), e.vector[1],
                        e.vector[-1])
