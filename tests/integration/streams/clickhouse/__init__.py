"""Integration tests of streams/clickhouse."""
