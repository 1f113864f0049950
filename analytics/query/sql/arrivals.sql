-- Each request's arrival facts for the arrival replay (analytics/_replay.py): when it
-- started and ended (epoch seconds), its handler duration and its INIT when it was cold.
-- Runs over the request table registered as "requests".
SELECT
    endpoint,
    runtime,
    epoch_us(start_time) / 1e6 AS start_s,
    epoch_us(end_time) / 1e6 AS end_s,
    greatest(duration_ms, 0) AS duration_ms,
    cold_start,
    init_duration_ms,
    initialization_type
FROM requests
ORDER BY start_time
