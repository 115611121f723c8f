ATTACH TABLE client_results
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
ENGINE = Distributed(kcollect, kcollect, client_results_local, halfMD5(client_id))
