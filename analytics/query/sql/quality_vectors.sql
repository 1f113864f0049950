-- Sampled embedding vectors of one kind in [$start, $end) (optionally one model), for the
-- topic-shift check.
SELECT vector
FROM embeddings
WHERE kind = $kind AND time >= $start AND time < $end
    AND ($model IS NULL OR model = $model)
ORDER BY time, span_id
