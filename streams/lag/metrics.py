"""Every metric name of lag monitoring, in one place (the exporter's, and the lag gate's gauges).

The convention is kafka_exporter's (danielqsj/kafka_exporter): its names AND its labels, ``consumergroup``,
``topic``, ``partition``, so its dashboards and alert rules work on kcollect's exporter unchanged. What
kafka_exporter lacks (time lag, maxima, Burrow-style statuses) keeps its prefix and labels. docs/lag.md
maps every name onto kafka-lag-exporter's and Burrow's. Status values are ``streams.lag.status.Status``:
0 OK, 1 WARNING, 2 STALLED, 3 STOPPED, 4 REWIND, 5 UNMEASURED.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

GROUP_LABEL = "consumergroup"  # kafka_exporter's name for the consumer group label, on every metric here
PARTITION_LABELS = (GROUP_LABEL, "topic", "partition")
GROUP_TOPIC_LABELS = (GROUP_LABEL, "topic")

# Exporter (kcollect/ops/exporter.py), served from a cache filled by a background collection.
GROUP_LAG = "kafka_consumergroup_lag"  # kafka_exporter
GROUP_LAG_SUM = "kafka_consumergroup_lag_sum"  # kafka_exporter: per consumergroup and topic
GROUP_LAG_MAX = "kafka_consumergroup_lag_max"
GROUP_LAG_SECONDS = "kafka_consumergroup_lag_seconds"
GROUP_LAG_SECONDS_MAX = "kafka_consumergroup_lag_seconds_max"
GROUP_OFFSET = "kafka_consumergroup_current_offset"  # kafka_exporter
GROUP_OFFSET_SUM = "kafka_consumergroup_current_offset_sum"  # kafka_exporter
TOPIC_OFFSET = "kafka_topic_partition_current_offset"  # kafka_exporter
PARTITION_STATUS = "kafka_consumergroup_status"
GROUP_STATUS = "kafka_consumergroup_group_status"
GROUP_MEMBERS = "kafka_consumergroup_members"  # kafka_exporter
PARTITION_OWNER = "kafka_consumergroup_partition_owner"  # info-style: 1 per partition, owner in labels
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
    GROUP_TOPIC_LABELS,
)
GATE_LAG = Gauge("kcollect_lag_gate_lag", "The lag the gate last measured (records)", GROUP_TOPIC_LABELS)
GATE_ERRORS = Counter(
    "kcollect_lag_gate_errors", "Lag measurements of the gate that failed", GROUP_TOPIC_LABELS
)
