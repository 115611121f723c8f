"""Observability: Prometheus metrics, the health server, log lines."""
