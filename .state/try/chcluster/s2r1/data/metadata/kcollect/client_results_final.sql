ATTACH VIEW client_results_final
(
    run_id String, 
    client_id String, 
    requested_at DateTime('UTC'), 
    collected_at DateTime('UTC'), 
    attempt UInt16, 
    status String, 
    metrics String, 
    missing Array(String), 
    computed String, 
    version UInt64
) AS
SELECT *
FROM kcollect.client_results
FINAL 
