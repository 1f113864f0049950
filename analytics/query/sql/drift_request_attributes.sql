-- Numeric span attributes per request, long format (trace_id, span_id, feature, value).
-- Every key of the `attributes` JSON of every span of the request whose value is a number
-- or an array of numbers (averaged, e.g. retrieval scores of the top-k documents); a key
-- present on several spans of one request is averaged over them. Booleans and strings
-- are not features. Relation in: spans.
WITH member AS (
    SELECT e.trace_id, e.span_id, s.attributes
    FROM spans AS e
    JOIN spans AS s
        ON s.trace_id = e.trace_id AND s.service_name IS NOT DISTINCT FROM e.service_name
    WHERE e.is_entry AND s.attributes IS NOT NULL
),
pairs AS (
    SELECT
        m.trace_id,
        m.span_id,
        j.key AS feature,
        CASE json_type(j.value)
            WHEN 'ARRAY' THEN list_avg(TRY_CAST(j.value AS DOUBLE[]))
            ELSE TRY_CAST(j.value AS DOUBLE)
        END AS value
    FROM member AS m, json_each(m.attributes) AS j
    WHERE json_type(j.value) IN ('UBIGINT', 'BIGINT', 'DOUBLE')
        OR (json_type(j.value) = 'ARRAY'
            AND json_type(j.value, '$[0]') IN ('UBIGINT', 'BIGINT', 'DOUBLE'))
)
SELECT trace_id, span_id, feature, avg(value) AS value
FROM pairs
WHERE value IS NOT NULL AND isfinite(value)
GROUP BY trace_id, span_id, feature
ORDER BY trace_id, span_id, feature
