-- The measured load of every self-hosted model, per (model, service, runtime): one row per
-- model server. A span is a self-hosted model call when its provider is 'self_hosted' or a
-- model server reported queue / model time (vLLM, SGLang, TGI/TEI, Triton). Reads the
-- windowed spans registered as "im_window" (start in [$since, $until)).
--
-- GPU busy time is the union, per service instance, of the intervals the model worked:
-- [end - model time, end] (a model server's time in model ends with the response; without
-- it the whole span). Tokens per GPU-second of busy time is the throughput the GPUs showed
-- at the concurrency they actually had.
WITH calls AS (
    SELECT
        coalesce(model, response_model, service_name) AS model,
        service_name,
        coalesce(runtime, 'unknown') AS runtime,
        endpoint,
        platform,
        cloud_provider,
        coalesce(service_instance, service_name, '?') AS instance,
        trace_id,
        span_id,
        start_time,
        end_time,
        duration_ms,
        cold_start,
        init_duration_ms,
        queue_ms,
        coalesce(model_ms, duration_ms) AS model_ms,
        coalesce(input_tokens, 0) AS input_tokens,
        coalesce(output_tokens, 0) AS output_tokens,
        gpu_type,
        gpu_count,
        operation,
        status_code = 'ERROR' OR error_type IS NOT NULL AS is_error
    FROM im_window
    WHERE ($since::TIMESTAMP IS NULL OR start_time >= $since::TIMESTAMP)
      AND ($until::TIMESTAMP IS NULL OR start_time < $until::TIMESTAMP)
      AND (provider = 'self_hosted' OR model_ms IS NOT NULL OR queue_ms IS NOT NULL)
),
busy AS (
    SELECT model, service_name, runtime, instance, work_start, end_us,
        greatest(end_us - greatest(work_start, coalesce(
            max(end_us) OVER (
                PARTITION BY model, service_name, runtime, instance
                ORDER BY work_start, end_us
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)), 0) AS busy_us
    FROM (
        SELECT model, service_name, runtime, instance,
            epoch_us(end_time) AS end_us,
            epoch_us(end_time) - CAST(round(greatest(model_ms, 0) * 1000) AS BIGINT) AS work_start
        FROM calls
    )
),
busy_totals AS (
    SELECT model, service_name, runtime, sum(busy_us) / 1e6 AS busy_s
    FROM busy
    GROUP BY ALL
),
-- The newest model load (INIT of a cold start) up to $until, even before $since: a server
-- that has not restarted in the window still loads its model that long when it does.
model_load AS (
    SELECT coalesce(model, response_model, service_name) AS model, service_name,
        coalesce(runtime, 'unknown') AS runtime,
        arg_max(init_duration_ms, start_time) AS last_init_duration_ms
    FROM im_window
    WHERE cold_start AND init_duration_ms IS NOT NULL
      AND ($until::TIMESTAMP IS NULL OR start_time < $until::TIMESTAMP)
      AND (provider = 'self_hosted' OR model_ms IS NOT NULL OR queue_ms IS NOT NULL)
    GROUP BY ALL
),
-- Seconds from each call's start to the next call's (rounded up, capped at 3601): how long
-- a scale-to-zero instance would stay up after each call, for any idle timeout up to 1 h,
-- is read from this histogram (measured arrivals, no Poisson assumption).
gaps AS (
    -- (least() skips NULLs: the last call, which has no next one, is dropped first.)
    SELECT model, service_name, runtime,
        least(ceil((epoch_us(next_start) - epoch_us(start_time)) / 1e6), 3601) AS gap_s
    FROM (
        SELECT model, service_name, runtime, start_time,
            lead(start_time) OVER (
                PARTITION BY model, service_name, runtime ORDER BY start_time) AS next_start
        FROM calls
    )
    WHERE next_start IS NOT NULL
),
gap_histogram AS (
    SELECT model, service_name, runtime,
        list({'gap_s': gap_s, 'calls': calls} ORDER BY gap_s) AS gap_histogram
    FROM (
        SELECT model, service_name, runtime, gap_s, count(*) AS calls
        FROM gaps
        GROUP BY ALL
    )
    GROUP BY ALL
),
-- The endpoint of the request each call serves (the entry span of its trace in another
-- service): the CPU glue in front of the GPU.
glue AS (
    SELECT c.model, c.service_name, c.runtime,
        arg_max(e.endpoint, e.n) AS glue_endpoint,
        arg_max(e.runtime, e.n) AS glue_runtime
    FROM calls AS c
    JOIN (
        SELECT trace_id, endpoint, coalesce(runtime, 'unknown') AS runtime, span_id,
            count(*) OVER (PARTITION BY endpoint, runtime) AS n
        FROM im_window
        WHERE is_entry AND endpoint IS NOT NULL
    ) AS e ON c.trace_id = e.trace_id AND c.span_id <> e.span_id
    GROUP BY ALL
)
SELECT
    c.model,
    c.service_name,
    c.runtime,
    arg_max(c.endpoint, c.start_time) AS endpoint,
    arg_max(c.platform, c.start_time) AS platform,
    arg_max(c.cloud_provider, c.start_time) AS cloud_provider,
    arg_max(c.operation, c.start_time) AS operation,
    count(*) AS requests,
    count(*) FILTER (WHERE c.is_error) AS errors,
    (epoch_us(max(c.end_time)) - epoch_us(min(c.start_time))) / 1e6 AS window_s,
    count(DISTINCT c.instance) AS instances,
    CAST(sum(c.input_tokens) AS BIGINT) AS input_tokens,
    CAST(sum(c.output_tokens) AS BIGINT) AS output_tokens,
    avg(c.queue_ms) AS mean_queue_ms,
    quantile_cont(c.queue_ms, 0.95) AS p95_queue_ms,
    avg(c.model_ms) AS mean_model_ms,
    avg(c.duration_ms) AS mean_duration_ms,
    quantile_cont(c.duration_ms, 0.95) AS p95_ms,
    quantile_cont(c.duration_ms, 0.95) FILTER (WHERE NOT coalesce(c.cold_start, false))
        AS warm_p95_ms,
    count(*) FILTER (WHERE c.cold_start) AS cold_starts,
    avg(c.init_duration_ms) FILTER (WHERE c.cold_start) AS mean_init_duration_ms,
    arg_max(c.gpu_type, c.start_time) AS gpu_type,
    max(c.gpu_count) AS gpu_count,
    any_value(b.busy_s) AS busy_s,
    any_value(g.glue_endpoint) AS glue_endpoint,
    any_value(g.glue_runtime) AS glue_runtime,
    any_value(h.gap_histogram) AS gap_histogram,
    any_value(l.last_init_duration_ms) AS last_init_duration_ms
FROM calls AS c
LEFT JOIN busy_totals AS b
    ON c.model = b.model AND c.service_name IS NOT DISTINCT FROM b.service_name
    AND c.runtime = b.runtime
LEFT JOIN glue AS g
    ON c.model = g.model AND c.service_name IS NOT DISTINCT FROM g.service_name
    AND c.runtime = g.runtime
LEFT JOIN gap_histogram AS h
    ON c.model = h.model AND c.service_name IS NOT DISTINCT FROM h.service_name
    AND c.runtime = h.runtime
LEFT JOIN model_load AS l
    ON c.model = l.model AND c.service_name IS NOT DISTINCT FROM l.service_name
    AND c.runtime = l.runtime
GROUP BY c.model, c.service_name, c.runtime
ORDER BY c.model, c.service_name, c.runtime
