-- The latest run's rows for every group and feature (all methods of that run).
SELECT *
FROM drift_results
QUALIFY computed_at = max(computed_at) OVER (
    PARTITION BY group_by, tenant, model, prompt_version, endpoint, service_name, kind, feature
)
ORDER BY group_by, model, prompt_version, tenant, endpoint, service_name, kind, feature, method
