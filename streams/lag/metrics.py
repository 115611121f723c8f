"""Every metric name of lag monitoring, in one place (the exporter's, and the lag gate's gauges).

The ``kafka_*`` names follow the widely used Kafka lag exporters (kafka_exporter, kminion), so existing
dashboards and alerts fit; labels ``group``, ``topic``, ``partition``. Status values are
``streams.lag.status.Status``: 0 OK, 1 WARNING, 2 STALLED, 3 STOPPED, 4 ERROR.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

# Exporter (kcollect/ops/exporter.py), served from a cache filled by a background collection.
GROUP_LAG = "kafka_consumergroup_lag"
GROUP_LAG_SECONDS = "kafka_consumergroup_lag_seconds"
GROUP_OFFSET = "kafka_consumergroup_current_offset"
TOPIC_OFFSET = "kafka_topic_partition_current_offset"
PARTITION_STATUS = "kafka_consumergroup_status"
GROUP_STATUS = "kafka_consumergroup_group_status"
GROUP_MEMBERS = "kafka_consumergroup_members"
RUN_TOTAL = "kcollect_run_total"
RUN_STORED = "kcollect_run_stored"
RUN_DEAD_LETTERED = "kcollect_run_dead_lettered"
RUN_PENDING = "kcollect_run_pending"
RUN_COMPLETE = "kcollect_run_complete"
EXPORTER_UP = "kcollect_lag_exporter_up"
EXPORTER_COLLECT_SECONDS = "kcollect_lag_exporter_collect_seconds"
EXPORTER_LAST_COLLECT = "kcollect_lag_exporter_last_collect_timestamp_seconds"
EXPORTER_ERRORS = "kcollect_lag_exporter_collect_errors"  # a counter: exposed with _total

# Lag gate (streams/lag/gate.py), in the default registry of the process that runs the gate.
GATE_PAUSED = Gauge(
    "kcollect_lag_gate_paused",
    "1 while the gate holds consumption back (lag above the high mark, until below the low mark)",
    ["group", "topic"],
)
GATE_LAG = Gauge("kcollect_lag_gate_lag", "The lag the gate last measured (records)", ["group", "topic"])
GATE_ERRORS = Counter(
    "kcollect_lag_gate_errors", "Lag measurements of the gate that failed", ["group", "topic"]
)
