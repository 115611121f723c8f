"""Prometheus metric names, defined in one place (prometheus-client's default registry).

Services update these; whoever exposes the registry (``prometheus_client.start_http_server`` or a
textfile) shows them all. Names follow ``kcollect_<service>_<what>[_unit]``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SINK_CLICKHOUSE_UP = Gauge(
    "kcollect_sink_clickhouse_up",
    "1 while the sink's inserts succeed, 0 while ClickHouse is down, slow or refusing (partitions paused)",
)
SINK_ROWS_INSERTED = Counter("kcollect_sink_rows_inserted", "Rows ClickHouse acknowledged")
SINK_INSERTS = Counter("kcollect_sink_inserts", "Acknowledged inserts (one per window and month)")
SINK_INSERT_FAILURES = Counter(
    "kcollect_sink_insert_failures",
    "Failed insert attempts",
    ["kind"],  # kind: outage | data | unexpected (a bug: a few attempts, then the sink stops)
)
SINK_DEAD_LETTERED = Counter(
    "kcollect_sink_dead_lettered", "Results sent to the results dead-letter topic", ["stage"]
)
SINK_OPEN_WINDOWS = Gauge("kcollect_sink_open_windows", "Per-partition windows collecting rows")

# --- processor (processors/, streams/steps/stream_processor.py) ---------------------------------------------
from prometheus_client import Histogram  # noqa: E402

PROCESSOR_FETCH_SECONDS = Histogram(
    "kcollect_processor_fetch_seconds",
    "Latency of one subsystem call (one batch of clients)",
    ["subsystem"],
    buckets=(0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
)
PROCESSOR_FETCH_CALLS = Counter(
    "kcollect_processor_fetch_calls", "Subsystem calls by outcome", ["subsystem", "outcome"]
)  # outcome: ok | error | timeout | breaker_open
PROCESSOR_FETCH_BATCH = Histogram(
    "kcollect_processor_fetch_batch_clients",
    "Clients per subsystem call",
    ["subsystem"],
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000),
)
PROCESSOR_RETRIES = Counter(
    "kcollect_processor_retries", "In-process retries of subsystem calls", ["subsystem"]
)
PROCESSOR_BREAKER_STATE = Gauge(
    "kcollect_processor_breaker_state", "Circuit breaker: 0 closed, 1 open, 2 half-open", ["subsystem"]
)
PROCESSOR_RECORDS = Counter(
    "kcollect_processor_records", "Requests handled by outcome", ["outcome"]
)  # outcome: ok | partial | retry | dead_lettered
PROCESSOR_DEAD_LETTERED = Counter(
    "kcollect_processor_dead_lettered", "Requests sent to the requests DLQ", ["stage", "error_class"]
)
PROCESSOR_IN_FLIGHT = Gauge("kcollect_processor_in_flight_batches", "Batches being fetched")
CONSUMER_PAUSED_PARTITIONS = Gauge(
    "kcollect_consumer_paused_partitions", "Partitions paused (backpressure or retry wait)", ["consumergroup"]
)
CONSUMER_PAUSED_SECONDS = Counter(
    "kcollect_consumer_paused_seconds", "Time the consumer spent paused by backpressure", ["consumergroup"]
)

# --- the consume loop of every service (streams/stream_processor.py) and the sink's inserts -----------
CONSUMER_LOOP_SECONDS = Histogram(
    "kcollect_consumer_loop_seconds",
    "Duration of one turn of the consume loop (consume, submit, poll)",
    ["consumergroup"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
SINK_INSERT_LATENCY = Histogram(
    "kcollect_sink_insert_seconds",
    "Duration of one acknowledged ClickHouse insert",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# --- processor state (processors/processor/state/, docs/state.md) -------------------------------------
PROCESSOR_STATE_RESTORE_SECONDS = Gauge(
    "kcollect_processor_state_restore_seconds",
    "How long the last restore of a partition's state from its changelog took",
    ["partition"],
)
PROCESSOR_STATE_RESTORED_RECORDS = Counter(
    "kcollect_processor_state_restored_records", "Changelog records applied while restoring", ["partition"]
)
PROCESSOR_STATE_STORE_BYTES = Gauge(
    "kcollect_processor_state_store_bytes", "Size of a partition's local store on disk", ["partition"]
)
PROCESSOR_STATE_ENTRIES = Gauge(
    "kcollect_processor_state_entries",
    "Rows (clients and run clocks) in a partition's local store",
    ["partition"],
)
PROCESSOR_STATE_CHANGELOG_BYTES = Counter(
    "kcollect_processor_state_changelog_bytes",
    "Bytes (keys and values) written to the state changelog topic",
)
PROCESSOR_STATE_LOOKUPS = Counter(
    "kcollect_processor_state_lookups",
    "Clients looked up in the state: hit = a history was there, miss = first sight, none = ad-hoc run",
    ["outcome"],
)
PROCESSOR_STATE_DROPPED = Counter(
    "kcollect_processor_state_dropped",
    "Clients dropped from the state (not seen for too many runs or too long)",
)
