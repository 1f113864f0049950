-- Facts runtime_economics needs beyond metrics(), per workload (endpoint, runtime):
-- the mean INIT of its cold starts (billed by Lambda since 2025-08), the memory its
-- functions were configured with (faas.max_memory on the spans) and its platform.
-- Runs over the request table registered as "requests".
SELECT
    endpoint,
    runtime,
    avg(init_duration_ms) FILTER (WHERE cold_start) AS mean_init_duration_ms,
    median(memory_mb) AS memory_mb,
    mode(platform) AS platform
FROM requests
GROUP BY endpoint, runtime
