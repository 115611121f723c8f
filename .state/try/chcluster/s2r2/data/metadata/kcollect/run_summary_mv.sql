ATTACH MATERIALIZED VIEW run_summary_mv TO kcollect.run_summary_local
(
    run_id String, 
    clients AggregateFunction(uniqExact, UInt64), 
    ok_clients AggregateFunction(uniqExactIf, UInt64, UInt8), 
    partial_clients AggregateFunction(uniqExactIf, UInt64, UInt8), 
    deliveries AggregateFunction(count), 
    first_collected_at AggregateFunction(min, DateTime('UTC')), 
    last_collected_at AggregateFunction(max, DateTime('UTC')), 
    max_attempt AggregateFunction(max, UInt16)
) AS
SELECT 
    run_id, 
    uniqExactState(cityHash64(client_id)) AS clients, 
    uniqExactIfState(cityHash64(client_id), status = 'ok') AS ok_clients, 
    uniqExactIfState(cityHash64(client_id), status = 'partial') AS partial_clients, 
    countState() AS deliveries, 
    minState(collected_at) AS first_collected_at, 
    maxState(collected_at) AS last_collected_at, 
    maxState(attempt) AS max_attempt
FROM kcollect.client_results_local 
GROUP BY run_id
