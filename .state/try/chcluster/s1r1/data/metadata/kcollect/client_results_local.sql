ATTACH TABLE client_results_local
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
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/kcollect/client_results_local', '{replica}', version)
PARTITION BY toYYYYMM(requested_at)
ORDER BY (run_id, client_id)
SETTINGS index_granularity = 8192
