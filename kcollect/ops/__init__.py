"""Operator tools: the Prometheus exporter, the doctor, the dead-letter inspect and replay tools."""
