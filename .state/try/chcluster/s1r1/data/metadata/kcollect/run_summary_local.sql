ATTACH TABLE run_summary_local
(
    run_id String, 
    clients AggregateFunction(uniqExact, UInt64), 
    ok_clients AggregateFunction(uniqExactIf, UInt64, UInt8), 
    partial_clients AggregateFunction(uniqExactIf, UInt64, UInt8), 
    deliveries AggregateFunction(count), 
    first_collected_at AggregateFunction(min, DateTime('UTC')), 
    last_collected_at AggregateFunction(max, DateTime('UTC')), 
    max_attempt AggregateFunction(max, UInt16)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/kcollect/run_summary_local', '{replica}')
ORDER BY run_id
SETTINGS index_granularity = 8192
