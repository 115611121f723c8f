ATTACH VIEW run_summary_final
(
    run_id String, 
    clients UInt64, 
    ok_clients UInt64, 
    partial_clients UInt64, 
    deliveries UInt64, 
    first_collected_at DateTime('UTC'), 
    last_collected_at DateTime('UTC'), 
    max_attempt UInt16
) AS
SELECT 
    run_id, 
    uniqExactMerge(clients) AS clients, 
    uniqExactIfMerge(ok_clients) AS ok_clients, 
    uniqExactIfMerge(partial_clients) AS partial_clients, 
    countMerge(deliveries) AS deliveries, 
    minMerge(first_collected_at) AS first_collected_at, 
    maxMerge(last_collected_at) AS last_collected_at, 
    maxMerge(max_attempt) AS max_attempt
FROM kcollect.run_summary 
GROUP BY run_id
