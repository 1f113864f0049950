-- Every stored drift result, oldest run first.
SELECT *
FROM drift_results
ORDER BY computed_at, group_by, model, prompt_version, tenant, endpoint, service_name, kind, feature, method
