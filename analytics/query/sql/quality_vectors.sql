-- Sampled embedding vectors of one kind in [$start, $end) (optionally one model), for the
-- topic-shift check, with the input messages of their trace when content capture recorded
-- them (gen_ai.input.messages on any span of the trace; NULL otherwise).
WITH picked AS (
    SELECT trace_id, span_id, time, vector
    FROM embeddings
    WHERE kind = $kind AND time >= $start AND time < $end
        AND ($model IS NULL OR model = $model)
),
texts AS (
    SELECT trace_id,
        any_value(json_extract_string(attributes, '$."gen_ai.input.messages"')) AS messages
    FROM spans
    WHERE trace_id IN (SELECT trace_id FROM picked)
        AND json_extract_string(attributes, '$."gen_ai.input.messages"') IS NOT NULL
    GROUP BY trace_id
)
SELECT p.vector, t.messages
FROM picked AS p
LEFT JOIN texts AS t ON p.trace_id = t.trace_id
ORDER BY p.time, p.span_id
