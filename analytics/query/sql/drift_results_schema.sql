-- The sidecar results file's table (see _drift_results.py). Append-only: each run adds
-- its rows with one computed_at/run_id; readers take the latest row per group and feature.
CREATE TABLE IF NOT EXISTS drift_results (
    computed_at TIMESTAMP NOT NULL,
    run_id VARCHAR NOT NULL,
    group_by VARCHAR NOT NULL,
    tenant VARCHAR,
    model VARCHAR,
    prompt_version VARCHAR,
    endpoint VARCHAR,
    service_name VARCHAR,
    kind VARCHAR NOT NULL,
    feature VARCHAR NOT NULL,
    method VARCHAR NOT NULL,
    score DOUBLE,
    threshold DOUBLE,
    p_value DOUBLE,
    drifted BOOLEAN,
    verdict VARCHAR NOT NULL,
    reference_n BIGINT NOT NULL,
    current_n BIGINT NOT NULL,
    reference_start TIMESTAMP,
    reference_end TIMESTAMP,
    current_start TIMESTAMP,
    current_end TIMESTAMP,
    reference_prompt_version VARCHAR,
    message VARCHAR NOT NULL
)
